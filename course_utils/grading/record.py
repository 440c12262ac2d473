"""The result record: one HMAC-signed JSON line per `check` call, verified by the grader.

How it works:
- The grader starts each learner's kernel with three environment variables: a fresh random key
  (`COURSE_GRADING_KEY`), a random run id (`COURSE_GRADING_RUN`) and the absolute path of a
  results file in the learner's working directory (`COURSE_GRADING_RESULTS`).
- When this module is imported (the notebook's first cell runs `from course_utils.grading import
  check`, which imports it) it takes the key out of `os.environ`, so later learner code and its
  subprocesses do not find it there. (The package's `__init__` imports `check` lazily, so the
  grader's worker process, which imports the package too, leaves the key for the kernel.)
- `append` writes `{"v", "run", "exercise", "status", "passed", "cases_passed", "cases_total",
  "message", "sig"}`; `sig` = HMAC-SHA256(key, the other fields as canonical JSON). Without a key
  (a learner working on their own) nothing is written.
- `verify` (grader side) keeps only lines whose signature matches *this* learner's key and whose
  run id is this run's: printed "PASS" text, hand-written lines, lines signed with a guessed key
  and lines replayed from another learner or an earlier run are all ignored (and counted).

What it does not stop: code that deliberately digs the key out of the process (the kernel runs
the learner's code, so nothing inside it is secret from a determined attacker) or patches the
checker. Grade untrusted submissions in a container or as a separate user; see `grader`.

>>> key = b"k" * 32
>>> line = signed_line({"exercise": "01.cosine", "passed": True}, key, "run1")
>>> verify([line, '{"exercise": "01.cosine", "passed": true}'], key, "run1")[1]
1
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

__all__ = ["RESULTS_NAME", "VERSION", "MAX_BYTES", "signed_line", "recording", "append", "verify",
           "read_results"]

KEY_ENV, RUN_ENV, RESULTS_ENV = "COURSE_GRADING_KEY", "COURSE_GRADING_RUN", "COURSE_GRADING_RESULTS"
RESULTS_NAME = "check_results.jsonl"
VERSION = 1
MAX_BYTES = 5_000_000  # a results file holds a few lines; beyond this it is junk, not read

_KEY = os.environ.pop(KEY_ENV, None)  # taken once, at import: not left in os.environ
_RUN = os.environ.get(RUN_ENV, "")
_RESULTS = os.environ.get(RESULTS_ENV) or str(Path.cwd() / RESULTS_NAME)


def _canonical(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _signature(payload: dict, key: bytes) -> str:
    return hmac.new(key, _canonical(payload), hashlib.sha256).hexdigest()


def signed_line(fields: dict, key: bytes, run: str) -> str:
    """One JSON line: `fields` plus version, run id and the HMAC signature over all of them."""
    payload = {**fields, "v": VERSION, "run": run}
    return json.dumps({**payload, "sig": _signature(payload, key)}, sort_keys=True)


def recording() -> bool:
    """True when running under the grader (a key was given to this process)."""
    return bool(_KEY)


def append(fields: dict) -> bool:
    """Append a signed result line to the results file if running under the grader.

    Returns whether a line was written. The file is opened, appended, flushed and synced per
    call, so a later crash, timeout or `os._exit` cannot lose results recorded before it.
    """
    if not _KEY:
        return False
    line = signed_line(fields, bytes.fromhex(_KEY), _RUN)
    with open(_RESULTS, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())
    return True


def _valid(line: str, key: bytes, run: str) -> dict | None:
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("sig"), str):
        return None
    payload = {k: v for k, v in entry.items() if k != "sig"}
    if payload.get("run") != run or payload.get("v") != VERSION:
        return None
    return payload if hmac.compare_digest(entry["sig"], _signature(payload, key)) else None


def verify(lines, key: bytes, run: str) -> tuple[list[dict], int]:
    """(verified payloads in order, number of ignored non-blank lines) for one learner's run."""
    good, ignored = [], 0
    for line in lines:
        if not line.strip():
            continue
        payload = _valid(line, key, run)
        if payload is None:
            ignored += 1
        else:
            good.append(payload)
    return good, ignored


def read_results(path: str | Path, key: bytes, run: str) -> tuple[list[dict], int]:
    """`verify` over a results file (missing file: no results); reads at most MAX_BYTES."""
    path = Path(path)
    if not path.is_file():
        return [], 0
    with open(path, encoding="utf-8", errors="replace") as f:
        return verify(f.read(MAX_BYTES).splitlines(), key, run)
