"""A two-tier cache for a RAG service: query embeddings and retrieval results.

Tier 1 is an in-memory LRU (least recently used entries leave first once `maxsize` is reached);
tier 2 is a folder on disk that survives restarts: one file per entry, named by the sha256 of
its key, written to a temporary file and renamed (so a crash never leaves half a file).
A lookup tries memory, then disk (and promotes a disk hit to memory), then computes and stores.

Keys must say everything the value depends on: for a query vector, the encoder's id and the
text; for a result list, also k and a fingerprint of the index (`fingerprint(chunk ids)`), so
a re-built index never serves stale results. Arrays are stored as .npy, everything else as
JSON (so results are lists of [chunk_id, score], not objects).
"""
from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from course_utils.paths import atomic_path

__all__ = ["LRUCache", "DiskCache", "RAGCache", "cache_key", "fingerprint"]


def cache_key(*parts) -> str:
    """sha256 of the JSON of `parts`: equal parts give equal keys.

    >>> cache_key("m", "hello", 5) == cache_key("m", "hello", 5) != cache_key("m", "hello", 6)
    True
    """
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def fingerprint(ids: Sequence[str]) -> str:
    """A short hash of an index's contents (its ids in order): changes when the index does."""
    return cache_key(*map(str, ids))[:16]


class LRUCache:
    """In-memory mapping that keeps the `maxsize` most recently used entries.

    >>> c = LRUCache(2); c.put("a", 1); c.put("b", 2); _ = c.get("a"); c.put("c", 3)
    >>> sorted(c.keys())          # "b" was the least recently used
    ['a', 'c']
    """

    def __init__(self, maxsize: int = 1024):
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"maxsize must be a whole number >= 1, got {maxsize!r}")
        self.maxsize, self._data = maxsize, OrderedDict()

    def get(self, key, default=None):
        if key not in self._data:
            return default
        self._data.move_to_end(key)
        return self._data[key]

    def put(self, key, value) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def keys(self):
        return list(self._data)

    def __contains__(self, key) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)


class DiskCache:
    """One file per key in `folder`: .npy for arrays, .json for JSON-able values."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def _path(self, key: str, suffix: str) -> Path:
        return self.folder / key[:2] / f"{key}{suffix}"

    def get(self, key: str):
        """The stored value, or None (a damaged file counts as missing and is deleted)."""
        for suffix in (".npy", ".json"):
            path = self._path(key, suffix)
            if path.exists():
                try:
                    if suffix == ".npy":
                        return np.load(path, allow_pickle=False)
                    return json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    path.unlink(missing_ok=True)
        return None

    def put(self, key: str, value) -> None:
        is_array = isinstance(value, np.ndarray)
        path = self._path(key, ".npy" if is_array else ".json")
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            if is_array:
                np.save(fh, value, allow_pickle=False)
            else:
                fh.write(json.dumps(value).encode("utf-8"))

    def __len__(self) -> int:
        return sum(1 for _ in self.folder.glob("*/*.*[ny]"))  # .npy and .json files


class RAGCache:
    """Memory LRU in front of a disk cache; counts where each lookup was answered.

    >>> import tempfile
    >>> cache = RAGCache(tempfile.mkdtemp(), maxsize=10)
    >>> cache.get_or_compute(("double", 2), lambda: 4), cache.get_or_compute(("double", 2), lambda: 0)
    (4, 4)
    >>> cache.stats()
    {'memory': 1, 'disk': 0, 'computed': 1}
    """

    def __init__(self, folder: str | Path, maxsize: int = 1024):
        self.memory, self.disk = LRUCache(maxsize), DiskCache(folder)
        self.counts = {"memory": 0, "disk": 0, "computed": 0}

    def get_or_compute(self, parts: tuple, compute: Callable):
        key = cache_key(*parts)
        value = self.memory.get(key)
        if value is not None:
            self.counts["memory"] += 1
            return value
        value = self.disk.get(key)
        if value is not None:
            self.counts["disk"] += 1
        else:
            value = compute()
            self.disk.put(key, value)
            self.counts["computed"] += 1
        self.memory.put(key, value)
        return value

    def embed(self, texts: Sequence[str], encode: Callable, model_id: str) -> np.ndarray:
        """Vectors of `texts` (n, d), each text looked up on its own; `encode` gets one at a time."""
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings; for one text use [text]")
        rows = [self.get_or_compute(("embed", model_id, t),
                                    lambda t=t: np.asarray(encode([t]), np.float32)[0]) for t in texts]
        return np.stack(rows).astype(np.float32, copy=False)

    def results(self, query: str, k: int, index_id: str, search: Callable) -> list:
        """[[chunk_id, score], ...] of `search(query, k)`, cached under (query, k, index_id)."""
        return self.get_or_compute(("results", index_id, k, query),
                                   lambda: [[str(i), float(s)] for i, s in search(query, k)])

    def stats(self) -> dict:
        return dict(self.counts)

    def clear_memory(self) -> None:
        """Forget the memory tier (as a restarted process would); the disk tier stays."""
        self.memory = LRUCache(self.memory.maxsize)
