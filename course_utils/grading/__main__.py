"""python -m course_utils.grading {generate, grade, export, submit, release} -- see the package docstring."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import generate as gen
from . import gradebook, grader, lms, release, report, sandbox, submission


def _late_options(p) -> None:
    p.add_argument("--deadline", action="append", default=[], metavar="[NN=]WHEN",
                   help="deadline of chapter NN (or of every chapter): 2026-12-01 (end of that day, UTC) "
                        "or 2026-12-01T18:00+01:00; repeat for several chapters")
    p.add_argument("--late-penalty", type=float, metavar="PERCENT",
                   help="points lost per started day late, in percent of the score (default 0)")
    p.add_argument("--max-penalty", type=float, metavar="PERCENT", help="cap of the late penalty (default 100)")


def _policy(args, out: Path) -> gradebook.Policy | None:
    """DIR's policy updated by the command line (None when no option asks for a change)."""
    if not args.deadline and args.late_penalty is None and args.max_penalty is None:
        return None
    policy = gradebook.load_policy(out)
    deadlines = dict(policy.deadlines)
    for item in args.deadline:
        chapter, _, when = item.rpartition("=") if "=" in item else ("*", "", item)
        if chapter != "*" and not (len(chapter) == 2 and chapter.isdigit()):
            raise ValueError(f"--deadline {item!r}: the chapter is two digits, e.g. --deadline 02=2026-12-01")
        deadlines[chapter] = when
    return gradebook.Policy(deadlines=deadlines,
                            penalty_per_day=policy.penalty_per_day if args.late_penalty is None else args.late_penalty,
                            max_penalty=policy.max_penalty if args.max_penalty is None else args.max_penalty)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.grading",
                                     description="Exercise notebooks, submissions and instructor grading.")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write exercises/ from solutions/ (solution regions removed)")
    g.add_argument("--solutions", type=Path, default=gen.ROOT / "solutions")
    g.add_argument("--exercises", type=Path, default=gen.ROOT / "exercises")
    g.add_argument("--check", action="store_true", help="only report out-of-date copies (exit 1 if any)")
    r = sub.add_parser("grade", help="run learner notebooks and grade their functions",
                       description=grader.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("submissions", nargs="+", help="learner notebooks or submission zips, or folders of them")
    r.add_argument("--out", type=Path, required=True, help="folder for grades.csv/json, feedback/")
    r.add_argument("--timeout", type=int, default=300, help="seconds per notebook (default 300)")
    r.add_argument("--force", action="store_true", help="re-grade submissions graded before")
    r.add_argument("--chapter", help="chapter of the exercises, e.g. 01 (default: from the notebook)")
    r.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto",
                   help="auto/bwrap: each notebook in a bubblewrap sandbox (required unless none); "
                        "none: no sandbox, for trusted notebooks only")
    r.add_argument("--memory", type=int, default=sandbox.Limits.memory_mb, metavar="MB",
                   help="memory (address space) per process of a learner's kernel (default %(default)s)")
    r.add_argument("--processes", type=int, default=sandbox.Limits.processes,
                   help="processes and threads per learner (default %(default)s)")
    _late_options(r)
    e = sub.add_parser("export", help="apply comments.csv and the late policy; write the LMS files",
                       description=lms.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--out", type=Path, required=True, help="the grades folder of `grade`")
    e.add_argument("--roster", type=Path, help="CSV: " + ",".join(gradebook.ROSTER_COLUMNS) +
                   " (only learner is required); needed for the LMS files")
    e.add_argument("--lms", nargs="+", choices=lms.LMS_FORMATS, default=list(lms.LMS_FORMATS))
    e.add_argument("--assignment", action="append", default=[], metavar="NN=NAME",
                   help='column name of chapter NN in the LMS file, e.g. 01="Exercises 01 (4321)"')
    e.add_argument("--missing", choices=("blank", "zero"), default="blank",
                   help="a chapter a learner did not submit: left empty (default) or 0")
    _late_options(e)
    s = sub.add_parser("submit", help="zip a notebook with its manifest (sha256, time) to upload")
    s.add_argument("notebook", type=Path)
    s.add_argument("--out", type=Path, help="folder for the zip (default: beside the notebook)")
    s.add_argument("--learner", help="your name as the course knows it (informational)")
    b = sub.add_parser("release", help="the learner bundle: the course without solutions/ as a zip")
    b.add_argument("--out", type=Path, default=gen.ROOT / "dist")
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (grader.TamperedError, sandbox.SandboxUnavailable, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _generate(args) -> int:
    stale = gen.generate_exercises(args.solutions, args.exercises, check_only=args.check)
    verb = "out of date" if args.check else "written"
    for path in stale:
        print(f"{path}: {verb}")
    if not stale:
        print("exercises are up to date")
    return int(args.check and bool(stale))


def _grade(args) -> int:
    limits = sandbox.Limits(memory_mb=args.memory, processes=args.processes,
                            cpu_seconds=max(sandbox.Limits.cpu_seconds, 4 * args.timeout))
    state = grader.grade(args.submissions, args.out, timeout=args.timeout, force=args.force,
                         chapter=args.chapter, sandbox_mode=args.sandbox, limits=limits,
                         policy=_policy(args, args.out))
    print(f"\n{len(state)} submission(s) in {args.out / report.TABLE}; feedback in {args.out / report.FEEDBACK}/")
    return 0


def _export(args) -> int:
    state = report.load_state(args.out)
    if not state:
        raise FileNotFoundError(f"no grades in {args.out}: run `grade ... --out {args.out}` first")
    policy = _policy(args, args.out)
    if policy is not None:
        gradebook.save_policy(args.out, policy)
    report.write_all(args.out, state)          # comments.csv and the policy applied everywhere
    written = [args.out / report.TABLE, args.out / report.BOOK]
    if args.roster:
        roster = gradebook.load_roster(args.roster)
        names = dict(item.split("=", 1) for item in args.assignment if "=" in item)
        policy, comments = gradebook.load_policy(args.out), gradebook.load_comments(args.out / gradebook.COMMENTS)
        book = lms.gradebook_csv(state, policy, comments, roster, args.missing)
        report.atomic_write(args.out / report.BOOK, book)
        for fmt in args.lms:
            text = getattr(lms, f"{fmt}_csv")(state, policy, comments, roster, names, args.missing)
            written.append(report.atomic_write(args.out / f"{fmt}.csv", text))
    else:
        print("(no --roster: the LMS files need it; gradebook.csv lists learners by name)")
    pending = sum(1 for line in (args.out / report.TEMPLATE).read_text().splitlines()[1:] if line)
    for path in written:
        print(f"wrote {path}")
    if pending:
        print(f"{pending} item(s) still to grade by hand: see {args.out / report.TEMPLATE} "
              f"and {args.out / report.ANSWERS}/")
    return 0


def _submit(args) -> int:
    path = submission.make_submission(args.notebook, args.out, learner=args.learner)
    print(f"wrote {path}: upload this file")
    return 0


def _release(args) -> int:
    path = release.build_release(out_dir=args.out)
    print(f"wrote {path} ({len(release.bundle_files())} files, no solutions/)")
    return 0


_COMMANDS = {"generate": _generate, "grade": _grade, "export": _export, "submit": _submit, "release": _release}


if __name__ == "__main__":
    sys.exit(main())
