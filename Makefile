# The course's two commands: `make course` (set up + execute every chapter in full mode) and
# `make test` (set up + the whole test suite, notebooks in FAST mode). See README.md.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LAB_SETTINGS := {"@jupyterlab/apputils-extension:notification": {"checkForUpdates": false, "fetchNews": "false"}}
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]*_*.ipynb))
NODEPS  = $(shell $(PYTHON) -c "import tomllib;print(' '.join(tomllib.load(open('pyproject.toml','rb'))['tool']['course-utils']['no-deps']))")

.PHONY: setup course test unit lint lab check benchmarks bench-smoke nbval clean book
setup: $(STAMP)

$(STAMP): pyproject.toml
	@echo "== creating $(VENV) and installing the pinned stack (CPU torch 2.13.0; ~2 min)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps $(NODEPS)
	# the course is offline: JupyterLab must not ask to fetch news or check for updates
	mkdir -p $(VENV)/share/jupyter/lab/settings
	echo '$(LAB_SETTINGS)' > $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $(STAMP)

course: setup   ## execute every chapter in full mode, saving outputs in notebooks/
	$(PY) -m course_utils.tools.notebooks run $(NOTEBOOKS)

NBVAL = COURSE_FAST=1 $(PY) -m pytest --nbval-lax -p no:randomly --nbval-sanitize-with tests/nbval_sanitize.cfg

test: setup lint  ## lint, unit + reference tests, benchmarks at tiny sizes, every notebook in FAST mode, nbval over exercises/
	$(PY) -m pytest
	$(NBVAL) exercises/

unit: setup     ## the fast loop: no notebooks, no model, no benchmarks (about a minute)
	$(PY) -m pytest -m "not notebook and not model and not bench" --ignore-glob='tests/test_grading*' -q

lint: setup     ## ruff, configured in pyproject.toml
	$(VENV)/bin/ruff check .

lab: setup      ## open JupyterLab on the course
	$(VENV)/bin/jupyter lab --notebook-dir=.

check: setup    ## saved notebooks: no errors, executed in order
	$(PY) -m course_utils.tools.notebooks check $(NOTEBOOKS)

nbval: setup    ## nbval over the chapters, exercises and solutions in FAST mode (outputs compared where tagged nbval-check-output)
	$(NBVAL) $(NOTEBOOKS) exercises/ solutions/

book: setup     ## HTML book of the executed chapters -> _build/book/html/index.html (offline)
	$(PY) -m course_utils.tools.book --out _build/book

benchmarks: setup   ## speed/quality tables of same-run ratios (minutes)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

bench-smoke: setup  ## every benchmark at tiny sizes, so none can rot (also part of make test)
	$(PY) -m pytest -m bench -q

clean:
	rm -rf $(VENV) data/cache .pytest_cache dist

# Exercises and grading (course_utils.grading); README.md "Exercises and grading" shows the workflow.
# Learner name = file stem, or the parent folder's name when the file keeps the course's name
# (submissions/alice/01_..._exercises.zip); one folder may hold several chapters of one learner.
GRADES  ?= grades
TIMEOUT ?= 300
SANDBOX ?= auto
DEADLINE ?=
LATE_PENALTY ?=
ROSTER ?=
.PHONY: exercises grade export release submit
exercises: setup  ## regenerate exercises/ from solutions/ (solution regions removed, outputs cleared)
	$(PY) -m course_utils.grading generate

grade: setup      ## grade notebooks/zips in a bubblewrap sandbox: make grade SUBMISSIONS="subs/" [GRADES=grades] [DEADLINE="01=2026-12-01 02=2026-12-08"] [LATE_PENALTY=10] [TIMEOUT=300] [SANDBOX=auto|bwrap|none]
	@test -n "$(SUBMISSIONS)" || { echo 'usage: make grade SUBMISSIONS="path/to/notebooks-or-folders" [GRADES=dir] [DEADLINE="NN=YYYY-MM-DD ..."] [LATE_PENALTY=percent per day]'; exit 2; }
	$(PY) -m course_utils.grading grade $(SUBMISSIONS) --out $(GRADES) --timeout $(TIMEOUT) --sandbox $(SANDBOX) \
		$(foreach d,$(DEADLINE),--deadline $(d)) $(if $(LATE_PENALTY),--late-penalty $(LATE_PENALTY))

export: setup     ## after grading (and editing $(GRADES)/comments.csv): make export ROSTER=roster.csv -> $(GRADES)/canvas.csv, moodle.csv, gradebook.csv
	$(PY) -m course_utils.grading export --out $(GRADES) $(if $(ROSTER),--roster $(ROSTER))

release: setup    ## the learner bundle, dist/course-<version>-learner.zip: everything but solutions/ and tests/
	$(PY) -m course_utils.grading release --out dist

submit: setup     ## for learners: make submit NOTEBOOK=exercises/01_embeddings_exercises.ipynb -> a zip to upload
	@test -n "$(NOTEBOOK)" || { echo 'usage: make submit NOTEBOOK=exercises/NN_topic_exercises.ipynb'; exit 2; }
	$(PY) -m course_utils.grading submit $(NOTEBOOK)
