"""The learner bundle: the course without its solutions, as one zip (`make release`).

    python -m course_utils.grading release [--out dist]

Takes the files git tracks (or, outside a git checkout, the files on disk) under `INCLUDE`, leaves
out `EXCLUDE` (solutions/, the tests that hold reference answers, CI), checks that every exercise
notebook is up to date with its solution and that no notebook in the bundle holds a solution
region, and writes `dist/course-<version>-learner.zip` atomically. Learners unzip it and run
`make setup`, then work in exercises/.
"""
from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

from course_utils.paths import atomic_write

from . import generate

__all__ = ["INCLUDE", "EXCLUDE", "bundle_files", "build_release"]

INCLUDE = ("README.md", "Makefile", "pyproject.toml", "environment.yml", "LICENSE", "course_utils/",
           "notebooks/", "exercises/", "data/")
EXCLUDE = ("solutions/", "tests/", ".ci/", "data/cache/")


def _tracked(root: Path) -> list[str]:
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True,
                             timeout=60).stdout
        return [p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.SubprocessError):
        return [p.relative_to(root).as_posix() for p in sorted(root.rglob("*")) if p.is_file()]


def bundle_files(root: Path = generate.ROOT) -> list[str]:
    """The repository-relative paths that go into the learner bundle."""
    root = Path(root)
    keep = lambda p: (any(p == i or (i.endswith("/") and p.startswith(i)) for i in INCLUDE)
                      and not any(p.startswith(e) for e in EXCLUDE)
                      and "__pycache__" not in p and ".ipynb_checkpoints" not in p)
    return sorted(p for p in _tracked(root) if keep(p) and (root / p).is_file())


def build_release(root: Path = generate.ROOT, out_dir: Path | None = None) -> Path:
    """Write the learner zip; ValueError if exercises/ is stale or a bundled notebook holds a
    solution region (nothing is written then)."""
    import nbformat

    from course_utils import __version__

    root = Path(root)
    stale = generate.generate_exercises(root / "solutions", root / "exercises", check_only=True)
    if stale:
        raise ValueError(f"exercises/ is out of date with solutions/ ({', '.join(p.name for p in stale)}): "
                         "run `make exercises` first")
    files = bundle_files(root)
    leaks = [p for p in files if p.endswith(".ipynb")
             and generate.count_regions(nbformat.read(root / p, as_version=4))]
    if leaks:
        raise ValueError(f"these notebooks hold solution regions and cannot go to learners: {leaks}")
    name = f"course-{__version__}-learner"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in files:
            zf.write(root / p, f"{name}/{p}")
    return atomic_write(Path(out_dir or root / "dist") / f"{name}.zip", buf.getvalue())
