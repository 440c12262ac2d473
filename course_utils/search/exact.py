"""Exact (brute-force) semantic search, the `Hits` result type and conversion to a TREC run.

Data flow (DESIGN.md): vectors float32 (n, d), L2-normalised → search → Hits(scores, ids) of shape
(n_queries, k), best first → `to_run` → `{qid: {doc_id: score}}` for `course_utils.evaluate.metrics`.

Decisions, shared by every search function here and in `filtering`, `recommend`, `store`:
- Score = inner product; on L2-normalised vectors that is cosine similarity.
- k > n is allowed: results are padded to k with id -1 and score -inf, as FAISS does (FAISS
  pads with -3.4e38, which we normalise to -inf), so arrays are always (n_queries, k).
- A 1-D query of shape (d,) is accepted and treated as (1, d).
- float64 / integer inputs are converted to float32; NaN or inf raise; vectors whose norm is not 1
  (±1e-3) give a UserWarning (use `normalize`).
- Ties: `exact_search_numpy` ranks equal scores by the smaller row id (deterministic, also at the
  k-th place). FAISS's order for exact ties is an implementation detail (IndexFlat in faiss
  1.15 happens to put the larger id first); scores agree, so compare ids only where scores differ.

Filtering before/after search (`search_prefiltered`, `search_postfiltered`, `filter_loss`) lives in
`course_utils.search.filtering` and is re-exported here.
"""
from __future__ import annotations

import faiss
import numpy as np

from course_utils.embeddings.similarity import normalize
from course_utils.runs import to_run
from course_utils.search.hits import (
    Hits,
    as_matrix,
    check_dims,
    check_index,
    check_k,
    faiss_hits,
    flat_index,
    topk,
    warn_if_unnormalized,
)

__all__ = ["Hits", "normalize", "exact_search_numpy", "exact_search_faiss", "build_flat_index",
           "search", "to_run", "search_prefiltered", "search_postfiltered", "filter_loss"]

_BATCH = 1024  # query rows per matmul block in exact_search_numpy (bounds memory at 1024 × n)


def _check_pair(queries, vectors, k):
    q = as_matrix(queries, "queries")
    v = as_matrix(vectors, "vectors", allow_1d=False)
    check_dims(q, v.shape[1])
    warn_if_unnormalized(q, "queries")
    warn_if_unnormalized(v, "vectors")
    return q, v, check_k(k)


def exact_search_numpy(queries, vectors, k: int) -> Hits:
    """Exact top-k by inner product with numpy: one matmul, argpartition, then sort the k.

    queries: float32 (n_queries, d) or (d,); vectors: float32 (n, d); returns Hits of shape
    (n_queries, k) with ids = row positions in `vectors`. Equal scores: smaller row id first.

    >>> v = np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
    >>> exact_search_numpy(np.array([1.0, 0.0]), v, k=2).ids.tolist()
    [[0, 2]]
    """
    q, v, k = _check_pair(queries, vectors, k)
    return _exact_numpy(q, v, k)


def _exact_numpy(q: np.ndarray, v: np.ndarray, k: int) -> Hits:
    parts = [topk(q[i:i + _BATCH] @ v.T, k) for i in range(0, len(q), _BATCH)]
    if not parts:
        return Hits(np.zeros((0, k), np.float32), np.zeros((0, k), np.int64))
    return Hits(np.concatenate([p.scores for p in parts]), np.concatenate([p.ids for p in parts]))


def build_flat_index(vectors) -> faiss.IndexFlatIP:
    """An exact FAISS inner-product index holding `vectors` (n, d); labels = row positions.

    >>> build_flat_index(np.eye(3, dtype=np.float32)).ntotal
    3
    """
    v = as_matrix(vectors, "vectors", allow_1d=False)
    warn_if_unnormalized(v, "vectors")
    return flat_index(v)


def search(index, queries, k: int, **params) -> Hits:
    """Search any FAISS index: Hits (n_queries, k), best first, padding normalised to -1 / -inf.

    `params` (nprobe=, efSearch=, …) are set on the index first (`ann.set_search_params`). Scores
    are "higher is better" for every metric: an L2 index's squared distances come back negated.
    >>> index = build_flat_index(np.eye(2, dtype=np.float32))
    >>> search(index, np.array([0.0, 1.0]), k=3).ids.tolist()
    [[1, 0, -1]]
    """
    check_index(index)
    if not index.is_trained:
        raise ValueError("the index is not trained: call index.train(sample) before adding, or "
                         "build it with course_utils.ann.build_index(factory, vectors)")
    q = as_matrix(queries, "queries")
    check_dims(q, index.d, what="the index vectors")
    if index.metric_type == faiss.METRIC_INNER_PRODUCT:
        warn_if_unnormalized(q, "queries")
    if params:
        from course_utils.ann.indexes import set_search_params  # search → ann only when tuning
        set_search_params(index, **params)
    D, I = index.search(q, check_k(k))
    return faiss_hits(-D if index.metric_type == faiss.METRIC_L2 else D, I)


def exact_search_faiss(queries, vectors, k: int) -> Hits:
    """Same contract as `exact_search_numpy`, computed by a FAISS IndexFlatIP.

    >>> v = np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
    >>> exact_search_faiss(np.array([1.0, 0.0]), v, k=2).ids.tolist()
    [[0, 2]]
    """
    q, v, k = _check_pair(queries, vectors, k)
    return faiss_hits(*flat_index(v).search(q, k))




from course_utils.search.filtering import filter_loss, search_postfiltered, search_prefiltered  # noqa: E402
