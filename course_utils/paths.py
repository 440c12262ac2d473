"""Where the course keeps its files, every `COURSE_*` setting, and the one atomic write.

Settings (environment variables, all optional):

| variable | meaning | default |
|---|---|---|
| COURSE_DATA | the course's own data sets (downloads) | `<repo>/data/home` |
| COURSE_SHARED | shared, read-only data sets | `<repo>/../shared/datasets` |
| COURSE_CACHE | embedding cache | `<repo>/data/cache/embeddings` |
| COURSE_MODEL_CACHE | trained and unpacked models | `<repo>/data/cache/models` |
| COURSE_COLLECTIONS | the command line's named collections | `~/.course_utils/collections` |
| COURSE_THREADS | torch / FAISS threads | 1 on ≤ 2 cores (see `models.loading`) |
| COURSE_FAST | notebooks: small subsets, few epochs | unset (full mode) |
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["REPO", "DATA_ENV", "SHARED_ENV", "CACHE_ENV", "MODEL_CACHE_ENV", "COLLECTIONS_ENV",
           "THREADS_ENV", "FAST_ENV", "data_home", "shared_datasets", "embedding_cache_dir",
           "model_cache_dir", "collections_root", "fast_mode", "atomic_path", "atomic_write"]

REPO = Path(__file__).resolve().parents[1]
DATA_ENV, SHARED_ENV = "COURSE_DATA", "COURSE_SHARED"
CACHE_ENV, MODEL_CACHE_ENV = "COURSE_CACHE", "COURSE_MODEL_CACHE"
COLLECTIONS_ENV, THREADS_ENV, FAST_ENV = "COURSE_COLLECTIONS", "COURSE_THREADS", "COURSE_FAST"


def _setting(name: str, default: Path) -> Path:
    return Path(os.environ.get(name) or default)


def data_home() -> Path:
    """The course's own data folder ($COURSE_DATA, default <repo>/data/home).

    >>> data_home().is_absolute()
    True
    """
    return _setting(DATA_ENV, REPO / "data" / "home")


def shared_datasets() -> Path:
    """The shared, read-only data sets beside the repo ($COURSE_SHARED)."""
    return _setting(SHARED_ENV, REPO.parent / "shared" / "datasets")


def embedding_cache_dir() -> Path:
    """$COURSE_CACHE, default `<repo>/data/cache/embeddings`."""
    return _setting(CACHE_ENV, REPO / "data" / "cache" / "embeddings")


def model_cache_dir() -> Path:
    """$COURSE_MODEL_CACHE, default `<repo>/data/cache/models`."""
    return _setting(MODEL_CACHE_ENV, REPO / "data" / "cache" / "models")


def collections_root() -> Path:
    """$COURSE_COLLECTIONS, else ~/.course_utils/collections."""
    return _setting(COLLECTIONS_ENV, Path.home() / ".course_utils" / "collections")


def fast_mode() -> bool:
    """True when $COURSE_FAST is set to 1/true/yes (small subsets, few epochs).

    >>> os.environ.pop("COURSE_FAST", None) and None; fast_mode()
    False
    """
    return os.environ.get(FAST_ENV, "").strip().lower() in ("1", "true", "yes")


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one step.

    A crash or an error inside the block leaves the old file untouched and no temporary behind.
    `suffix` keeps an extension some writers insist on (np.save appends .npy otherwise).

    >>> import tempfile; target = Path(tempfile.mkdtemp()) / "x.txt"
    >>> with atomic_path(target) as tmp: _ = tmp.write_text("new")
    >>> target.read_text()
    'new'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix + ".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write text or bytes to `path` atomically (temporary file + os.replace).

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "a" / "b.json"
    >>> atomic_write(p, '{"ok": 1}').read_text()
    '{"ok": 1}'
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())  # on disk before it replaces the old file
    return Path(path)
