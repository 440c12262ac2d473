"""python -m course_utils.grading {generate, grade} -- see the package docstring."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import generate as gen
from . import grader, sandbox


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.grading",
                                     description="Exercise notebooks and instructor grading.")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write exercises/ from solutions/ (solution regions removed)")
    g.add_argument("--solutions", type=Path, default=gen.ROOT / "solutions")
    g.add_argument("--exercises", type=Path, default=gen.ROOT / "exercises")
    g.add_argument("--check", action="store_true", help="only report out-of-date copies (exit 1 if any)")
    r = sub.add_parser("grade", help="run learner notebooks and grade their checks",
                       description=grader.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("submissions", nargs="+", help="learner notebooks, or folders of them")
    r.add_argument("--out", type=Path, required=True, help="folder for grades.csv/json, feedback/")
    r.add_argument("--timeout", type=int, default=300, help="seconds per notebook (default 300)")
    r.add_argument("--force", action="store_true", help="re-grade learners graded before")
    r.add_argument("--chapter", help="chapter of the exercises, e.g. 01 (default: from the notebook)")
    r.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto",
                   help="auto/bwrap: each notebook in a bubblewrap sandbox (required unless none); "
                        "none: no sandbox, for trusted notebooks only")
    r.add_argument("--memory", type=int, default=sandbox.Limits.memory_mb, metavar="MB",
                   help="memory (address space) per process of a learner's kernel (default %(default)s)")
    r.add_argument("--processes", type=int, default=sandbox.Limits.processes,
                   help="processes and threads per learner (default %(default)s)")
    args = parser.parse_args(argv)
    if args.command == "generate":
        stale = gen.generate_exercises(args.solutions, args.exercises, check_only=args.check)
        verb = "out of date" if args.check else "written"
        for path in stale:
            print(f"{path}: {verb}")
        if not stale:
            print("exercises are up to date")
        return int(args.check and bool(stale))
    try:
        limits = sandbox.Limits(memory_mb=args.memory, processes=args.processes,
                                cpu_seconds=max(sandbox.Limits.cpu_seconds, 4 * args.timeout))
        state = grader.grade(args.submissions, args.out, timeout=args.timeout, force=args.force,
                             chapter=args.chapter, sandbox_mode=args.sandbox, limits=limits)
    except (grader.TamperedError, sandbox.SandboxUnavailable, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"\n{len(state)} learner(s) in {args.out / 'grades.csv'}; feedback in {args.out / 'feedback'}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
