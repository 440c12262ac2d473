"""Exact (brute-force) semantic search, the `Hits` result type and conversion to a TREC run.

Data flow (DESIGN.md): vectors float32 (n, d), L2-normalised → search → Hits(scores, ids) of shape
(n_queries, k), best first → `to_run` → `{qid: {doc_id: score}}` for `course_utils.evaluate`.

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
`course_utils.filtering` and is re-exported here.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import faiss
import numpy as np

from ._search_base import (Hits, as_matrix, check_dims, check_index, check_k, faiss_hits,
                           flat_index, topk, warn_if_unnormalized)

__all__ = ["Hits", "normalize", "exact_search_numpy", "exact_search_faiss", "build_flat_index",
           "search", "to_run", "search_prefiltered", "search_postfiltered", "filter_loss"]

_BATCH = 1024  # query rows per matmul block in exact_search_numpy (bounds memory at 1024 × n)


def normalize(x) -> np.ndarray:
    """Return a float32 copy of `x` (n, d) — or (d,) — with every row scaled to unit L2 norm.

    >>> normalize(np.array([[3.0, 4.0]])).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    one_d = np.ndim(x) == 1
    arr = as_matrix(x, "x")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    if (norms == 0).any():
        rows = np.flatnonzero(norms[:, 0] == 0)
        raise ValueError(f"rows {rows[:5].tolist()} have zero norm and cannot be normalised; "
                         "drop them or check how they were encoded")
    out = arr / norms
    return out[0] if one_d else out


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


def search(index, queries, k: int) -> Hits:
    """Search any FAISS index; returns Hits (n_queries, k) with padding normalised to -1 / -inf.

    >>> index = build_flat_index(np.eye(2, dtype=np.float32))
    >>> search(index, np.array([0.0, 1.0]), k=3).ids.tolist()
    [[1, 0, -1]]
    """
    check_index(index)
    q = as_matrix(queries, "queries")
    check_dims(q, index.d, what="the index vectors")
    warn_if_unnormalized(q, "queries")
    return faiss_hits(*index.search(q, check_k(k)))


def exact_search_faiss(queries, vectors, k: int) -> Hits:
    """Same contract as `exact_search_numpy`, computed by a FAISS IndexFlatIP.

    >>> v = np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
    >>> exact_search_faiss(np.array([1.0, 0.0]), v, k=2).ids.tolist()
    [[0, 2]]
    """
    q, v, k = _check_pair(queries, vectors, k)
    return faiss_hits(*flat_index(v).search(q, k))


def to_run(hits: Hits, query_ids: Sequence, doc_ids=None, *,
           rank_scores: bool = False) -> dict[str, dict[str, float]]:
    """Hits → TREC run `{qid: {doc_id: score}}` (ids cast to str; id -1 padding skipped).

    query_ids: one id per hits row. doc_ids: a sequence (row position → doc id) or a mapping
    (FAISS label → doc id); None uses the integer ids themselves. Evaluators re-sort by score, so
    for a ranking whose scores are not decreasing (e.g. MMR) pass `rank_scores=True`: the score
    becomes 1 / rank, which keeps the given order.

    >>> h = Hits(np.array([[0.75, 0.5, -np.inf]], np.float32), np.array([[2, 0, -1]]))
    >>> to_run(h, ["q1"], ["d0", "d1", "d2"])
    {'q1': {'d2': 0.75, 'd0': 0.5}}
    """
    scores, ids = _check_hits(hits)
    query_ids = list(query_ids)
    if len(query_ids) != len(ids):
        raise ValueError(f"got {len(query_ids)} query_ids for {len(ids)} rows of hits; "
                         "pass one query id per query, in the order they were searched")
    if len(set(map(str, query_ids))) != len(query_ids):
        raise ValueError("query_ids contain duplicates; each run row needs its own query id")
    _check_doc_ids(ids, doc_ids)
    run = {}
    for qid, row_s, row_i in zip(query_ids, scores, ids):
        kept = [(s, i) for s, i in zip(row_s.tolist(), row_i.tolist()) if i != -1]
        run[str(qid)] = {str(i if doc_ids is None else doc_ids[i]):
                         (1.0 / (r + 1) if rank_scores else s) for r, (s, i) in enumerate(kept)}
    return run


def _check_hits(hits) -> tuple[np.ndarray, np.ndarray]:
    try:
        scores, ids = np.asarray(hits[0]), np.asarray(hits[1])
    except (TypeError, IndexError, KeyError):
        raise TypeError(f"expected Hits(scores, ids), got {type(hits).__name__}") from None
    if scores.shape != ids.shape or ids.ndim != 2:
        raise ValueError(f"Hits scores {scores.shape} and ids {ids.shape} must be 2-D arrays of "
                         "the same shape (n_queries, k)")
    return scores, ids


def _check_doc_ids(ids: np.ndarray, doc_ids) -> None:
    used = np.unique(ids[ids != -1])
    if doc_ids is None or used.size == 0:
        return
    if isinstance(doc_ids, Mapping):
        missing = [int(i) for i in used if int(i) not in doc_ids]
        if missing:
            raise KeyError(f"labels {missing[:5]} are not in doc_ids; pass the mapping used to "
                           "build the index")
    elif used[0] < 0 or used[-1] >= len(doc_ids):
        raise IndexError(f"hits contain ids up to {used[-1]} but doc_ids has {len(doc_ids)} "
                         "entries; pass the doc ids in the order the vectors were indexed")


from .filtering import filter_loss, search_postfiltered, search_prefiltered  # noqa: E402
