"""Grade files: DIR/grades.json (the state, one record per learner and chapter), DIR/grades.csv
(one row per learner and chapter: points per exercise, attempts per exercise from the manifest),
DIR/gradebook.csv (one row per learner),
DIR/feedback/<learner>_<chapter>.md, and for items graded by hand DIR/answers/<learner>_<chapter>.md
(the learner's answers beside the rubric) and DIR/comments_template.csv (rows to fill in and copy
into DIR/comments.csv). Totals apply DIR/policy.json and DIR/comments.csv (see `gradebook`). Every
file is written to a temporary sibling and renamed into place, so an interruption leaves either
the old file or the new one, never half of one.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from course_utils.paths import atomic_write  # text or bytes, fsynced

from . import cases, gradebook, lms

__all__ = ["STATE", "TABLE", "BOOK", "FEEDBACK", "ANSWERS", "TEMPLATE", "STATUS_TEXT", "load_state",
           "feedback", "safe_name", "file_stem", "write_all"]

STATE, TABLE, BOOK, FEEDBACK = "grades.json", "grades.csv", "gradebook.csv", "feedback"
ANSWERS, TEMPLATE = "answers", "comments_template.csv"
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
    """{"learner/chapter": record} from DIR/grades.json ({} if absent); ValueError if unreadable.
    A file of version 1 (one record per learner) is read as one record per learner and chapter."""
    path = Path(out_dir) / STATE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        state = data["submissions"] if data.get("version") == 2 else data["learners"]
        if not isinstance(state, dict):
            raise TypeError("the records are not an object")
        if data.get("version") != 2:
            state = {gradebook.key(r["learner"], r.get("chapter")): r for r in state.values()}
        return state
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path} is not a grades file written by this grader ({err}); move it "
                         "away, or pass --force to grade everyone again") from None


def _table(state: dict, policy, comments: dict) -> str:
    ids = sorted({ex for rec in state.values() for ex in rec.get("exercises", {})})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["learner", "chapter", "score", "max_score", "percent", "raw_score", "days_late",
                     "penalty_percent", "status", *ids, "to_grade", "flags", "attempts", "sandbox",
                     "seconds", "submitted_at", "submitted_from", "graded_at"])
    for k in sorted(state):
        rec = state[k]
        t = gradebook.totals(rec, policy, comments)
        percent = round(100 * t["final"] / t["max"], 1) if t["max"] else 0.0
        writer.writerow([rec["learner"], rec.get("chapter") or "", t["final"], t["max"], percent, t["raw"],
                         t["days_late"], t["penalty"], rec["status"], *(t["points"].get(ex, "") for ex in ids),
                         " ".join(t["to_grade"]), " ".join(sorted(rec.get("flags", {}))),
                         " ".join(f"{ex}:{n}" for ex, n in sorted(rec.get("attempts", {}).items())),
                         rec.get("sandbox", ""),
                         rec.get("seconds", ""), rec.get("submitted_at", ""), rec.get("submitted_from", ""),
                         rec.get("graded_at", "")])
    return buf.getvalue()


def _hints(ex_id: str) -> tuple:
    try:
        return cases.get(ex_id).hints
    except ValueError:
        return ("", "")


def feedback(rec: dict, policy=None, comments: dict | None = None) -> str:
    """The Markdown feedback for one submission: points, lateness, each exercise, the
    instructor's comments, hints for what did not pass."""
    t = gradebook.totals(rec, policy or gradebook.Policy(), comments or {})
    lines = [f"# Feedback for {rec['learner']} -- chapter {rec.get('chapter')} exercises", "",
             f"**Score: {t['final']:g} / {t['max']:g}**"]
    if t["penalty"]:
        lines[-1] += (f" ({t['raw']:g} before the late penalty: submitted {t['days_late']} day(s) after "
                      f"the deadline, -{t['penalty']:g}%)")
    if t["to_grade"]:
        lines += ["", f"Still to be graded by the instructor: {', '.join(t['to_grade'])}."]
    lines += ["", f"Run: {STATUS_TEXT.get(rec['status'], rec['status'])}."]
    if rec.get("detail"):
        lines.append(f"({rec['detail']})")
    for err in rec.get("errors", [])[:5]:
        lines.append(f"- cell {err['cell']} (`{err.get('code', '')}`): `{err['ename']}: {err['evalue'][:150]}`")
    if t["general"]:
        lines += ["", f"**Instructor:** {t['general']}"]
    lines += ["", "| exercise | points | result |", "|---|---|---|"]
    for ex_id, ex in rec["exercises"].items():
        if ex["status"] == "passed":
            mark = "✓ passed"
        elif ex.get("cases_total") and ex["status"] == "failed":
            mark = f"✗ {ex['cases_passed']} of {ex['cases_total']} graded tests passed"
        else:
            mark = f"✗ {ex['status']}" if ex["status"] != "to grade" else "graded by the instructor"
        lines.append(f"| `{ex_id}` {ex['title']} | {t['points'][ex_id]:g} / {ex['points']:g} | {mark} |")
    for ex_id, ex in rec["exercises"].items():
        note = t["comments"].get(ex_id)
        if ex["status"] in ("passed", "to grade") and not note:
            continue
        lines += ["", f"## {ex_id} -- {ex['title']}: {ex['status']}", ""]
        if note:
            lines += [f"**Instructor:** {note}", ""]
        if ex["status"] in ("passed", "to grade"):
            continue
        hints = _hints(ex_id)
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


def _answers(rec: dict) -> str:
    """The learner's answers to the items graded by hand, each beside its rubric."""
    lines = [f"# {rec['learner']} -- chapter {rec.get('chapter')}: items to grade by hand", ""]
    for ex_id, ex in rec["exercises"].items():
        if ex["status"] != "to grade":
            continue
        try:
            rubric = cases.get(ex_id).rubric
        except ValueError:
            rubric = ()
        lines += [f"## {ex_id} -- {ex['title']} ({ex['points']:g} points)", "", "Rubric:"]
        lines += [f"- {criterion} ({points:g})" for criterion, points in rubric] or ["- (none given)"]
        answer = rec.get("answers", {}).get(ex_id, "").strip()
        lines += ["", "Answer:", "", answer or "*(no answer)*", ""]
    return "\n".join(lines)


def safe_name(learner: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in learner).strip(".") or "learner"


def file_stem(rec: dict) -> str:
    """"alice_01": the name of one submission's feedback, answers and executed copy."""
    return f"{safe_name(rec['learner'])}_{safe_name(str(rec.get('chapter') or 'unknown'))}"


def _template(state: dict, comments: dict) -> str:
    rows = [list(gradebook.COMMENT_COLUMNS)]
    for k in sorted(state):
        rec = state[k]
        for ex_id, ex in rec.get("exercises", {}).items():
            given = comments.get(k, {}).get(ex_id, {})
            if ex.get("status") == "to grade" and given.get("points") is None:
                rows.append([rec["learner"], rec["chapter"], ex_id, "", ""])
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def write_all(out_dir: Path, state: dict, feedback_for=None) -> None:
    """Rewrite grades.json, grades.csv, gradebook.csv and comments_template.csv from `state` (with
    DIR's policy and comments), and the feedback and answers of the records `feedback_for` (keys;
    default: every record -- which also repairs any file changed since it was written)."""
    out_dir = Path(out_dir)
    policy, comments = gradebook.load_policy(out_dir), gradebook.load_comments(out_dir / gradebook.COMMENTS)
    atomic_write(out_dir / STATE, json.dumps({"version": 2, "submissions": state}, indent=1,
                                             sort_keys=True, ensure_ascii=False) + "\n")
    atomic_write(out_dir / TABLE, _table(state, policy, comments))
    atomic_write(out_dir / BOOK, lms.gradebook_csv(state, policy, comments))
    atomic_write(out_dir / TEMPLATE, _template(state, comments))
    for k in (state if feedback_for is None else feedback_for):
        rec = state[k]
        atomic_write(out_dir / FEEDBACK / f"{file_stem(rec)}.md", feedback(rec, policy, comments))
        if any(ex.get("status") == "to grade" for ex in rec.get("exercises", {}).values()):
            atomic_write(out_dir / ANSWERS / f"{file_stem(rec)}.md", _answers(rec))
