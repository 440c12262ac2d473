"""Batch grading: run each learner notebook in isolation and score what its checks recorded.

    python -m course_utils.grading grade SUBMISSIONS... --out DIR [--timeout 300] [--force]

SUBMISSIONS are notebooks or folders (every *.ipynb inside, recursively). The learner's name is
the notebook's file stem (`alice.ipynb` -> alice) -- unless the stem is a course file name
(`01_embeddings_exercises.ipynb`, i.e. starts with two digits and "_"), then it is the parent
folder's name (`submissions/alice/01_embeddings_exercises.ipynb` -> alice). Two submissions with
the same learner name are an error. The chapter is `--chapter`, else the notebook's metadata
(`course.chapter`, set by the generator), else the ids in its `check("NN....")` calls.

Per learner, one after another: a fresh temporary folder gets a copy of the notebook; a worker
process (see `worker`) runs it with a new random HMAC key, run id and results file in its
environment; after at most `timeout` seconds per cell and `timeout + 30` in all, the worker and
every process still carrying the run id (the kernel, anything it spawned) are killed by pid.
Only verified result lines count (see `record`). The folder is then deleted; the executed copy
is kept in DIR/executed/. The grader never reads anything else the learner's code wrote, keeps its
state in memory and rewrites DIR's files atomically after each learner (so writes into DIR by a
learner are overwritten), and checks that its own source files were not changed by a learner
(if they changed, the learner is recorded as 'tampered' and grading stops with an
error: restore the package and re-run; nothing in the source tree is ever written by the grader).
Re-running skips learners whose submission is unchanged since it was graded, unless `force`
(learners graded before but not named this time keep their grades).

Limits: the learner's code runs with your user's rights. For untrusted submissions run the
grader inside a container or as a separate user.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from . import cases, record, report, worker

__all__ = ["GRACE", "HERE", "learner_name", "find_submissions", "detect_chapter", "TamperedError",
           "score", "grade_one", "grade"]

GRACE = 30  # seconds on top of the cell timeout for kernel start-up and shutdown
HERE = Path(__file__).resolve().parent  # course_utils/grading


def learner_name(path: Path) -> str:
    path = Path(path)
    return path.parent.name if re.match(r"\d\d_", path.stem) else path.stem


def find_submissions(items, exclude: Path | None = None) -> list[tuple[str, Path]]:
    """[(learner, notebook)] in the order given (folders: sorted); `exclude`: a folder to skip
    (the grader's output folder, which holds executed copies)."""
    skip = Path(exclude).resolve() if exclude else None
    paths = []
    for item in map(Path, items):
        if item.is_dir():
            paths += sorted(p for p in item.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
                            and not (skip and p.resolve().is_relative_to(skip)))
        elif item.is_file():
            paths.append(item)
        else:
            raise FileNotFoundError(f"no such submission: {item}")
    named: dict[str, Path] = {}
    for path in paths:
        name = learner_name(path)
        if name in named:
            raise ValueError(f"two submissions for learner {name!r}: {named[name]} and {path}")
        named[name] = path
    return list(named.items())


def detect_chapter(nb) -> str | None:
    chapter = nb.metadata.get("course", {}).get("chapter")
    if chapter:
        return str(chapter)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    found = re.findall(r"""check\(\s*["'](\d\d)\.""", code)
    return max(set(found), key=found.count) if found else None


def _fingerprint() -> dict[str, str]:
    """sha256 of each source file of this grading package (read only; never written back)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(HERE.glob("*.py"))}


class TamperedError(RuntimeError):
    """The grading package changed while a learner's notebook ran."""


def _kill_run(run_id: str) -> int:
    """SIGKILL every process of ours whose environment carries this run id (kernel + children)."""
    import psutil

    killed = 0
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(record.RUN_ENV) == run_id:
                proc.kill()
                killed += 1
        except (OSError, psutil.Error):
            continue
    return killed


def _run_worker(src: Path, dst: Path, env: dict, timeout: int, log: Path) -> str:
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "course_utils.grading.worker", str(src),
                                 str(dst), "--timeout", str(timeout)], cwd=src.parent, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            code = proc.wait(timeout + GRACE)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the worker's own process group
            except (ProcessLookupError, PermissionError):
                proc.kill()
            proc.wait()
            return "timeout"
    return worker.STATUS.get(code, "failed")


def _cell_errors(executed: Path) -> list[dict]:
    try:
        nb = nbformat.read(executed, as_version=4)
    except Exception:
        return []
    return [{"cell": i, "ename": str(out.get("ename", ""))[:100], "evalue": str(out.get("evalue", ""))[:300],
             "code": (cell.source.strip().splitlines() or [""])[0][:80]}
            for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.get("output_type") == "error"][:20]


def score(chapter: str, results: list[dict]) -> dict:
    """{exercise id: {title, status, message, points}} -- passed if any verified line passed."""
    scored = {}
    for ex in cases.chapter_exercises(chapter):
        mine = [r for r in results if r.get("exercise") == ex.id]
        best = next((r for r in mine if r.get("passed") is True), mine[-1] if mine else None)
        scored[ex.id] = {"title": ex.title, "points": ex.points,
                         "status": "not run" if best is None else ("passed" if best["passed"] is True
                                                                    else str(best.get("status"))),
                         "message": "" if best is None else str(best.get("message", ""))[:500]}
    return scored


def grade_one(path: Path, learner: str, timeout: int, chapter: str | None = None,
              work_root: Path | None = None) -> dict:
    """Run one submission in a fresh folder and return its grade record."""
    start, data = time.perf_counter(), Path(path).read_bytes()
    rec = {"learner": learner, "submission": str(path), "submission_sha256": hashlib.sha256(data).hexdigest(),
           "status": "failed", "detail": "", "errors": [], "ignored_lines": 0,
           "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    work = Path(tempfile.mkdtemp(prefix=f"course-grade-{report.safe_name(learner)}-", dir=work_root))
    private = Path(tempfile.mkdtemp(prefix="course-grader-"))  # logs: not in the learner's folder
    try:
        try:
            nb = nbformat.reads(data.decode("utf-8"), as_version=4)
            rec["chapter"] = chapter or detect_chapter(nb)
        except Exception as err:
            nb, rec["chapter"], rec["detail"] = None, chapter, f"not a readable notebook: {err}"[:300]
        if nb is not None and not rec["chapter"]:
            rec["detail"] = "cannot tell the chapter: no course.chapter metadata and no check() calls"
        if nb is not None and rec["chapter"]:
            rec.update(_execute(work, private, data, timeout))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)
    rec["exercises"] = score(rec["chapter"], rec.pop("results", [])) if rec["chapter"] else {}
    rec["score"] = sum(e["points"] for e in rec["exercises"].values() if e["status"] == "passed")
    rec["max_score"] = sum(e["points"] for e in rec["exercises"].values())
    rec["seconds"] = round(time.perf_counter() - start, 1)
    return rec


def _execute(work: Path, private: Path, data: bytes, timeout: int) -> dict:
    src, dst, results = work / "submission.ipynb", work / "executed.ipynb", work / record.RESULTS_NAME
    src.write_bytes(data)
    results.write_text("")  # fresh and empty: nothing planted earlier can be in it
    key, run_id = secrets.token_bytes(32), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_GRADING_")}
    env.update({record.KEY_ENV: key.hex(), record.RUN_ENV: run_id, record.RESULTS_ENV: str(results),
                "COURSE_FAST": "1", "COURSE_THREADS": env.get("COURSE_THREADS", "1"),
                "PYTHONUNBUFFERED": "1"})
    try:
        status = _run_worker(src, dst, env, timeout, private / "worker.log")
    finally:
        _kill_run(run_id)
    verified, ignored = record.read_results(results, key, run_id)
    detail = ""
    if status == "failed":
        detail = (private / "worker.log").read_text(errors="replace").strip()[-300:]
    elif status == "timeout":
        detail = f"time limit: {timeout} s per cell, {timeout + GRACE} s in all"
    return {"status": status, "detail": detail, "results": verified, "ignored_lines": ignored,
            "errors": _cell_errors(dst), "executed": dst.read_bytes() if dst.exists() else None}


def grade(submissions, out_dir, timeout: int = 300, force: bool = False, chapter: str | None = None,
          work_root=None, log=lambda msg: print(msg, flush=True)) -> dict:
    """Grade every submission; write DIR/grades.json, grades.csv, feedback/, executed/; return
    the state {learner: record}."""
    out_dir = Path(out_dir)
    todo = find_submissions(submissions, exclude=out_dir)
    try:
        state = report.load_state(out_dir)
    except ValueError:
        if not force:
            raise
        state = {}  # --force: an unreadable grades file is replaced
    fingerprint = _fingerprint()
    for n, (learner, path) in enumerate(todo, 1):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        old = state.get(learner)
        if old and old.get("submission_sha256") == digest and not force:
            log(f"[{n}/{len(todo)}] {learner}: already graded ({old['score']}/{old['max_score']}), skipped")
            continue
        log(f"[{n}/{len(todo)}] {learner}: {path} ...")
        rec = grade_one(path, learner, timeout, chapter, work_root)
        executed = rec.pop("executed", None)
        if executed:
            (out_dir / "executed").mkdir(parents=True, exist_ok=True)
            (out_dir / "executed" / f"{report.safe_name(learner)}.ipynb").write_bytes(executed)
        now = _fingerprint()
        changed = sorted(k for k in fingerprint.keys() | now.keys() if fingerprint.get(k) != now.get(k))
        if changed:
            rec["status"], rec["detail"] = "tampered", f"course_utils/grading changed during the run: {changed}"
        state[learner] = rec
        report.write_all(out_dir, state, feedback_for=[learner])
        if changed:
            raise TamperedError(f"course_utils/grading/{changed} changed while {learner}'s notebook ran "
                                f"(recorded as 'tampered' in {out_dir / report.STATE}). Restore the "
                                "package (e.g. git checkout course_utils/grading) and run again: "
                                "learners graded so far are kept and skipped.")
        log(f"    {rec['score']}/{rec['max_score']} ({rec['status']}, {rec['seconds']:.0f} s)")
    report.write_all(out_dir, state)
    return state
