import numpy as np
import pytest

from course_utils import pooling, quality


def test_report_flags_each_fault():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    clean = quality.quality_report(v)
    assert clean["ok"] and clean["near_duplicate_pairs"] == 0
    v[1] = np.nan; v[2] = 0; v[3] *= 2; v[4] = v[5]; v[6, 0] = np.inf
    r = quality.quality_report(v)
    assert (r["nan_rows"], r["inf_rows"], r["zero_rows"], r["not_unit"], r["near_duplicate_pairs"], r["ok"]) == (1, 1, 1, 1, 1, False)


def test_dead_dimensions_reported_not_failed():
    v = np.eye(4, 5, dtype=np.float32)  # last column always 0
    r = quality.quality_report(v)
    assert r["dead_dims"] == 1 and r["ok"]


def test_near_duplicates_blocks_match_brute_force():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(1500, 4)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    sims = v @ v.T
    expected = {(i, j) for i, j in zip(*np.nonzero(sims >= 0.999)) if i < j}
    assert {(i, j) for i, j, _ in quality.near_duplicates(v, 0.999)} == expected


@pytest.mark.parametrize("bad", [np.zeros((0, 3)), np.zeros(3)])
def test_report_bad_shape(bad):
    with pytest.raises(ValueError, match="shape"):
        quality.quality_report(bad)


def test_pool_strategies():
    t = np.array([[1.0, 5.0], [3.0, 1.0]])
    assert pooling.pool(t, "mean").tolist() == [2.0, 3.0]
    assert pooling.pool(t, "cls").tolist() == [1.0, 5.0]
    assert pooling.pool(t, "max").tolist() == [3.0, 5.0]
    with pytest.raises(ValueError, match="unknown pooling 'sum'"):
        pooling.pool(t, "sum")
    with pytest.raises(ValueError, match="n_tokens"):
        pooling.pool(np.zeros((0, 2)), "mean")


@pytest.mark.model
def test_mean_pooling_reproduces_model(minilm):
    from course_utils.embeddings import encode

    texts = ["Pooling turns token vectors into one.", "Short."]
    assert np.allclose(pooling.encode_pooled(texts, minilm, "mean"), encode(texts, minilm, show_progress=False), atol=1e-5)


@pytest.mark.model
def test_split_tokens_covers_text(minilm):
    text = " ".join(f"word{i}" for i in range(600))
    pieces = pooling.split_tokens(text, minilm.tokenizer, window=100, overlap=20)
    assert pieces[0].startswith("word0") and pieces[-1].endswith("word599")
    assert all(p in text for p in pieces) and len(pieces) > 5
    with pytest.raises(ValueError, match="overlap < window"):
        pooling.split_tokens(text, minilm.tokenizer, window=10, overlap=10)
    vec, _ = pooling.embed_long(text, minilm)
    assert vec.shape == (384,) and abs(np.linalg.norm(vec) - 1) < 1e-5
