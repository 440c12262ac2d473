"""The search logic behind the service: dense, BM25, hybrid (RRF) and optional re-ranking.

One `SearchEngine` wraps a `course_utils.search.store.VectorStore` (FAISS + Parquet + schema.json), a
query encoder, the documents' texts and, for BM25/hybrid, a fitted `course_utils.lexical.bm25.BM25`
whose rows follow `bm25_ids`. Results are lists of {"doc_id", "score"} dicts, best first.

>>> engine = SearchEngine(store, encode_query, doc_text, bm25=bm25, bm25_ids=ids)   # doctest: +SKIP
>>> engine.search("aspirin and stroke", k=3, mode="hybrid")                         # doctest: +SKIP
[{'doc_id': '...', 'score': 0.032}, ...]
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from course_utils.embeddings.similarity import normalize
from course_utils.hybrid.fusion import rrf
from course_utils.runs import trec_order

__all__ = ["MODES", "SearchEngine"]

MODES = ("dense", "bm25", "hybrid")


class SearchEngine:
    """encode_query: str → vector (dim,); doc_text: {doc_id: text} (for re-ranking and display);
    reranker: optional callable(query, [texts]) → scores (higher = better), e.g. MaxSim;
    depth: candidates per list fused in hybrid mode; rerank_depth: candidates re-ranked."""

    def __init__(self, store, encode_query: Callable[[str], np.ndarray], doc_text: dict,
                 bm25=None, bm25_ids: Sequence[str] | None = None, reranker=None, depth: int = 100,
                 rerank_depth: int = 20):
        if (bm25 is None) != (bm25_ids is None):
            raise ValueError("give both bm25 (a fitted BM25) and bm25_ids (its row → doc id), or neither")
        if bm25 is not None and len(bm25_ids) != bm25.n_docs:
            raise ValueError(f"bm25_ids has {len(bm25_ids)} ids but the BM25 index has "
                             f"{bm25.n_docs} documents")
        self.store, self.encode_query, self.doc_text = store, encode_query, doc_text
        self.bm25, self.bm25_ids = bm25, (list(bm25_ids) if bm25_ids is not None else None)
        self.reranker, self.depth, self.rerank_depth = reranker, depth, rerank_depth

    @property
    def modes(self) -> tuple[str, ...]:
        return MODES if self.bm25 is not None else ("dense",)

    def dense(self, query_vec: np.ndarray, k: int) -> dict[str, float]:
        hits = self.store.search(normalize(np.asarray(query_vec, np.float32)[None, :], zero_rows="raise"), k)
        return self.store.to_run(hits, ["q"])["q"]

    def lexical(self, query: str, k: int) -> dict[str, float]:
        hits = self.bm25.search([query], k=k)
        return {self.bm25_ids[i]: float(s) for s, i in zip(hits.scores[0], hits.ids[0]) if i != -1}

    def search(self, query: str, k: int, mode: str = "dense", rerank: bool = False,
               query_vec: np.ndarray | None = None) -> list[dict]:
        """Top-k results; query_vec skips the encoder (the service passes its cached vector)."""
        if mode not in self.modes:
            raise ValueError(f"unknown mode {mode!r}; choose one of {self.modes}")
        if rerank and self.reranker is None:
            raise ValueError("this engine has no re-ranker; search with rerank=false")
        n = max(k, self.depth if mode == "hybrid" else self.rerank_depth if rerank else k)
        if mode != "bm25" and query_vec is None:
            query_vec = self.encode_query(query)
        if mode == "dense":
            run = self.dense(query_vec, n)
        elif mode == "bm25":
            run = self.lexical(query, n)
        else:
            run = rrf([{"q": self.dense(query_vec, n)}, {"q": self.lexical(query, n)}])["q"]
        if rerank:
            top = trec_order(run)[:max(k, self.rerank_depth)]
            run = dict(zip(top, map(float, self.reranker(query, [self.doc_text[d] for d in top]))))
        return [{"doc_id": d, "score": round(float(run[d]), 6)} for d in trec_order(run)[:k]]

    def recommend(self, doc_id: str, k: int) -> list[dict]:
        """The k documents most similar to `doc_id` (itself excluded). KeyError if unknown."""
        if doc_id not in self.store:
            raise KeyError(doc_id)
        hits = self.store.search(self.store.get_vectors([doc_id]), k + 1)
        run = self.store.to_run(hits, ["q"])["q"]
        run.pop(doc_id, None)
        return [{"doc_id": d, "score": round(float(run[d]), 6)} for d in trec_order(run)[:k]]
