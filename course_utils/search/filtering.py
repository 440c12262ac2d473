"""Metadata filtering around vector search, two ways, and a measure of what the cheap way loses.

- Pre-filtering: the index only considers allowed ids (FAISS `IDSelectorBatch` passed through
  `SearchParameters(sel=...)`), so every query gets k allowed results when k allowed ones exist.
- Post-filtering: search `ceil(k * overfetch)` neighbours, drop the disallowed ones, keep k. Cheap
  and index-agnostic, but when the filter is selective many queries come back with fewer than k.

`allowed_ids` are row positions (for a vectors array) or FAISS labels (for an index).
Results follow the `Hits` contract of `course_utils.search.exact`.
"""
from __future__ import annotations

import math
import numbers

import faiss
import numpy as np

from course_utils.search.hits import (
    Hits,
    as_id_array,
    as_matrix,
    check_dims,
    check_k,
    faiss_hits,
    flat_index,
    pad_hits,
    selector_params,
    warn_if_unnormalized,
)

__all__ = ["search_prefiltered", "search_postfiltered", "filter_loss"]


def _prepare(index_or_vectors, queries, k, allowed_ids):
    """Validate inputs; return (faiss index, queries float32 (nq, d), k, allowed int64)."""
    if isinstance(index_or_vectors, faiss.Index):
        index, n = index_or_vectors, None
    else:
        v = as_matrix(index_or_vectors, "vectors", allow_1d=False)
        warn_if_unnormalized(v, "vectors")
        index, n = flat_index(v), len(v)
    q = as_matrix(queries, "queries")
    check_dims(q, index.d, what="the indexed vectors")
    warn_if_unnormalized(q, "queries")
    return index, q, check_k(k), as_id_array(allowed_ids, "allowed_ids", n)


def search_prefiltered(index_or_vectors, queries, k: int, allowed_ids) -> Hits:
    """Top-k among `allowed_ids` only, with the filter applied inside the FAISS search.

    index_or_vectors: a faiss.Index (flat, IVF, HNSW, IDMap) or float32 vectors (n, d);
    queries: (n_queries, d) or (d,); allowed_ids: 1-D ints. Returns Hits (n_queries, k).

    >>> v = np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32)
    >>> search_prefiltered(v, np.array([1.0, 0.0]), k=2, allowed_ids=[2]).ids.tolist()
    [[2, -1]]
    """
    index, q, k, allowed = _prepare(index_or_vectors, queries, k, allowed_ids)
    if allowed.size == 0:
        return pad_hits(np.zeros((len(q), 0)), np.zeros((len(q), 0), np.int64), k)
    return faiss_hits(*index.search(q, k, params=selector_params(index, allowed)))


def search_postfiltered(index_or_vectors, queries, k: int, allowed_ids,
                        overfetch: float = 4.0) -> Hits:
    """Search ceil(k * overfetch) neighbours, keep the first k whose id is allowed.

    Rows with fewer than k allowed neighbours among those fetched are padded (-1, -inf); measure
    how often with `filter_loss`. overfetch: a number >= 1.

    >>> v = np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32)
    >>> search_postfiltered(v, np.array([1.0, 0.0]), k=1, allowed_ids=[2], overfetch=2).ids.tolist()
    [[-1]]
    """
    index, q, k, allowed = _prepare(index_or_vectors, queries, k, allowed_ids)
    if isinstance(overfetch, bool) or not isinstance(overfetch, numbers.Real) or overfetch < 1:
        raise ValueError(f"overfetch must be a number >= 1 (how many times k to fetch), "
                         f"got {overfetch!r}")
    fetched = faiss_hits(*index.search(q, math.ceil(k * overfetch)))
    return _keep_allowed(fetched, allowed, k)


def _keep_allowed(hits: Hits, allowed: np.ndarray, k: int) -> Hits:
    """Move allowed hits to the front of each row (stable), cut to k, pad the rest."""
    ok = np.isin(hits.ids, allowed) & (hits.ids != -1)
    order = np.argsort(~ok, axis=1, kind="stable")[:, :k]
    ids = np.take_along_axis(hits.ids, order, axis=1)
    scores = np.take_along_axis(hits.scores, order, axis=1)
    kept = np.take_along_axis(ok, order, axis=1)
    ids[~kept], scores[~kept] = -1, -np.inf
    return pad_hits(scores, ids, k)


def filter_loss(pre: Hits, post: Hits) -> dict[str, float]:
    """What post-filtering loses against pre-filtering, for the same queries and k.

    Returns `short_fraction` (share of queries for which post-filtering returns fewer results than
    pre-filtering), `mean_returned_pre` / `mean_returned_post` (results per query), and `recall`
    (mean over queries with at least one pre-filtered result of |post ∩ pre| / |pre|; 1.0 if
    there are none).

    >>> pre = Hits(np.zeros((2, 2), np.float32), np.array([[1, 2], [3, 4]]))
    >>> post = Hits(np.zeros((2, 2), np.float32), np.array([[1, 2], [3, -1]]))
    >>> filter_loss(pre, post)["short_fraction"], filter_loss(pre, post)["recall"]
    (0.5, 0.75)
    """
    pre_ids, post_ids = np.asarray(pre[1]), np.asarray(post[1])
    if pre_ids.shape != post_ids.shape or pre_ids.ndim != 2:
        raise ValueError(f"pre {pre_ids.shape} and post {post_ids.shape} must be Hits of the "
                         "same shape: search the same queries with the same k")
    n_pre, n_post = (pre_ids != -1).sum(axis=1), (post_ids != -1).sum(axis=1)
    recalls = [len(set(a[a != -1]) & set(b[b != -1])) / m
               for a, b, m in zip(pre_ids, post_ids, n_pre) if m > 0]
    return {"short_fraction": float(np.mean(n_post < n_pre)) if len(n_pre) else 0.0,
            "mean_returned_pre": float(np.mean(n_pre)) if len(n_pre) else 0.0,
            "mean_returned_post": float(np.mean(n_post)) if len(n_post) else 0.0,
            "recall": float(np.mean(recalls)) if recalls else 1.0}
