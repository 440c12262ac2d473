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

test: setup lint  ## lint, unit + reference tests, benchmarks at tiny sizes, every notebook in FAST mode
	$(PY) -m pytest

unit: setup     ## the fast loop: no notebooks, no model, no benchmarks (about a minute)
	$(PY) -m pytest -m "not notebook and not model and not bench" --ignore-glob='tests/test_grading*' -q

lint: setup     ## ruff, configured in pyproject.toml
	$(VENV)/bin/ruff check .

lab: setup      ## open JupyterLab on the course
	$(VENV)/bin/jupyter lab --notebook-dir=.

check: setup    ## saved notebooks: no errors, executed in order
	$(PY) -m course_utils.tools.notebooks check $(NOTEBOOKS)

nbval: setup    ## nbval over the chapters in FAST mode (outputs compared where tagged)
	COURSE_FAST=1 $(PY) -m pytest --nbval-lax -p no:randomly $(NOTEBOOKS)

book: setup     ## HTML book of the executed chapters -> _build/book/html/index.html (offline)
	$(PY) -m course_utils.tools.book --out _build/book

benchmarks: setup   ## speed/quality tables of same-run ratios (minutes)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

bench-smoke: setup  ## every benchmark at tiny sizes, so none can rot (also part of make test)
	$(PY) -m pytest -m bench -q

clean:
	rm -rf $(VENV) data/cache .pytest_cache

# Exercises and grading (course_utils.grading). Learner name = notebook file stem, or the parent
# folder's name when the file keeps the course's name (submissions/alice/01_..._exercises.ipynb).
GRADES  ?= grades
TIMEOUT ?= 300
SANDBOX ?= auto
.PHONY: exercises grade
exercises: setup  ## regenerate exercises/ from solutions/ (solution regions removed, outputs cleared)
	$(PY) -m course_utils.grading generate

grade: setup      ## grade learner notebooks in a bubblewrap sandbox: make grade SUBMISSIONS="subs/" [GRADES=grades] [TIMEOUT=300] [SANDBOX=auto|bwrap|none]
	@test -n "$(SUBMISSIONS)" || { echo 'usage: make grade SUBMISSIONS="path/to/notebooks-or-folders" [GRADES=dir]'; exit 2; }
	$(PY) -m course_utils.grading grade $(SUBMISSIONS) --out $(GRADES) --timeout $(TIMEOUT) --sandbox $(SANDBOX)
