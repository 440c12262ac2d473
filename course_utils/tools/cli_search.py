"""Private helper of `course_utils.tools.cli`: dense / BM25 / hybrid search of a collection, + MaxSim."""
from __future__ import annotations

import numpy as np
import pandas as pd

from course_utils.tools import named_collections as col
from course_utils.tools.cli_io import load_model_named, parse_pairs

__all__ = ["run_search"]


def _where(meta: pd.DataFrame, pairs: list[str]) -> dict | None:
    """FIELD=VALUE strings -> a store `where`, values cast to the column's type."""
    where = {}
    for field, value in parse_pairs(pairs).items():
        if field not in meta.columns:
            raise col.CollectionError(f"--where uses field {field!r}; the collection's fields "
                                      f"are {[c for c in meta.columns if c != 'sha256']}")
        kind = meta[field].dtype.kind
        try:
            where[field] = int(value) if kind in "iu" else float(value) if kind == "f" else \
                value.lower() in ("1", "true", "yes") if kind == "b" else value
        except ValueError:
            raise col.CollectionError(f"--where {field}={value!r}: {field} holds numbers") from None
    return where or None


def _corpus(meta: pd.DataFrame) -> dict:
    return {d: {"title": r["title"], "text": r["text"]} for d, r in meta.iterrows()}


def _bm25_run(meta: pd.DataFrame, where, queries: dict, depth: int) -> dict:
    """BM25 over the whole collection (its idf statistics); a filter keeps only matching docs."""
    from course_utils.lexical.bm25 import bm25_run

    corpus = _corpus(meta)
    if not where:
        return bm25_run(corpus, queries, k=depth)
    from course_utils.search.store_io import where_mask

    allowed = set(meta.index[where_mask(meta, where)])
    run = bm25_run(corpus, queries, k=len(corpus))
    return {q: dict([(d, s) for d, s in docs.items() if d in allowed][:depth])
            for q, docs in run.items()}


def run_search(root, args, queries: dict) -> tuple[dict, str]:
    """{qid: [{"doc_id", "score", "title", "text"}...]} best first, and how it was searched."""
    from course_utils.hybrid.fusion import convex_fusion, rrf
    from course_utils.runs import trec_order

    store = col.load_store(root, args.collection)
    if args.model and args.model != store.model_id:
        raise col.CollectionError(f"collection {args.collection!r} holds vectors of "
                                  f"{store.model_id!r}; queries must be encoded with the same "
                                  f"model — drop --model or use {store.model_id!r}")
    meta = store.metadata
    where = _where(meta, args.where)
    params = {k: float(v) for k, v in parse_pairs(args.param).items()}
    if params and args.mode == "bm25":
        raise col.CollectionError("--param sets ANN search parameters; --mode bm25 has none")
    depth = max(args.k, args.rerank_depth if args.rerank else 0)
    model = None
    if args.mode != "bm25" or args.rerank:
        model = load_model_named(store.model_id)
        col.load_store(root, args.collection, store.model_id, model.get_embedding_dimension())
    runs, how = [], []
    if args.mode in ("dense", "hybrid"):
        from course_utils.embeddings.encoding import encode

        qv = encode(list(queries.values()), model, show_progress=not args.quiet)
        d = depth if args.mode == "dense" else max(depth, 100)
        rows, scores, method = col.dense_search(root, args.collection, store, qv, d, where,
                                                args.exact, **params)
        runs.append({q: dict(zip(r, s)) for q, r, s in zip(queries, rows, scores)})
        how.append(f"dense ({method})")
    if args.mode in ("bm25", "hybrid"):
        runs.append(_bm25_run(meta, where, queries, depth if args.mode == "bm25" else max(depth, 100)))
        how.append("bm25")
    run = runs[0]
    if args.mode == "hybrid":
        run = rrf(runs) if args.fusion == "rrf" else convex_fusion(runs[0], runs[1], args.alpha)
        how = [f"hybrid {args.fusion}: " + " + ".join(how)]
    if args.rerank:
        from course_utils.data import doc_texts
        from course_utils.rerank import maxsim_scores
        from course_utils.rerank.stage import rerank_with

        texts = dict(zip(*doc_texts(_corpus(meta))))
        run = rerank_with(run, queries, texts, lambda q, docs: maxsim_scores(model, q, docs),
                          args.rerank_depth, show_progress=len(run) >= 5)
        how.append(f"MaxSim re-rank of top {args.rerank_depth}")
    results = {}
    for qid in queries:
        docs = run.get(qid, {})
        top = trec_order(docs)[:args.k] if docs else []
        results[qid] = [{"doc_id": d, "score": float(np.float32(docs[d])),
                         "title": str(meta.at[d, "title"]), "text": str(meta.at[d, "text"])}
                        for d in top]
    return results, ", ".join(how)
