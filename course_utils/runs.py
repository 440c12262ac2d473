"""The run: TREC's `{qid: {doc_id: score}}` — its checks, its order, and `to_run` from `Hits`.

Every ranked list the course passes between stages is a run (ranx / ir_measures / pytrec_eval
form); qrels are `{qid: {doc_id: int relevance}}`. One tie order everywhere, trec_eval's: score
descending, ties by doc id descending, scores compared as float32 (trec_eval keeps C floats).
BM25, fusion, re-ranking, the command line and the service all order and check runs here.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # runs sit below search in the import graph; Hits is only an annotation here
    from course_utils.search.hits import Hits

__all__ = ["check_run", "check_qrels", "check_docs", "check_id", "trec_order", "to_run"]

_NUMBERS = (int, float, np.integer, np.floating)


def check_id(value, where):
    if not isinstance(value, str):
        raise TypeError(f"{where}: ids must be str as in TREC files, got {value!r} "
                        f"({type(value).__name__}); convert them with str()")


_KINDS = {  # what a valid {doc_id: value} dict holds, and how to build one from a list of ids
    "qrels": ("{doc_id: relevance}", (int, np.integer), "relevance must be an int (0 = not "
              "relevant, 1, 2, ... graded)", "{doc_id: 1 for doc_id in relevant_ids}"),
    "run": ("{doc_id: score}", _NUMBERS, "scores must be int or float; convert them with float()",
            "{doc_id: -rank for rank, doc_id in enumerate(ranked_ids)}"),
}


def check_docs(docs, where, kind):
    inner, types, rule, hint = _KINDS[kind]
    if not isinstance(docs, Mapping):
        raise TypeError(f"{where} must be a dict {inner}, got {type(docs).__name__}; "
                        f"from a list of doc ids use {hint}")
    for doc_id, value in docs.items():
        check_id(doc_id, where)
        if not isinstance(value, types):
            raise TypeError(f"{where}[{doc_id!r}] = {value!r} ({type(value).__name__}): {rule}")
        if value != value:
            raise ValueError(f"{where}[{doc_id!r}] is NaN: fix the scorer or drop that document")


def _check_trec(data, kind):
    if not isinstance(data, Mapping):
        raise TypeError(f"{kind} must be a dict {{qid: {_KINDS[kind][0]}}}, "
                        f"got {type(data).__name__}")
    for qid, docs in data.items():
        check_id(qid, f"{kind} query {qid!r}")
        check_docs(docs, f"{kind}[{qid!r}]", kind)




def check_run(run) -> None:
    """Raise a clear error unless `run` is `{qid: {doc_id: int or float score}}` with str ids.

    >>> check_run({"q1": {"d1": 0.5}})
    >>> check_run({"q1": ["d1"]})
    Traceback (most recent call last):
    TypeError: run['q1'] must be a dict {doc_id: score}, got list; from a list of doc ids use ...
    """
    _check_trec(run, "run")


def check_qrels(qrels) -> None:
    """Raise a clear error unless `qrels` is `{qid: {doc_id: int relevance}}` with str ids.

    >>> check_qrels({"q1": {"d1": 0.5}})
    Traceback (most recent call last):
    TypeError: qrels['q1']['d1'] = 0.5 (float): relevance must be an int (0 = not relevant, 1, 2, ... graded)
    """
    _check_trec(qrels, "qrels")




def trec_order(doc_scores, check: bool = True):
    """Doc ids of one query's results, best first, in trec_eval's order (see module docstring).

    doc_scores: {doc_id: score} of one query. Returns a list of doc ids.
    >>> trec_order({"d1": 0.5, "d2": 0.9, "d3": 0.5})
    ['d2', 'd3', 'd1']
    """
    if check:
        check_docs(doc_scores, "doc_scores", "run")
    scores32 = np.array(list(doc_scores.values()), dtype=np.float32).tolist()
    return [doc_id for _, doc_id in sorted(zip(scores32, doc_scores), reverse=True)]


def to_run(hits: Hits, query_ids: Sequence, doc_ids=None, *,
           rank_scores: bool = False) -> dict[str, dict[str, float]]:
    """Hits → TREC run `{qid: {doc_id: score}}` (ids cast to str; id -1 padding skipped).

    query_ids: one id per hits row. doc_ids: a sequence (row position → doc id) or a mapping
    (FAISS label → doc id); None uses the integer ids themselves. Evaluators re-sort by score, so
    for a ranking whose scores are not decreasing (e.g. MMR) pass `rank_scores=True`: the score
    becomes 1 / rank, which keeps the given order.

    >>> from course_utils.search import Hits
    >>> h = Hits(np.array([[0.75, 0.5, -np.inf]], np.float32), np.array([[2, 0, -1]]))
    >>> to_run(h, ["q1"], ["d0", "d1", "d2"])
    {'q1': {'d2': 0.75, 'd0': 0.5}}
    """
    scores, ids = _check_hits(hits)
    query_ids = list(query_ids)
    if len(query_ids) != len(ids):
        raise ValueError(f"got {len(query_ids)} query_ids for {len(ids)} rows of hits; "
                         "pass one query id per query, in the order they were searched")
    if len(set(map(str, query_ids))) != len(query_ids):
        raise ValueError("query_ids contain duplicates; each run row needs its own query id")
    _check_doc_ids(ids, doc_ids)
    run = {}
    for qid, row_s, row_i in zip(query_ids, scores, ids):
        kept = [(s, i) for s, i in zip(row_s.tolist(), row_i.tolist()) if i != -1]
        run[str(qid)] = {str(i if doc_ids is None else doc_ids[i]):
                         (1.0 / (r + 1) if rank_scores else s) for r, (s, i) in enumerate(kept)}
    return run


def _check_hits(hits) -> tuple[np.ndarray, np.ndarray]:
    try:
        scores, ids = np.asarray(hits[0]), np.asarray(hits[1])
    except (TypeError, IndexError, KeyError):
        raise TypeError(f"expected Hits(scores, ids), got {type(hits).__name__}") from None
    if scores.shape != ids.shape or ids.ndim != 2:
        raise ValueError(f"Hits scores {scores.shape} and ids {ids.shape} must be 2-D arrays of "
                         "the same shape (n_queries, k)")
    return scores, ids


def _check_doc_ids(ids: np.ndarray, doc_ids) -> None:
    used = np.unique(ids[ids != -1])
    if doc_ids is None or used.size == 0:
        return
    if isinstance(doc_ids, Mapping):
        missing = [int(i) for i in used if int(i) not in doc_ids]
        if missing:
            raise KeyError(f"labels {missing[:5]} are not in doc_ids; pass the mapping used to "
                           "build the index")
    elif used[0] < 0 or used[-1] >= len(doc_ids):
        raise IndexError(f"hits contain ids up to {used[-1]} but doc_ids has {len(doc_ids)} "
                         "entries; pass the doc ids in the order the vectors were indexed")
