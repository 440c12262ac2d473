"""Retrieval metrics that give the same numbers as trec_eval / pytrec_eval.

run = {qid: {doc_id: score}}, qrels = {qid: {doc_id: int relevance}}. Conventions of trec_eval,
checked against pytrec_eval in tests/reference/test_evaluate_pytrec.py:

- a doc is relevant when its relevance is > 0; nDCG's gain is the relevance (negatives count 0);
- a run is ranked by score descending, ties by doc id descending, and scores are compared as
  float32 (trec_eval keeps C floats, so 0.3 and 0.30000000000000004 tie);
- a query is evaluated when it has judgments in qrels and a key in run; empty results score 0,
  and so do queries whose judgments are all non-relevant.

Denominator of the mean (`missing=`): "skip" (default) averages over the queries pytrec_eval
returns, i.e. judged queries present in the run, exactly as BEIR does: it lets you evaluate a run
on a subset of queries, but a system that drops queries looks better than it is. "zero" averages
over every judged query, scoring those absent from the run 0 (ranx with make_comparable=True):
use it to compare systems that may return nothing for some queries.
"""
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from course_utils.runs import check_id, check_qrels, check_run, trec_order

__all__ = ["VALID_METRICS", "precision_at_k", "recall_at_k", "hit_rate_at_k", "mrr_at_k",
           "ndcg_at_k", "average_precision_at_k", "r_precision", "judged_at_k", "evaluate",
           "per_query_table"]

VALID_METRICS = ("precision@k, recall@k, hit_rate@k, mrr@k, ndcg@k, map@k, judged@k, "
                 "r_precision (or rprec)")


class _Unjudged(int):
    """The label of a retrieved doc that qrels does not mention: 0 in every formula (so not
    relevant, as trec_eval assumes), but told apart from a judged 0 by `_judged`."""


_UNJUDGED = _Unjudged(0)


# ---- one formula per function; `labels`: relevance of the ranked docs, `judged`: all qrels labels
def _precision(labels, judged, k):
    return sum(1 for rel in labels[:k] if rel > 0) / k


def _recall(labels, judged, k):
    n_relevant = sum(1 for rel in judged if rel > 0)
    return sum(1 for rel in labels[:k] if rel > 0) / n_relevant if n_relevant else 0.0


def _hit_rate(labels, judged, k):
    return float(any(rel > 0 for rel in labels[:k]))


def _mrr(labels, judged, k):
    return next((1.0 / rank for rank, rel in enumerate(labels[:k], 1) if rel > 0), 0.0)


def _dcg(gains):
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, 1) if gain > 0)


def _ndcg(labels, judged, k):
    ideal = _dcg(sorted(judged, reverse=True)[:k])
    return _dcg(labels[:k]) / ideal if ideal > 0 else 0.0


def _average_precision(labels, judged, k):
    n_relevant = sum(1 for rel in judged if rel > 0)
    ranks = [rank for rank, rel in enumerate(labels[:k], 1) if rel > 0]
    precisions = [hits / rank for hits, rank in enumerate(ranks, 1)]  # P@rank at each relevant doc
    return sum(precisions) / n_relevant if n_relevant else 0.0


def _r_precision(labels, judged, k=None):
    n_relevant = sum(1 for rel in judged if rel > 0)
    return _precision(labels, judged, n_relevant) if n_relevant else 0.0


def _judged(labels, judged, k):
    return sum(1 for rel in labels[:k] if type(rel) is not _Unjudged) / k


_METRICS = {"judged": _judged, "precision": _precision, "recall": _recall, "hit_rate": _hit_rate, "mrr": _mrr,
            "ndcg": _ndcg, "map": _average_precision, "r_precision": _r_precision}


def _labels(ranking, qrel):
    return [qrel[doc_id] if doc_id in qrel else _UNJUDGED for doc_id in ranking]


# ---- public per-query metrics: ranking = doc ids best first, qrel = {doc_id: relevance}
def precision_at_k(ranking, qrel, k):
    """P@k = (relevant docs in the top k) / k, even if fewer than k were retrieved (trec_eval P_k).

    ranking: doc ids best first (list of str); qrel: {doc_id: int relevance}; k: int >= 1.
    >>> precision_at_k(["d1", "d2", "d3"], {"d1": 1, "d3": 2}, k=3)
    0.6666666666666666
    """
    return _precision(*_check_query(ranking, qrel, k))


def recall_at_k(ranking, qrel, k):
    """R@k = (relevant docs in the top k) / (relevant docs in qrel), 0 if none (trec_eval recall_k).

    >>> recall_at_k(["d1", "d2", "d3"], {"d1": 1, "d3": 2, "d9": 1}, k=3)
    0.6666666666666666
    """
    return _recall(*_check_query(ranking, qrel, k))


def hit_rate_at_k(ranking, qrel, k):
    """Hit rate@k = 1 if a relevant doc is in the top k, else 0 (trec_eval success_k).

    >>> hit_rate_at_k(["d1", "d2", "d3"], {"d3": 1}, k=2)
    0.0
    """
    return _hit_rate(*_check_query(ranking, qrel, k))


def mrr_at_k(ranking, qrel, k):
    """RR@k = 1 / rank of the first relevant doc within the top k, 0 if none
    (trec_eval recip_rank on the run cut to k; its mean over queries is MRR@k).

    >>> mrr_at_k(["d1", "d2", "d3"], {"d2": 1, "d3": 1}, k=3)
    0.5
    """
    return _mrr(*_check_query(ranking, qrel, k))


def ndcg_at_k(ranking, qrel, k):
    """nDCG@k = DCG@k / ideal DCG@k, DCG@k = sum over ranks i <= k of rel_i / log2(i + 1)
    (Jarvelin & Kekalainen 2002; trec_eval ndcg_cut_k: gain = relevance, ideal from qrel).

    >>> round(ndcg_at_k(["d1", "d2", "d3"], {"d1": 1, "d3": 1}, k=3), 4)  # 1.5 / (1 + 1/log2(3))
    0.9197
    """
    return _ndcg(*_check_query(ranking, qrel, k))


def average_precision_at_k(ranking, qrel, k):
    """AP@k = (sum of P@i over the ranks i <= k of relevant docs) / (relevant docs in qrel)
    (trec_eval map_cut_k; its mean over queries is MAP@k).

    >>> average_precision_at_k(["d1", "d2", "d3"], {"d1": 1, "d3": 1}, k=3)  # (1/1 + 2/3) / 2
    0.8333333333333333
    """
    return _average_precision(*_check_query(ranking, qrel, k))


def r_precision(ranking, qrel):
    """R-precision = P@R with R = number of relevant docs in qrel, 0 if R = 0 (trec_eval Rprec).

    >>> r_precision(["d1", "d2", "d3"], {"d1": 1, "d3": 1})  # P@2
    0.5
    """
    return _r_precision(*_check_query(ranking, qrel, 1))


def judged_at_k(ranking, qrel, k):
    """Judged@k = (docs in the top k that qrel mentions, with any label) / k (ir_measures'
    Judged@k; Sakai 2007): how much of the top k the judgments can score at all. Documents
    nobody judged count as not relevant in every other metric, so a low judged@10 means the
    other numbers may underrate a system that finds new, unjudged answers.

    >>> judged_at_k(["d1", "d2", "d3", "d4"], {"d1": 1, "d3": 0}, k=4)
    0.5
    """
    return _judged(*_check_query(ranking, qrel, k))


# ---- whole runs
def evaluate(qrels, run, metrics=("ndcg@10", "recall@100", "mrr@10"), per_query=False,
             missing="skip"):
    """Mean of each metric over queries; the numbers pytrec_eval gives (see module docstring).

    qrels: {qid: {doc_id: int relevance}}; run: {qid: {doc_id: score}}.
    metrics: names "name@k" (see VALID_METRICS) or one such string.
    missing: "skip" (as pytrec_eval/BEIR) or "zero" (judged queries absent from run score 0).
    Returns {metric: float} keyed by the names as given, or with per_query=True
    {qid: {metric: float}} for the evaluated queries in qrels order.
    >>> qrels = {"q1": {"d1": 1}, "q2": {"d9": 1}}
    >>> run = {"q1": {"d1": 0.9, "d2": 0.1}, "q2": {"d2": 1.0}}
    >>> evaluate(qrels, run, ["precision@2", "mrr@10"])
    {'precision@2': 0.25, 'mrr@10': 0.5}
    """
    parsed = _check_metrics(metrics)
    check_qrels(qrels)
    check_run(run)
    if missing not in ("skip", "zero"):
        raise ValueError(f"missing must be 'skip' or 'zero', got {missing!r}")
    table = {qid: _score_query(qrels[qid], run.get(qid, {}), parsed)
             for qid in _query_ids(qrels, run, missing)}
    if per_query:
        return table
    return {name: float(np.mean([row[name] for row in table.values()])) for name in parsed}


def per_query_table(qrels, run, metrics=("ndcg@10", "recall@100", "mrr@10"), missing="skip"):
    """pandas DataFrame of each query's metrics: index "qid" (qrels order), one column per metric.

    >>> per_query_table({"q1": {"d1": 1}, "q2": {"d9": 1}}, {"q1": {"d1": 0.9}, "q2": {"d2": 1.0}},
    ...                 ["hit_rate@1"])  # doctest: +NORMALIZE_WHITESPACE
         hit_rate@1
    qid
    q1          1.0
    q2          0.0
    """
    names = list(_check_metrics(metrics))
    table = evaluate(qrels, run, names, per_query=True, missing=missing)
    return pd.DataFrame.from_dict(table, orient="index", columns=names).rename_axis("qid")


def _score_query(qrel, doc_scores, parsed):
    labels, judged = _labels(trec_order(doc_scores, check=False), qrel), list(qrel.values())
    return {name: fn(labels, judged, k) for name, (fn, k) in parsed.items()}


def _query_ids(qrels, run, missing):
    judged = [qid for qid, docs in qrels.items() if docs]  # pytrec_eval drops unjudged queries
    if not judged:
        raise ValueError("qrels has no judged documents: load the qrels of the split you evaluate")
    if not run:
        raise ValueError("run has no queries: retrieve results for the qrels' queries first")
    in_run = [qid for qid in judged if qid in run]
    if not in_run:
        raise ValueError(
            f"none of the run's {len(run)} query ids (e.g. {list(run)[:3]}) are in qrels "
            f"(e.g. {judged[:3]}): likely the wrong split (train vs test) or ids from another "
            "data set")
    return judged if missing == "zero" else in_run


# ---- validation: the public functions raise clear errors, the private ones compute
def _parse_metric(metric):
    if not isinstance(metric, str):
        raise TypeError(f"a metric name must be a str like 'ndcg@10', got {metric!r}")
    name, at, k_text = metric.strip().lower().partition("@")
    name = "r_precision" if name == "rprec" else name
    if name not in _METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid metrics: {VALID_METRICS}")
    if name == "r_precision":
        if at:
            raise ValueError(f"{metric!r}: r_precision takes no @k (its cutoff is the number "
                             f"of relevant documents); write 'r_precision'")
        return _METRICS[name], None
    if not (k_text.isascii() and k_text.isdigit() and int(k_text) > 0):
        raise ValueError(f"{metric!r} needs a cutoff k that is a positive integer, e.g. "
                         f"'{name}@10'; valid metrics: {VALID_METRICS}")
    return _METRICS[name], int(k_text)


def _check_metrics(metrics):
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    if not names:
        raise ValueError(f"no metrics given; valid metrics: {VALID_METRICS}")
    return {name: _parse_metric(name) for name in names}


def _check_query(ranking, qrel, k):
    if isinstance(ranking, np.ndarray) and ranking.ndim == 1:
        ranking = ranking.tolist()
    if isinstance(ranking, (str, Mapping)) or not isinstance(ranking, Sequence):
        raise TypeError("ranking must be a list of doc ids, best first; from a {doc_id: score} "
                        f"dict use trec_order(scores). Got {type(ranking).__name__}")
    for doc_id in ranking:
        check_id(doc_id, "ranking")
    if not isinstance(qrel, Mapping):
        raise TypeError(f"qrel must be a dict {{doc_id: relevance}}, got {type(qrel).__name__}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return _labels(ranking, qrel), list(qrel.values()), int(k)
