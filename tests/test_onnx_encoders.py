"""ONNX encoders: pooling against a naive loop, padding-invariance, agreement with the torch model,
and use through the course's cached `embeddings.encode` under their own model ids."""

import numpy as np
import pytest

import course_utils.embeddings.encoding as encoding_module
from course_utils import embeddings, onnx_encoders
from course_utils.models.onnx_encoders import ONNX_MODELS, load_onnx_encoder, mean_pool

SENTENCES = ["A man is playing a guitar.", "Vitamin D deficiency is linked to bone loss.",
             "Borrowing costs went up after the central bank raised interest rates again today.",
             "Hi."]


@pytest.fixture(scope="module", params=list(ONNX_MODELS))
def encoder(request):
    try:
        return load_onnx_encoder(request.param, threads=1)
    except onnx_encoders.ModelNotInstalledError as err:
        pytest.skip(str(err))


def test_mean_pool_matches_a_loop():
    rng = np.random.default_rng(0)
    states = rng.standard_normal((3, 5, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    naive = np.stack([states[b, :mask[b].sum()].mean(axis=0) for b in range(3)])
    assert np.allclose(mean_pool(states, mask), naive, atol=1e-6)


def test_mean_pool_rejects_bad_shapes():
    with pytest.raises(ValueError, match="expected states"):
        mean_pool(np.zeros((2, 3)), np.ones((2, 3)))


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown ONNX model"):
        load_onnx_encoder("no-such-model")


def test_padding_does_not_change_vectors(encoder):
    alone = np.stack([encoder.encode([s])[0] for s in SENTENCES])
    batched = encoder.encode(SENTENCES, batch_size=4)
    assert batched.shape == (4, 384) and batched.dtype == np.float32
    assert np.allclose(alone, batched, atol=1e-4)


def test_threads_setting(encoder):
    assert encoder.threads == 1
    assert encoder.session.get_session_options().intra_op_num_threads == 1


def test_int8_agrees_with_the_torch_model(minilm):
    enc = load_onnx_encoder("all-MiniLM-L6-v2-onnx-int8", threads=1)
    ref = embeddings.encode(SENTENCES, minilm, cache=False, show_progress=False)
    got = embeddings.encode(SENTENCES, enc, cache=False, show_progress=False)
    assert np.sum(ref * got, axis=1).min() > 0.98


def test_goes_through_the_cache_under_its_own_id(encoder):
    cache_ns = embeddings.cache_namespace(encoder)
    assert cache_ns.startswith(encoder.course_model_id)
    first = embeddings.encode(SENTENCES, encoder, show_progress=False)
    cache = encoding_module._default_cache(cache_ns)
    hits = cache.hits
    again = embeddings.encode(SENTENCES, encoder, show_progress=False)
    assert np.array_equal(first, again) and cache.hits - hits == len(SENTENCES)
    assert np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)
