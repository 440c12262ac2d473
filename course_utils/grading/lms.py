"""Gradebook exports: one row per learner, one column per chapter, for a spreadsheet and two LMSs.

- `gradebook.csv`: learner, the roster's identities, each chapter's final score (after the late
  penalty and the instructor's points), the total.
- `canvas.csv`, Canvas's gradebook import: the columns `Student`, `ID`, `SIS User ID`,
  `SIS Login ID`, `Section` (the roster's name, canvas_id, student_id, login, section), then one
  column per assignment, named `Exercises NN` or as given (to update an existing assignment, use
  Canvas's own header for it, `Name (assignment id)`, from a gradebook export); the second row is
  `Points Possible`. Canvas creates an assignment for a column it does not know.
- `moodle.csv`, Moodle's "Import grades from CSV": `ID number`, `Email address`, `Username`,
  `Full name`, then one column per chapter; on import, map the identity column you use ("ID
  number" -> "ID number", or the email) and each chapter column to its grade item.

A chapter a learner did not submit is left empty (the LMS keeps what it has) unless
`missing="zero"`.
"""
from __future__ import annotations

import csv
import io

from .gradebook import ROSTER_COLUMNS, totals

__all__ = ["LMS_FORMATS", "CANVAS_COLUMNS", "MOODLE_COLUMNS", "learner_table", "gradebook_csv",
           "canvas_csv", "moodle_csv"]

LMS_FORMATS = ("canvas", "moodle")
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
MOODLE_COLUMNS = ("ID number", "Email address", "Username", "Full name")


def learner_table(state: dict, policy, comments: dict, roster: dict | None = None) -> tuple[list, dict, dict]:
    """(chapters, {learner: {chapter: final score}}, {chapter: max points}); roster learners
    without any submission get a row too. A learner not in a given roster is an error."""
    roster = roster or {}
    scores: dict = {name: {} for name in roster}
    maxima: dict = {}
    for rec in state.values():
        chapter = rec.get("chapter")
        if not chapter:
            continue
        t = totals(rec, policy, comments)
        scores.setdefault(rec["learner"], {})[chapter] = t["final"]
        maxima[chapter] = max(maxima.get(chapter, 0.0), t["max"])
    unknown = sorted(set(scores) - set(roster)) if roster else []
    if unknown:
        raise ValueError(f"learner(s) {', '.join(unknown)} graded but not in the roster: add a row for "
                         "each (learner = the submission's folder or file name)")
    return sorted(maxima), scores, maxima


def _csv(rows) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _cell(scores: dict, chapter: str, missing: str):
    return scores[chapter] if chapter in scores else (0.0 if missing == "zero" else "")


def gradebook_csv(state, policy, comments, roster=None, missing: str = "blank") -> str:
    chapters, scores, maxima = learner_table(state, policy, comments, roster)
    head = ["learner", *ROSTER_COLUMNS[1:], *(f"{c} ({maxima[c]:g})" for c in chapters), "total"]
    rows = [head]
    for name in sorted(scores):
        who = (roster or {}).get(name, {})
        row = [_cell(scores[name], c, missing) for c in chapters]
        rows.append([name, *(who.get(c, "") for c in ROSTER_COLUMNS[1:]), *row,
                     round(sum(v for v in row if v != ""), 2)])
    return _csv(rows)


def _names(chapters, assignments: dict | None) -> list[str]:
    return [(assignments or {}).get(c) or f"Exercises {c}" for c in chapters]


def canvas_csv(state, policy, comments, roster: dict, assignments: dict | None = None,
               missing: str = "blank") -> str:
    """Canvas gradebook import (see the module docstring); `assignments`: {chapter: column name}."""
    chapters, scores, maxima = learner_table(state, policy, comments, roster)
    rows = [[*CANVAS_COLUMNS, *_names(chapters, assignments)],
            ["Points Possible", "", "", "", "", *(f"{maxima[c]:g}" for c in chapters)]]
    for name in sorted(scores):
        who = roster.get(name, {})
        rows.append([who.get("name") or name, who.get("canvas_id", ""), who.get("student_id", ""),
                     who.get("login", ""), who.get("section", ""),
                     *(_cell(scores[name], c, missing) for c in chapters)])
    return _csv(rows)


def moodle_csv(state, policy, comments, roster: dict, assignments: dict | None = None,
               missing: str = "blank") -> str:
    """Moodle grade import (see the module docstring)."""
    chapters, scores, _ = learner_table(state, policy, comments, roster)
    rows = [[*MOODLE_COLUMNS, *_names(chapters, assignments)]]
    for name in sorted(scores):
        who = roster.get(name, {})
        rows.append([who.get("student_id", ""), who.get("email", ""), who.get("login", ""),
                     who.get("name") or name, *(_cell(scores[name], c, missing) for c in chapters)])
    return _csv(rows)
