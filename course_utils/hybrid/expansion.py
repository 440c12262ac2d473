"""Query expansion from an embedding neighbourhood: add what the query's neighbours share.

Two ways, both measured in chapter 06 (with settings chosen on training queries):

- `rocchio`: pseudo-relevance feedback in vector space (Rocchio 1971): move each query vector
  towards the mean of its top-m dense neighbours, q' = normalise(q + beta * mean(neighbours)),
  then search again.
- `nearest_terms` + `expand_texts`: as in the seed material, embed a vocabulary of corpus words
  and append to each query the words whose vectors are closest to the query's vector; the
  expanded text then goes to a lexical retriever (BM25).
Neither needs training; both can drift from the query when its neighbours are off topic.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from course_utils.embeddings.similarity import normalize
from course_utils.search.hits import Hits

__all__ = ["rocchio", "vocabulary", "nearest_terms", "expand_texts"]


def rocchio(query_vecs: np.ndarray, doc_vecs: np.ndarray, hits: Hits, m: int = 3,
            beta: float = 0.5) -> np.ndarray:
    """q' = normalise(q + beta * mean of the vectors of each query's top-m hits) (Rocchio 1971).

    query_vecs (n_queries, d) and doc_vecs (n_docs, d), L2-normalised; hits: their search
    result (ids = rows of doc_vecs, -1 padding ignored). Returns float32 (n_queries, d).
    >>> q = np.array([[1.0, 0.0]], np.float32); docs = np.array([[0.0, 1.0]], np.float32)
    >>> rocchio(q, docs, Hits(np.ones((1, 1)), np.array([[0]])), m=1, beta=1.0).round(4)
    array([[0.7071, 0.7071]], dtype=float32)
    """
    ids = np.asarray(hits.ids)[:, :m]
    if ids.shape[0] != len(query_vecs):
        raise ValueError(f"{len(query_vecs)} query vectors but {ids.shape[0]} rows of hits")
    valid = ids >= 0
    neighbours = np.where(valid[..., None], doc_vecs[np.maximum(ids, 0)], 0.0).sum(axis=1)
    neighbours /= np.maximum(valid.sum(axis=1, keepdims=True), 1)
    return normalize(np.asarray(query_vecs, np.float32) + beta * neighbours, zero_rows="raise")


def vocabulary(token_lists: Sequence[Sequence[str]], min_df: int = 20,
               max_df: float = 0.1) -> list[str]:
    """Words found in at least `min_df` documents and at most a `max_df` share of them, sorted.

    >>> vocabulary([["gene", "p53"], ["gene", "mice"], ["gene"]], min_df=2, max_df=1.0)
    ['gene']
    """
    df: dict[str, int] = {}
    for tokens in token_lists:
        for word in set(tokens):
            df[word] = df.get(word, 0) + 1
    limit = max_df * len(token_lists)
    return sorted(w for w, n in df.items() if min_df <= n <= limit and not w.isdigit())


def nearest_terms(query_vecs: np.ndarray, term_vecs: np.ndarray, terms: Sequence[str],
                  n: int = 3, exclude: Sequence[Sequence[str]] | None = None) -> list[list[str]]:
    """The `n` terms whose vectors have the highest cosine with each query vector.

    exclude: per query, words not to add (e.g. those already in it).
    >>> nearest_terms(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0], [0.8, 0.6]]), ["b", "a"], n=1)
    [['a']]
    """
    sims = np.asarray(query_vecs, np.float32) @ np.asarray(term_vecs, np.float32).T
    out = []
    for i, row in enumerate(sims):
        skip = set(exclude[i]) if exclude is not None else set()
        ranked = (terms[j] for j in np.argsort(-row, kind="stable"))
        out.append([t for t in ranked if t not in skip][:n])
    return out


def expand_texts(texts: Sequence[str], extra: Sequence[Sequence[str]]) -> list[str]:
    """Each text followed by its extra words.

    >>> expand_texts(["p53 in tumours"], [["cancer", "mutation"]])
    ['p53 in tumours cancer mutation']
    """
    if len(texts) != len(extra):
        raise ValueError(f"{len(texts)} texts but {len(extra)} lists of extra words")
    return [" ".join([t, *words]) for t, words in zip(texts, extra)]
