"""Exercises, their automatic checks, and instructor grading.

For learners (in an exercise notebook)::

    from course_utils.grading import check
    check("01.cosine", cosine_matrix)   # runs hidden tests, prints pass/fail and hints

For authors and instructors::

    python -m course_utils.grading generate            # solutions/*.ipynb -> exercises/*.ipynb
    python -m course_utils.grading generate --check    # exit 1 if exercises/ is out of date
    python -m course_utils.grading grade SUBMISSIONS... --out DIR [--timeout 300] [--force]
                                         [--sandbox auto|bwrap|none]

Modules: `checks` (check, the hint ladder) · `cases` + `ch01`... (hidden test cases) ·
`generate` (solutions -> exercises) · `grader`, `worker`, `report` (batch grading) · `sandbox`
(bubblewrap + limits around each learner's kernel) · `remote` (the grader calls the learner's
functions with plain data in between).
"""
__all__ = ["check", "CheckResult"]


def __getattr__(name):
    # Lazy: `python -m course_utils.grading ...` and the sandbox need none of the checks' imports.
    if name in __all__:
        from . import checks
        return getattr(checks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
