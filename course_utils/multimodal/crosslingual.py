"""Translation retrieval: query i in one language, its translation = document i in another.

With a parallel corpus every query has exactly one right document, so two numbers say it all:
accuracy@1 (the translation ranks first) and the mean reciprocal rank (MRR = mean of 1 / rank).
The rank of the right document is 1 + the number of documents that score strictly higher
(an optimistic rank on ties, which exact float scores almost never have). Scores are cosines.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["translation_ranks", "translation_retrieval", "pair_table"]


def _unit(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (n, d), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} holds nan or inf values")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{name} has rows of zero length: their cosine is undefined")
    return x / norms


def translation_ranks(query_vecs, doc_vecs) -> np.ndarray:
    """Rank (1 = first) of document i for query i, by cosine; int array of shape (n,).

    query_vecs, doc_vecs: arrays of shape (n, d); row i of each is the same sentence.

    >>> translation_ranks([[1, 0], [1, 0.1]], [[0, 1], [1, 0]]).tolist()
    [2, 1]
    """
    q, d = _unit(query_vecs, "query_vecs"), _unit(doc_vecs, "doc_vecs")
    if q.shape != d.shape:
        raise ValueError(f"a parallel corpus pairs row i with row i: query_vecs {q.shape} and doc_vecs "
                         f"{d.shape} must have the same shape")
    scores = q @ d.T
    right = np.diag(scores)[:, None]
    return 1 + (scores > right).sum(axis=1)


def translation_retrieval(query_vecs, doc_vecs) -> dict[str, float]:
    """{"accuracy@1", "mrr"} of finding each query's translation among all documents.

    >>> translation_retrieval([[1, 0], [1, 0.1]], [[0, 1], [1, 0]])
    {'accuracy@1': 0.5, 'mrr': 0.75}
    """
    ranks = translation_ranks(query_vecs, doc_vecs)
    return {"accuracy@1": float(np.mean(ranks == 1)), "mrr": float(np.mean(1.0 / ranks))}


def pair_table(vectors: dict, pairs) -> pd.DataFrame:
    """translation_retrieval for each (query language, document language) pair, one row each.

    vectors: {language: (n, d) array}, rows aligned across languages.

    >>> v = {"en": np.eye(2), "fr": np.eye(2)}
    >>> pair_table(v, [("fr", "en")]).to_dict("records")
    [{'queries': 'fr', 'documents': 'en', 'accuracy@1': 1.0, 'mrr': 1.0}]
    """
    rows = []
    for source, target in pairs:
        missing = [lang for lang in (source, target) if lang not in vectors]
        if missing:
            raise KeyError(f"no vectors for language {missing[0]!r}; have {sorted(vectors)}")
        rows.append({"queries": source, "documents": target,
                     **translation_retrieval(vectors[source], vectors[target])})
    return pd.DataFrame(rows, columns=["queries", "documents", "accuracy@1", "mrr"])
