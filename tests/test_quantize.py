"""Embedding quantisation: every fast path against a naive implementation, on seeded data."""

import numpy as np
import pytest

from course_utils import quantize as q
from course_utils.search import exact_search_numpy


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((20, 64))
    docs = centres[rng.integers(0, 20, 500)] + 0.5 * rng.standard_normal((500, 64))
    queries = centres[rng.integers(0, 20, 15)] + 0.5 * rng.standard_normal((15, 64))
    unit = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return unit(queries), unit(docs)


@pytest.mark.parametrize("d", [8, 64, 100])   # 100 bits: not a multiple of 64, the byte path
def test_hamming_matches_naive(d):
    rng = np.random.default_rng(d)
    a, b = q.binarize(rng.standard_normal((7, d))), q.binarize(rng.standard_normal((11, d)))
    assert np.array_equal(q.hamming_distances(a, b), q.hamming_distances_naive(a, b))


def test_binarize_is_sign_bits():
    x = np.array([[0.3, -0.2, 0.0, 1.0, -1.0, 2.0, -3.0, 0.1, 0.5]])
    assert np.array_equal(np.unpackbits(q.binarize(x), axis=1)[0, :9], (x[0] > 0).astype(np.uint8))


def test_hamming_search_matches_argsort(data):
    queries, docs = data
    qb, db = q.binarize(queries), q.binarize(docs)
    hits = q.hamming_search(qb, db, 10)
    dist = q.hamming_distances_naive(qb, db)
    expected = np.lexsort((np.arange(500)[None, :].repeat(15, 0), dist), axis=1)[:, :10]
    assert np.array_equal(hits.ids, expected)
    assert np.array_equal(-hits.scores, np.take_along_axis(dist, expected, 1))


@pytest.mark.filterwarnings("ignore:.*not L2-normalised")
def test_int8_roundtrip_and_search(data):
    queries, docs = data
    codes = q.quantize_int8(docs)
    assert codes.codes.dtype == np.int8
    assert np.abs(q.dequantize_int8(codes) - docs).max() <= codes.scale.max() / 2 + 1e-6
    fast = q.int8_search(queries, codes, 10)
    naive = exact_search_numpy(queries, q.dequantize_int8(codes), 10)
    assert np.allclose(fast.scores, naive.scores, atol=1e-4)
    assert q.neighbour_recall(fast, exact_search_numpy(queries, docs, 10)) > 0.9


def test_int8_calibration_clips_outliers():
    calib = np.array([[0.0, 0.0], [1.0, 1.0]])
    codes = q.quantize_int8(np.array([[2.0, -1.0]]), calibration=calib)
    assert codes.codes.tolist() == [[127, -128]]


def test_rescoring_recovers_recall(data):
    queries, docs = data
    exact = exact_search_numpy(queries, docs, 10)
    bits = q.binarize(docs)
    binary = q.neighbour_recall(q.hamming_search(q.binarize(queries), bits, 10), exact)
    rescored = q.rescore_search(queries, bits, docs, 10, candidates=100)
    assert q.neighbour_recall(rescored, exact) >= binary
    full = q.rescore_search(queries, bits, docs, 10, candidates=500)   # all docs: exact again
    assert np.array_equal(full.ids, exact.ids)
    assert np.allclose(full.scores, exact.scores, atol=1e-6)


def test_rescore_needs_enough_candidates(data):
    queries, docs = data
    with pytest.raises(ValueError, match="candidates"):
        q.rescore_search(queries, q.binarize(docs), docs, 10, candidates=5)


def test_k_larger_than_n_pads():
    hits = q.hamming_search(q.binarize(np.ones((1, 8))), q.binarize(np.ones((2, 8))), 4)
    assert hits.ids.tolist() == [[0, 1, -1, -1]] and np.isinf(hits.scores[0, 2])


def test_bad_bits_are_rejected():
    with pytest.raises(TypeError, match="packed bits"):
        q.hamming_distances(np.zeros((2, 8), np.float32), np.zeros((2, 8), np.uint8))


def test_float16_and_memory():
    x = np.random.default_rng(1).standard_normal((4, 384)).astype(np.float32)
    assert np.abs(q.to_float16(x).astype(np.float32) - x).max() < 5e-3
    sizes = q.bytes_per_vector(384)
    assert sizes["float32"] / sizes["binary"] == 32 and sizes["float16"] == q.to_float16(x)[0].nbytes
