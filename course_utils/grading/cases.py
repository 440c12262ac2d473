"""Hidden test cases: the `Exercise` and `Case` types, helpers to write cases, the registry.

A case is a learner-facing name (it describes the *situation*, e.g. "a zero row", never the
expected answer) and a function `run(fn)` that calls the learner's function through `call` and
raises `Fail(message)` when the result is wrong. Each chapter module (`ch01`, ...) lists its
exercises; `get(exercise_id)` finds one. Exercise ids are "NN.name", NN the chapter.

Public and held-back cases: with `public=N`, `check` in the notebook runs an exercise's first N
cases (the learner practises on them, with hints) and the grade counts only the others, the
held-back cases, which the grader runs outside the learner's process and `check` never names.
`public=None` (the default) makes every case both public and graded; every chapter's exercises
use `held_back(exercise, *cases)`, which adds held-back cases after the public ones.
Partial credit: `points` x the share of graded cases passed.
Items the instructor grades by hand -- a rubric-graded project (`kind="rubric"`) or a written
"explain" question (`kind="written"`) -- have no cases; their `rubric` lists (criterion, points)
and the learner's answer is the notebook cell tagged `answer:<id>`.

>>> ex = get("01.cosine"); ex.chapter, len(ex.hints)
('01', 2)
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

__all__ = ["KINDS", "Fail", "Case", "Exercise", "held_back", "call", "as_array", "expect_array",
           "expect_number", "expect_hits", "registry", "get", "chapter_exercises"]


class Fail(Exception):
    """A hidden test failed; the message is shown to the learner (no expected values in it)."""


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable  # run(fn) -> None, raising Fail (or whatever the learner's function raises)


KINDS = ("auto", "rubric", "written")


@dataclass(frozen=True)
class Exercise:
    id: str            # "01.cosine"
    title: str         # "cosine similarity matrix"
    function: str      # the name of the function the learner writes, for messages ("" if none)
    hints: tuple       # (hint 1, hint 2 -- a nudge towards the idea, never the code)
    cases: tuple       # Case, ...
    points: float = 1  # what the exercise is worth: by difficulty (1 easy, 2 usual, 3 hard)
    public: int | None = None   # how many leading cases `check` runs; None: all (and all graded)
    kind: str = "auto"          # "auto" (cases), "rubric" (a project), "written" (an explanation)
    rubric: tuple = ()          # ((criterion, points), ...) for the instructor, manual kinds

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"{self.id}: kind must be one of {KINDS}, not {self.kind!r}")
        if self.kind == "auto" and not self.cases:
            raise ValueError(f"{self.id}: an automatic exercise needs cases")
        if self.kind != "auto" and self.cases:
            raise ValueError(f"{self.id}: a {self.kind} item is graded by hand; it takes a rubric, not cases")
        if self.public is not None and not 0 <= self.public < len(self.cases):
            raise ValueError(f"{self.id}: public={self.public} must leave at least one held-back case "
                             f"(it has {len(self.cases)})")
        if self.points <= 0:
            raise ValueError(f"{self.id}: points must be positive, not {self.points}")

    @property
    def chapter(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def manual(self) -> bool:
        """True for items the instructor grades (rubric projects, written answers)."""
        return self.kind != "auto"

    @property
    def public_cases(self) -> tuple:
        """The cases `check` runs in the learner's notebook."""
        return self.cases if self.public is None else self.cases[:self.public]

    @property
    def hidden_cases(self) -> tuple:
        """The cases the grade counts: the held-back ones (all cases when `public` is None)."""
        return self.cases if self.public is None else self.cases[self.public:]


def held_back(exercise: Exercise, *hidden: Case) -> Exercise:
    """`exercise` with its cases made public and `hidden` added as its held-back (graded) cases.

    Held-back cases repeat the public situations with other inputs, so a function that only
    reproduces the public answers loses their points.

    >>> ex = held_back(Exercise("99.x", "x", "f", ("", ""), (Case("a", print),)), Case("b", print))
    >>> [c.name for c in ex.public_cases], [c.name for c in ex.hidden_cases]
    (['a'], ['b'])
    """
    if not hidden:
        raise ValueError(f"{exercise.id}: give at least one held-back case")
    return replace(exercise, cases=exercise.cases + hidden, public=len(exercise.cases))


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def call(fn, *args, names=(), mutable=()):
    """fn(*args), failing if it modified an argument whose position is not in `mutable`.

    `names` are the parameter names used in the message ("your function changed its input `a`").
    """
    # The learner's function gets fresh copies (but the objects it is meant to change), so a
    # function that mutates its input cannot rewrite the hidden data for later attempts.
    given = tuple(a if i in mutable else copy.deepcopy(a) for i, a in enumerate(args))
    out = fn(*given)
    for i, (old, new) in enumerate(zip(args, given)):
        if i not in mutable and not _same(old, new):
            name = names[i] if i < len(names) else f"argument {i + 1}"
            raise Fail(f"your function changed its input `{name}` in place; work on a copy "
                       "(callers do not expect their data to change)")
    return out


def as_array(out, what: str = "the result") -> np.ndarray:
    """The learner's result as a float64 array, or Fail with a message saying what came back."""
    if out is None:
        raise Fail(f"{what} is None: did you forget `return`?")
    try:
        arr = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError):
        raise Fail(f"{what} is a {type(out).__name__}, not an array of numbers") from None
    return arr


def expect_array(out, expected, what: str = "the result", atol: float = 1e-5) -> None:
    """Fail unless `out` has the expected shape and values (within atol), without revealing them."""
    arr, expected = as_array(out, what), np.asarray(expected, dtype=np.float64)
    if arr.shape != expected.shape:
        hint = " (transposed?)" if arr.shape == expected.shape[::-1] else ""
        raise Fail(f"{what} has shape {arr.shape}, expected shape {expected.shape}{hint}")
    bad_nan = ~np.isfinite(arr) & np.isfinite(expected)
    if bad_nan.any():
        raise Fail(f"{what} holds {int(bad_nan.sum())} nan/inf value(s) where a number belongs "
                   "(a division by zero?)")
    wrong = ~np.isclose(arr, expected, atol=atol, rtol=1e-6, equal_nan=True)
    if wrong.any():
        gap = float(np.nanmax(np.abs(arr - expected)[wrong]))
        raise Fail(f"{int(wrong.sum())} of {wrong.size} values are wrong (largest difference "
                   f"{gap:.3g})")


def expect_number(out, expected: float, what: str = "the result", atol: float = 1e-6) -> None:
    """Fail unless `out` is one number close to `expected`."""
    arr = as_array(out, what)
    if arr.size != 1:
        raise Fail(f"{what} should be one number, got an array of shape {arr.shape}")
    value = float(arr.reshape(()))
    if not np.isfinite(value):
        raise Fail(f"{what} is {value} (a division by zero?)")
    if abs(value - expected) > atol:
        raise Fail(f"{what} is off by {abs(value - expected):.3g}")


def expect_hits(out, n_queries: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`out` as (scores float64, ids) of shape (n_queries, k), as `index.search` returns them; Fail otherwise.

    >>> [a.shape for a in expect_hits((np.zeros((2, 3)), np.zeros((2, 3), int)), 2, 3)]
    [(2, 3), (2, 3)]
    """
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Fail("return a pair `scores, ids`, each of shape (n_queries, k), as index.search does")
    scores, ids = np.asarray(out[0], np.float64), np.asarray(out[1])
    if ids.shape != (n_queries, k) or scores.shape != (n_queries, k):
        raise Fail(f"scores and ids should have shape (n_queries, k) = {(n_queries, k)}, got "
                   f"{scores.shape} and {ids.shape}")
    return scores, ids


def registry() -> dict[str, Exercise]:
    """Every exercise of every chapter, by id."""
    exercises = [ex for module in _chapter_modules() for ex in module.EXERCISES]
    return {ex.id: ex for ex in exercises}


def _chapter_modules():
    """The modules ch01.py, ch02.py, ... beside this one, in chapter order (one per exercise set)."""
    import importlib
    import pkgutil

    names = sorted(m.name for m in pkgutil.iter_modules(_package_path())
                   if m.name.startswith("ch") and m.name[2:].isdigit())
    return [importlib.import_module(f"{__package__}.{name}") for name in names]


def _package_path() -> list[str]:
    from pathlib import Path

    return [str(Path(__file__).parent)]


def get(exercise_id: str) -> Exercise:
    """The exercise with this id; ValueError naming the known ids otherwise."""
    found = registry()
    if exercise_id not in found:
        raise ValueError(f"unknown exercise {exercise_id!r}; known: {', '.join(sorted(found))}")
    return found[exercise_id]


def chapter_exercises(chapter: str) -> list[Exercise]:
    """The exercises of one chapter ("01"), in the order the notebook meets them."""
    return [ex for ex in registry().values() if ex.chapter == chapter]
