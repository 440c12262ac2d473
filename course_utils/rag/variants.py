"""Retrieval strategies for RAG, all returning {query_id: [Chunk, ...]} best first, so one
evidence-recall table (`rag_eval.recall_table`) compares them:

- `rank_chunks`: flat dense retrieval over one set of chunks (exact inner product).
- `rank_hierarchical`: documents first, then passages -- the top `top_docs` documents by their
  own vectors, then the best passages inside those documents only (coarse to fine).
- `rank_iterative`: two rounds -- search, move the query vector towards its top-m results
  (Rocchio feedback, `expansion.rocchio`), search again, and fuse both rounds with RRF.
- `fuse`: reciprocal rank fusion (`hybrid.rrf`) of several rankings of the same chunks, e.g.
  one per query rewrite (multi-query retrieval) or BM25 + dense (hybrid, chapter 06).
- `expand_neighbours`: small-to-big -- replace each retrieved sentence by a window of its
  neighbouring sentences (retrieve precisely, read with context).
- `multi_query`: the claim plus rewrites written by a generator; rank with each, then `fuse`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from course_utils.hybrid.expansion import rocchio
from course_utils.hybrid.fusion import rrf
from course_utils.rag.chunking import Chunk
from course_utils.search.exact import exact_search_faiss, to_run

__all__ = ["rank_chunks", "rank_hierarchical", "rank_iterative", "fuse", "run_to_chunks",
           "expand_neighbours", "multi_query", "REWRITE_PROMPT"]


def _check(query_ids, query_vecs, chunks, chunk_vecs):
    if len(query_ids) != len(query_vecs):
        raise ValueError(f"{len(query_ids)} query ids but {len(query_vecs)} query vectors")
    if len(chunks) != len(chunk_vecs):
        raise ValueError(f"{len(chunks)} chunks but {len(chunk_vecs)} chunk vectors")


def rank_chunks(query_ids: Sequence, query_vecs, chunks: Sequence[Chunk], chunk_vecs,
                k: int = 10) -> dict[str, list[Chunk]]:
    """Top-k chunks per query by inner product. query_vecs (n_q, d), chunk_vecs (n, d).

    >>> c = [Chunk("d", 0, 0, 1, "a"), Chunk("d", 1, 2, 3, "b")]
    >>> rank_chunks(["q"], np.array([[0.0, 1.0]]), c, np.eye(2, dtype=np.float32), k=1)["q"][0].text
    'b'
    """
    _check(query_ids, query_vecs, chunks, chunk_vecs)
    hits = exact_search_faiss(query_vecs, chunk_vecs, min(k, len(chunks)))
    return {str(q): [chunks[i] for i in row if i != -1] for q, row in zip(query_ids, hits.ids)}


def rank_hierarchical(query_ids: Sequence, query_vecs, doc_ids: Sequence, doc_vecs,
                      chunks: Sequence[Chunk], chunk_vecs, k: int = 10,
                      top_docs: int = 3) -> dict[str, list[Chunk]]:
    """Top-k chunks per query among the chunks of its `top_docs` best documents.

    doc_vecs (n_docs, d): one vector per document, row i = doc_ids[i].
    """
    _check(query_ids, query_vecs, chunks, chunk_vecs)
    doc_hits = exact_search_faiss(query_vecs, doc_vecs, min(top_docs, len(doc_ids)))
    rows_of: dict[str, list[int]] = {}
    for i, chunk in enumerate(chunks):
        rows_of.setdefault(chunk.doc_id, []).append(i)
    out = {}
    for q, qvec, drow in zip(query_ids, np.asarray(query_vecs, np.float32), doc_hits.ids):
        rows = [r for d in drow if d != -1 for r in rows_of.get(str(doc_ids[d]), [])]
        scores = np.asarray(chunk_vecs)[rows] @ qvec if rows else np.zeros(0)
        order = np.argsort(-scores, kind="stable")[:k]
        out[str(q)] = [chunks[rows[j]] for j in order]
    return out


def run_to_chunks(run: Mapping, chunks: Sequence[Chunk], k: int) -> dict[str, list[Chunk]]:
    """A run {qid: {chunk_id: score}} as {qid: [Chunk]} (best first, top k)."""
    by_id = {c.id: c for c in chunks}
    return {q: [by_id[cid] for cid, _ in sorted(docs.items(), key=lambda x: (-x[1], x[0]))[:k]]
            for q, docs in run.items()}


def _to_run(ranking: Mapping[str, Sequence[Chunk]]) -> dict[str, dict[str, float]]:
    return {q: {c.id: 1.0 / (r + 1) for r, c in enumerate(chunks)} for q, chunks in ranking.items()}


def fuse(rankings: Sequence[Mapping], chunks: Sequence[Chunk], k: int = 10,
         rrf_k: int = 60) -> dict[str, list[Chunk]]:
    """Reciprocal rank fusion of several {qid: [Chunk]} rankings (or runs keyed by chunk id)."""
    runs = [r if all(isinstance(v, Mapping) for v in r.values()) else _to_run(r) for r in rankings]
    return run_to_chunks(rrf(runs, rank_constant=rrf_k), chunks, k)


def rank_iterative(query_ids: Sequence, query_vecs, chunks: Sequence[Chunk], chunk_vecs,
                   k: int = 10, m: int = 3, beta: float = 0.5, depth: int = 50) -> dict[str, list[Chunk]]:
    """Round 1 search; q' = normalise(q + beta * mean of the top-m chunk vectors); round 2
    search with q'; both rounds' top `depth` fused with RRF."""
    _check(query_ids, query_vecs, chunks, chunk_vecs)
    depth = min(depth, len(chunks))
    first = exact_search_faiss(query_vecs, chunk_vecs, depth)
    second = exact_search_faiss(rocchio(query_vecs, chunk_vecs, first, m=m, beta=beta), chunk_vecs, depth)
    ids = [c.id for c in chunks]
    return fuse([to_run(first, query_ids, ids), to_run(second, query_ids, ids)], chunks, k)


def expand_neighbours(ranking: Mapping[str, Sequence[Chunk]], sentences: Mapping[str, Sequence],
                      texts: Mapping[str, str], window: int = 1) -> dict[str, list[Chunk]]:
    """Each retrieved sentence chunk widened to `window` sentences on each side (same index).

    sentences: {doc_id: [(start, end) of each sentence]}; texts: {doc_id: document text}.
    """
    out = {}
    for q, ranked in ranking.items():
        wide = []
        for c in ranked:
            spans = sentences[c.doc_id]
            i = next(j for j, (a, b) in enumerate(spans) if a <= c.start < b or c.start < a)
            lo, hi = spans[max(i - window, 0)][0], spans[min(i + window, len(spans) - 1)][1]
            wide.append(Chunk(c.doc_id, c.index, lo, hi, texts[c.doc_id][lo:hi], c.level, c.parent))
        out[q] = wide
    return out


REWRITE_PROMPT = ("Write {n} short search queries, one per line, that would find scientific "
                  "evidence for or against this claim.\nClaim: {claim}")


def multi_query(claim: str, generator, n: int = 2, max_new_tokens: int = 48) -> list[str]:
    """The claim plus up to `n` rewrites from a generator (callable(prompt, max_new_tokens) ->
    Generation): its answer's non-empty lines, list markers removed, repeats dropped."""
    out = generator(REWRITE_PROMPT.format(n=n, claim=claim.strip()), max_new_tokens)
    lines = [re.sub(r"^\s*(?:\d+[.)]|[-*•])?\s*(?:(?:search )?(?:query|claim)\s*\d*\s*:)?\s*", "", line,
                    flags=re.IGNORECASE).strip(" \"'") for line in out.text.splitlines()]
    queries = [claim]
    for line in lines:
        if len(line) > 3 and line.lower() not in {q.lower() for q in queries}:
            queries.append(line)
    return queries[: n + 1]
