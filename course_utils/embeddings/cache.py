"""An on-disk embedding cache keyed by model id + a hash of the text.

Layout: `<root>/<namespace>/shard-<hash>.npz`, one shard per batch of newly encoded texts. A shard
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

__all__ = ["text_key", "EmbeddingCache"]


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
            with np.load(path, allow_pickle=False) as npz:
                keys, vectors, digest = npz["keys"], npz["vectors"], str(npz["digest"])
            if _digest(keys, vectors) != digest or len(keys) != len(vectors):
                raise ValueError("digest mismatch")
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
        digest = _digest(keys, vectors)
        with atomic_path(self.folder / f"shard-{digest[:16]}.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, keys=keys, vectors=vectors, digest=np.array(digest))
        index = self._load()
        index.update({k.decode("ascii"): v for k, v in zip(keys, vectors)})

    def __len__(self) -> int:
        return len(self._load())

    def clear(self) -> None:
        """Delete every shard of this namespace."""
        for shard in self.folder.glob("shard-*.npz"):
            shard.unlink()
        self._index = None
