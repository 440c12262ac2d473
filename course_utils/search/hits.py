"""Shared pieces of `search`, `filtering`, `recommend` and `store`: the `Hits` type, input checks
and the private top-k kernels. Public functions live in those modules; this one is private.

Conventions (DESIGN.md): vectors are float32 arrays of shape (n, d), L2-normalised, scored by
inner product (= cosine). Results are `Hits(scores, ids)`, two arrays of shape (n_queries, k),
best first; a missing result has id -1 and score -inf.
"""
from __future__ import annotations

import numbers
import warnings
from typing import NamedTuple

import faiss
import numpy as np

__all__ = ["NORM_TOL", "Hits", "as_matrix", "check_dims", "check_k", "warn_if_unnormalized",
           "as_id_array", "check_index", "pad_hits", "topk", "faiss_hits", "flat_index",
           "selector_params"]

NORM_TOL = 1e-3  # |‖x‖ - 1| above this triggers the "not normalised" warning


class Hits(NamedTuple):
    """Search results: scores float32 (n_queries, k) and ids int64 (n_queries, k), best first.

    Padding (fewer than k results) has id -1 and score -inf.

    >>> h = Hits(np.array([[0.9, -np.inf]], dtype=np.float32), np.array([[3, -1]]))
    >>> h.k, h.ids[0].tolist()
    (2, [3, -1])
    """

    scores: np.ndarray
    ids: np.ndarray

    @property
    def k(self) -> int:
        return int(self.ids.shape[1])


# ---------------------------------------------------------------- checks (raise clear errors)
def as_matrix(x, name: str, allow_1d: bool = True) -> np.ndarray:
    """Return `x` as a C-contiguous float32 (n, d) array (a 1-D (d,) input becomes (1, d))."""
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating)
                                   or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}; "
                        "pass embeddings as a float32 numpy array of shape (n, d)")
    if arr.ndim == 1 and allow_1d:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d), got shape {arr.shape}; "
                         "stack the vectors into one 2-D array")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has dimension 0 (shape {arr.shape}); check the encoder output")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(f"{name} has non-finite values (NaN or inf) in {len(rows)} row(s), "
                         f"first rows {rows[:5].tolist()}; fix or drop those vectors")
    return arr


def check_dims(queries: np.ndarray, d: int, what: str = "vectors") -> None:
    if queries.shape[1] != d:
        raise ValueError(f"queries have dimension {queries.shape[1]} but {what} have dimension "
                         f"{d}; encode the queries with the same model as the documents")


def check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an integer, got {k!r} ({type(k).__name__})")
    if k <= 0:
        raise ValueError(f"k must be at least 1, got {k}")
    return int(k)


def warn_if_unnormalized(x: np.ndarray, name: str) -> None:
    if x.size == 0:
        return
    norms = np.linalg.norm(x, axis=1)
    far = np.abs(norms - 1.0) > NORM_TOL
    if far.any():
        warnings.warn(f"{far.sum()} of {len(x)} {name} are not L2-normalised (norms from "
                      f"{norms.min():.3g} to {norms.max():.3g}); inner product is then not "
                      "cosine similarity. Use course_utils.embeddings.normalize() first.",
                      UserWarning, stacklevel=3)


def as_id_array(ids, name: str, n: int | None = None) -> np.ndarray:
    """Return `ids` as a sorted unique int64 1-D array, checking range [0, n) when n is given."""
    arr = np.asarray(ids)
    if arr.dtype == bool:
        raise TypeError(f"{name} is a boolean mask; pass integer ids instead, "
                        "e.g. np.flatnonzero(mask)")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be integers (row positions or FAISS labels), "
                        f"got dtype {arr.dtype}")
    arr = np.unique(arr.ravel()).astype(np.int64)
    if arr[0] < 0 or (n is not None and arr[-1] >= n):
        raise ValueError(f"{name} must lie in [0, {n if n is not None else 'ntotal'}), "
                         f"got values from {arr[0]} to {arr[-1]}")
    return arr


def check_index(index) -> None:
    if not isinstance(index, faiss.Index):
        raise TypeError(f"expected a faiss.Index, got {type(index).__name__}; "
                        "build one with course_utils.search.build_flat_index(vectors)")


# ---------------------------------------------------------------- private compute
def pad_hits(scores: np.ndarray, ids: np.ndarray, k: int) -> Hits:
    """Pad (nq, m) results with m <= k to (nq, k) with -inf / -1."""
    nq, m = ids.shape
    s = np.full((nq, k), -np.inf, dtype=np.float32)
    i = np.full((nq, k), -1, dtype=np.int64)
    s[:, :m], i[:, :m] = scores, ids
    return Hits(s, i)


def topk(scores: np.ndarray, k: int) -> Hits:
    """Top-k of each row of `scores` (nq, n), best first; -inf entries count as missing.

    Ties are broken by the smaller column index, also at the k-th place (so the result does not
    depend on argpartition's internal order).
    """
    nq, n = scores.shape
    kk = min(k, n)
    if kk == 0:
        return pad_hits(np.zeros((nq, 0)), np.zeros((nq, 0), np.int64), k)
    if kk < n:
        cand = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    else:
        cand = np.broadcast_to(np.arange(n), (nq, n))
    top = np.take_along_axis(scores, cand, axis=1)
    order = np.lexsort((cand, -top), axis=1)
    ids = np.take_along_axis(cand, order, axis=1).astype(np.int64)
    top = np.take_along_axis(top, order, axis=1)
    if kk < n:
        _fix_boundary_ties(scores, ids, top)
    ids[~np.isfinite(top)] = -1
    top[ids == -1] = -np.inf
    return pad_hits(top, ids, k)


def _fix_boundary_ties(scores: np.ndarray, ids: np.ndarray, top: np.ndarray) -> None:
    """Rows with more entries equal to the k-th score than places: keep the smallest ids."""
    kth = top[:, -1]
    crowded = (scores >= kth[:, None]).sum(axis=1) > ids.shape[1]
    for r in np.flatnonzero(crowded & np.isfinite(kth)):
        cand = np.flatnonzero(scores[r] >= kth[r])
        best = cand[np.lexsort((cand, -scores[r, cand]))[: ids.shape[1]]]
        ids[r], top[r] = best, scores[r, best]


def faiss_hits(D: np.ndarray, I: np.ndarray) -> Hits:
    """FAISS (D, I) -> Hits with the padding (I == -1, D = ±3.4e38) normalised to -inf."""
    ids = np.asarray(I, dtype=np.int64)
    scores = np.array(D, dtype=np.float32)
    scores[ids == -1] = -np.inf
    return Hits(scores, ids)


def flat_index(vectors: np.ndarray) -> faiss.IndexFlatIP:
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def selector_params(index, allowed: np.ndarray):
    """SearchParameters restricting `index` to labels `allowed` (faiss keeps `sel` referenced).

    IVF indexes need SearchParametersIVF (plain SearchParameters raises in FAISS), so the
    index's own nprobe is copied; HNSW keeps its efSearch. IndexIDMap translates the selector.
    """
    sel = faiss.IDSelectorBatch(allowed)  # hash set + Bloom filter: fast for any set size
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        params = faiss.SearchParametersIVF(sel=sel, nprobe=ivf.nprobe, max_codes=ivf.max_codes)
    else:
        inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else index
        if hasattr(inner, "hnsw"):
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=inner.hnsw.efSearch)
        else:
            params = faiss.SearchParameters(sel=sel)
    return params
