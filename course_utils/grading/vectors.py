"""Real vectors for the exercise checks: SciFact's precomputed all-MiniLM-L6-v2 abstract vectors.

One loader for every chapter whose cases search real embeddings (02, 04, 09, 10, 12), so no case
needs a model; the rows are read once per process and handed out read-only.
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["scifact_vectors"]


@functools.lru_cache(maxsize=None)
def scifact_vectors(rows: int) -> np.ndarray:
    """The first `rows` precomputed SciFact abstract vectors: float32, unit length, read-only.

    >>> v = scifact_vectors(3)                     # doctest: +SKIP
    >>> v.shape, v.flags.writeable                 # doctest: +SKIP
    ((3, 384), False)
    """
    from course_utils.data import load_precomputed

    vectors = load_precomputed("scifact")[1][:rows].copy()
    vectors.flags.writeable = False
    return vectors
