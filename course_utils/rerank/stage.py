"""A second stage over any run: re-score each query's top `depth` documents, keep the rest below.

The scorer is any callable `scorer(query_text, doc_texts) -> scores` (higher is better): a
cross-encoder, MaxSim, a bigger bi-encoder. The command line and the service use these functions;
`rerank.cross_encoder.rerank` batches a cross-encoder across queries and keeps its tail the same way.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from tqdm import tqdm  # text bars: no ipywidgets needed

from course_utils.hybrid.fusion import normalize_run
from course_utils.runs import check_run, trec_order

__all__ = ["keep_tail", "rerank_with", "interpolate"]


def keep_tail(order: Sequence[str], top_scores: Mapping[str, float]) -> dict[str, float]:
    """The re-scored top documents, then the others of `order` below them in their old order.

    order: one query's doc ids best first; top_scores: new scores of a prefix of `order`.
    >>> keep_tail(["a", "b", "c", "d"], {"a": 0.2, "b": 0.9})
    {'a': 0.2, 'b': 0.9, 'c': -0.8, 'd': -1.8}
    """
    out = {doc: float(score) for doc, score in top_scores.items()}
    floor = min(out.values(), default=0.0)
    for rank, doc in enumerate(order[len(out):], 1):
        out[doc] = floor - rank  # below every re-scored document, order kept
    return out


def rerank_with(run: Mapping, queries: Mapping, doc_text: Mapping,
                scorer: Callable[[str, list[str]], Sequence[float]], depth: int = 20,
                show_progress: bool = False) -> dict[str, dict[str, float]]:
    """A new run: each query's top `depth` documents re-scored by `scorer`, the rest kept below.

    >>> overlap = lambda q, docs: [len(set(q.split()) & set(d.split())) for d in docs]
    >>> rerank_with({"q": {"d1": 2.0, "d2": 1.0}}, {"q": "red fox"},
    ...             {"d1": "blue sky", "d2": "a red fox"}, overlap, depth=2)
    {'q': {'d2': 2.0, 'd1': 0.0}}
    """
    check_run(run)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer, got {depth!r}")
    out = {}
    for qid, docs in tqdm(run.items(), desc="re-rank", unit="query", leave=False,
                          disable=not show_progress):
        order = trec_order(docs)
        top = order[:depth]
        scores = scorer(queries[qid], [doc_text[d] for d in top]) if top else []
        rescored = dict(zip(top, map(float, scores)))
        out[qid] = keep_tail(order, dict(sorted(rescored.items(), key=lambda kv: -kv[1])))
    return out


def interpolate(first: Mapping, second: Mapping, weight: float, depth: int = 20,
                norm: str = "minmax") -> dict[str, dict[str, float]]:
    """Mix a second stage's scores with the first stage's on each query's top `depth`:
    weight * norm(second) + (1 - weight) * norm(first), each min-max normalised over those
    documents; the rest kept below in first-stage order. weight 0 gives the first stage's order.

    first: the first-stage run; second: a run of the second stage's scores (e.g. `rerank_with`).
    >>> interpolate({"q": {"a": 3.0, "b": 2.0, "c": 1.0}}, {"q": {"a": 0.0, "b": 1.0}}, 0.75, depth=2)
    {'q': {'b': 0.75, 'a': 0.25, 'c': -0.75}}
    """
    check_run(first)
    if not 0 <= weight <= 1:
        raise ValueError(f"weight must lie in [0, 1], got {weight}")
    out = {}
    for qid, docs in first.items():
        order = trec_order(docs)
        top = order[:depth]
        missing = [d for d in top if d not in second.get(qid, {})]
        if missing:
            raise KeyError(f"the second stage has no score for {qid!r}/{missing[0]!r}: "
                           f"re-rank at least depth={depth} documents")
        a = normalize_run({qid: {d: second[qid][d] for d in top}}, norm)[qid] if top else {}
        b = normalize_run({qid: {d: docs[d] for d in top}}, norm)[qid] if top else {}
        mixed = {d: weight * a[d] + (1 - weight) * b[d] for d in top}
        out[qid] = keep_tail(order, dict(sorted(mixed.items(), key=lambda kv: -kv[1])))
    return out
