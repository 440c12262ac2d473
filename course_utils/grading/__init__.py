"""Exercises, their automatic checks, and instructor grading.

For learners (in an exercise notebook)::

    from course_utils.grading import check
    check("01.cosine", cosine_matrix)   # runs the public tests, prints pass/fail and hints
    submit()                             # last cell: zip the saved notebook + manifest to upload

For authors and instructors::

    python -m course_utils.grading generate            # solutions/*.ipynb -> exercises/*.ipynb
    python -m course_utils.grading generate --check    # exit 1 if exercises/ is out of date
    python -m course_utils.grading grade SUBMISSIONS... --out DIR [--timeout 300] [--force]
                 [--sandbox auto|bwrap|none] [--deadline [NN=]WHEN] [--late-penalty PERCENT]
    python -m course_utils.grading export --out DIR --roster roster.csv   # canvas.csv, moodle.csv
    python -m course_utils.grading submit NOTEBOOK                        # the learner's zip
    python -m course_utils.grading release                                # dist/: no solutions/

Modules: `checks` (check, the hint ladder) · `cases` + `ch01`... (public and held-back test
cases, points, manual items) · `generate` (solutions -> exercises) · `grader`, `worker`, `report`
(batch grading) · `sandbox` (bubblewrap + limits around each learner's kernel) · `remote` (the
grader calls the learner's functions with plain data in between) · `gradebook` (late policy,
instructor comments, roster) · `lms` (gradebook, Canvas and Moodle CSV) · `submission` (the learner's
zip + manifest) · `release` (the learner bundle).
"""
__all__ = ["check", "CheckResult", "submit"]


def __getattr__(name):
    # Lazy: `python -m course_utils.grading ...` and the sandbox need none of the checks' imports.
    if name in ("check", "CheckResult"):
        from . import checks
        return getattr(checks, name)
    if name == "submit":
        from .submission import submit
        return submit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
