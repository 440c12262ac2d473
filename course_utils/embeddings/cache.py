"""An on-disk embedding cache keyed by model id + a hash of the text.

Layout: `<root>/<namespace>/shard-<hash>.npz`, one shard per batch of newly encoded texts (a scorer
called once per query writes many small ones: past `MAX_SHARDS` they are merged into one). A shard
holds `keys` (sha256 of each text), `vectors` (float32) and `digest` (sha256 of both), so a
truncated or edited shard is detected when it is read: it is deleted (with a warning) and its
texts are simply encoded again -- never silently used. Shards are written to a temporary file and
renamed into place, so an interrupted run leaves either a whole shard or none.
"""

from __future__ import annotations

import hashlib
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np

from course_utils.paths import atomic_path, embedding_cache_dir

__all__ = ["text_key", "EmbeddingCache", "MAX_SHARDS"]

MAX_SHARDS = 64   # beyond this many shards in a namespace, `put` merges them into one (`compact`)


def text_key(text: str) -> str:
    """sha256 hex digest of a text (UTF-8): the cache key within one model's namespace.

    >>> text_key("hello")[:12]
    '2cf24dba5fb0'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _digest(keys: np.ndarray, vectors: np.ndarray) -> str:
    return hashlib.sha256(keys.tobytes() + vectors.tobytes()).hexdigest()


class EmbeddingCache:
    """Vectors of texts already encoded by one model (one namespace), loaded lazily from disk.

    >>> import tempfile
    >>> cache = EmbeddingCache("m1", root=tempfile.mkdtemp())
    >>> cache.put(["a"], np.ones((1, 2), np.float32)); cache.get(["a", "b"])[1]
    [1]
    """

    def __init__(self, namespace: str, root: str | Path | None = None):
        if not namespace or not re.fullmatch(r"[\w.\-+=]+", namespace):
            raise ValueError(f"cache namespace {namespace!r} must be letters, digits, '.', '-', '_'")
        self.folder = Path(root or embedding_cache_dir()) / namespace
        self.hits = 0
        self.misses = 0
        self._index: dict[str, np.ndarray] | None = None

    def _load(self) -> dict[str, np.ndarray]:
        if self._index is None:
            self._index = {}
            for shard in sorted(self.folder.glob("shard-*.npz")):
                self._index.update(self._read_shard(shard))
        return self._index

    @staticmethod
    def _read_shard(path: Path) -> dict[str, np.ndarray]:
        try:
            if not path.exists():       # merged away by another process's `compact` meanwhile
                return {}
            with np.load(path, allow_pickle=False) as npz:
                keys, vectors, digest = npz["keys"], npz["vectors"], str(npz["digest"])
            if _digest(keys, vectors) != digest or len(keys) != len(vectors):
                raise ValueError("digest mismatch")
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
            warnings.warn(f"embedding cache shard {path} is corrupt ({err}); deleted -- its texts "
                          "will be encoded again", stacklevel=3)
            path.unlink(missing_ok=True)
            return {}
        return {k.decode("ascii"): v for k, v in zip(keys, vectors)}

    def get(self, texts: list[str]) -> tuple[dict[int, np.ndarray], list[int]]:
        """({position: vector} for cached texts, [positions still to encode])."""
        index = self._load()
        found, missing = {}, []
        for i, text in enumerate(texts):
            vec = index.get(text_key(text))
            if vec is None:
                missing.append(i)
            else:
                found[i] = vec
        self.hits += len(found)
        self.misses += len(missing)
        return found, missing

    def put(self, texts: list[str], vectors: np.ndarray) -> None:
        """Store `vectors` (float32, shape (len(texts), d)) for `texts` as one new shard, atomically."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(texts) != len(vectors):
            raise ValueError(f"{len(texts)} texts but {len(vectors)} vectors")
        if not len(texts):
            return
        keys = np.array([text_key(t) for t in texts], dtype="S64")
        self._write_shard(keys, vectors)
        index = self._load()
        index.update({k.decode("ascii"): v for k, v in zip(keys, vectors)})
        if sum(1 for _ in self.folder.glob("shard-*.npz")) > MAX_SHARDS:
            self.compact()

    def _write_shard(self, keys: np.ndarray, vectors: np.ndarray) -> Path:
        digest = _digest(keys, vectors)
        path = self.folder / f"shard-{digest[:16]}.npz"
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, keys=keys, vectors=vectors, digest=np.array(digest))
        return path

    def compact(self) -> int:
        """Merge every shard of this namespace into one; returns how many shards were merged.

        The merged shard is in place before the old ones go, and only shards read here are
        deleted, so a process writing or compacting the same namespace meanwhile loses nothing.
        >>> import tempfile
        >>> cache = EmbeddingCache("m1", root=tempfile.mkdtemp())
        >>> for t in "abc": cache.put([t], np.ones((1, 2), np.float32))
        >>> cache.compact(), len(list(cache.folder.glob("shard-*.npz"))), len(cache)
        (3, 1, 3)
        """
        shards = sorted(self.folder.glob("shard-*.npz"))
        if len(shards) < 2:
            return 0
        merged: dict[str, np.ndarray] = {}
        for shard in shards:
            merged.update(self._read_shard(shard))
        kept = None
        if merged:
            kept = self._write_shard(np.array(list(merged), dtype="S64"), np.stack(list(merged.values())))
        for shard in shards:
            if shard != kept:
                shard.unlink(missing_ok=True)
        self._index = merged
        return len(shards)

    def __len__(self) -> int:
        return len(self._load())

    def clear(self) -> None:
        """Delete every shard of this namespace."""
        for shard in self.folder.glob("shard-*.npz"):
            shard.unlink()
        self._index = None
