"""A small persistent vector collection: string doc ids, metadata, filters, add/remove, save/load.

Design (what chapter 09 compares with real vector databases):
- Vectors live in a FAISS `IndexIDMap2(IndexFlatIP)` (exact inner product on L2-normalised
  vectors = cosine). Each string doc id gets an int64 label from a counter that only grows, so a
  label is never reused after a removal (a stale label cannot point to a different document).
  `store.doc_ids(hits)` and `store.to_run(hits, query_ids)` map labels back to strings.
- Metadata is a pandas DataFrame indexed by doc id, saved as Parquet; `where` filters on it and
  is applied inside FAISS as a pre-filter (`IDSelectorBatch` of the matching labels).
- On disk: `index.faiss`, `metadata.parquet`, `schema.json` (format version, model id, dim,
  metric, normalised flag, count, next label). `save` writes a temporary sibling folder and
  renames it into place, so a crash never leaves a half-written store at `path`.
"""
from __future__ import annotations

import numbers
from pathlib import Path

import faiss
import numpy as np
import pandas as pd

from course_utils.runs import to_run as _to_run
from course_utils.search import store_io as io
from course_utils.search.hits import (
    Hits,
    as_matrix,
    check_dims,
    check_k,
    faiss_hits,
    pad_hits,
    selector_params,
    warn_if_unnormalized,
)

__all__ = ["VectorStore"]


class VectorStore:
    """Vectors + string ids + metadata for one embedding model.

    >>> store = VectorStore("toy-model", dim=2)
    >>> store.add(["a", "b"], np.eye(2, dtype=np.float32), [{"year": 2020}, {"year": 2024}])
    >>> hits = store.search(np.array([1.0, 0.0]), k=2, where={"year": 2024})
    >>> store.doc_ids(hits)
    [['b']]
    """

    def __init__(self, model_id: str, dim: int):
        if not isinstance(model_id, str) or not model_id:
            raise TypeError(f"model_id must be a non-empty string naming the embedding model, "
                            f"got {model_id!r}")
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim <= 0:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        self.model_id, self.dim = model_id, int(dim)
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        self._meta = pd.DataFrame(index=pd.Index([], name="doc_id", dtype=str))
        self._label_of: dict[str, int] = {}
        self._doc_of: dict[int, str] = {}
        self._next_label = 0

    def __len__(self) -> int:
        return len(self._label_of)

    def __contains__(self, doc_id) -> bool:
        return doc_id in self._label_of

    def __repr__(self) -> str:
        return f"VectorStore(model_id={self.model_id!r}, dim={self.dim}, count={len(self)})"

    @property
    def metadata(self) -> pd.DataFrame:
        """A copy of the metadata, one row per document (index: doc_id), in insertion order."""
        return self._meta.copy()

    # ------------------------------------------------------------------ updates
    def add(self, doc_ids, vectors, metadata=None, *, upsert: bool = False) -> None:
        """Add documents: doc_ids (n strings), vectors float32 (n, dim), optional metadata rows.

        An id already in the store raises unless `upsert=True`, which replaces its vector and
        its whole metadata row (the document then moves to the end of the insertion order).

        >>> s = VectorStore("m", 2); s.add(["a"], [[1.0, 0.0]]); len(s)
        1
        """
        ids = io.check_doc_ids(doc_ids)
        v = as_matrix(vectors, "vectors")
        if len(v) != len(ids):
            raise ValueError(f"got {len(v)} vectors for {len(ids)} doc_ids; pass one vector "
                             "per document")
        check_dims(v, self.dim, what=f"store vectors (model {self.model_id!r})")
        warn_if_unnormalized(v, "vectors")
        frame = io.metadata_frame(metadata, ids)
        existing = [d for d in ids if d in self._label_of]
        if existing and not upsert:
            raise ValueError(f"{len(existing)} doc id(s) already in the store, e.g. "
                             f"{existing[:3]}; pass upsert=True to replace them, or remove() "
                             "them first")
        if existing:
            self._remove(existing)
        labels = np.arange(self._next_label, self._next_label + len(ids), dtype=np.int64)
        self._index.add_with_ids(v, labels)
        self._meta = frame if len(self._meta) == 0 else pd.concat([self._meta, frame])
        self._label_of.update(zip(ids, labels.tolist()))
        self._doc_of.update(zip(labels.tolist(), ids))
        self._next_label += len(ids)

    def remove(self, doc_ids) -> None:
        """Remove documents by id; any unknown id raises and nothing is removed.

        >>> s = VectorStore("m", 2); s.add(["a", "b"], np.eye(2)); s.remove(["a"]); len(s)
        1
        """
        ids = io.check_doc_ids(doc_ids)
        unknown = [d for d in ids if d not in self._label_of]
        if unknown:
            raise KeyError(f"{len(unknown)} doc id(s) not in the store, e.g. {unknown[:3]}; "
                           "check with `doc_id in store` before removing")
        self._remove(ids)

    def _remove(self, ids: list[str]) -> None:
        labels = np.array([self._label_of.pop(d) for d in ids], dtype=np.int64)
        self._index.remove_ids(labels)
        for label in labels.tolist():
            del self._doc_of[label]
        self._meta = self._meta.drop(index=ids)

    # ------------------------------------------------------------------ queries
    def search(self, queries, k: int, where=None) -> Hits:
        """Top-k documents per query; Hits ids are store labels (use `doc_ids` / `to_run`).

        queries: (n_queries, dim) or (dim,). where: optional dict column → value, list/set of
        values, or callable(Series) → bool array; all conditions must hold (pre-filter).

        >>> s = VectorStore("m", 2); s.add(["a", "b"], np.eye(2))
        >>> s.doc_ids(s.search(np.array([0.0, 1.0]), k=3))
        [['b', 'a']]
        """
        q = as_matrix(queries, "queries")
        check_dims(q, self.dim, what=f"store vectors (model {self.model_id!r})")
        warn_if_unnormalized(q, "queries")
        k = check_k(k)
        if where is None:
            return faiss_hits(*self._index.search(q, k))
        mask = io.where_mask(self._meta, where)
        allowed = np.array([self._label_of[d] for d in self._meta.index[mask]], dtype=np.int64)
        if allowed.size == 0:
            return pad_hits(np.zeros((len(q), 0)), np.zeros((len(q), 0), np.int64), k)
        return faiss_hits(*self._index.search(q, k, params=selector_params(self._index, allowed)))

    def doc_ids(self, hits: Hits) -> list[list[str]]:
        """String doc ids of each hits row, best first, padding (-1) dropped.

        >>> s = VectorStore("m", 2); s.add(["a"], [[1.0, 0.0]])
        >>> s.doc_ids(Hits(np.zeros((1, 2), np.float32), np.array([[0, -1]])))
        [['a']]
        """
        return [[self._doc_of[i] for i in row if i != -1] for row in np.asarray(hits[1]).tolist()]

    def to_run(self, hits: Hits, query_ids, *, rank_scores: bool = False) -> dict:
        """`course_utils.search.to_run` with this store's labels mapped to doc ids.

        >>> s = VectorStore("m", 2); s.add(["a"], [[1.0, 0.0]])
        >>> s.to_run(s.search(np.array([1.0, 0.0]), k=1), ["q1"])
        {'q1': {'a': 1.0}}
        """
        return _to_run(hits, query_ids, self._doc_of, rank_scores=rank_scores)

    def get_vectors(self, doc_ids) -> np.ndarray:
        """Stored vectors of `doc_ids` as float32 (m, dim), in the order asked.

        >>> s = VectorStore("m", 2); s.add(["a"], [[1.0, 0.0]]); s.get_vectors(["a"]).tolist()
        [[1.0, 0.0]]
        """
        ids = io.check_doc_ids(doc_ids)
        unknown = [d for d in ids if d not in self._label_of]
        if unknown:
            raise KeyError(f"doc id(s) not in the store, e.g. {unknown[:3]}")
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        for row, d in enumerate(ids):
            out[row] = self._index.reconstruct(self._label_of[d])
        return out

    # ------------------------------------------------------------------ persistence
    def schema(self) -> dict:
        """What `save` writes to schema.json.

        >>> VectorStore("m", 2).schema()["count"]
        0
        """
        return {"format_version": io.FORMAT_VERSION, "model_id": self.model_id, "dim": self.dim,
                "metric": "inner_product", "normalized": True, "count": len(self),
                "next_label": self._next_label, "faiss_version": faiss.__version__}

    def save(self, path) -> None:
        """Write the store to folder `path` atomically (replacing a store saved there before)."""
        labels = np.array([self._label_of[d] for d in self._meta.index], dtype=np.int64)
        io.write_atomically(Path(path), self._index, self._meta, labels, self.schema())

    @classmethod
    def load(cls, path, expect_model: str | None = None,
             expect_dim: int | None = None) -> "VectorStore":
        """Load a saved store; refuse if it was built with another model id or dimension.

        Pass the model you will encode queries with as `expect_model` (None skips the check).
        """
        path = Path(path)
        schema = io.read_schema(path, expect_model, expect_dim)
        index, meta, labels = io.read_payload(path, schema)
        store = cls(schema["model_id"], schema["dim"])
        store._index, store._meta = index, meta
        store._label_of = dict(zip(meta.index.tolist(), labels.tolist()))
        store._doc_of = dict(zip(labels.tolist(), meta.index.tolist()))
        store._next_label = int(schema["next_label"])
        return store
