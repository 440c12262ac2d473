"""Reference baselines for evaluation: random, TF-IDF (scikit-learn) and BM25 (rank-bm25) runs.

These wrap widely used libraries so chapter 03 can put numbers next to published ones; the
course's own BM25 lives in `course_utils.lexical.bm25`. Every function returns a TREC run
{qid: {doc_id: score}} holding each query's top k documents (see `course_utils.evaluate.metrics`).

- A document's text is title + " " + text (`data.doc_texts`, as BEIR and MTEB do).
- `simple_tokenize`: lower-case, words = runs of ASCII letters and digits, scikit-learn's English stop
  words removed. Remove them for rank-bm25: it floors negative IDF at 0.25 x the mean IDF, which
  gives words found in most documents ("the", "of") a large weight.
- Lexical runs keep only documents with a score > 0 (sharing at least one word with the query),
  so a query can get fewer than k results, or none: it then scores 0 in `evaluate`.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from tqdm import tqdm  # text bars: no ipywidgets needed

from course_utils.data.loaders import doc_texts

__all__ = ["simple_tokenize", "scores_to_run", "random_run", "tfidf_run", "bm25_scores", "rank_bm25_run"]

_WORD = re.compile(r"[a-z0-9]+")


def simple_tokenize(text: str, stop_words: bool = True) -> list[str]:
    """Lower-case words (runs of a-z, 0-9), English stop words removed unless stop_words=False.

    >>> simple_tokenize("The p53 gene is NOT mutated in 50% of tumours.")
    ['p53', 'gene', 'mutated', '50', 'tumours']
    """
    words = _WORD.findall(text.lower())
    return [w for w in words if w not in ENGLISH_STOP_WORDS] if stop_words else words


def scores_to_run(scores, query_ids, doc_ids, k: int = 100, positive_only: bool = True) -> dict:
    """Top-k run from a dense score matrix (n_queries, n_docs), row i = query_ids[i].

    positive_only drops scores <= 0 (documents sharing no word with the query).
    >>> scores_to_run(np.array([[0.0, 2.0, 1.0]]), ["q1"], ["d0", "d1", "d2"], k=2)
    {'q1': {'d1': 2.0, 'd2': 1.0}}
    """
    scores = np.asarray(scores, dtype=np.float64)
    query_ids, doc_ids = list(query_ids), list(doc_ids)
    if scores.shape != (len(query_ids), len(doc_ids)):
        raise ValueError(f"scores {scores.shape} must be (n_queries, n_docs) = "
                         f"({len(query_ids)}, {len(doc_ids)})")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return {str(qid): _top_k(row, doc_ids, int(k), positive_only)
            for qid, row in zip(query_ids, scores)}


def _top_k(row, doc_ids, k, positive_only):
    k = min(k, len(row))
    top = np.argpartition(-row, k - 1)[:k]
    top = top[np.argsort(-row[top], kind="stable")]
    return {str(doc_ids[i]): float(row[i]) for i in top if row[i] > 0 or not positive_only}


def _check(corpus, queries):
    if not isinstance(corpus, Mapping) or not corpus:
        raise ValueError("corpus must be a non-empty dict {doc_id: {'title', 'text'}}")
    if not isinstance(queries, Mapping) or not queries:
        raise ValueError("queries must be a non-empty dict {qid: text}")
    return doc_texts(corpus), list(queries), list(queries.values())


def random_run(corpus, queries, k: int = 100, seed: int = 0) -> dict:
    """k documents per query with uniform random scores: the floor any system must beat.

    >>> run = random_run({"d1": {"title": "", "text": "a"}}, {"q1": "b"}, k=5)
    >>> list(run["q1"])
    ['d1']
    """
    (doc_ids, _), qids, _ = _check(corpus, queries)
    scores = np.random.default_rng(seed).random((len(qids), len(doc_ids)))
    return scores_to_run(scores, qids, doc_ids, k)


def tfidf_run(corpus, queries, k: int = 100, tokenizer: Callable = simple_tokenize) -> dict:
    """TF-IDF vectors (scikit-learn, smoothed idf, L2-normalised), scored by cosine similarity.

    >>> corpus = {"d1": {"title": "", "text": "cats purr"}, "d2": {"title": "", "text": "dogs bark"}}
    >>> list(tfidf_run(corpus, {"q1": "do dogs bark?"})["q1"])
    ['d2']
    """
    (doc_ids, texts), qids, qtexts = _check(corpus, queries)
    vectorizer = TfidfVectorizer(tokenizer=tokenizer, lowercase=False, token_pattern=None)
    docs = vectorizer.fit_transform(texts)
    scores = (vectorizer.transform(qtexts) @ docs.T).toarray()  # rows are unit length: cosine
    return scores_to_run(scores, qids, doc_ids, k)


def bm25_scores(texts, query_texts, k1: float = 1.5, b: float = 0.75,
                tokenizer: Callable = simple_tokenize, show_progress: bool = True) -> np.ndarray:
    """rank-bm25 BM25Okapi scores, float64 array (len(query_texts), len(texts)).

    score(q, d) = sum over query words t of idf(t) * f(t,d) * (k1 + 1) /
    (f(t,d) + k1 * (1 - b + b * |d| / avgdl)), idf(t) = ln((N - n_t + 0.5) / (n_t + 0.5))
    floored at 0.25 x mean idf (Robertson & Zaragoza 2009; rank-bm25's BM25Okapi).
    >>> bm25_scores(["red apple", "green pear", "blue sky"], ["apple"], show_progress=False).argmax()
    np.int64(0)
    """
    from rank_bm25 import BM25Okapi

    index = BM25Okapi([tokenizer(t) for t in texts], k1=k1, b=b)
    rows = [index.get_scores(tokenizer(q)) for q in
            tqdm(query_texts, desc="rank-bm25", unit="query", mininterval=2,
                 disable=not show_progress)]
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(texts))


def rank_bm25_run(corpus, queries, k: int = 100, k1: float = 1.5, b: float = 0.75,
             tokenizer: Callable = simple_tokenize, show_progress: bool = True) -> dict:
    """BM25 run with rank-bm25's BM25Okapi over title + " " + text (see `bm25_scores`).

    >>> corpus = {"d1": {"title": "", "text": "cats purr"}, "d2": {"title": "", "text": "dogs bark"},
    ...           "d3": {"title": "", "text": "birds sing"}}
    >>> rank_bm25_run(corpus, {"q1": "why do dogs bark"}, show_progress=False)["q1"].keys()
    dict_keys(['d2'])
    """
    (doc_ids, texts), qids, qtexts = _check(corpus, queries)
    scores = bm25_scores(texts, qtexts, k1, b, tokenizer, show_progress)
    return scores_to_run(scores, qids, doc_ids, k)
