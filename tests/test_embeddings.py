import numpy as np
import pytest

from course_utils import embeddings
from course_utils.embeddings.cache import EmbeddingCache


def test_encode_shape_norm_and_duplicates(fake_model):
    v = embeddings.encode(["a", "b", "a"], fake_model, show_progress=False)
    assert v.shape == (3, 8) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-6)
    assert np.array_equal(v[0], v[2])
    assert fake_model.calls == 2  # duplicates encoded once


def test_second_run_encodes_nothing(fake_model):
    first = embeddings.encode(["x", "y", "z"], fake_model, show_progress=False)
    fake_model.calls = 0
    cache = EmbeddingCache(embeddings.cache_namespace(fake_model))
    again = embeddings.encode(["z", "x", "y"], fake_model, cache=cache, show_progress=False)
    assert fake_model.calls == 0 and (cache.hits, cache.misses) == (3, 0)
    assert np.array_equal(again, first[[2, 0, 1]])


def test_empty_cache_object_is_used_not_skipped(fake_model, tmp_path):
    cache = EmbeddingCache("fake", root=tmp_path)   # empty -> len 0 -> falsy; must still be used
    embeddings.encode(["p"], fake_model, cache=cache, show_progress=False)
    assert len(EmbeddingCache("fake", root=tmp_path)) == 1


def test_cache_false_always_encodes(fake_model):
    embeddings.encode(["q"], fake_model, cache=False, show_progress=False)
    embeddings.encode(["q"], fake_model, cache=False, show_progress=False)
    assert fake_model.calls == 2


def test_interrupted_run_keeps_finished_chunks(fake_model):
    class Failing(type(fake_model)):
        def encode(self, texts, **kw):
            if any(t.startswith("boom") for t in texts):
                raise RuntimeError("killed")
            return super().encode(texts, **kw)

    model = Failing()
    texts = [f"text {i:03d}" for i in range(10)] + ["boom"]   # "boom" is shortest: encoded last
    with pytest.raises(RuntimeError):
        embeddings.encode(texts, model, chunk_size=4, show_progress=False)
    assert len(EmbeddingCache(embeddings.cache_namespace(model))) >= 8


@pytest.mark.parametrize("bad, error, match", [
    ([], ValueError, "empty"),
    ("just one string", TypeError, "not one string"),
    (["ok", 3], TypeError, r"texts\[1\] is int"),
    (["ok", None], TypeError, r"texts\[1\] is NoneType"),
    (42, TypeError, "list of strings"),
])
def test_bad_texts(fake_model, bad, error, match):
    with pytest.raises(error, match=match):
        embeddings.encode(bad, fake_model)


def test_bad_batch_size_and_cache(fake_model):
    with pytest.raises(ValueError, match="batch_size"):
        embeddings.encode(["a"], fake_model, batch_size=0)
    with pytest.raises(TypeError, match="cache must be"):
        embeddings.encode(["a"], fake_model, cache="yes")


def test_input_list_not_modified(fake_model):
    texts = ["b", "a", "b"]
    embeddings.encode(texts, fake_model, show_progress=False)
    assert texts == ["b", "a", "b"]


def test_similarity_functions_against_definitions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 5)), rng.normal(size=(3, 5))
    cos = np.array([[x @ y / np.linalg.norm(x) / np.linalg.norm(y) for y in b] for x in a])
    assert np.allclose(embeddings.cosine_similarity(a, b), cos, atol=1e-5)
    assert np.allclose(embeddings.dot_similarity(a, b), a @ b.T, atol=1e-4)
    assert np.allclose(embeddings.l2_distance(a, b), [[np.linalg.norm(x - y) for y in b] for x in a], atol=1e-5)
    assert np.allclose(embeddings.l1_distance(a, b), [[np.abs(x - y).sum() for y in b] for x in a], atol=1e-4)
    # for unit vectors: |a-b|^2 = 2 - 2 cos
    ua, ub = embeddings.normalize(a), embeddings.normalize(b)
    assert np.allclose(embeddings.l2_distance(ua, ub) ** 2, 2 - 2 * ua @ ub.T, atol=1e-5)


def test_similarity_dimension_mismatch():
    with pytest.raises(ValueError, match="dimension mismatch: 3 vs 4"):
        embeddings.cosine_similarity(np.ones((1, 3)), np.ones((1, 4)))


def test_seed_cache_checks_the_model(fake_model):
    texts = ["one", "two", "three"]
    good = embeddings.encode(texts, fake_model, cache=False, show_progress=False)
    with pytest.raises(ValueError, match="do not match model 'fake-encoder'"):
        embeddings.seed_cache(texts, -good, fake_model)
    assert embeddings.seed_cache(texts, good, fake_model) == 3
    fake_model.calls = 0
    embeddings.encode(texts, fake_model, show_progress=False)
    assert fake_model.calls == 0
    assert embeddings.seed_cache(texts, good, fake_model) == 0   # nothing new, no re-check


@pytest.mark.model
def test_real_model_cosine_is_dot(minilm):
    v = embeddings.encode(["A cat sits on the mat.", "A feline rests on a rug.", "Stocks fell."], minilm,
                          show_progress=False)
    sims = v @ v.T
    assert np.allclose(sims, embeddings.cosine_similarity(v, v), atol=1e-5)
    assert sims[0, 1] > sims[0, 2] + 0.3


@pytest.mark.model
def test_encode_equals_the_model_row_by_row(minilm, tmp_path):
    """Length sorting, chunking, duplicates and a half-warm cache must not misalign rows."""
    texts = ["a short one", "x " * 200 + "a long text that sorts first", "mid length sentence here",
             "a short one", "", "Ünïcödé text with accents — and dashes", "z"]
    cache = EmbeddingCache("rowcheck", root=tmp_path)
    embeddings.encode(texts[2:5], minilm, cache=cache, show_progress=False, chunk_size=2)
    ours = embeddings.encode(texts, minilm, cache=cache, show_progress=False, chunk_size=2)
    reference = embeddings.normalize(np.stack([minilm.encode([t])[0] for t in texts]))
    np.testing.assert_allclose(ours, reference, atol=2e-5)
