"""The gradebook: (learner, chapter) grades, the late policy, the instructor's comments, the roster.

Every graded submission is one record keyed by learner *and* chapter, so a learner's chapters sit
side by side. What the grader computed (points per exercise from the held-back cases) is final
for automatic exercises; three inputs of the instructor's change the totals without re-grading:

- the **late policy** (`Policy`, kept in DIR/policy.json): a deadline per chapter (or one for
  all) and a penalty in percent per started day late, capped at `max_penalty`;
- the **comment file** DIR/comments.csv, columns `learner,chapter,exercise,points,comment`: points
  for items graded by hand (rubric projects, written answers) or to override an automatic
  exercise's points, and comments merged into the learner's feedback (a row with an empty
  `exercise` comments on the whole chapter; its points, if any, are added);
- the **roster** (`load_roster`), a CSV mapping each learner name the grader uses (the folder or
  file name of the submission) to the LMS's identities: `learner,name,student_id,login,email,
  section,canvas_id` -- only `learner` is required.

>>> p = Policy(deadlines={"01": "2026-12-01"}, penalty_per_day=10)
>>> p.lateness("01", "2026-12-03T09:00:00+00:00")
(2, 20.0)
>>> final_score(10.0, 20.0)
8.0
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, time, timezone
from pathlib import Path

from course_utils.paths import atomic_write

__all__ = ["POLICY", "COMMENTS", "COMMENT_COLUMNS", "ROSTER_COLUMNS", "Policy", "parse_time",
           "load_policy", "save_policy", "load_comments", "final_score", "totals", "load_roster",
           "key"]

POLICY, COMMENTS = "policy.json", "comments.csv"
COMMENT_COLUMNS = ("learner", "chapter", "exercise", "points", "comment")
ROSTER_COLUMNS = ("learner", "name", "student_id", "login", "email", "section", "canvas_id")


def key(learner: str, chapter: str | None) -> str:
    """The gradebook key of one submission: "alice/01"."""
    return f"{learner}/{chapter or 'unknown'}"


def parse_time(text: str) -> datetime:
    """An aware UTC datetime from ISO 8601; a date alone means the end of that day (23:59:59 UTC);
    a time without a zone is UTC."""
    text = str(text).strip()
    try:
        if len(text) == 10:
            when = datetime.combine(datetime.fromisoformat(text).date(), time(23, 59, 59))
        else:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a date or time: {text!r}; write 2026-12-01 (end of that day, UTC) or "
                         "2026-12-01T18:00+01:00") from None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


@dataclass
class Policy:
    """Deadlines ({chapter or "*": ISO time}) and the late penalty (percent per started day)."""

    deadlines: dict = field(default_factory=dict)
    penalty_per_day: float = 0.0
    max_penalty: float = 100.0

    def __post_init__(self):
        for when in self.deadlines.values():
            parse_time(when)   # fail now, with the message, not at export time
        if not 0 <= self.penalty_per_day <= 100 or not 0 <= self.max_penalty <= 100:
            raise ValueError("late penalties are percentages between 0 and 100")

    def deadline(self, chapter: str) -> datetime | None:
        when = self.deadlines.get(chapter, self.deadlines.get("*"))
        return parse_time(when) if when else None

    def lateness(self, chapter: str, submitted_at: str | None) -> tuple[int, float]:
        """(days late, started days counted up; penalty in percent) of a submission."""
        deadline = self.deadline(chapter)
        if deadline is None or not submitted_at:
            return 0, 0.0
        late = (parse_time(submitted_at) - deadline).total_seconds()
        days = math.ceil(late / 86400) if late > 0 else 0
        return days, float(min(self.max_penalty, days * self.penalty_per_day))


def load_policy(out_dir) -> Policy:
    path = Path(out_dir) / POLICY
    if not path.exists():
        return Policy()
    try:
        return Policy(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path} is not a late policy written by the grader ({err}); fix or delete it") from None


def save_policy(out_dir, policy: Policy) -> None:
    atomic_write(Path(out_dir) / POLICY, json.dumps(asdict(policy), indent=1, sort_keys=True) + "\n")


def _read_csv(path: Path, required: tuple) -> list[dict]:
    text = Path(path).read_text(encoding="utf-8-sig")    # a spreadsheet's BOM is fine
    rows = list(csv.DictReader(io.StringIO(text)))
    header = [h.strip() for h in (csv.DictReader(io.StringIO(text)).fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; the first line must name "
                         f"the columns, e.g. {','.join(required)}")
    return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in rows]


def load_comments(path) -> dict[str, dict[str, dict]]:
    """{"learner/chapter": {exercise id or "": {"points": float or None, "comment": str}}}."""
    path = Path(path)
    if not path.exists():
        return {}
    out: dict = {}
    for n, row in enumerate(_read_csv(path, COMMENT_COLUMNS), 2):
        if not row["learner"] or not row["chapter"]:
            raise ValueError(f"{path}, line {n}: learner and chapter are required")
        try:
            points = float(row["points"]) if row["points"] else None
        except ValueError:
            raise ValueError(f"{path}, line {n}: points must be a number, not {row['points']!r}") from None
        chapter = row["chapter"].zfill(2)
        entry = out.setdefault(key(row["learner"], chapter), {}).setdefault(row["exercise"], {"points": None,
                                                                                             "comment": ""})
        if points is not None:
            entry["points"] = points
        entry["comment"] = "\n".join(c for c in (entry["comment"], row["comment"]) if c)
    return out


def final_score(raw: float, penalty_percent: float) -> float:
    """The score after a late penalty, rounded to 2 decimals."""
    return round(raw * (1 - penalty_percent / 100), 2)


def totals(rec: dict, policy: Policy, comments: dict) -> dict:
    """One record's points per exercise (comments applied), raw and final totals, lateness."""
    mine = comments.get(key(rec["learner"], rec.get("chapter")), {})
    points, notes = {}, {}
    for ex_id, ex in rec.get("exercises", {}).items():
        given = mine.get(ex_id, {})
        earned = ex.get("earned", ex["points"] if ex.get("status") == "passed" else 0.0)
        if given.get("points") is not None:
            earned = max(0.0, min(float(ex["points"]), given["points"]))
        points[ex_id] = round(float(earned), 2)
        if given.get("comment"):
            notes[ex_id] = given["comment"]
    general = mine.get("", {})
    raw = round(sum(points.values()) + (general.get("points") or 0.0), 2)
    days, penalty = policy.lateness(rec.get("chapter") or "", rec.get("submitted_at"))
    return {"points": points, "comments": notes, "general": general.get("comment", ""),
            "raw": raw, "max": round(sum(float(e["points"]) for e in rec.get("exercises", {}).values()), 2),
            "days_late": days, "penalty": penalty, "final": final_score(raw, penalty),
            "to_grade": sorted(e for e, ex in rec.get("exercises", {}).items()
                               if ex.get("status") == "to grade" and mine.get(e, {}).get("points") is None)}


def load_roster(path) -> dict[str, dict]:
    """{learner: {name, student_id, login, email, section, canvas_id}} from a roster CSV."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no roster at {path}: a CSV whose first line is "
                                f"{','.join(ROSTER_COLUMNS)} (only learner is required)")
    roster: dict = {}
    for n, row in enumerate(_read_csv(path, ("learner",)), 2):
        name = row["learner"]
        if not name:
            raise ValueError(f"{path}, line {n}: the learner column is empty")
        if name in roster:
            raise ValueError(f"{path}, line {n}: learner {name!r} is listed twice")
        roster[name] = {c: row.get(c, "") for c in ROSTER_COLUMNS[1:]}
    return roster
