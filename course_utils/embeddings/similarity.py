"""Similarity between vectors, and the one `normalize`.

All functions take array-likes of shape (n, d) (or one vector (d,)) and return float32.
`normalize` has one explicit policy for rows of norm zero (`zero_rows="keep"` leaves them zero, as
a model output for an empty text; `"raise"` refuses them, as a search query must) and always
refuses NaN or infinite values.
"""
from __future__ import annotations

import numpy as np

__all__ = ["normalize", "dot_similarity", "cosine_similarity", "l2_distance", "l1_distance"]

ZERO_ROWS = ("keep", "raise")


def normalize(vectors, zero_rows: str = "keep") -> np.ndarray:
    """Rows scaled to unit L2 norm; a new float32 array of the input's shape ((n, d) or (d,)).

    zero_rows: "keep" (zero rows stay zero) or "raise" (ValueError naming the rows).
    >>> normalize(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    >>> normalize(np.zeros(2), zero_rows="raise")
    Traceback (most recent call last):
    ValueError: rows [0] have zero norm and cannot be normalised; drop them or check how they were encoded
    """
    if zero_rows not in ZERO_ROWS:
        raise ValueError(f"zero_rows must be one of {ZERO_ROWS}, got {zero_rows!r}")
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim not in (1, 2):
        raise ValueError(f"expected vectors of shape (n, d) or (d,), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("vectors contain NaN or inf; fix or drop those rows before normalising")
    norms = np.linalg.norm(arr, axis=-1, keepdims=True)
    if zero_rows == "raise" and (norms == 0).any():
        rows = np.flatnonzero(np.atleast_2d(norms)[:, 0] == 0)
        raise ValueError(f"rows {rows[:5].tolist()} have zero norm and cannot be normalised; "
                         "drop them or check how they were encoded")
    return arr / np.where(norms == 0, 1, norms)


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.atleast_2d(np.asarray(a, np.float32)), np.atleast_2d(np.asarray(b, np.float32))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"dimension mismatch: {a.shape[1]} vs {b.shape[1]} -- were both encoded "
                         "by the same model?")
    return a, b


def dot_similarity(a, b) -> np.ndarray:
    """Dot products, shape (len(a), len(b)); equals cosine when rows are L2-normalised.

    >>> dot_similarity([[1, 2]], [[3, 4], [0, 1]])
    array([[11.,  2.]], dtype=float32)
    """
    a, b = _pair(a, b)
    return a @ b.T


def cosine_similarity(a, b) -> np.ndarray:
    """cos(a_i, b_j) = a_i.b_j / (|a_i| |b_j|), shape (len(a), len(b)).

    >>> cosine_similarity([[1, 0]], [[1, 1], [0, 2]]).round(4)
    array([[0.7071, 0.    ]], dtype=float32)
    """
    a, b = _pair(a, b)
    return normalize(a) @ normalize(b).T


def l2_distance(a, b) -> np.ndarray:
    """Euclidean distances |a_i - b_j|, shape (len(a), len(b)); for unit vectors sqrt(2 - 2 cos).

    >>> l2_distance([[0, 0]], [[3, 4]])
    array([[5.]], dtype=float32)
    """
    a, b = _pair(a, b)
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def l1_distance(a, b) -> np.ndarray:
    """Manhattan distances sum |a_i - b_j|, shape (len(a), len(b)).

    >>> l1_distance([[0, 0]], [[3, -4]])
    array([[7.]], dtype=float32)
    """
    a, b = _pair(a, b)
    return np.abs(a[:, None, :] - b[None, :, :]).sum(-1)
