"""Batch grading: run each learner notebook in a sandbox and compute its verdicts outside it.

    python -m course_utils.grading grade SUBMISSIONS... --out DIR [--timeout 300] [--force]
                 [--sandbox auto|bwrap|none] [--deadline [NN=]WHEN ...] [--late-penalty PERCENT]

SUBMISSIONS are notebooks, submission zips (made by `submit`: the notebook and a manifest), or
folders (every *.ipynb and *.zip inside, recursively). The learner's name is the file's stem
(`alice.ipynb` -> alice) -- unless the stem is a course file name (`01_embeddings_exercises.ipynb`
or `.zip`, i.e. starts with two digits and "_"), then it is the parent folder's name
(`submissions/alice/01_embeddings_exercises.zip` -> alice). The chapter is `--chapter`, else
the notebook's metadata (`course.chapter`, set by the generator), else the ids in its
`check("NN....")` calls. One folder may hold several chapters of one learner; each (learner,
chapter) is one record of the gradebook, and two submissions of one learner for one chapter are
an error. The submission time comes from the zip's manifest, else from the file's modification
time; `Policy` (deadlines, late penalty) turns it into a penalty (see `gradebook`).

Per learner, one after another: a fresh folder (the only place the learner's code may write) and
a private folder of the grader's; a worker process (see `worker`) runs the notebook in a Jupyter
kernel inside a bubblewrap sandbox (see `sandbox`: no network, no view of the submissions, of DIR
or of your home, a fresh unprivileged uid, limits on memory, processes and CPU time), then calls
each exercise's function in that kernel with the hidden inputs and compares the outputs, returned
as plain data, with the expected values in the worker (see `remote`). Nothing the notebook
prints, writes or signs counts -- only what its functions return. The run is stopped after
`timeout` seconds per cell and in all; the sandbox, with every process in it, dies with it. The
verdicts are read from the private folder; both folders are then deleted; the executed copy is
kept in DIR/executed/. The grader keeps its state in memory and rewrites DIR's files atomically
after each submission, so a killed or interrupted run resumes where it stopped: re-running skips
submissions unchanged since they were graded, unless `force` (records not named this time keep
their grades). Each automatic exercise earns `points` x the share of its held-back cases passed;
items graded by hand (projects, written answers: the cells tagged `answer:<id>`) wait for the
instructor's points in DIR/comments.csv.

`sandbox="auto"` (the default) needs bubblewrap and refuses to grade without it; "none" runs the
kernels with your user's rights (limits only): for trusted notebooks, e.g. the course's own.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import nbformat

from course_utils.paths import atomic_write

from . import cases, gradebook, report, sandbox, submission

__all__ = ["reference_calls", "GRACE", "HERE", "Submission", "learner_name", "find_submissions",
           "detect_chapter", "TamperedError", "answers", "score", "grade_one", "grade"]

GRACE = 30  # seconds on top of the cell timeout for kernel start-up and shutdown
HERE = Path(__file__).resolve().parent  # course_utils/grading


class Submission(NamedTuple):
    learner: str
    chapter: str | None
    path: Path      # a notebook, or a zip made by `submit`


def learner_name(path: Path) -> str:
    path = Path(path)
    return path.parent.name if re.match(r"\d\d_", path.stem) else path.stem


def _chapter_of(path: Path) -> str | None:
    """The chapter of a submission file (None if it cannot be read: grading will say why)."""
    try:
        data, _, _ = submission.read_submission(path)
        return detect_chapter(nbformat.reads(data.decode("utf-8"), as_version=4))
    except Exception:   # noqa: BLE001
        return None


def find_submissions(items, exclude: Path | None = None, chapter: str | None = None) -> list[Submission]:
    """[Submission(learner, chapter, path)] in the order given (folders: sorted); `exclude`: a
    folder to skip (the grader's output folder, which holds executed copies); `chapter`: the
    chapter of every submission (default: read from each)."""
    skip = Path(exclude).resolve() if exclude else None
    paths = []
    for item in map(Path, items):
        if item.is_dir():
            paths += sorted(p for p in item.rglob("*") if p.suffix in (".ipynb", ".zip") and p.is_file()
                            and ".ipynb_checkpoints" not in p.parts
                            and not (skip and p.resolve().is_relative_to(skip)))
        elif item.is_file():
            paths.append(item)
        else:
            raise FileNotFoundError(f"no such submission: {item}")
    named: dict[tuple, Path] = {}
    for path in paths:
        name, ch = learner_name(path), chapter or _chapter_of(path)
        if (name, ch) in named:
            raise ValueError(f"two submissions for learner {name!r}, chapter {ch}: {named[name, ch]} and "
                             f"{path}; keep one (e.g. the zip made by submit)")
        named[name, ch] = path
    return [Submission(name, ch, path) for (name, ch), path in named.items()]


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


EVAL_SECONDS = 60  # seconds for the hidden tests of one exercise (inputs and outputs cross a socket)


def _readable_paths() -> list[Path]:
    """What the learner's kernel must read: Python, the venv, the course package, its data, caches."""
    import site

    repo = HERE.parents[1]
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), Path(sys.executable).resolve().parent,
             HERE.parent, repo / "data", repo.parent / "shared" / "datasets", *map(Path, site.getsitepackages())}
    paths |= {Path(v) for k, v in os.environ.items() if k.startswith("COURSE_") and os.path.isabs(v)
              and not k.startswith("COURSE_GRADING")}
    return sorted(p.resolve() for p in paths if p.exists())


# The course's caches and data home: the kernel may add to them (a cache miss writes a shard), so
# each learner gets a writable copy made of symlinks to the real, read-only files.
CACHES = {"COURSE_CACHE": ("data", "cache", "embeddings"), "COURSE_MODEL_CACHE": ("data", "cache", "models"),
          "COURSE_DATA": ("data", "home")}


def _mirror(real: Path, into: Path, others_only: bool = False) -> None:
    """`into` gets real's folders and, for each file, a symlink to it (read-only in the sandbox).
    `others_only`: leave out what another uid could not read (a cache entry written into a private
    folder, e.g. by `tempfile.mkdtemp`): the learner's fresh uid sees a cache miss and fills its
    own copy, instead of a PermissionError."""
    into.mkdir(parents=True, exist_ok=True)
    if not real.is_dir():
        return
    for folder, dirs, files in os.walk(real):
        rel = Path(folder).relative_to(real)
        if others_only:
            dirs[:] = [d for d in dirs if _open_to_others(Path(folder) / d, stat.S_IROTH | stat.S_IXOTH)]
            files = [f for f in files if _open_to_others(Path(folder) / f, stat.S_IROTH)]
        for d in dirs:
            (into / rel / d).mkdir(exist_ok=True)
        for f in files:
            (into / rel / f).symlink_to(Path(folder) / f)


def _open_to_others(path: Path, bits: int) -> bool:
    try:
        return os.stat(path).st_mode & bits == bits
    except OSError:
        return False


def _writable_caches(work: Path, others_only: bool = False) -> dict:
    """{env var: the learner's mirror of that cache} (made now, in the learner's folder)."""
    repo, env = HERE.parents[1], {}
    for var, default in CACHES.items():
        real = Path(os.environ.get(var) or repo.joinpath(*default)).resolve()
        mine = work / ".course-cache" / var.lower()
        _mirror(real, mine, others_only)
        env[var] = str(mine)
    return env


def _kernel_env() -> dict:
    threads = os.environ.get("COURSE_THREADS", "1")
    secret = re.compile("TOKEN|KEY|SECRET|PASSW|CREDENTIAL", re.I)   # e.g. HF_TOKEN stays with you
    env = {k: v for k, v in os.environ.items() if k.startswith(("COURSE_", "HF_", "TRANSFORMERS_"))
           and not k.startswith("COURSE_GRADING") and not secret.search(k)}
    env.update({"COURSE_FAST": "1", "COURSE_THREADS": threads, "OMP_NUM_THREADS": threads,
                "MKL_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
                "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", "COURSE_GRADING": "1"})
    if os.environ.get("PYTHONPATH"):   # the kernel imports the same course package as the grader
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def _worker_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("COURSE_GRADING")}


def _run_worker(private: Path, limit: float) -> str:
    """Run the worker; "" when it finished, else why not."""
    with open(private / "worker.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "course_utils.grading.worker", str(private)],
                                cwd=private, env=_worker_env(), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(limit)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)   # the worker; its sandbox dies with it
            except (ProcessLookupError, PermissionError):
                proc.kill()
            proc.wait()
            return "timeout"
    return "" if code == 0 else f"the grader's worker stopped (exit code {code})"


def _sandbox_processes(namespaces, uid: int | None) -> list[int]:
    """Live (not zombie) processes in one of the learner's PID namespaces or of its host uid --
    never one of ours: a namespace equal to this process's is ignored."""
    try:
        mine = os.readlink(f"/proc/{os.getpid()}/ns/pid")
    except OSError:
        return []
    namespaces = {ns for ns in namespaces if isinstance(ns, str) and ns != mine}
    found = []
    for p in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        if p <= 1 or p == os.getpid():
            continue
        try:
            theirs = (uid is not None and os.stat(f"/proc/{p}").st_uid == uid) or \
                (namespaces and os.readlink(f"/proc/{p}/ns/pid") in namespaces)
            with open(f"/proc/{p}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except (OSError, IndexError):
            continue
        if theirs and not zombie:
            found.append(p)
    return found


def _kill_leftovers(namespaces, uid: int | None, wait: float = 5.0) -> int:
    """How many of the learner's processes outlived its sandbox (they are killed now). The PID
    namespace dies with the sandbox's PID 1, so this should be 0: give it `wait` s, then count."""
    deadline = time.monotonic() + wait
    while _sandbox_processes(namespaces, uid) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = set()
    for _ in range(50):
        alive = _sandbox_processes(namespaces, uid)
        if not alive:
            break
        left.update(alive)
        for p in alive:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)
    return len(left)


def _cell_errors(executed: Path) -> list[dict]:
    try:
        nb = nbformat.read(executed, as_version=4)
    except Exception:
        return []
    return [{"cell": i, "ename": str(out.get("ename", ""))[:100], "evalue": str(out.get("evalue", ""))[:300],
             "code": (cell.source.strip().splitlines() or [""])[0][:80]}
            for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.get("output_type") == "error"][:20]


def score(chapter: str, verdicts: dict) -> dict:
    """{exercise id: {title, kind, points, earned, status, message, cases_passed, cases_total}}
    from the worker's verdicts ({exercise id: {status, message, cases_passed, cases_total}}):
    `earned` = points x the share of held-back cases passed. Exercises without a verdict are
    "not run"; items graded by hand are "to grade" (0 points until the instructor's comments)."""
    scored = {}
    for ex in cases.chapter_exercises(chapter):
        v = verdicts.get(ex.id) if isinstance(verdicts.get(ex.id), dict) else {}
        status = "to grade" if ex.manual else str(v.get("status", "not run"))
        total = 0 if ex.manual else int(v.get("cases_total", len(ex.hidden_cases)) or 0)
        passed = min(total, int(v.get("cases_passed", 0) or 0)) if status in ("passed", "failed") else 0
        scored[ex.id] = {"title": ex.title, "kind": ex.kind, "points": ex.points, "status": status,
                         "message": str(v.get("message", ""))[:500], "cases_passed": passed,
                         "cases_total": total,
                         "earned": round(ex.points * passed / total, 2) if total else 0.0}
    return scored


def answers(nb, chapter: str) -> dict[str, str]:
    """{item id: the learner's answer} from the cells tagged `answer:<id>` (items graded by hand);
    the generator's placeholder counts as no answer."""
    from .generate import TEXT_STUB

    wanted = {ex.id for ex in cases.chapter_exercises(chapter) if ex.manual}
    found: dict[str, list] = {}
    for cell in nb.cells:
        for tag in cell.get("metadata", {}).get("tags", []):
            ex_id = tag.split(":", 1)[1].strip() if tag.startswith("answer:") else None
            if ex_id in wanted and cell.source.strip() not in ("", TEXT_STUB):
                found.setdefault(ex_id, []).append(cell.source.strip())
    return {ex_id: "\n\n".join(parts)[:20_000] for ex_id, parts in found.items()}


_GRADING_NAMES = {"check", "CheckResult"}


def reference_calls(nb, chapter: str) -> dict[str, str]:
    """{exercise id: note} for exercises whose function uses the course package's own code (an
    instructor should look: copying the reference is plagiarism, not a sandbox escape)."""
    trees = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        src = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            trees.append(ast.parse(src))
        except (SyntaxError, ValueError, RecursionError):
            continue
    aliases = {}
    for tree in trees:
        for node in ast.walk(tree):
            aliases.update(_course_imports(node))
    flags = {}
    for ex in cases.chapter_exercises(chapter):
        defs = [n for t in trees for n in ast.walk(t)
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == ex.function]
        if not defs:
            continue
        used = set()
        for node in ast.walk(defs[-1]):
            used |= set(_course_imports(node).values())
            if isinstance(node, ast.Name) and node.id in aliases:
                used.add(aliases[node.id])
        if used:
            flags[ex.id] = f"`{ex.function}` uses the course package: {', '.join(sorted(used))[:200]}"
    return flags


def _course_imports(node) -> dict[str, str]:
    """{local name: what it is} for an import of course_utils (other than `check`)."""
    found = {}
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.name.split(".")[0] == "course_utils":
                found[a.asname or a.name.split(".")[0]] = a.name
    elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "course_utils":
        for a in node.names:
            if not (node.module.startswith("course_utils.grading") and a.name in _GRADING_NAMES):
                found[a.asname or a.name] = f"{node.module}.{a.name}"
    return found


def grade_one(path: Path, learner: str, timeout: int, chapter: str | None = None,
              work_root: Path | None = None, mode: str = "bwrap", limits: sandbox.Limits = sandbox.Limits(),
              hidden=(), eval_seconds: int = EVAL_SECONDS) -> dict:
    """Run one submission (a notebook or a submission zip) in a fresh sandbox; its grade record."""
    start, raw = time.perf_counter(), Path(path).read_bytes()
    rec = {"learner": learner, "submission": str(path), "submission_sha256": hashlib.sha256(raw).hexdigest(),
           "status": "failed", "detail": "", "errors": [], "flags": {}, "sandbox": mode, "answers": {},
           "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    verdicts, manifest = {}, None
    try:
        data, manifest, problem = submission.read_submission(path)
    except (ValueError, OSError, zipfile.BadZipFile) as err:
        data, problem, rec["detail"] = b"", "", f"not a readable submission: {err}"[:300]
    if problem:
        rec["flags"]["manifest"] = problem
    rec["submitted_at"], rec["submitted_from"] = submission.submission_time(path, manifest)
    rec["attempts"] = (manifest or {}).get("attempts", {}) if isinstance((manifest or {}).get("attempts"), dict) else {}
    work = Path(tempfile.mkdtemp(prefix=f"course-grade-{report.safe_name(learner)}-", dir=work_root))
    private = Path(tempfile.mkdtemp(prefix="course-grader-"))  # the grader's: never in the sandbox
    try:
        try:
            nb = nbformat.reads(data.decode("utf-8"), as_version=4)
            rec["chapter"] = chapter or detect_chapter(nb)
        except Exception as err:
            nb, rec["chapter"] = None, chapter
            rec["detail"] = rec["detail"] or f"not a readable notebook: {err}"[:300]
        if nb is not None and not rec["chapter"]:
            rec["detail"] = "cannot tell the chapter: no course.chapter metadata and no check() calls"
        if nb is not None and rec["chapter"]:
            rec["flags"].update(reference_calls(nb, rec["chapter"]))
            rec["answers"] = answers(nb, rec["chapter"])
            verdicts = _execute(work, private, data, rec, timeout, mode, limits, hidden, eval_seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for name in ("stage.path", "sockets.path"):   # stage: empty mount points (the mounts died
            if (private / name).exists():              # with the sandbox); sockets: the kernel's
                shutil.rmtree((private / name).read_text(), ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)
    rec["exercises"] = score(rec["chapter"], verdicts) if rec["chapter"] else {}
    rec["score"] = round(sum(e["earned"] for e in rec["exercises"].values()), 2)   # before comments, lateness
    rec["max_score"] = sum(e["points"] for e in rec["exercises"].values())
    rec["seconds"] = round(time.perf_counter() - start, 1)
    return rec


def _execute(work: Path, private: Path, data: bytes, rec: dict, timeout: int, mode: str,
             limits: sandbox.Limits, hidden, eval_seconds: int) -> dict:
    """Run the worker on one notebook; fill rec's status, detail, errors, executed; the verdicts."""
    sockets, stage = private / "sockets", private / "stage"
    sockets.mkdir()
    stage.mkdir()
    private.chmod(0o711)
    if os.path.isdir("/tmp"):   # a Unix socket's path holds at most ~107 bytes: keep it short
        sockets = Path(tempfile.mkdtemp(prefix="course-sock-", dir="/tmp"))
        (private / "sockets.path").write_text(str(sockets))
    if mode == "bwrap" and os.geteuid() == 0 and os.path.isdir("/tmp"):
        # bwrap, already unprivileged, must reach the staged bind sources: not under a 0700 folder
        # (TMPDIR may be one), so they go to a folder of their own in /tmp, deleted afterwards
        stage = Path(tempfile.mkdtemp(prefix="course-stage-", dir="/tmp"))
        stage.chmod(0o711)
        (private / "stage.path").write_text(str(stage))
    (private / "submission.ipynb").write_bytes(data)
    uid = sandbox.fresh_uid() if mode == "bwrap" and os.geteuid() == 0 else None
    env = {**_kernel_env(), **_writable_caches(work, others_only=uid is not None)}
    if uid is not None:
        sandbox.give_to(uid, work, sockets)
    n = len([ex for ex in cases.chapter_exercises(rec["chapter"]) if not ex.manual])
    job = {"notebook": str(private / "submission.ipynb"), "work": str(work), "sockets": str(sockets),
           "sandbox": mode, "limits": asdict(limits), "uid": uid, "stage": str(stage), "env": env,
           "readable": [str(p) for p in _readable_paths()],
           "hidden": [str(Path(h).resolve()) for h in hidden] + [str(private)],
           "timeout": timeout, "total": timeout + GRACE, "chapter": rec["chapter"], "eval_seconds": eval_seconds}
    (private / "job.json").write_text(json.dumps(job))
    why = _run_worker(private, limit=2 * (timeout + GRACE) + n * (eval_seconds + GRACE) + 2 * GRACE)
    try:
        out = json.loads((private / "verdicts.json").read_text())
    except (OSError, ValueError):
        out = {}
    rec["status"], rec["detail"] = str(out.get("status", "failed")), str(out.get("detail", ""))[:300]
    rec["processes_left"] = _kill_leftovers(out.get("pidns") or [], uid)
    if why:
        rec["status"] = "timeout" if why == "timeout" else "failed"
        log = (private / "worker.log").read_text(errors="replace").strip()[-300:] if why != "timeout" else ""
        rec["detail"] = (f"{why}; {log}" if log else why)[:400]
    if out.get("truncated"):
        rec["detail"] = (rec["detail"] + "; outputs beyond 2 MB were dropped").strip("; ")
    executed = private / "executed.ipynb"
    rec["errors"] = _cell_errors(executed)
    rec["executed"] = executed.read_bytes() if executed.exists() else None
    return out.get("exercises", {}) if isinstance(out.get("exercises"), dict) else {}


def grade(submissions, out_dir, timeout: int = 300, force: bool = False, chapter: str | None = None,
          work_root=None, sandbox_mode: str = "auto", limits: sandbox.Limits = sandbox.Limits(),
          eval_seconds: int = EVAL_SECONDS, policy: gradebook.Policy | None = None,
          log=lambda msg: print(msg, flush=True)) -> dict:
    """Grade every submission; write DIR/grades.json, grades.csv, gradebook.csv, feedback/,
    executed/ (and answers/ for items graded by hand); return the state {"learner/chapter":
    record}. `policy` (deadlines, late penalty) is saved in DIR/policy.json for later runs and
    exports (None: keep DIR's). SandboxUnavailable if `sandbox_mode` cannot be had here."""
    out_dir = Path(out_dir)
    mode = sandbox.resolve(sandbox_mode)
    if mode == "none":
        log("WARNING: --sandbox none: learner code runs with YOUR rights (it can read your files, "
            "use the network and change your grades). Grade only trusted notebooks this way.")
    todo = find_submissions(submissions, exclude=out_dir, chapter=chapter)
    try:
        state = report.load_state(out_dir)
    except ValueError:
        if not force:
            raise
        state = {}  # --force: an unreadable grades file is replaced
    if policy is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        gradebook.save_policy(out_dir, policy)
    hidden = [Path(s) for s in submissions] + [out_dir] + [sub.path for sub in todo]
    fingerprint = _fingerprint()
    for n, sub in enumerate(todo, 1):
        digest = hashlib.sha256(sub.path.read_bytes()).hexdigest()
        k = gradebook.key(sub.learner, sub.chapter)
        old = state.get(k) or next((r for r in state.values() if r.get("learner") == sub.learner
                                    and r.get("submission") == str(sub.path)), None)
        if old and old.get("submission_sha256") == digest and not force:
            log(f"[{n}/{len(todo)}] {k}: already graded ({old['score']:g}/{old['max_score']:g}), skipped")
            continue
        log(f"[{n}/{len(todo)}] {k}: {sub.path} ...")
        rec = grade_one(sub.path, sub.learner, timeout, sub.chapter, work_root, mode, limits, hidden, eval_seconds)
        k = gradebook.key(sub.learner, rec.get("chapter"))
        executed = rec.pop("executed", None)
        if executed:
            (out_dir / "executed").mkdir(parents=True, exist_ok=True)
            atomic_write(out_dir / "executed" / f"{report.file_stem(rec)}.ipynb", executed)
        now = _fingerprint()
        changed = sorted(x for x in fingerprint.keys() | now.keys() if fingerprint.get(x) != now.get(x))
        if changed:
            rec["status"], rec["detail"] = "tampered", f"course_utils/grading changed during the run: {changed}"
        state[k] = rec
        report.write_all(out_dir, state, feedback_for=[k])
        if changed:
            raise TamperedError(f"course_utils/grading/{changed} changed while {k}'s notebook ran "
                                f"(recorded as 'tampered' in {out_dir / report.STATE}). Restore the "
                                "package (e.g. git checkout course_utils/grading) and run again: "
                                "submissions graded so far are kept and skipped.")
        flags = f", flagged: {', '.join(rec['flags'])}" if rec["flags"] else ""
        log(f"    {rec['score']:g}/{rec['max_score']:g} ({rec['status']}, {rec['seconds']:.0f} s{flags})")
    report.write_all(out_dir, state)
    return state
