"""Tests of course_utils.finetune, finetune_data and adapter: the numpy MNRL against a naive loop
and the library's loss, data preparation, the leakage check (a planted test query is caught),
hard-negative mining, the adapter, and one tiny training run (saved, reloaded, cached)."""
import math

import numpy as np
import pytest

from course_utils import adapter, finetune, finetune_data

TEST_QUERIES = {"t1": "Aspirin reduces the risk of stroke in adults.",
                "t2": "Vitamin D deficiency causes rickets."}
TEST_QRELS = {"t1": {"d1": 1}, "t2": {"d2": 1}}
DOC_TEXT = {"d1": "Aspirin and stroke.", "d2": "Vitamin D and bones.", "d3": "Coffee and sleep.",
            "d4": "Exercise and the heart."}


def _naive_mnrl(q, p, n=None, scale=20.0):
    cands = list(p) + ([] if n is None else list(n))
    cos = lambda a, b: float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))
    total = 0.0
    for i, qi in enumerate(q):
        logits = [scale * cos(qi, c) for c in cands]
        total += -(logits[i] - math.log(sum(math.exp(x) for x in logits)))
    return total / len(q)


@pytest.mark.parametrize("with_neg", [False, True])
def test_mnrl_numpy_matches_naive_loop(with_neg):
    rng = np.random.default_rng(0)
    q, p, n = (rng.normal(size=(5, 8)) for _ in range(3))
    got = finetune.mnrl_numpy(q, p, n if with_neg else None, scale=20.0)
    assert got == pytest.approx(_naive_mnrl(q, p, n if with_neg else None), rel=1e-9)


def test_mnrl_numpy_matches_library_loss():
    import torch
    from sentence_transformers.sentence_transformer import losses

    rng = np.random.default_rng(1)
    q, p, n = (rng.normal(size=(4, 6)).astype(np.float32) for _ in range(3))
    loss = losses.MultipleNegativesRankingLoss(torch.nn.Identity(), scale=20.0)
    lib = loss.compute_loss_from_embeddings([torch.from_numpy(x) for x in (q, p, n)], labels=None).item()
    assert finetune.mnrl_numpy(q, p, n) == pytest.approx(lib, abs=1e-5)


def test_mnrl_numpy_rejects_bad_shapes():
    with pytest.raises(ValueError, match="same|both"):
        finetune.mnrl_numpy(np.ones((2, 3)), np.ones((3, 3)))


def test_planted_test_query_is_caught():
    rows = [{"anchor": "Coffee improves sleep quality.", "positive": DOC_TEXT["d3"]}]
    assert finetune_data.check_no_leakage(rows, TEST_QUERIES) == 1
    planted = rows + [{"anchor": "aspirin reduces the risk of  stroke in adults", "positive": DOC_TEXT["d1"]}]
    with pytest.raises(finetune_data.LeakageError, match="t1"):
        finetune_data.check_no_leakage(planted, TEST_QUERIES)
    exact = rows + [{"anchor": TEST_QUERIES["t2"], "positive": DOC_TEXT["d2"]}]
    report = finetune_data.leakage_report(exact, TEST_QUERIES, TEST_QRELS, DOC_TEXT)
    assert report["exact"] == ["t2"] and set(report["near"]) == {"t2"} and report["positives"] == ["d2"]


def test_near_duplicates_lists_every_pair_and_validates():
    train = {"a": "Aspirin reduces the risk of stroke in adults!", "b": "Aspirin reduces risk of stroke in adults.",
             "c": "Something else entirely."}
    found = finetune_data.near_duplicate_queries(TEST_QUERIES, train, min_ratio=0.8)
    assert {(q, t) for q, t, _ in found} == {("t1", "a"), ("t1", "b")}
    assert [r for *_, r in found] == sorted((r for *_, r in found), reverse=True)
    with pytest.raises(ValueError, match="min_ratio"):
        finetune_data.near_duplicate_queries(TEST_QUERIES, train, min_ratio=0)


def test_mine_hard_negatives_excludes_every_known_positive():
    qrels = {"q1": {"d1": 1}, "q2": {"d1": 1, "d2": 1}}      # q2 shares d1 with q1: d2 is known too
    run = {"q1": {"d2": 9.0, "d1": 8.0, "d3": 7.0, "d4": 6.0}, "q2": {"d3": 5.0}}
    negs = finetune_data.mine_hard_negatives(run, qrels, n=2, depth=5)
    assert negs["q1"] == ["d3", "d4"] and negs["q2"] == ["d3"]
    assert finetune_data.mine_hard_negatives(run, qrels, n=1, skip=1, depth=1)["q1"] == ["d4"]
    with pytest.raises(ValueError):
        finetune_data.mine_hard_negatives(run, qrels, n=3, depth=2)


def test_training_rows_and_split():
    qrels = {"a": {"d1": 1, "d2": 0}, "b": {"d1": 1}, "c": {"d3": 1}}
    queries = {"a": "qa", "b": "qb", "c": "qc"}
    rows = finetune_data.training_rows(queries, qrels, DOC_TEXT, exclude={"b"})
    assert rows == [{"anchor": "qa", "positive": DOC_TEXT["d1"]}, {"anchor": "qc", "positive": DOC_TEXT["d3"]}]
    train, val = finetune_data.split_queries(qrels, fraction=0.5, seed=3)
    assert sorted(train + val) == ["a", "b", "c"] and not set(train) & set(val)
    assert ("a" in train) == ("b" in train)                  # claims sharing an abstract stay together
    with pytest.raises(ValueError):
        finetune_data.training_rows(queries, qrels, {})


def test_scored_pairs():
    out = finetune.scored_pairs([{"anchor": "q", "positive": "p", "negative": "n"}])
    assert [r["score"] for r in out] == [1.0, 0.0]
    with pytest.raises(ValueError, match="negative"):
        finetune.scored_pairs([{"anchor": "q", "positive": "p"}])


def test_adapter_identity_and_learning():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(64, 8)).astype(np.float32)
    R = np.linalg.qr(rng.normal(size=(8, 8)))[0].astype(np.float32)      # docs = rotated queries
    p = q @ R
    assert np.allclose(adapter.apply_adapter(q, np.eye(8)), q / np.linalg.norm(q, axis=1, keepdims=True), atol=1e-6)
    W, stats = adapter.train_adapter(q, p, epochs=60, batch_size=16, learning_rate=1e-2, reg=0.0, seed=0)
    before = finetune.mnrl_numpy(q, p)
    after = finetune.mnrl_numpy(adapter.apply_adapter(q, W), p)
    assert after < before and stats["parameters"] == 64 and len(stats["loss_log"]) == 60
    W2, _ = adapter.train_adapter(q, p, epochs=60, batch_size=16, learning_rate=1e-2, reg=0.0, seed=0)
    assert np.array_equal(W, W2)                                          # seeded
    with pytest.raises(ValueError):
        adapter.train_adapter(q, p[:, :4])


def test_train_bi_encoder_validates():
    with pytest.raises(ValueError, match="loss"):
        finetune.train_bi_encoder([{"anchor": "a", "positive": "b"}] * 2, loss="triplet")
    with pytest.raises(ValueError, match="keys"):
        finetune.train_bi_encoder([{"sentence1": "a", "sentence2": "b", "score": 1.0}] * 2, loss="mnrl")


def test_tiny_training_run_saves_reloads_and_caches(tmp_path):
    import datasets  # noqa: F401  (the trainer needs it; pinned)
    rows = [{"anchor": f"claim number {i} about topic {i}", "positive": f"abstract {i} on topic {i}"} for i in range(8)]
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
    evaluator = InformationRetrievalEvaluator({"q1": "claim number 1 about topic 1"},
                                              {f"d{i}": f"abstract {i} on topic {i}" for i in range(4)},
                                              {"q1": {"d1"}}, name="val", write_csv=False)
    model = finetune.train_bi_encoder(rows, batch_size=4, max_steps=2, root=tmp_path, show_progress=False,
                                      log_every=1, evaluator=evaluator, eval_every=2)
    assert model.trained_now and model.course_model_id.startswith("minilm-ft-")
    info = model.training_info
    assert info["steps"] == 2 and info["rows"] == 8
    assert [step for step, _ in info["loss_log"]] == [1, 2] and all(loss > 0 for _, loss in info["loss_log"])
    assert [step for step, _ in info["eval_log"]] == [2] and 0 <= info["eval_log"][0][1]["val_cosine_ndcg@10"] <= 1
    # logging and evaluation do not change the weights, so they are not part of the cache key
    again = finetune.train_bi_encoder(rows, batch_size=4, max_steps=2, root=tmp_path, show_progress=False)
    assert not again.trained_now and again.course_model_id == model.course_model_id
    assert again.training_info["eval_log"] == info["eval_log"]
    a, b = model.encode(["a test sentence"]), again.encode(["a test sentence"])
    assert np.allclose(a, b, atol=1e-5)
    other = finetune.train_bi_encoder(rows, batch_size=4, max_steps=2, seed=1, root=tmp_path, show_progress=False)
    assert other.course_model_id != model.course_model_id            # new config -> new id -> new cache
