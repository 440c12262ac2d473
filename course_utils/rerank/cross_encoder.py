"""Two-stage retrieval: re-rank the top of any run with a cross-encoder (scores cached on disk).

A first-stage retriever (BM25, dense, hybrid) is cheap per document and returns a run; a
cross-encoder reads query and document *together* (one transformer pass per pair), which is far
more accurate and far slower, so it only re-scores each query's top `depth` documents.

`rerank` keeps every document of the run: the top `depth` are re-ordered by the cross-encoder's
score (its raw logit, so scores do not saturate at 1.0), the rest stay below them in their
first-stage order. Pair scores are cached on disk, keyed by the model id and a sha256 of
(query, document) -- the `EmbeddingCache` of `course_utils.embeddings.cache`, one float per pair, in the
namespace `ce__<model id>__len<max length>` -- so a pair is scored once per model.

`maxsim_scores` is the late-interaction alternative (ColBERT, Khattab & Zaharia 2020): the sum
over query tokens of the best cosine with any document token, from the bi-encoder's token
vectors; it needs no training.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from tqdm import tqdm  # text bars: no ipywidgets needed

from course_utils.embeddings.cache import EmbeddingCache
from course_utils.models.loading import model_id
from course_utils.rerank.stage import keep_tail
from course_utils.runs import check_run, trec_order

__all__ = ["score_namespace", "pair_key", "pair_scores", "rerank", "maxsim", "maxsim_scores",
           "token_vectors"]

_SEP = "\x1f"  # between query and document in the cache key (never in normal text)


def score_namespace(model) -> str:
    """Cache namespace of a cross-encoder: its id and max length (both change the scores).

    >>> class M: course_model_id = "ce-1"; max_seq_length = 256
    >>> score_namespace(M())
    'ce__ce-1__len256'
    """
    return f"ce__{model_id(model)}__len{getattr(model, 'max_seq_length', None)}"


def pair_key(query: str, doc: str) -> str:
    """The cache key of a (query, document) pair: both texts joined by an unused separator.

    >>> pair_key("q", "d").split(_SEP)
    ['q', 'd']
    """
    return f"{query}{_SEP}{doc}"


def _predict(model, pairs, batch_size):
    import torch

    return np.asarray(model.predict(pairs, batch_size=batch_size, show_progress_bar=False,
                                    activation_fn=torch.nn.Identity()), np.float32).reshape(-1)


def pair_scores(model, pairs, batch_size: int = 32, cache: bool | EmbeddingCache = True,
                show_progress: bool = True, chunk_size: int = 256) -> np.ndarray:
    """Cross-encoder logits of (query, document) pairs, float32 array (len(pairs),).

    Cached pairs are not scored again; new ones are scored in chunks (grouped by length, so
    batches pad little), each chunk stored as soon as it is done.
    >>> pair_scores(ce, [("does aspirin help?", "Aspirin reduced ...")])   # doctest: +SKIP
    array([3.21], dtype=float32)
    """
    pairs = [(str(q), str(d)) for q, d in pairs]
    if cache is True:
        cache = EmbeddingCache(score_namespace(model))
    elif cache is False or cache is None:
        cache = None
    elif not isinstance(cache, EmbeddingCache):
        raise TypeError(f"cache must be True, False or an EmbeddingCache, got {type(cache).__name__}")
    keys = [pair_key(q, d) for q, d in pairs]
    unique = list(dict.fromkeys(keys))
    found, missing = cache.get(unique) if cache is not None else ({}, list(range(len(unique))))
    missing.sort(key=lambda i: len(unique[i]))
    bar = tqdm(total=len(missing), desc="cross-encoder", unit="pair",
               disable=not show_progress or not missing)
    for start in range(0, len(missing), chunk_size):
        todo = missing[start:start + chunk_size]
        scores = _predict(model, [tuple(unique[i].split(_SEP, 1)) for i in todo], batch_size)
        if cache is not None:  # (an empty cache is falsy: it has a __len__)
            cache.put([unique[i] for i in todo], scores[:, None])
        found.update(zip(todo, scores[:, None]))
        bar.update(len(todo))
    bar.close()
    position = {key: i for i, key in enumerate(unique)}
    return np.array([found[position[k]][0] for k in keys], dtype=np.float32)


def rerank(run: Mapping, queries: Mapping, doc_text: Mapping, model, depth: int = 100,
           batch_size: int = 32, cache: bool | EmbeddingCache = True,
           show_progress: bool = True) -> dict[str, dict[str, float]]:
    """Re-rank each query's top `depth` documents of `run` by cross-encoder score; a new run.

    queries {qid: text}; doc_text {doc_id: text} (e.g. dict(zip(*data.doc_texts(corpus)))).
    Documents below `depth` are kept, after the re-ranked ones, in their original order.
    >>> reranked = rerank(bm25_run, queries, doc_text, ce, depth=20)   # doctest: +SKIP
    """
    check_run(run)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer, got {depth!r}")
    missing = [qid for qid in run if qid not in queries]
    if missing:
        raise KeyError(f"{len(missing)} run queries have no text in `queries`, e.g. {missing[0]!r}")
    order = {qid: trec_order(docs) for qid, docs in run.items()}
    pairs = [(qid, doc) for qid, docs in order.items() for doc in docs[:depth]]
    absent = [doc for _, doc in pairs if doc not in doc_text]
    if absent:
        raise KeyError(f"doc_text has no text for {len(absent)} documents, e.g. {absent[0]!r}")
    scores = pair_scores(model, [(queries[q], doc_text[d]) for q, d in pairs], batch_size,
                         cache, show_progress)
    top = {qid: {} for qid in run}
    for (qid, doc), score in zip(pairs, scores.tolist()):
        top[qid][doc] = score
    return {qid: keep_tail(docs, top[qid]) for qid, docs in order.items()}


# ---- late interaction: MaxSim over token vectors (ColBERT)
def maxsim(query_tokens: np.ndarray, doc_tokens: np.ndarray) -> float:
    """sum over query tokens of max over document tokens of cosine (Khattab & Zaharia 2020).

    query_tokens (m, d), doc_tokens (n, d): rows L2-normalised.
    >>> maxsim(np.eye(2), np.array([[1.0, 0.0], [0.6, 0.8]]))   # 1 + 0.8
    1.8
    """
    return float((query_tokens @ doc_tokens.T).max(axis=1).sum())


def token_vectors(model, texts, batch_size: int = 16) -> list[np.ndarray]:
    """Each text's token vectors from a bi-encoder, L2-normalised rows: a list of (n_tokens, d)."""
    out = model.encode(texts, output_value="token_embeddings", batch_size=batch_size,
                       show_progress_bar=False, convert_to_numpy=False)
    vecs = []
    for t in out:
        t = np.asarray(t.float().cpu().numpy() if hasattr(t, "cpu") else t, np.float32)
        vecs.append(t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12))
    return vecs


def maxsim_scores(model, query: str, docs: list[str], batch_size: int = 16) -> np.ndarray:
    """MaxSim of one query against `docs` with a bi-encoder's token vectors (no training).

    Special tokens ([CLS], [SEP]) are kept, as ColBERT keeps its markers.
    >>> maxsim_scores(model, "aspirin and stroke", ["Aspirin lowers stroke risk."])  # doctest: +SKIP
    """
    q = token_vectors(model, [query], batch_size)[0]
    return np.array([maxsim(q, d) for d in token_vectors(model, list(docs), batch_size)],
                    dtype=np.float32)
