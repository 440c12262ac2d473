"""`check`: run an exercise's public tests against the learner's function, in the notebook.

    from course_utils.grading import check
    result = check("01.cosine", cosine_matrix)   # prints pass/fail + hints; result is truthy if passed

Every outcome of the learner's function is caught and reported, never raised: a
`NotImplementedError` (the exercise is not done yet), any other exception, `sys.exit()`, a
wrong answer, a changed input, or running longer than `time_limit` seconds (an endless loop) --
so an exercise notebook always runs top to bottom. `check` runs the exercise's *public* cases
only; the grade counts its *held-back* cases (see `cases`), which `check` never runs or names.
The hint ladder: the first failed attempt shows hint 1; every later failed attempt of the same
exercise (in this kernel) adds hint 2. Attempts (calls whose function ran) are counted per
exercise; `attempts()` gives them, and `submit` records them in the submission's manifest.
`check` also remembers which function it was given for each exercise: the grader grades that one
(else the notebook's global of the exercise's function name), calling it from its own process
with held-back inputs (see `remote`); what `check` prints never counts towards a grade.
"""
from __future__ import annotations

import signal
import textwrap
import threading
import traceback
from collections import Counter
from dataclasses import dataclass

from . import cases, remote

__all__ = ["DEFAULT_TIME_LIMIT", "WHICH", "CheckResult", "check", "attempts"]

DEFAULT_TIME_LIMIT = 20.0  # seconds for all the tests of one exercise run
_LIBRARIES = ("course_utils", "numpy", "scipy", "sklearn", "torch", "sentence_transformers")
WHICH = ("public", "hidden", "all")   # which cases a run uses
_failures: Counter = Counter()  # failed attempts per exercise id, for the hint ladder
_attempts: Counter = Counter()  # attempts per exercise id (the function ran), for the manifest
_submitted: dict = {}           # exercise id -> the function last given to check (for the grader)


class _TimeLimit(BaseException):
    """Raised by the alarm; a BaseException, so a learner's `except Exception` cannot swallow it."""


@dataclass(frozen=True)
class CheckResult:
    """What a check found. Truthy when every test it ran passed."""

    exercise: str
    status: str          # "passed", "failed" or "not implemented"
    cases_passed: int
    cases_total: int
    message: str = ""    # the first failing test and what went wrong
    failing: tuple = ()  # names of the failing tests

    def __bool__(self) -> bool:
        return self.status == "passed"

    def __repr__(self) -> str:
        return f"CheckResult({self.exercise!r}, {self.status}, {self.cases_passed}/{self.cases_total} tests)"


def _where(err: BaseException) -> str:
    """' (in cosine_matrix, line 7: return a @ b)' -- the learner's frame nearest the error."""
    if getattr(err, "_course_where", None) is not None:   # raised in the learner's kernel
        return err._course_where
    return remote.where(err)


def _not_written(exercise: cases.Exercise, err: BaseException) -> str:
    frames = [f.name for f in traceback.extract_tb(err.__traceback__) if "course_utils" not in f.filename]
    who = exercise.function if not frames or frames[-1] == exercise.function else \
        f"{frames[-1]}, which {exercise.function} calls,"
    return f"{who} is not written yet: replace its `raise NotImplementedError(...)` line with your code"


def _alarm(seconds: float):
    """Arm a SIGALRM timer if possible (main thread, POSIX); return a function that disarms it."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return lambda: None

    def _raise(signum, frame):
        raise _TimeLimit()

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)

    def disarm():
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return disarm


def _selected(exercise: cases.Exercise, which: str) -> tuple:
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, not {which!r}")
    return {"public": exercise.public_cases, "hidden": exercise.hidden_cases, "all": exercise.cases}[which]


def _run(exercise: cases.Exercise, fn, time_limit: float, which: str = "all") -> CheckResult:
    """Run the `which` cases of `exercise` on `fn` (in this process; `fn` may be a `remote.Remote`)."""
    selected = _selected(exercise, which)
    total = len(selected)
    fail = lambda msg, n=0, names=(): CheckResult(exercise.id, "failed", n, total, msg, tuple(names))
    if not callable(fn):
        return fail(f"check needs your function itself, e.g. check({exercise.id!r}, "
                    f"{exercise.function}) -- without parentheses; got a {type(fn).__name__}")
    if (getattr(fn, "__module__", None) or "").split(".")[0] in _LIBRARIES:
        return fail(f"that is a library function ({fn.__module__}); check your own "
                    f"{exercise.function}")
    passed, failed = 0, []
    disarm = _alarm(time_limit)
    try:
        for case in selected:
            try:
                case.run(fn)
                passed += 1
            except cases.Fail as err:
                failed.append((case.name, str(err)))
            except NotImplementedError as err:
                return CheckResult(exercise.id, "not implemented", 0, total, _not_written(exercise, err))
            except (Exception, SystemExit) as err:  # the learner's bug, reported not raised
                failed.append((case.name, f"your function raised {type(err).__name__}: "
                                          f"{str(err)[:150]}{_where(err)}"))
    except _TimeLimit:
        return fail(f"stopped after {time_limit:g} s, during the tests -- an endless loop? "
                    f"({passed} of {total} tests had passed)", passed, ["time limit"])
    finally:
        disarm()
    if not failed:
        return CheckResult(exercise.id, "passed", passed, total)
    name, detail = failed[0]
    return fail(f'test "{name}": {detail}', passed, [n for n, _ in failed])


def _report(exercise: cases.Exercise, result: CheckResult, attempts: int) -> str:
    head = f"{exercise.id} -- {exercise.title}:"
    if result:
        more = "" if exercise.public is None else \
            f" (the grade counts {len(exercise.hidden_cases)} more, held-back tests)"
        return f"✓ {head} all {result.cases_total} public tests passed{more}."
    wrap = lambda label, text: textwrap.fill(text, 100, initial_indent=f"  {label}",
                                             subsequent_indent="    ")
    if result.status == "not implemented":
        lines = [f"✗ {head} not done yet.", wrap("", result.message)]
    else:
        lines = [f"✗ {head} {result.cases_passed} of {result.cases_total} public tests passed.",
                 wrap("Failed ", result.message)]
        others = [f'"{n}"' for n in result.failing[1:]]
        if others:
            lines.append(wrap("Also failing: ", "; ".join(others)))
    lines.append(wrap("Hint 1: ", exercise.hints[0]))
    if attempts >= 2 and result.status != "not implemented":
        lines.append(wrap(f"Hint 2 (failed {attempts} times): ", exercise.hints[1]))
    elif result.status == "failed":
        lines.append("  (Fix, re-run your function's cell, then this one; a second failure shows hint 2.)")
    return "\n".join(lines)


def check(exercise_id: str, fn, *, time_limit: float = DEFAULT_TIME_LIMIT) -> CheckResult:
    """Run the public tests of `exercise_id` on `fn`; print the outcome; return a CheckResult.

    Never raises because of `fn` (see the module docstring); raises ValueError for an unknown id
    or for an item the instructor grades by hand (a project or a written answer).

    >>> check("01.spearman", lambda x, y: 1 / 0)         # doctest: +ELLIPSIS
    ✗ 01.spearman -- Spearman rank correlation: 0 of 5 public tests passed.
    ...
    CheckResult('01.spearman', failed, 0/5 tests)
    """
    exercise = cases.get(exercise_id)
    if exercise.manual:
        raise ValueError(f"{exercise_id} is graded by the instructor from your answer (the cell "
                         f"tagged answer:{exercise_id}); there is nothing to check here")
    _submitted[exercise_id] = fn
    result = _run(exercise, fn, time_limit, "public")
    if result.status != "not implemented":
        _attempts[exercise_id] += 1
    if result.status == "failed":  # "not implemented" is not an attempt: no stronger hint yet
        _failures[exercise_id] += 1
    print(_report(exercise, result, _failures[exercise_id]), flush=True)
    return result


def attempts() -> dict[str, int]:
    """{exercise id: how many times `check` ran the learner's function for it} in this kernel."""
    return dict(_attempts)
