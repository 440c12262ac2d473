"""Private helper of `course_utils.tools.cli`: dense / BM25 / hybrid search over a collection's
passages, an optional second stage (MaxSim or a trained cross-encoder), passages grouped into
documents, and the query words highlighted in each passage.

BM25 is the setting chapter 06 chose on SciFact train: Lucene's variant, k1 = 1.2, b = 0.75,
Snowball-stemmed words without stop words (`TUNED_BM25`).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from course_utils.tools import named_collections as col
from course_utils.tools.cli_io import check_collection_model, load_model_named, parse_pairs
from course_utils.tools.passages import passage_input

__all__ = ["TUNED_BM25", "GROUPINGS", "MAXSIM_WEIGHT", "stemmed_tokens", "bm25_index", "passage_texts",
           "highlight_spans", "group_by_document", "passage_hit", "run_search"]

TUNED_BM25 = {"variant": "lucene", "k1": 1.2, "b": 0.75}
GROUPINGS = ("max", "sum")
_WORD = re.compile(r"\w+")


def stemmed_tokens(text: str) -> list[str]:
    """Lower-case words, stop words dropped, Snowball-stemmed: the tokens of the tuned BM25.

    >>> stemmed_tokens("Batching speeds up the embeddings")
    ['batch', 'speed', 'embed']
    """
    from course_utils.lexical.bm25 import tokenize

    return tokenize(text, stem=True)


def bm25_index(texts: list[str]):
    """A `lexical.bm25.BM25` with the tuned settings, fitted on `texts`."""
    from course_utils.lexical.bm25 import BM25

    return BM25(tokenizer=stemmed_tokens, **TUNED_BM25).fit(texts)


def passage_texts(meta: pd.DataFrame) -> dict[str, str]:
    """{passage id: the text that was encoded for it (title > heading: passage)}."""
    headings = meta["heading"] if "heading" in meta.columns else pd.Series("", index=meta.index)
    return {pid: passage_input(str(t), str(h or ""), str(x))
            for pid, t, h, x in zip(meta.index, meta["title"], headings, meta["text"])}


def highlight_spans(text: str, query: str) -> list[list[int]]:
    """[start, end) of the words of `text` whose stem is a stem of a query word (stop words and
    single letters, like the s of "learner's", not).

    >>> highlight_spans("Batches of embeddings", "embedding batch size")
    [[0, 7], [11, 21]]
    """
    terms = {t for t in stemmed_tokens(query) if len(t) > 1}
    return [[m.start(), m.end()] for m in _WORD.finditer(text)
            if (stem := stemmed_tokens(m.group())) and stem[0] in terms]


def group_by_document(run: dict[str, float], document_of: dict[str, str],
                      how: str = "max") -> tuple[dict[str, float], dict[str, str], dict[str, int]]:
    """Passage scores of one query -> document scores (the max or the sum of its passages'),
    the best passage of each document and how many of its passages were in the run.

    >>> group_by_document({"a#0": 0.5, "a#1": 0.75, "b#0": 1.0}, {"a#0": "a", "a#1": "a", "b#0": "b"}, "sum")
    ({'a': 1.25, 'b': 1.0}, {'a': 'a#1', 'b': 'b#0'}, {'a': 2, 'b': 1})
    """
    if how not in GROUPINGS:
        raise ValueError(f"unknown aggregation {how!r}; choose one of {GROUPINGS}")
    scores, best, count = {}, {}, {}
    for pid, score in run.items():
        doc = document_of[pid]
        count[doc] = count.get(doc, 0) + 1
        if doc not in best or score > run[best[doc]]:
            best[doc] = pid
        scores[doc] = score + scores.get(doc, 0.0) if how == "sum" else max(score, scores.get(doc, -np.inf))
    return scores, best, count


def passage_hit(meta: pd.DataFrame, pid: str, score: float, query: str) -> dict:
    """A passage as a result: ids, location, text and the query words' spans in it."""
    row = meta.loc[pid]
    text = str(row["text"])
    return {"passage_id": pid, "doc_id": str(row.get("document", pid)),
            "passage": int(row.get("passage", 0)), "score": float(np.float32(score)),
            "start": int(row.get("start", 0)), "end": int(row.get("end", len(text))),
            "heading": str(row.get("heading", "") or ""), "title": str(row["title"]),
            "text": text, "highlights": highlight_spans(text, query)}


def _where(meta: pd.DataFrame, pairs: list[str]) -> dict | None:
    """FIELD=VALUE strings -> a store `where`, values cast to the column's type."""
    where = {}
    for field, value in parse_pairs(pairs).items():
        if field not in meta.columns:
            fields = [c for c in meta.columns if c not in ("sha256", "passage", "start", "end")]
            raise col.CollectionError(f"--where uses field {field!r}; the collection's fields "
                                      f"are {fields}")
        kind = meta[field].dtype.kind
        try:
            where[field] = int(value) if kind in "iu" else float(value) if kind == "f" else \
                value.lower() in ("1", "true", "yes") if kind == "b" else value
        except ValueError:
            raise col.CollectionError(f"--where {field}={value!r}: {field} holds numbers") from None
    return where or None


def _bm25_run(meta: pd.DataFrame, where, queries: dict, depth: int) -> dict:
    """Tuned BM25 over all passages (their idf statistics); a filter keeps only matching ones."""
    from course_utils.runs import to_run
    from course_utils.search.store_io import where_mask

    ids = list(meta.index)
    index = bm25_index(list(passage_texts(meta).values()))
    run = to_run(index.search(list(queries.values()), len(ids) if where else depth), list(queries), ids)
    if not where:
        return run
    allowed = set(meta.index[where_mask(meta, where)])
    return {q: dict([(d, s) for d, s in docs.items() if d in allowed][:depth]) for q, docs in run.items()}


MAXSIM_WEIGHT = 0.2   # chapter 06: MaxSim interpolated with the hybrid, weight chosen on validation


def _rerank(args, run, queries, meta, model):
    from course_utils.rerank import maxsim_scores
    from course_utils.rerank.stage import interpolate, rerank_with

    texts = passage_texts(meta)
    if args.rerank == "maxsim":
        weight = MAXSIM_WEIGHT if getattr(args, "rerank_weight", None) is None else args.rerank_weight
        second = rerank_with(run, queries, texts, lambda q, docs: maxsim_scores(model, q, docs),
                             args.rerank_depth, show_progress=len(run) >= 5)
        if weight == 1:
            return second, f"MaxSim re-rank of top {args.rerank_depth}"
        return interpolate(run, second, weight, args.rerank_depth), \
            f"MaxSim re-rank of top {args.rerank_depth}, interpolated (weight {weight:g})"
    from course_utils.rerank.cross_encoder import rerank
    from course_utils.rerank.training import load_cross_encoder

    if args.reranker_model is None:
        raise col.CollectionError("--rerank cross-encoder needs --reranker-model FOLDER (a "
                                  "cross-encoder trained with course_utils.rerank.training)")
    ce = load_cross_encoder(args.reranker_model)
    second = rerank(run, queries, texts, ce, args.rerank_depth, show_progress=False)
    weight = 1.0 if getattr(args, "rerank_weight", None) is None else args.rerank_weight
    if weight == 1:
        return second, f"cross-encoder {ce.course_model_id} re-rank of top {args.rerank_depth}"
    return interpolate(run, second, weight, args.rerank_depth), \
        f"cross-encoder {ce.course_model_id} re-rank of top {args.rerank_depth}, interpolated (weight {weight:g})"


def run_search(root, args, queries: dict) -> tuple[dict, str]:
    """{qid: [hit...]} best first (passages, or documents with --group-by document), and how."""
    from course_utils.hybrid.fusion import convex_fusion, rrf
    from course_utils.runs import trec_order

    store = col.load_store(root, args.collection)
    if args.model and args.model != store.model_id:
        raise col.CollectionError(f"collection {args.collection!r} holds vectors of "
                                  f"{store.model_id!r}; queries must be encoded with the same "
                                  f"model — drop --model or use {store.model_id!r}")
    meta = store.metadata
    if len(meta) == 0:
        raise col.CollectionError(f"collection {args.collection!r} is empty: embed documents first")
    where = _where(meta, args.where)
    params = {k: float(v) for k, v in parse_pairs(args.param).items()}
    if params and args.mode == "bm25":
        raise col.CollectionError("--param sets ANN search parameters; --mode bm25 has none")
    grouped = args.group_by == "document"
    depth = max(args.k, args.rerank_depth if args.rerank else 0)
    if grouped:
        depth = max(depth * 10, 100)  # passages to find k distinct documents
    model = None
    if args.mode != "bm25" or args.rerank == "maxsim":
        check_collection_model(args.collection, store.model_id)
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
        how.append("bm25 (stemmed)")
    run = runs[0]
    if args.mode == "hybrid":
        run = rrf(runs) if args.fusion == "rrf" else convex_fusion(runs[0], runs[1], args.alpha)
        how = [f"hybrid {args.fusion}: " + " + ".join(how)]
    if args.rerank:
        run, step = _rerank(args, run, queries, meta, model)
        how.append(step)
    document_of = dict(zip(meta.index, meta["document"] if "document" in meta.columns else meta.index))
    results = {}
    for qid, query in queries.items():
        scores = run.get(qid, {})
        if not grouped:
            results[qid] = [passage_hit(meta, p, scores[p], query) for p in trec_order(scores)[:args.k]]
            continue
        docs, best, count = group_by_document(scores, document_of, args.aggregate)
        results[qid] = [{**passage_hit(meta, best[d], docs[d], query),
                         "passage_score": float(np.float32(scores[best[d]])),
                         "matched_passages": count[d]} for d in trec_order(docs)[:args.k]]
    if grouped:
        how.append(f"passages grouped by document ({args.aggregate})")
    return results, ", ".join(how)
