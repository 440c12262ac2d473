"""Quality checks for a batch of embeddings before it is indexed (monitoring, in the seed's sense).

Catches what silently breaks retrieval: NaN/Inf rows, vectors that are not unit length, collapsed
or dead dimensions, and near-duplicate texts that crowd a result list.
"""

from __future__ import annotations

import numpy as np

__all__ = ["near_duplicates", "quality_report"]


def near_duplicates(vectors: np.ndarray, threshold: float = 0.98) -> list[tuple[int, int, float]]:
    """Pairs (i, j, cosine) with i < j and cosine >= threshold; vectors L2-normalised, (n, d).

    >>> near_duplicates(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    [(0, 1, 1.0)]
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    pairs = []
    for start in range(0, len(vectors), 1024):  # blocks keep memory at 1024 x n floats
        sims = vectors[start:start + 1024] @ vectors.T
        rows, cols = np.nonzero(sims >= threshold)
        pairs += [(int(start + r), int(c), round(float(sims[r, c]), 6))
                  for r, c in zip(rows, cols) if start + r < c]
    return sorted(pairs)


def quality_report(vectors: np.ndarray, dup_threshold: float = 0.98, norm_tol: float = 1e-3) -> dict:
    """Summary of an embedding matrix (n, d): what is wrong with it, as numbers.

    Keys: n, dim, nan_rows, inf_rows, zero_rows, norm_min/mean/max, not_unit (rows whose norm is
    off by more than `norm_tol`), dead_dims (variance < 1e-8; reported, not failed), mean_variance, mean_cosine (high
    = the space is anisotropic, i.e. all vectors point one way), near_duplicate_pairs (among the
    first 5,000 rows), ok (no NaN/Inf/zero/non-unit rows).

    >>> quality_report(np.eye(3, dtype=np.float32))["ok"]
    True
    """
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] == 0:
        raise ValueError(f"vectors must have shape (n >= 1, d), got {vectors.shape}")
    vectors = vectors.astype(np.float32)
    nan_rows = np.isnan(vectors).any(axis=1)
    inf_rows = np.isinf(vectors).any(axis=1)
    finite = vectors[~(nan_rows | inf_rows)]
    norms = np.linalg.norm(finite, axis=1)
    unit = finite / np.where(norms == 0, 1, norms)[:, None]
    variance = finite.var(axis=0) if len(finite) else np.zeros(vectors.shape[1])
    mean_dir = unit.mean(axis=0) if len(unit) else np.zeros(vectors.shape[1])
    sample = unit[:5000]
    report = {
        "n": int(len(vectors)), "dim": int(vectors.shape[1]),
        "nan_rows": int(nan_rows.sum()), "inf_rows": int(inf_rows.sum()),
        "zero_rows": int((norms == 0).sum()),
        "norm_min": float(norms.min()) if len(norms) else float("nan"),
        "norm_mean": float(norms.mean()) if len(norms) else float("nan"),
        "norm_max": float(norms.max()) if len(norms) else float("nan"),
        "not_unit": int(((np.abs(norms - 1) > norm_tol) & (norms > 0)).sum()),  # zero rows counted apart
        "dead_dims": int((variance < 1e-8).sum()),
        "mean_variance": float(variance.mean()),
        "mean_cosine": float(mean_dir @ mean_dir),  # = average pairwise cosine incl. self-pairs
        "near_duplicate_pairs": len(near_duplicates(sample, dup_threshold)),
    }
    # Dead dimensions waste memory but do not break search (all-MiniLM-L6-v2 itself has 3), so
    # they are reported, not failed; NaN/Inf/zero/non-unit rows do break cosine search.
    report["ok"] = not (report["nan_rows"] or report["inf_rows"] or report["zero_rows"]
                        or report["not_unit"])
    return report
