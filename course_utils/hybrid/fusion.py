"""Hybrid retrieval: fuse runs of different systems (e.g. BM25 and dense) into one run.

Every function takes and returns TREC runs {qid: {doc_id: score}} (see `course_utils.evaluate.metrics`).

- Score normalisation per query: min-max to [0, 1], or z-score (mean 0, standard deviation 1).
  Raw scores are not comparable across systems (BM25 is unbounded, cosine lies in [-1, 1]).
- Convex combination: alpha * norm(a) + (1 - alpha) * norm(b). A document absent from one run
  was ranked below everything that run returned, so it gets the run's floor for that query: 0
  after min-max; after z-score the lowest z-score (-1 if the run's scores are all equal).
  Tune alpha on training queries only (`alpha_sweep`).
- Reciprocal rank fusion (Cormack, Clarke & Buettcher 2009): sum over runs of 1 / (k + rank),
  rank from 1, k = 60; it ignores scores, so it needs no normalisation and no tuning.
Ranks follow trec_eval's order (score descending, ties by doc id descending).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from course_utils.evaluate.metrics import evaluate
from course_utils.runs import check_run, trec_order

__all__ = ["minmax", "zscore", "normalize_run", "convex_fusion", "rrf", "alpha_sweep",
           "NORMALIZERS"]


# ---- one formula per function: scores of one query's documents -> normalised scores
def minmax(scores: np.ndarray) -> np.ndarray:
    """(s - min) / (max - min); all equal -> all 1 (every document is the best one).

    >>> minmax(np.array([2.0, 4.0, 3.0])).tolist()
    [0.0, 1.0, 0.5]
    """
    low, high = scores.min(), scores.max()
    return (scores - low) / (high - low) if high > low else np.ones_like(scores)


def zscore(scores: np.ndarray) -> np.ndarray:
    """(s - mean) / standard deviation; all equal -> all 0.

    >>> zscore(np.array([1.0, 2.0, 3.0])).round(4).tolist()
    [-1.2247, 0.0, 1.2247]
    """
    std = scores.std()
    return (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)


NORMALIZERS = {"minmax": minmax, "zscore": zscore}
_FLOORS = {"minmax": lambda values: 0.0,
           "zscore": lambda values: min(values) if len(set(values)) > 1 else -1.0}


def _normalizer(norm: str):
    if norm not in NORMALIZERS:
        raise ValueError(f"unknown normalisation {norm!r}; choose one of {list(NORMALIZERS)}")
    return NORMALIZERS[norm]


def normalize_run(run: Mapping, norm: str = "minmax") -> dict[str, dict[str, float]]:
    """Normalise each query's scores with `norm` ("minmax" or "zscore"); a new run.

    >>> normalize_run({"q1": {"d1": 10.0, "d2": 5.0}})
    {'q1': {'d1': 1.0, 'd2': 0.0}}
    """
    fn = _normalizer(norm)
    check_run(run)
    out = {}
    for qid, docs in run.items():
        values = fn(np.array(list(docs.values()), dtype=np.float64)) if docs else []
        out[qid] = dict(zip(docs, map(float, values)))
    return out


def _floors(normalised: dict, norm: str) -> dict[str, float]:
    return {qid: _FLOORS[norm](list(docs.values())) if docs else 0.0
            for qid, docs in normalised.items()}


def _top(docs: dict, k: int | None) -> dict:
    if k is None or len(docs) <= k:
        return docs
    return {doc: docs[doc] for doc in trec_order(docs)[:k]}


def convex_fusion(run_a: Mapping, run_b: Mapping, alpha: float = 0.5, norm: str = "minmax",
                  k: int | None = None) -> dict[str, dict[str, float]]:
    """alpha * norm(run_a) + (1 - alpha) * norm(run_b), per query over the union of documents.

    A document missing from one run gets that run's floor (0 after min-max, see module doc).
    Queries in only one run keep that run's normalised scores (times its weight).
    k: keep each query's k best (None: all).
    >>> a = {"q1": {"d1": 0.9, "d2": 0.5}}          # e.g. dense (cosine)
    >>> b = {"q1": {"d2": 12.0, "d3": 4.0}}         # e.g. BM25
    >>> convex_fusion(a, b, alpha=0.5)                # d1: 0.5 * 1 + 0.5 * 0 (missing in b)
    {'q1': {'d1': 0.5, 'd2': 0.5, 'd3': 0.0}}
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    na, nb = normalize_run(run_a, norm), normalize_run(run_b, norm)
    return _convex(na, nb, _floors(na, norm), _floors(nb, norm), alpha, k)


def _convex(na: dict, nb: dict, floors_a: dict, floors_b: dict, alpha: float, k) -> dict:
    fused = {}
    for qid in dict.fromkeys([*na, *nb]):
        da, db = na.get(qid, {}), nb.get(qid, {})
        floor_a, floor_b = floors_a.get(qid, 0.0), floors_b.get(qid, 0.0)
        docs = dict.fromkeys([*da, *db])
        fused[qid] = _top({d: alpha * da.get(d, floor_a) + (1 - alpha) * db.get(d, floor_b)
                           for d in docs}, k)
    return fused


def rrf(runs: Sequence[Mapping], rank_constant: float = 60, weights: Sequence[float] | None = None,
        depth: int | None = None) -> dict[str, dict[str, float]]:
    """Reciprocal rank fusion: score(d) = sum over runs of w / (c + rank of d), rank from 1.

    runs: a list of runs; weights: one per run (default 1); depth: use only each run's top
    `depth` documents (None: all). rank_constant c: the paper's "k"; Cormack, Clarke & Buettcher
    (SIGIR 2009) chose 60 (named apart from `k`, which counts results everywhere else).
    >>> a = {"q1": {"d1": 0.9, "d2": 0.5}}
    >>> b = {"q1": {"d2": 12.0, "d3": 4.0}}
    >>> {d: round(s, 5) for d, s in rrf([a, b])["q1"].items()}   # d2: 1/62 + 1/61
    {'d1': 0.01639, 'd2': 0.03252, 'd3': 0.01613}
    """
    runs = list(runs)
    if not runs:
        raise ValueError("rrf needs at least one run")
    if isinstance(rank_constant, bool) or not isinstance(rank_constant, (int, float)) or rank_constant < 0:
        raise ValueError(f"rank_constant must be a number >= 0 (60 in the paper), got {rank_constant!r}")
    weights = [1.0] * len(runs) if weights is None else list(weights)
    if len(weights) != len(runs):
        raise ValueError(f"{len(weights)} weights for {len(runs)} runs")
    fused: dict[str, dict[str, float]] = {}
    for run, weight in zip(runs, weights):
        check_run(run)
        for qid, docs in run.items():
            target = fused.setdefault(qid, {})
            for rank, doc in enumerate(trec_order(docs)[:depth], 1):
                target[doc] = target.get(doc, 0.0) + weight / (rank_constant + rank)
    return fused


def alpha_sweep(qrels: Mapping, run_a: Mapping, run_b: Mapping, alphas=None,
                metrics=("ndcg@10", "recall@100"), norm: str = "minmax") -> pd.DataFrame:
    """Evaluate `convex_fusion(run_a, run_b, alpha)` for each alpha: DataFrame indexed by alpha.

    Run it on training queries, pick alpha there (`table[metric].idxmax()`), then report the
    test score of that one alpha -- choosing alpha on the test queries overstates the result.
    >>> qrels = {"q1": {"d2": 1}}
    >>> alpha_sweep(qrels, {"q1": {"d1": 1.0, "d2": 0.0}}, {"q1": {"d2": 1.0}},
    ...             alphas=[0.0, 1.0], metrics=["mrr@10"])["mrr@10"].tolist()
    [1.0, 0.5]
    """
    alphas = np.linspace(0, 1, 21) if alphas is None else alphas
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    na, nb = normalize_run(run_a, norm), normalize_run(run_b, norm)
    fa, fb = _floors(na, norm), _floors(nb, norm)
    rows = [{"alpha": float(a), **evaluate(qrels, _convex(na, nb, fa, fb, float(a), None),
                                           metrics)} for a in alphas]
    return pd.DataFrame(rows).set_index("alpha")
