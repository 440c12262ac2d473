"""Recommendations from embeddings: similar items, items like a set of liked ones, and MMR.

All functions take L2-normalised float32 vectors (n, d), score by inner product (= cosine) and
return `Hits` (see `course_utils.search.exact`): ids are row positions, padding is -1 / -inf.
"""
from __future__ import annotations

import numbers

import numpy as np

from course_utils.search.hits import Hits, as_matrix, check_dims, check_k, pad_hits, topk, warn_if_unnormalized

__all__ = ["similar_items", "recommend_from_liked", "mmr"]


def _item_positions(idx, n: int, name: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(idx))
    if arr.size == 0 or arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be one or more integer row positions, got {idx!r}")
    if arr.ndim != 1 or arr.min() < 0 or arr.max() >= n:
        raise ValueError(f"{name} must be row positions in [0, {n}), got {arr.tolist()}")
    return arr.astype(np.int64)


def _vectors(vectors) -> np.ndarray:
    v = as_matrix(vectors, "vectors", allow_1d=False)
    warn_if_unnormalized(v, "vectors")
    return v


def similar_items(vectors, item_idx, k: int) -> Hits:
    """The k items most similar to each item in `item_idx`, never the item itself.

    vectors: float32 (n, d); item_idx: an int or a 1-D sequence of m ints; returns Hits (m, k)
    (m = 1 for an int). With k >= n the last places are padding.

    >>> v = np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32)
    >>> similar_items(v, 0, k=2).ids.tolist()
    [[1, 2]]
    """
    v = _vectors(vectors)
    items, k = _item_positions(item_idx, len(v), "item_idx"), check_k(k)
    scores = v[items] @ v.T
    scores[np.arange(len(items)), items] = -np.inf  # exclude self; topk treats -inf as missing
    return topk(scores, k)


def recommend_from_liked(vectors, liked_idx, k: int) -> Hits:
    """Top-k items for a user who liked `liked_idx`: profile = mean of their vectors, re-normalised.

    Liked items are excluded from the result. Returns Hits of shape (1, k).

    >>> v = np.array([[1, 0], [0, 1], [0.6, 0.8], [-1, 0]], dtype=np.float32)
    >>> recommend_from_liked(v, [0, 1], k=2).ids.tolist()
    [[2, 3]]
    """
    v = _vectors(vectors)
    liked, k = _item_positions(liked_idx, len(v), "liked_idx"), check_k(k)
    profile = v[liked].mean(axis=0)
    norm = np.linalg.norm(profile)
    if norm < 1e-6:
        raise ValueError("the liked items' vectors cancel out (mean has norm ~0), so there is no "
                         "direction to recommend from; use similar_items() per liked item")
    scores = (profile / norm)[None, :] @ v.T
    scores[0, liked] = -np.inf
    return topk(scores, k)


def mmr(query_vec, cand_vectors, k: int, lambda_: float = 0.5) -> Hits:
    """Maximal Marginal Relevance re-ranking (Carbonell & Goldstein, SIGIR 1998).

    Greedily picks  argmax_c  λ·sim(q, c) − (1 − λ)·max_{s ∈ selected} sim(c, s)
    (the max term is 0 for the first pick). λ = 1 is plain top-k by similarity, λ = 0 pure
    diversity. query_vec: (d,) or (1, d); cand_vectors: (m, d), e.g. the top-100 of a search.
    Returns Hits (1, k): ids are positions in `cand_vectors` in selection order, scores the MMR
    value at selection (not always decreasing: use `to_run(..., rank_scores=True)` to evaluate).
    Ties go to the smaller position.

    >>> c = np.array([[1, 0], [0.99, 0.141], [0.6, 0.8]], dtype=np.float32)
    >>> q = np.array([0.96, 0.28])
    >>> mmr(q, c, k=2, lambda_=1.0).ids.tolist(), mmr(q, c, k=2, lambda_=0.5).ids.tolist()
    ([[1, 0]], [[1, 2]])
    """
    q = as_matrix(query_vec, "query_vec")
    if len(q) != 1:
        raise ValueError(f"mmr takes one query vector, got {len(q)}; loop over the queries")
    c = as_matrix(cand_vectors, "cand_vectors", allow_1d=False)
    check_dims(q, c.shape[1], what="cand_vectors")
    warn_if_unnormalized(c, "cand_vectors")
    if isinstance(lambda_, bool) or not isinstance(lambda_, numbers.Real) or not 0 <= lambda_ <= 1:
        raise ValueError(f"lambda_ must be a number in [0, 1], got {lambda_!r}")
    return _mmr(q, c, check_k(k), float(lambda_))


def _mmr(q: np.ndarray, c: np.ndarray, k: int, lam: float) -> Hits:
    rel = (q @ c.T)[0]
    max_sim = np.zeros(len(c), dtype=np.float32)  # max similarity to the selected set so far
    free = np.ones(len(c), dtype=bool)
    ids, scores = [], []
    for _ in range(min(k, len(c))):
        gain = np.where(free, lam * rel - (1 - lam) * max_sim, -np.inf)
        j = int(np.argmax(gain))  # first maximum: smaller position wins ties
        ids.append(j)
        scores.append(gain[j])
        free[j] = False
        sim_j = c @ c[j]
        max_sim = sim_j if len(ids) == 1 else np.maximum(max_sim, sim_j)
    return pad_hits(np.array([scores], np.float32), np.array([ids], np.int64).reshape(1, -1), k)
