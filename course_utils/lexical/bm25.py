"""BM25 from first principles, on scipy sparse matrices: tokenise, index, score, search.

score(q, d) = sum over query words t (repeats count) of idf(t) * tf_part(f(t, d), |d|), where
f(t, d) is how often t occurs in d, |d| the length of d in words and avgdl the mean length. The
variants differ only in those two parts, one function each below (Kamphuis, de Vries, Boytsov &
Lin 2020, "Which BM25 do you mean?", compare them):

- "okapi"     rank-bm25's BM25Okapi: Robertson idf with negative values floored at
              epsilon x the mean idf, tf part with the (k1 + 1) factor;
- "robertson" Robertson & Zaragoza (2009): idf clipped at 0, the same tf part (bm25s "robertson"
              scores these divided by k1 + 1: same ranking);
- "lucene"    Lucene 8+ / bm25s "lucene": idf = ln(1 + ...) (never negative), tf part without
              (k1 + 1).

The index is one sparse matrix `weights` of shape (vocabulary, n_docs) holding
idf(t) * tf_part(f(t, d), |d|) for every (word, document) pair that occurs, so scoring a batch
of queries is one sparse product: (n_queries, vocabulary) word counts @ weights.
Search keeps only documents with a score > 0 (sharing a word with the query), best first, ties
by the smaller row id, padded with id -1 / score -inf to k (the `Hits` contract of `search`).
Searching sums, per query, the rows of `weights` of its words into one dense score per document
(bm25s's "eager" scoring: Lu 2024, "BM25S: Orders of magnitude faster lexical search via eager
sparse scoring") and selects the top k with a block-maximum bound instead of a full partition.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from tqdm import tqdm  # text bars: no ipywidgets needed

from course_utils.search.hits import Hits, check_k

__all__ = ["tokenize", "idf_okapi", "idf_robertson", "idf_lucene", "tf_okapi", "tf_lucene",
           "VARIANTS", "BM25", "bm25_run"]

_WORD = re.compile(r"\w+")
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS)  # scikit-learn's 318 English stop words


@functools.lru_cache(maxsize=None)
def _stemmer():
    try:
        import Stemmer  # PyStemmer: Snowball stemmers in C, bm25s' optional dependency
    except ImportError:
        raise ImportError("stemming needs PyStemmer: pip install PyStemmer") from None
    return Stemmer.Stemmer("english")


@functools.lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


def tokenize(text: str, stop_words=STOP_WORDS, stem: bool = False) -> list[str]:
    """Lower-case words (runs of letters, digits, _), minus `stop_words`, Snowball-stemmed if asked.

    stop_words: a set of words to drop (None keeps all); stem: English Snowball (Porter 2) stems.
    >>> tokenize("The IL-6 levels were NOT raised in 50% of mice.")
    ['il', '6', 'levels', 'raised', '50', 'mice']
    >>> tokenize("Mice raised levels", stem=True)
    ['mice', 'rais', 'level']
    """
    words = _WORD.findall(text.lower())
    if stop_words:
        words = [w for w in words if w not in stop_words]
    return [_stem(w) for w in words] if stem else words


# ---- one formula per function; df: documents containing the word, n_docs: corpus size
def idf_okapi(df: np.ndarray, n_docs: int, epsilon: float = 0.25) -> np.ndarray:
    """ln((N - df + 0.5) / (df + 0.5)); negative values -> epsilon * mean idf (rank-bm25 BM25Okapi).

    >>> idf_okapi(np.array([1, 3]), 4).round(3)   # df 3 of 4: ln(1.5/3.5) < 0 -> 0.25 * mean
    array([0.847, 0.   ])
    """
    idf = np.log((n_docs - df + 0.5) / (df + 0.5))
    return np.where(idf < 0, epsilon * idf.mean(), idf)


def idf_robertson(df: np.ndarray, n_docs: int) -> np.ndarray:
    """max(0, ln((N - df + 0.5) / (df + 0.5))) (Robertson & Zaragoza 2009, clipped at 0 as bm25s).

    >>> idf_robertson(np.array([1, 3]), 4).round(3)
    array([0.847, 0.   ])
    """
    return np.log(np.maximum((n_docs - df + 0.5) / (df + 0.5), 1.0))


def idf_lucene(df: np.ndarray, n_docs: int) -> np.ndarray:
    """ln(1 + (N - df + 0.5) / (df + 0.5)) (Lucene BM25Similarity; always > 0).

    >>> idf_lucene(np.array([1, 3]), 4).round(3)
    array([1.204, 0.357])
    """
    return np.log1p((n_docs - df + 0.5) / (df + 0.5))


def tf_okapi(tf: np.ndarray, doc_len: np.ndarray, avgdl: float, k1: float, b: float) -> np.ndarray:
    """f * (k1 + 1) / (f + k1 * (1 - b + b * |d| / avgdl)) (Robertson et al. 1994, Okapi at TREC-3).

    >>> float(tf_okapi(np.array(2.0), np.array(10.0), 10.0, k1=1.5, b=0.75))  # 2 * 2.5 / 3.5
    1.4285714285714286
    """
    return tf * (k1 + 1) / (tf + k1 * (1 - b + b * doc_len / avgdl))


def tf_lucene(tf: np.ndarray, doc_len: np.ndarray, avgdl: float, k1: float, b: float) -> np.ndarray:
    """f / (f + k1 * (1 - b + b * |d| / avgdl)) (Lucene 8+ dropped the constant k1 + 1 factor).

    >>> float(tf_lucene(np.array(2.0), np.array(10.0), 10.0, k1=1.5, b=0.75))  # 2 / 3.5
    0.5714285714285714
    """
    return tf / (tf + k1 * (1 - b + b * doc_len / avgdl))


VARIANTS = {"okapi": (idf_okapi, tf_okapi), "robertson": (idf_robertson, tf_okapi),
            "lucene": (idf_lucene, tf_lucene)}


class BM25:
    """A BM25 index over a list of texts (or of token lists); search returns `Hits`.

    >>> index = BM25().fit(["red apples and pears", "a green pear", "the blue sky"])
    >>> hits = index.search(["green pears"], k=3)
    >>> hits.ids.tolist()           # doc 2 shares no word with the query: padded with -1
    [[1, 0, -1]]
    """

    def __init__(self, k1: float = 1.5, b: float = 0.75, variant: str = "okapi",
                 epsilon: float = 0.25, tokenizer: Callable[[str], list[str]] = tokenize,
                 dtype=np.float32):
        if variant not in VARIANTS:
            raise ValueError(f"unknown BM25 variant {variant!r}; choose one of {list(VARIANTS)}")
        if not (k1 >= 0 and 0 <= b <= 1):
            raise ValueError(f"need k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1, self.b, self.variant, self.epsilon = float(k1), float(b), variant, epsilon
        self.tokenizer, self.dtype = tokenizer, np.dtype(dtype)
        self.vocab: dict[str, int] = {}
        self.weights = None  # sparse (vocabulary, n_docs) after fit

    def _tokens(self, texts, what: str) -> list[list[str]]:
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise TypeError(f"{what} must be a list of texts (or of token lists), "
                            f"got {type(texts).__name__}; for one text use [text]")
        return [self.tokenizer(t) if isinstance(t, str) else list(t) for t in texts]

    def fit(self, docs) -> "BM25":
        """Index `docs` (list of str, tokenised with `tokenizer`, or list of token lists)."""
        tokens = self._tokens(docs, "docs")
        if not tokens:
            raise ValueError("no documents to index")
        self.vocab = {}
        for doc in tokens:
            for word in doc:
                self.vocab.setdefault(word, len(self.vocab))
        rows = np.fromiter((self.vocab[w] for doc in tokens for w in doc), np.int64)
        cols = np.repeat(np.arange(len(tokens)), [len(doc) for doc in tokens])
        tf = sp.csr_matrix((np.ones(len(rows)), (rows, cols)),
                           shape=(len(self.vocab), len(tokens)))  # duplicates summed: counts
        self.doc_len = np.array([len(doc) for doc in tokens], dtype=np.float64)
        self.n_docs, self.avgdl = len(tokens), float(self.doc_len.mean())
        if self.avgdl == 0:
            raise ValueError("every document is empty after tokenisation")
        self.df = np.diff(tf.indptr)
        self.idf = self._idf(self.df)
        tf.data = self._tf(tf.data, self.doc_len[tf.indices]) * np.repeat(self.idf, self.df)
        self.weights = tf.astype(self.dtype)
        return self

    def _idf(self, df):
        fn = VARIANTS[self.variant][0]
        return fn(df, self.n_docs, self.epsilon) if self.variant == "okapi" else fn(df, self.n_docs)

    def _tf(self, tf, doc_len):
        return VARIANTS[self.variant][1](tf, doc_len, self.avgdl, self.k1, self.b)

    def query_matrix(self, queries) -> sp.csr_matrix:
        """Word counts of the queries, sparse (n_queries, vocabulary); unknown words dropped."""
        if self.weights is None:
            raise RuntimeError("the index is empty: call fit(docs) first")
        rows, cols = [], []
        for i, query in enumerate(self._tokens(queries, "queries")):
            ids = [self.vocab[w] for w in query if w in self.vocab]
            rows += [i] * len(ids)
            cols += ids
        return sp.csr_matrix((np.ones(len(rows), self.dtype), (rows, cols)),
                             shape=(len(queries), len(self.vocab)))

    def scores(self, queries) -> np.ndarray:
        """Scores of every document, dense array (n_queries, n_docs) of `dtype`.

        >>> BM25(variant="lucene").fit(["a cat", "a dog"]).scores(["cat"]).round(3)  # ln 2 / 2.5
        array([[0.277, 0.   ]], dtype=float32)
        """
        return (self.query_matrix(queries) @ self.weights).toarray()

    def search(self, queries, k: int = 100, batch_size: int = 1024,
               show_progress: bool = False) -> Hits:
        """Top-k documents (score > 0) of each query: Hits (n_queries, k), ids = row positions.

        One query at a time: its words' rows of `weights` (each row holds idf * tf part for the
        documents containing the word, precomputed at `fit`) are gathered and summed into a dense
        score per document (`rows.T @ counts`, a single pass over those postings), then the top
        k are selected without sorting the whole array (`_dense_topk`).
        """
        k = check_k(k)
        if self.weights is None:
            raise RuntimeError("the index is empty: call fit(docs) first")
        weights = self.weights.tocsr()
        out_s = np.full((len(queries), k), -np.inf, np.float32)
        out_i = np.full((len(queries), k), -1, np.int64)
        for start in tqdm(range(0, len(queries), batch_size), desc="BM25", unit="batch",
                          disable=not show_progress):
            counts = self.query_matrix(queries[start:start + batch_size])
            counts.sum_duplicates()
            for r in range(counts.shape[0]):
                lo, hi = counts.indptr[r], counts.indptr[r + 1]
                if lo == hi:
                    continue  # no known word: no document scores > 0
                scores = weights[counts.indices[lo:hi]].T @ counts.data[lo:hi]
                ids = _dense_topk(scores, k)
                out_s[start + r, :len(ids)], out_i[start + r, :len(ids)] = scores[ids], ids
        return Hits(out_s, out_i)


def _dense_topk(scores: np.ndarray, k: int, block: int = 128) -> np.ndarray:
    """Positions of the top-k positive `scores`, best first, ties to the smaller position.

    A lower bound on the k-th largest score comes from block maxima: the k-th largest of the
    maxima of blocks of `block` scores (k different blocks reach it, so at least k scores do).
    Only the few scores at or above it are then ordered exactly -- instead of partitioning all n.
    >>> _dense_topk(np.array([0.0, 2.0, 1.0, 2.0, 0.0]), 2).tolist()
    [1, 3]
    """
    n = len(scores)
    bound = 0.0
    if n > k * block:
        maxima = np.maximum.reduceat(scores, np.arange(0, n, block))
        bound = max(float(np.partition(maxima, len(maxima) - k)[len(maxima) - k]), 0.0)
    cand = np.flatnonzero(scores >= bound) if bound > 0 else np.flatnonzero(scores > 0)
    values = scores[cand]
    if len(cand) > k:  # boundary ties: keep every candidate equal to the k-th score
        kth = np.partition(values, len(values) - k)[len(values) - k]
        keep = values >= kth
        cand, values = cand[keep], values[keep]
    return cand[np.lexsort((cand, -values))[:k]]


def bm25_run(corpus: Mapping, queries: Mapping, k: int = 100, index: BM25 | None = None,
             **params) -> dict[str, dict[str, float]]:
    """BM25 run {qid: {doc_id: score}} over a BEIR corpus (text = title + " " + text).

    index: a BM25 already fitted on this corpus (in `doc_texts` order), else one is built
    with `params` (k1, b, variant, tokenizer...).
    >>> corpus = {"d1": {"title": "", "text": "cats purr"}, "d2": {"title": "", "text": "dogs bark"},
    ...           "d3": {"title": "", "text": "birds sing"}}
    >>> run = bm25_run(corpus, {"q1": "why do dogs bark"})    # 2 words x ln(2.5 / 1.5)
    >>> {doc: round(score, 4) for doc, score in run["q1"].items()}
    {'d2': 1.0217}
    """
    from course_utils.data.loaders import doc_texts
    from course_utils.runs import to_run

    doc_ids, texts = doc_texts(corpus)
    index = index if index is not None else BM25(**params).fit(texts)
    if index.n_docs != len(doc_ids):
        raise ValueError(f"the index holds {index.n_docs} documents, the corpus {len(doc_ids)}")
    return to_run(index.search(list(queries.values()), k), list(queries), doc_ids)
