"""Grade files: DIR/grades.json (the state, one record per learner), DIR/grades.csv, and
DIR/feedback/<learner>.md. Every file is written to a temporary sibling and renamed into place,
so an interruption leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from course_utils.paths import atomic_write  # text or bytes, fsynced

from . import cases

__all__ = ["STATUS_TEXT", "load_state", "feedback", "safe_name", "write_all"]

STATE, TABLE, FEEDBACK = "grades.json", "grades.csv", "feedback"
STATUS_TEXT = {
    "ok": "the notebook ran from top to bottom without errors",
    "errors": "some cells raised errors (listed below); the grader ran the remaining cells anyway",
    "timeout": "the notebook was stopped at the time limit; the exercises defined before the cell "
               "that ran too long were graded",
    "kernel died": "the Python kernel died (os._exit, a crash or out of memory); the exercises "
                   "defined before that cell were graded",
    "memory": "a cell ran out of memory (the sandbox's limit); checks of functions defined before "
              "and after it count",
    "failed": "the notebook could not be run",
    "tampered": "the notebook changed the course's own source files (they were restored); an "
                "instructor will look at it",
}


def load_state(out_dir: Path) -> dict:
    """{learner: record} from DIR/grades.json ({} if absent); ValueError if it is unreadable."""
    path = Path(out_dir) / STATE
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))["learners"]
        if not isinstance(state, dict):
            raise TypeError("learners is not an object")
        return state
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a grades file written by this grader ({err}); move it "
                         "away, or pass --force to grade everyone again") from None


def _table(state: dict) -> str:
    ids = sorted({ex for rec in state.values() for ex in rec.get("exercises", {})})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["learner", "chapter", "score", "max_score", "percent", "status", *ids,
                     "flags", "sandbox", "seconds", "graded_at"])
    for name in sorted(state):
        rec = state[name]
        marks = [int(rec["exercises"][ex]["status"] == "passed") if ex in rec["exercises"] else ""
                 for ex in ids]
        percent = round(100 * rec["score"] / rec["max_score"], 1) if rec["max_score"] else 0.0
        writer.writerow([name, rec["chapter"], rec["score"], rec["max_score"], percent,
                         rec["status"], *marks, " ".join(sorted(rec.get("flags", {}))),
                         rec.get("sandbox", ""), rec["seconds"], rec["graded_at"]])
    return buf.getvalue()


def feedback(rec: dict) -> str:
    """The Markdown feedback for one learner: score, run status, each check, hints for failures."""
    lines = [f"# Feedback for {rec['learner']} -- chapter {rec['chapter']} exercises", "",
             f"**Score: {rec['score']} / {rec['max_score']}**", "",
             f"Run: {STATUS_TEXT.get(rec['status'], rec['status'])}."]
    if rec.get("detail"):
        lines.append(f"({rec['detail']})")
    for err in rec.get("errors", [])[:5]:
        lines.append(f"- cell {err['cell']} (`{err.get('code', '')}`): `{err['ename']}: {err['evalue'][:150]}`")
    lines += ["", "| check | result |", "|---|---|"]
    for ex_id, ex in rec["exercises"].items():
        mark = "✓ passed" if ex["status"] == "passed" else f"✗ {ex['status']}"
        lines.append(f"| `{ex_id}` {ex['title']} | {mark} |")
    for ex_id, ex in rec["exercises"].items():
        if ex["status"] == "passed":
            continue
        try:
            hints = cases.get(ex_id).hints
        except ValueError:
            hints = ("", "")
        lines += ["", f"## {ex_id} -- {ex['title']}: {ex['status']}", ""]
        if ex.get("message"):
            lines.append(f"What the check found: {ex['message']}")
        elif ex["status"] == "not run":
            lines.append("The check never ran: the notebook stopped before it, or its cell was "
                         "removed or changed.")
        lines += ["", f"**Hint 1.** {hints[0]}"]
        if ex["status"] == "failed":
            lines += ["", f"**Hint 2.** {hints[1]}"]
    if rec.get("flags"):
        lines += ["", "For the instructor: these functions use the course package's own code "
                  "(allowed for helpers; copying the reference answer is not):"]
        lines += [f"- `{ex_id}`: {note}" for ex_id, note in rec["flags"].items()]
    return "\n".join(lines) + "\n"


def safe_name(learner: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in learner).strip(".") or "learner"


def write_all(out_dir: Path, state: dict, feedback_for=None) -> None:
    """Rewrite grades.json and grades.csv from `state`, and the feedback of `feedback_for`
    (default: every learner -- which also repairs any file changed since it was written)."""
    out_dir = Path(out_dir)
    atomic_write(out_dir / STATE, json.dumps({"version": 1, "learners": state}, indent=1,
                                             sort_keys=True, ensure_ascii=False) + "\n")
    atomic_write(out_dir / TABLE, _table(state))
    for name in (state if feedback_for is None else feedback_for):
        atomic_write(out_dir / FEEDBACK / f"{safe_name(name)}.md", feedback(state[name]))
