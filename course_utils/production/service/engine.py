"""The search logic behind the service: dense, BM25, hybrid fusion, an optional second stage, and
per-key document access.

One `SearchEngine` wraps a `course_utils.search.store.VectorStore` (FAISS + Parquet + schema.json), a
query encoder, the documents' texts and, for BM25/hybrid, a fitted `course_utils.lexical.bm25.BM25`
whose rows follow `bm25_ids`. Results are lists of {"doc_id", "score"} dicts, best first.

- hybrid: RRF of the dense and BM25 lists (`alpha=None`, needs no tuning), or convex fusion of
  their min-max normalised scores with dense weight `alpha` (chapter 06: tuned on train queries).
- second stage (`rerank=True`): `reranker(query, texts) -> scores` re-scores the first stage's top
  `rerank_depth` (`rerank.stage.rerank_with`); with `rerank_weight` < 1 its scores are
  interpolated with the first stage's (`rerank.stage.interpolate`; chapter 06's MaxSim: 0.2).
- access: with `groups`, only documents whose `access_field` metadata value is in `groups` are
  searched: the filter runs *before* ranking (FAISS with an id selector, BM25 on the allowed
  rows), so a key never sees another group's document, not even as a candidate to re-rank.

>>> engine = SearchEngine(store, encode_query, doc_text, bm25=bm25, bm25_ids=ids)   # doctest: +SKIP
>>> engine.search("aspirin and stroke", k=3, mode="hybrid")                         # doctest: +SKIP
[{'doc_id': '...', 'score': 0.032}, ...]
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np

from course_utils.embeddings.similarity import normalize
from course_utils.hybrid.fusion import convex_fusion, rrf
from course_utils.rerank.stage import interpolate, rerank_with
from course_utils.runs import trec_order

__all__ = ["MODES", "SearchEngine"]

MODES = ("dense", "bm25", "hybrid")


class SearchEngine:
    """encode_query: str → vector (dim,); doc_text: {doc_id: text} (for re-ranking and display);
    reranker: optional callable(query, [texts]) → scores (higher = better), e.g. MaxSim;
    depth: candidates per list fused in hybrid mode; rerank_depth: candidates re-ranked;
    alpha: None = RRF, else the dense weight of min-max convex fusion; rerank_weight: weight of
    the second stage's scores interpolated with the first stage's (1 = the second stage alone);
    access_field: the store metadata column naming each document's access group."""

    def __init__(self, store, encode_query: Callable[[str], np.ndarray], doc_text: dict,
                 bm25=None, bm25_ids: Sequence[str] | None = None, reranker=None, depth: int = 100,
                 rerank_depth: int = 20, *, alpha: float | None = None, rerank_weight: float = 1.0,
                 access_field: str = "access"):
        if (bm25 is None) != (bm25_ids is None):
            raise ValueError("give both bm25 (a fitted BM25) and bm25_ids (its row → doc id), or neither")
        if bm25 is not None and len(bm25_ids) != bm25.n_docs:
            raise ValueError(f"bm25_ids has {len(bm25_ids)} ids but the BM25 index has "
                             f"{bm25.n_docs} documents")
        if alpha is not None and not 0 <= alpha <= 1:
            raise ValueError(f"alpha (the dense weight of convex fusion) must lie in [0, 1], got {alpha}")
        if not 0 <= rerank_weight <= 1:
            raise ValueError(f"rerank_weight must lie in [0, 1] (1 = second stage alone), got {rerank_weight}")
        self.store, self.encode_query, self.doc_text = store, encode_query, doc_text
        self.bm25, self.bm25_ids = bm25, (list(bm25_ids) if bm25_ids is not None else None)
        self.reranker, self.depth, self.rerank_depth = reranker, depth, rerank_depth
        self.alpha, self.rerank_weight, self.access_field = alpha, rerank_weight, access_field

    @property
    def modes(self) -> tuple[str, ...]:
        return MODES if self.bm25 is not None else ("dense",)

    def _where(self, groups):
        if groups is None:
            return None
        if self.access_field not in self.store.metadata.columns:
            raise ValueError(f"access groups need a {self.access_field!r} metadata column in the store")
        return {self.access_field: set(groups)}

    def readable(self, doc_id: str, groups: Collection[str] | None) -> bool:
        """May a key with `groups` (None = all) read `doc_id`?"""
        return groups is None or self.store.metadata.at[doc_id, self.access_field] in set(groups)

    def dense(self, query_vec: np.ndarray, k: int, groups=None) -> dict[str, float]:
        q = normalize(np.asarray(query_vec, np.float32)[None, :], zero_rows="raise")
        return self.store.to_run(self.store.search(q, k, where=self._where(groups)), ["q"])["q"]

    def lexical(self, query: str, k: int, groups=None) -> dict[str, float]:
        allowed = None if groups is None else \
            set(self.store.metadata.index[self.store.metadata[self.access_field].isin(set(groups))])
        hits = self.bm25.search([query], k=k if allowed is None else len(self.bm25_ids))
        run = {}
        for s, i in zip(hits.scores[0], hits.ids[0]):
            if i != -1 and (allowed is None or self.bm25_ids[i] in allowed) and len(run) < k:
                run[self.bm25_ids[i]] = float(s)
        return run

    def first_stage(self, query: str, n: int, mode: str, query_vec=None, groups=None) -> dict[str, float]:
        """The top `n` of one mode as {doc_id: score} (no second stage)."""
        if mode == "dense":
            return self.dense(query_vec, n, groups)
        if mode == "bm25":
            return self.lexical(query, n, groups)
        runs = [{"q": self.dense(query_vec, n, groups)}, {"q": self.lexical(query, n, groups)}]
        fused = rrf(runs) if self.alpha is None else convex_fusion(*runs, alpha=self.alpha, norm="minmax")
        return fused["q"]

    def search(self, query: str, k: int, mode: str = "dense", rerank: bool = False,
               query_vec: np.ndarray | None = None, *, groups: Collection[str] | None = None) -> list[dict]:
        """Top-k results; query_vec skips the encoder (the service passes its cached vector);
        groups: the access groups the caller may read (None = every document)."""
        if mode not in self.modes:
            raise ValueError(f"unknown mode {mode!r}; choose one of {self.modes}")
        if rerank and self.reranker is None:
            raise ValueError("this engine has no re-ranker; search with rerank=false")
        n = max(k, self.depth if mode == "hybrid" else self.rerank_depth if rerank else k)
        if mode != "bm25" and query_vec is None:
            query_vec = self.encode_query(query)
        run = {"q": self.first_stage(query, n, mode, query_vec, groups)}
        if rerank:
            depth = max(k, self.rerank_depth)
            second = rerank_with(run, {"q": query}, self.doc_text, self.reranker, depth)
            run = second if self.rerank_weight == 1 else interpolate(run, second, self.rerank_weight, depth)
        return [{"doc_id": d, "score": round(float(run["q"][d]), 6)} for d in trec_order(run["q"])[:k]]

    def recommend(self, doc_id: str, k: int, *, groups: Collection[str] | None = None) -> list[dict]:
        """The k documents most similar to `doc_id` (itself excluded). KeyError if unknown."""
        if doc_id not in self.store:
            raise KeyError(doc_id)
        hits = self.store.search(self.store.get_vectors([doc_id]), k + 1, where=self._where(groups))
        run = self.store.to_run(hits, ["q"])["q"]
        run.pop(doc_id, None)
        return [{"doc_id": d, "score": round(float(run[d]), 6)} for d in trec_order(run)[:k]]
