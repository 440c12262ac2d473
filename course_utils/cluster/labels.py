"""Naming clusters with keywords (class-based TF-IDF) and checking near-duplicate detection.

c-TF-IDF treats all documents of a cluster as one document and scores each word by how frequent it
is in that cluster relative to all clusters (Grootendorst 2022, "BERTopic: Neural topic modeling
with a class-based TF-IDF procedure", arXiv:2203.05794):

    W(t, c) = tf(t, c) * log(1 + A / f(t))

tf(t, c) is the frequency of word t in cluster c divided by the cluster's word count, f(t) the
frequency of t over all clusters, A the average number of words per cluster.

Near-duplicate pairs come from `course_utils.embeddings.quality.near_duplicates` (cosine >= threshold); here
we plant known duplicates (edited copies) and measure the precision and recall of the pairs found.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from course_utils.embeddings.quality import near_duplicates

__all__ = ["ctfidf", "cluster_keywords", "plant_duplicates", "pair_precision_recall",
           "duplicate_sweep"]


def ctfidf(counts) -> np.ndarray:
    """c-TF-IDF weights (n_clusters, n_words) from a word-count matrix (n_clusters, n_words).

    >>> ctfidf(np.array([[2, 0], [1, 1]])).round(3).tolist()   # A = 2, f = [3, 1]
    [[0.511, 0.0], [0.255, 0.549]]
    """
    counts = np.asarray(counts.toarray() if hasattr(counts, "toarray") else counts, dtype=np.float64)
    if counts.ndim != 2 or (counts < 0).any():
        raise ValueError(f"counts must be a non-negative (n_clusters, n_words) matrix, got {counts.shape}")
    per_cluster = counts.sum(axis=1, keepdims=True)
    tf = counts / np.where(per_cluster == 0, 1, per_cluster)
    f = counts.sum(axis=0)
    avg_words = per_cluster.mean()
    return tf * np.log(1 + avg_words / np.where(f == 0, 1, f))


def cluster_keywords(texts, labels, top_n: int = 6, stop_words="english", min_df: int = 2,
                     ngram_range=(1, 1)) -> dict:
    """{cluster: [top_n keywords by c-TF-IDF]} for every cluster except noise (-1).

    texts: n strings; labels: n cluster ids. Words are lower-cased tokens of 2+ letters seen in at
    least `min_df` documents, English stop words removed.

    >>> cluster_keywords(["goal match", "match goal win", "vote law", "law vote senate"],
    ...                  [0, 0, 1, 1], top_n=2, min_df=1)
    {0: ['goal', 'match'], 1: ['law', 'vote']}
    """
    from sklearn.feature_extraction.text import CountVectorizer

    texts, labels = list(texts), np.asarray(labels)
    if labels.ndim != 1 or len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {labels.size} labels: one label per text")
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be strings")
    ids = sorted(set(labels.tolist()) - {-1})
    if not ids:
        raise ValueError("no clusters to name: every label is noise (-1)")
    vec = CountVectorizer(stop_words=stop_words, min_df=min_df, ngram_range=ngram_range,
                          token_pattern=r"(?u)\b[^\W\d_][^\W\d_]+\b")
    doc_counts = vec.fit_transform(texts)
    counts = np.vstack([np.asarray(doc_counts[labels == c].sum(axis=0)) for c in ids])
    weights, words = ctfidf(counts), vec.get_feature_names_out()
    return {c: [str(words[j]) for j in np.argsort(-weights[i], kind="stable")[:top_n]
                if weights[i, j] > 0] for i, c in enumerate(ids)}


# ------------------------------------------------------------------ near-duplicates
def plant_duplicates(texts, n: int, drop: float = 0.1, seed: int = 0):
    """Append edited copies of `n` random texts: (texts + copies, [(original, copy), ...]).

    Each copy loses a random `drop` share of its words (a re-published, lightly edited story);
    the pairs are the known duplicates to check a detector against. The input is not modified.

    >>> new, pairs = plant_duplicates(["a b c d e f g h i j", "k l m"], n=2, drop=0.2)
    >>> len(new), pairs
    (4, [(0, 2), (1, 3)])
    """
    texts = list(texts)
    if not 1 <= n <= len(texts):
        raise ValueError(f"n must be between 1 and the number of texts ({len(texts)}), got {n}")
    if not 0 <= drop < 1:
        raise ValueError(f"drop must be in [0, 1), got {drop}")
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(len(texts), size=n, replace=False).tolist())
    copies = []
    for i in picks:
        words = texts[i].split()
        keep = rng.random(len(words)) >= drop
        copies.append(" ".join(w for w, k in zip(words, keep) if k))
    return texts + copies, [(i, len(texts) + j) for j, i in enumerate(picks)]


def _pair_set(pairs) -> set:
    return {(min(int(p[0]), int(p[1])), max(int(p[0]), int(p[1]))) for p in pairs}


def pair_precision_recall(found, known) -> dict:
    """Precision (share of found pairs that are known duplicates) and recall (share of known
    pairs found). Pairs are (i, j) or (i, j, score); order within a pair does not matter.

    >>> pair_precision_recall([(0, 2, 0.99), (1, 3, 0.97)], [(2, 0), (4, 5)])
    {'found': 2, 'known': 2, 'correct': 1, 'precision': 0.5, 'recall': 0.5}
    """
    found, known = _pair_set(found), _pair_set(known)
    correct = len(found & known)
    return {"found": len(found), "known": len(known), "correct": correct,
            "precision": correct / len(found) if found else float("nan"),
            "recall": correct / len(known) if known else float("nan")}


def duplicate_sweep(vectors, known, thresholds) -> pd.DataFrame:
    """Precision and recall of `near_duplicates(vectors, threshold)` for each threshold.

    Returns a DataFrame: threshold, found, known, correct, precision, recall.

    >>> v = np.array([[1, 0], [0.995, 0.0999], [0, 1]], dtype=np.float32)
    >>> duplicate_sweep(v, [(0, 1)], [0.99, 0.999])[["threshold", "found", "recall"]].values.tolist()
    [[0.99, 1.0, 1.0], [0.999, 0.0, 0.0]]
    """
    thresholds = sorted(float(t) for t in thresholds)
    if not thresholds or not -1 <= thresholds[0] <= thresholds[-1] <= 1:
        raise ValueError(f"thresholds must be cosines in [-1, 1], got {thresholds}")
    pairs = near_duplicates(vectors, threshold=thresholds[0])
    rows = [{"threshold": t, **pair_precision_recall([p for p in pairs if p[2] >= t], known)}
            for t in thresholds]
    return pd.DataFrame(rows)
