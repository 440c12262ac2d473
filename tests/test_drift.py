"""Drift monitoring and the shadow re-index quality gate (blocks a bad model, passes a good one)."""
import json

import numpy as np
import pytest

from course_utils import drift
from course_utils.evaluate import evaluate
from course_utils.search import exact_search_faiss, to_run
from course_utils.search.store import VectorStore


def _world(n=600, d=32, nq=60, seed=0):
    """Docs on the unit sphere; query i is a noisy copy of doc i, which is its one relevant doc."""
    rng = np.random.default_rng(seed)
    docs = rng.normal(size=(n, d)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    q = docs[:nq] + 0.08 * rng.normal(size=(nq, d)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ids = [f"d{i}" for i in range(n)]
    queries = {f"q{i}": f"text {i}" for i in range(nq)}
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(nq)}
    return ids, docs, q, queries, qrels


def test_mmd_matches_naive_and_detects_shift():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(25, 3)) + 0.5
    gamma = 0.3
    k = lambda a, b: np.exp(-gamma * ((a - b) ** 2).sum())
    naive = (sum(k(a, b) for i, a in enumerate(x) for j, b in enumerate(x) if i != j) / (30 * 29)
             + sum(k(a, b) for i, a in enumerate(y) for j, b in enumerate(y) if i != j) / (25 * 24)
             - 2 * sum(k(a, b) for a in x for b in y) / (30 * 25))
    assert drift.mmd2(x, y, gamma) == pytest.approx(naive, rel=1e-9)
    same = drift.mmd_test(rng.normal(size=(60, 5)), rng.normal(size=(60, 5)), 100)
    shifted = drift.mmd_test(rng.normal(size=(60, 5)), rng.normal(size=(60, 5)) + 0.7, 100)
    assert same["p_value"] > 0.05 and shifted["p_value"] < 0.02


def test_mean_shift():
    assert drift.mean_shift([[1, 0]], [[0, 1]]) == pytest.approx(1.0)


def test_quality_over_time_drops_after_corruption():
    ids, docs, q, queries, qrels = _world()
    bad, rows = drift.corrupt_vectors(docs, fraction=0.5, noise=3.0)
    assert len(rows) == 300 and np.allclose(np.linalg.norm(bad, axis=1), 1, atol=1e-5)
    qids = list(queries)
    runs = {t: to_run(exact_search_faiss(q, v, 10), qids, ids) for t, v in [("t0", docs), ("t1", bad)]}
    table = drift.quality_over_time(runs, qrels)
    assert table.loc["t1", "ndcg@10"] < table.loc["t0", "ndcg@10"] - 0.2


def _baseline(tmp_path, ids, docs, q, queries, qrels):
    live = VectorStore("model-v1", docs.shape[1])
    live.add(ids, docs)
    live.save(tmp_path / "v1")
    qids = list(queries)
    return evaluate(qrels, live.to_run(live.search(q, 100), qids), ["ndcg@10", "precision@10"])


def test_gate_passes_good_candidate_and_switches(tmp_path):
    ids, docs, q, queries, qrels = _world()
    base = _baseline(tmp_path, ids, docs, q, queries, qrels)
    rot = np.linalg.qr(np.random.default_rng(2).normal(size=(32, 32)))[0].astype(np.float32)
    qvec = dict(zip(queries.values(), q))
    enc = lambda texts: np.stack([qvec[t] for t in texts]) @ rot       # a rotated space: same quality
    out = drift.shadow_reindex(tmp_path, "v2", "model-v2", ids, docs @ rot, enc, queries, qrels, base)
    assert out["gate"]["passed"] and out["metrics"]["ndcg@10"] == pytest.approx(base["ndcg@10"], abs=1e-6)
    assert json.loads((tmp_path / "v2" / "schema.json").read_text())["model_id"] == "model-v2"
    assert drift.switch_alias(tmp_path, "live", "v2", out["gate"])
    assert drift.read_alias(tmp_path, "live") == "v2"


def test_gate_blocks_broken_encoder(tmp_path):
    ids, docs, q, queries, qrels = _world()
    base = _baseline(tmp_path, ids, docs, q, queries, qrels)
    drift.switch_alias(tmp_path, "live", "v1", {"passed": True})
    rng = np.random.default_rng(3)
    broken = lambda texts: rng.normal(size=(len(texts), 32)).astype(np.float32)   # ignores the text
    noisy_docs, _ = drift.corrupt_vectors(docs, 1.0, 0.5)
    out = drift.shadow_reindex(tmp_path, "v2", "broken", ids, noisy_docs,
                               lambda t: drift.corrupt_vectors(broken(t), 1.0, 0.0)[0], queries, qrels, base)
    assert not out["gate"]["passed"] and "ndcg@10" in out["gate"]["failed"]
    assert not drift.switch_alias(tmp_path, "live", "v2", out["gate"])
    assert drift.read_alias(tmp_path, "live") == "v1"


def test_gate_blocks_nan_vectors_before_indexing(tmp_path):
    ids, docs, q, queries, qrels = _world()
    base = _baseline(tmp_path, ids, docs, q, queries, qrels)
    bad = docs.copy()
    bad[5] = np.nan
    out = drift.shadow_reindex(tmp_path, "v3", "nan-model", ids, bad, lambda t: q, queries, qrels, base)
    assert out["gate"]["failed"] == ["vector_check"] and not (tmp_path / "v3").exists()
    with pytest.raises(KeyError, match="no alias"):
        drift.read_alias(tmp_path, "nothing")


def test_doctests():
    import doctest
    assert doctest.testmod(drift).failed == 0
