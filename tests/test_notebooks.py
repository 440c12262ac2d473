"""Every notebook: saved without errors and in order; executed in FAST mode without errors; cells
tagged `nbval-check-output` print the same in FAST mode as in the saved full run.

Solution notebooks are executed in FAST mode by the grader in tests/test_grading.py
(test_solutions_score_full_marks_and_exercises_zero requires status "ok": no cell raised), so
they are not executed a second time here."""

from pathlib import Path

import pytest

from course_utils import notebooks

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))  # 09b_ too
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
ALL = CHAPTERS + SOLUTIONS
ids = [p.name for p in ALL]


def test_there_are_chapters():
    assert CHAPTERS, "no chapter notebooks found"


@pytest.mark.parametrize("path", ALL, ids=ids)
def test_saved_notebook_is_clean(path):
    assert notebooks.problems(path) == []


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """One embedding cache for all notebooks of the session, as for a learner: a text encoded by
    one chapter is never encoded again by the next."""
    return tmp_path_factory.mktemp("notebook-cache")


@pytest.mark.notebook
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_executes_in_fast_mode(path, tmp_path, shared_cache, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(shared_cache))
    out = tmp_path / path.name
    notebooks.execute(path, out, fast=True, timeout=900)
    assert notebooks.problems(out) == []
    assert notebooks.output_drift(path, out) == []


def test_problems_detects_errors_and_order(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    nb = new_notebook()
    nb.cells = [new_code_cell("FAST = False\nSEED = 0", execution_count=2, metadata={"tags": ["parameters"]}),
                new_code_cell("1/0", execution_count=1,
                              outputs=[new_output("error", ename="ZeroDivisionError", evalue="division by zero")])]
    path = tmp_path / "bad.ipynb"
    nbformat.write(nb, path)
    found = notebooks.problems(path)
    assert any("ZeroDivisionError" in f for f in found) and any("out of order" in f for f in found)
