"""Semantic textual similarity: how well do embedding similarities follow human judgments?

The standard protocol (SentEval; MTEB's STSBenchmark task): encode both sentences of each pair,
take the cosine similarity, and report Spearman's rank correlation with the gold scores (0-5).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import pearsonr, spearmanr

from course_utils.embeddings.encoding import encode

__all__ = ["PAIRWISE", "paired_similarity", "correlation", "evaluate_sts"]

# Similarity measures as functions of two row-aligned matrices -> one score per row (higher =
# more similar, so distances are negated).
PAIRWISE = {
    "cosine": lambda a, b: np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)),
    "dot": lambda a, b: np.sum(a * b, 1),
    "neg_l2": lambda a, b: -np.linalg.norm(a - b, axis=1),
    "neg_l1": lambda a, b: -np.abs(a - b).sum(1),
}


def paired_similarity(a: np.ndarray, b: np.ndarray, measure: str = "cosine") -> np.ndarray:
    """One similarity per row pair (a_i, b_i); a and b float arrays of shape (n, d).

    >>> paired_similarity(np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]])).round(4)
    array([0.7071])
    """
    if measure not in PAIRWISE:
        raise ValueError(f"unknown measure {measure!r}; choose one of {list(PAIRWISE)}")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"a and b must have the same shape (n, d); got {a.shape} and {b.shape}")
    return PAIRWISE[measure](a, b)


def correlation(predicted, gold) -> dict[str, float]:
    """Spearman and Pearson correlation between predicted similarities and gold scores.

    >>> correlation([0.1, 0.5, 0.9], [1, 2, 5])["spearman"]
    1.0
    """
    predicted, gold = np.asarray(predicted, float), np.asarray(gold, float)
    if predicted.shape != gold.shape or len(gold) < 3:
        raise ValueError(f"need two equal-length sequences of >= 3 scores, got {predicted.shape}, {gold.shape}")
    return {"spearman": float(spearmanr(predicted, gold).statistic),
            "pearson": float(pearsonr(predicted, gold).statistic)}


def evaluate_sts(pairs: pd.DataFrame, model, measures=("cosine",), **encode_kwargs) -> pd.DataFrame:
    """Correlations with the gold scores of an STS frame (columns sentence1, sentence2, score).

    Returns one row per measure with columns spearman, pearson.

    >>> evaluate_sts(load_sts("test"), model).loc["cosine", "spearman"]     # doctest: +SKIP
    0.8203...
    """
    missing = {"sentence1", "sentence2", "score"} - set(pairs.columns)
    if missing:
        raise ValueError(f"pairs lacks columns {sorted(missing)}; use course_utils.data.load_sts()")
    a = encode(list(pairs["sentence1"]), model, **encode_kwargs)
    b = encode(list(pairs["sentence2"]), model, **encode_kwargs)
    rows = {m: correlation(paired_similarity(a, b, m), pairs["score"]) for m in measures}
    return pd.DataFrame(rows).T[["spearman", "pearson"]]
