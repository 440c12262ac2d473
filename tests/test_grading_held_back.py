"""Practice is not the grade: every automatic exercise holds cases back, and no hint gives the code.

- A function that only reproduces the answers of the public cases (it runs the reference solution
  on the inputs `check` showed it, and on nothing else) passes `check` but loses points in the
  grade, which counts the held-back cases only.
- No hint shares a run of `MAX_SHARED` or more consecutive code tokens with the solution's code:
  hint 2 names the approach and the library call, never the code itself.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from test_grading import _reference

from course_utils.grading import cases, check, checks, generate

ROOT = Path(__file__).resolve().parents[1]
SLOW_LIMIT = 180     # seconds for one exercise's tests when they load a model (a busy machine)
MAX_SHARED = 12      # consecutive code tokens a hint may share with the solution (a call with a few of its arguments)
AUTOMATIC = sorted(ex for ex, e in cases.registry().items() if not e.manual)


@functools.lru_cache(maxsize=None)
def _solution_cells(chapter: str) -> tuple:
    path, = (ROOT / "solutions").glob(f"{chapter}_*_exercises.ipynb")
    return tuple(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")


def _key(value):
    """A hashable digest of plain data; any other object (an encoder, a function) by its type."""
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_key(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((_key(k), _key(v)) for k, v in value.items()))
    if isinstance(value, (set, frozenset)):
        return ("set", tuple(sorted(map(repr, value))))
    if value is None or isinstance(value, (str, bytes, int, float, np.generic)):
        return repr(value)
    return type(value).__name__


class HardCoded:
    """While `learning`, the reference solution, remembering each input it was called with; after,
    the reference's answer for those inputs only -- what a learner who hard-codes the answers of
    the public cases `check` ran would hand in."""

    def __init__(self, reference):
        self.reference, self.seen, self.learning = reference, set(), True

    def __call__(self, *args, **kwargs):
        key = _key((args, kwargs))
        if self.learning:
            self.seen.add(key)
        elif key not in self.seen:
            return None
        return self.reference(*args, **kwargs)


@pytest.mark.parametrize("ex", AUTOMATIC)
def test_every_exercise_holds_cases_back(ex):
    exercise = cases.get(ex)
    assert exercise.public is not None and len(exercise.hidden_cases) >= 2, ex


@pytest.mark.parametrize("ex", AUTOMATIC)
def test_hard_coding_the_public_answers_passes_check_but_loses_points(ex, capsys):
    exercise = cases.get(ex)
    cheat = HardCoded(_reference(ex))
    assert check(ex, cheat, time_limit=SLOW_LIMIT), capsys.readouterr().out
    cheat.learning = False
    graded = checks._run(exercise, cheat, SLOW_LIMIT, "hidden")
    assert graded.status == "failed" and graded.cases_passed < graded.cases_total, graded


# ------------------------------------------------------------------------------ hints are not code
_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d+)?|\*\*|//|==|!=|<=|>=|\S")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.replace('"', "'"))


def _longest_shared_run(a: list[str], b: list[str]) -> tuple[int, str]:
    """The longest run of consecutive tokens found in both lists (dynamic programming), as text."""
    best, end, row = 0, 0, [0] * (len(b) + 1)
    for i, x in enumerate(a, 1):
        new = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                new[j] = row[j - 1] + 1
                if new[j] > best:
                    best, end = new[j], i
        row = new
    return best, " ".join(a[end - best:end])


def _solution_code(exercise: cases.Exercise) -> str:
    """The solution regions of the cell that defines the exercise's function."""
    cell = next(c for c in _solution_cells(exercise.chapter) if f"def {exercise.function}(" in c)
    regions = re.findall(rf"{generate.BEGIN}(.*?){generate.END}", cell, flags=re.S)
    assert regions, f"{exercise.id}: no solution region in the cell defining {exercise.function}"
    return "\n".join(regions)


@pytest.mark.parametrize("ex", AUTOMATIC)
def test_no_hint_holds_the_solution_code(ex):
    exercise = cases.get(ex)
    code = _tokens(_solution_code(exercise))
    for n, hint in enumerate(exercise.hints, 1):
        shared, text = _longest_shared_run(_tokens(hint), code)
        assert shared < MAX_SHARED, f"{ex}: hint {n} repeats {shared} tokens of the solution: {text}"


def test_the_token_run_measure():
    assert _longest_shared_run(_tokens("use `np.argsort(-s)` here"), _tokens("o = np.argsort(-s)[:k]")) == \
        (7, "np . argsort ( - s )")
    assert _longest_shared_run(_tokens("nothing"), _tokens("x = 1"))[0] == 0
