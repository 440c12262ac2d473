"""The learner's submission: one zip holding the notebook and a manifest with its hash.

    python -m course_utils.grading submit exercises/01_embeddings_exercises.ipynb [--out DIR]

or, as the notebook's last cell (it also records how often each exercise was checked)::

    from course_utils.grading import submit
    submit()

writes `01_embeddings_exercises.zip` (beside the notebook, or in DIR) holding the notebook as saved
on disk and `manifest.json`: the notebook's name, its sha256 and size, the chapter, the time of
submission (UTC), the course version and the attempts per exercise. Upload the zip. The grader
reads zips and bare notebooks alike (`read_submission`): it takes the submission time from the
manifest, else from the file's modification time, and flags a notebook whose hash no longer
matches its manifest (changed after `submit`).

>>> manifest_for(b"{}", "01_embeddings_exercises.ipynb", "01", now="2026-12-01T10:00:00+00:00")["sha256"][:12]
'44136fa355b3'
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from datetime import datetime, timezone
from pathlib import Path

from course_utils.paths import atomic_write

__all__ = ["MANIFEST", "MAX_NOTEBOOK_BYTES", "manifest_for", "make_submission", "read_submission",
           "submission_time", "submit"]

MANIFEST = "manifest.json"
MAX_NOTEBOOK_BYTES = 50 * 2**20   # a submitted notebook larger than this is refused (outputs?)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def manifest_for(data: bytes, name: str, chapter: str | None, attempts: dict | None = None,
                 learner: str | None = None, now: str | None = None) -> dict:
    """The manifest of a notebook's bytes `data` saved as `name`."""
    from course_utils import __version__

    return {"format": 1, "notebook": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
            "chapter": chapter, "submitted_at": now or _now(), "course_version": __version__,
            "learner": learner, "attempts": {str(k): int(v) for k, v in (attempts or {}).items()}}


def _chapter_of(data: bytes) -> str | None:
    import nbformat

    from .grader import detect_chapter

    try:
        return detect_chapter(nbformat.reads(data.decode("utf-8"), as_version=4))
    except Exception:   # noqa: BLE001 -- not a notebook: the grader will say so
        return None


def make_submission(notebook, out_dir=None, attempts: dict | None = None, learner: str | None = None,
                    now: str | None = None) -> Path:
    """Write `<notebook stem>.zip` (notebook + manifest) into `out_dir` (default: beside it)."""
    notebook = Path(notebook)
    if notebook.suffix != ".ipynb" or not notebook.is_file():
        raise FileNotFoundError(f"{notebook} is not a notebook file (.ipynb): give the exercise "
                                "notebook you worked in")
    data = notebook.read_bytes()
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"{notebook} is {len(data) / 2**20:.0f} MB; clear large outputs "
                         f"(Edit > Clear Outputs) and save it again (limit {MAX_NOTEBOOK_BYTES // 2**20} MB)")
    manifest = manifest_for(data, notebook.name, _chapter_of(data), attempts, learner, now)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(notebook.name, data)
        zf.writestr(MANIFEST, json.dumps(manifest, indent=1) + "\n")
    target = Path(out_dir or notebook.parent) / f"{notebook.stem}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(target, buf.getvalue())


def read_submission(path) -> tuple[bytes, dict | None, str]:
    """(notebook bytes, manifest or None, problem) of a submitted .ipynb or submission .zip;
    `problem` is "" or what an instructor should know (the hash does not match, ...).
    ValueError for a zip that holds no notebook or more than one."""
    path = Path(path)
    if path.suffix != ".zip":
        return path.read_bytes(), None, ""
    with zipfile.ZipFile(path) as zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        notebooks = [m for m in members if m.filename.endswith(".ipynb") and "/." not in "/" + m.filename]
        if len(notebooks) != 1:
            raise ValueError(f"{path}: a submission zip holds exactly one notebook, this one holds "
                             f"{len(notebooks)}; make it with `python -m course_utils.grading submit`")
        if any(m.file_size > MAX_NOTEBOOK_BYTES for m in members):
            raise ValueError(f"{path}: a member is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB")
        data = zf.read(notebooks[0])
        names = {m.filename for m in members}
        manifest = None
        if MANIFEST in names:
            try:
                manifest = json.loads(zf.read(MANIFEST))
            except ValueError:
                return data, None, "manifest.json is not JSON"
    if not isinstance(manifest, dict):
        return data, None, "no manifest in the zip" if manifest is None else "manifest.json is not an object"
    if manifest.get("sha256") != hashlib.sha256(data).hexdigest():
        return data, manifest, "the notebook does not match its manifest's sha256 (changed after submit)"
    return data, manifest, ""


def submission_time(path, manifest: dict | None) -> tuple[str, str]:
    """(ISO time in UTC, "manifest" or "mtime"): when the submission was made."""
    if manifest and manifest.get("submitted_at"):
        try:
            when = datetime.fromisoformat(str(manifest["submitted_at"]))
            when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
            return when.astimezone(timezone.utc).isoformat(timespec="seconds"), "manifest"
        except ValueError:
            pass
    mtime = datetime.fromtimestamp(os.stat(path).st_mtime, timezone.utc)
    return mtime.isoformat(timespec="seconds"), "mtime"


def _this_notebook() -> Path | None:
    """The path of the notebook this kernel runs, as Jupyter tells the kernel (else None)."""
    name = os.environ.get("JPY_SESSION_NAME")
    if not name:
        try:
            name = get_ipython().user_ns.get("__session__")   # noqa: F821 -- an IPython kernel
        except NameError:
            return None
    path = Path(name) if name else None
    return path if path is not None and path.suffix == ".ipynb" and path.is_file() else None


def submit(path=None, out_dir=None, learner: str | None = None) -> Path | None:
    """In the notebook: zip the notebook *as saved* with its manifest; return the zip's path.

    Save the notebook first (Ctrl+S). Prints what to upload; returns None (and says why) when
    it runs under the grader or cannot find the notebook's file (then pass `path=`)."""
    from . import checks

    if os.environ.get("COURSE_GRADING") == "1":
        print("submit: nothing to do while the grader runs this notebook")
        return None
    notebook = Path(path) if path else _this_notebook()
    if notebook is None:
        print("submit: could not find this notebook's file; call submit(path=\"NN_topic_exercises.ipynb\") "
              "or run `python -m course_utils.grading submit NOTEBOOK` in a terminal")
        return None
    zipped = make_submission(notebook, out_dir, attempts=checks.attempts(), learner=learner)
    print(f"submit: wrote {zipped.name} (sha256 of the notebook in its manifest); upload that file")
    return zipped
