"""Monitoring an embedding index over time, and changing its model safely.

- `quality_over_time(runs, qrels)`: precision@k / nDCG@10 of a fixed labelled query set, one row
  per snapshot of the index (after corpus updates, pipeline changes, a new model...).
- Distribution shift of embeddings, no labels needed: `mean_shift` (1 - cosine of the two mean
  vectors) and `mmd_test` (squared maximum mean discrepancy, RBF kernel with the median
  heuristic, Gretton et al. JMLR 2012, with a permutation p-value).
- Shadow re-index: `shadow_reindex` builds a second collection (FAISS + Parquet + schema.json
  via `VectorStore`) with the candidate model next to the live one, checks the candidate's
  vectors (`quality.quality_report`) and runs `quality_gate` on a sample of labelled queries;
  `switch_alias` points the alias at it only if the gate passed.

>>> quality_gate({"ndcg@10": 0.60}, {"ndcg@10": 0.58}, max_drop=0.03)["passed"]
True
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from course_utils.embeddings.quality import quality_report
from course_utils.evaluate.metrics import evaluate
from course_utils.paths import atomic_write
from course_utils.search.store import VectorStore

__all__ = ["quality_over_time", "mean_shift", "mmd2", "mmd_test", "corrupt_vectors",
           "quality_gate", "shadow_reindex", "switch_alias", "read_alias"]


def quality_over_time(runs: Mapping[str, Mapping], qrels: Mapping,
                      metrics: Sequence[str] = ("precision@10", "ndcg@10")) -> pd.DataFrame:
    """One row per snapshot name (in order), one column per metric, on the same queries."""
    if not runs:
        raise ValueError("runs is empty: give {snapshot name: run}")
    rows = {name: evaluate(qrels, run, list(metrics), missing="zero") for name, run in runs.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("snapshot")


def mean_shift(reference, current) -> float:
    """1 - cosine(mean of reference, mean of current); 0 = same direction.

    >>> round(mean_shift(np.eye(2), np.eye(2)), 6)
    0.0
    """
    a, b = np.asarray(reference, np.float64).mean(0), np.asarray(current, np.float64).mean(0)
    return float(1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _sq_dists(x, y):
    return np.maximum((x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T, 0)


def mmd2(x, y, gamma: float | None = None) -> float:
    """Unbiased squared MMD between samples x (n, d) and y (m, d), RBF kernel exp(-gamma ||a-b||²).

    gamma None: 1 / median of the pooled squared distances (median heuristic).
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or len(y) < 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"need two samples of >= 2 rows with the same dimension, got {x.shape} and {y.shape}")
    z = np.vstack([x, y])
    d = _sq_dists(z, z)
    if gamma is None:
        gamma = 1.0 / np.median(d[np.triu_indices(len(z), 1)])
    return _mmd2_from_kernel(np.exp(-gamma * d), len(x))


def _mmd2_from_kernel(k: np.ndarray, n: int) -> float:
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    m = len(k) - n
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())


def mmd_test(x, y, n_permutations: int = 200, seed: int = 0) -> dict:
    """{'mmd2', 'p_value'}: p = share of label permutations with an MMD² at least as large."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    z = np.vstack([x, y])
    d = _sq_dists(z, z)
    gamma = 1.0 / np.median(d[np.triu_indices(len(z), 1)])
    k = np.exp(-gamma * d)
    observed = _mmd2_from_kernel(k, len(x))
    rng = np.random.default_rng(seed)
    null = []
    for _ in range(n_permutations):
        p = rng.permutation(len(z))
        null.append(_mmd2_from_kernel(k[np.ix_(p, p)], len(x)))
    p_value = (1 + sum(v >= observed for v in null)) / (1 + n_permutations)
    return {"mmd2": observed, "p_value": float(p_value)}


def corrupt_vectors(vectors, fraction: float, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Simulate a broken pipeline: add Gaussian noise of norm ~`noise` to a `fraction` of rows
    and re-normalise. Returns (new vectors, indices of the corrupted rows)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    v = np.array(vectors, dtype=np.float32, copy=True)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(v), int(round(fraction * len(v))), replace=False)
    eps = rng.normal(size=(len(rows), v.shape[1])).astype(np.float32)
    v[rows] += noise * eps / np.sqrt(v.shape[1])
    v[rows] /= np.linalg.norm(v[rows], axis=1, keepdims=True)
    return v, np.sort(rows)


def quality_gate(baseline: Mapping[str, float], candidate: Mapping[str, float], max_drop: float = 0.02) -> dict:
    """Pass iff for every metric of `baseline`: candidate >= baseline - max_drop (absolute)."""
    deltas = {m: float(candidate[m] - baseline[m]) for m in baseline}
    failed = [m for m, d in deltas.items() if d < -max_drop]
    return {"passed": not failed, "deltas": deltas, "failed": failed, "max_drop": max_drop}


def shadow_reindex(root, name: str, model_id: str, doc_ids: Sequence[str], doc_vectors,
                   encode_queries: Callable[[list[str]], np.ndarray], sample_queries: Mapping[str, str],
                   qrels: Mapping, baseline: Mapping[str, float], max_drop: float = 0.02,
                   metrics: Sequence[str] = ("ndcg@10", "precision@10")) -> dict:
    """Build collection `root/name` with the candidate's vectors and gate it against `baseline`
    (the live collection's metrics on the same `sample_queries`). Nothing is switched here.

    Returns {'name', 'vector_check' (quality_report), 'metrics', 'gate'}; the gate fails too when
    the vector check finds NaN / zero / non-unit rows.
    """
    report = quality_report(doc_vectors)
    store = VectorStore(model_id, np.asarray(doc_vectors).shape[1])
    out = {"name": name, "vector_check": report}
    qids = list(sample_queries)
    if report["ok"]:
        store.add(list(doc_ids), doc_vectors)
        q = np.asarray(encode_queries([sample_queries[i] for i in qids]), np.float32)
        run = store.to_run(store.search(q, 100), qids)
        out["metrics"] = evaluate({i: qrels[i] for i in qids}, run, list(metrics))
        out["gate"] = quality_gate({m: baseline[m] for m in metrics}, out["metrics"], max_drop)
        store.save(Path(root) / name)
    else:
        out["metrics"] = {}
        out["gate"] = {"passed": False, "deltas": {}, "failed": ["vector_check"], "max_drop": max_drop}
    return out


def switch_alias(root, alias: str, name: str, gate: Mapping) -> bool:
    """Point `alias` at collection `name` (root/aliases.json, replaced atomically) if gate passed."""
    if not gate.get("passed"):
        return False
    root = Path(root)
    if not (root / name / "schema.json").exists():
        raise FileNotFoundError(f"no collection {name!r} under {root}; build it before switching")
    path = root / "aliases.json"
    aliases = json.loads(path.read_text()) if path.exists() else {}
    aliases[alias] = name
    atomic_write(path, json.dumps(aliases, indent=1, sort_keys=True))
    return True


def read_alias(root, alias: str) -> str:
    """The collection name `alias` points to (KeyError with the known aliases if absent)."""
    path = Path(root) / "aliases.json"
    aliases = json.loads(path.read_text()) if path.exists() else {}
    if alias not in aliases:
        raise KeyError(f"no alias {alias!r} under {root}; known: {sorted(aliases)}")
    return aliases[alias]
