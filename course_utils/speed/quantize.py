"""Embedding quantisation for storage: float16, int8 and binary vectors, and what they cost.

float32 (4 bytes/dim) → float16 (2) → int8 (1, per-dimension scale calibrated on a sample) →
binary (1 bit/dim: the sign of each coordinate, 32× smaller). Binary vectors are compared by
Hamming distance (XOR + popcount, a few CPU instructions per 64 dimensions); the top-N candidates
are then *rescored* with more precise vectors, which recovers most of the lost recall.
(Binary + rescoring: Yamada et al. 2021, "Efficient Passage Retrieval with Hashing"; int8 with
calibrated ranges: Jacob et al. 2018; both as in sentence-transformers' `quantize_embeddings`.)

Results are `Hits(scores, ids)` of shape (n_queries, k), best first, ties by the smaller id.

>>> bits = binarize(np.array([[0.5, -0.1, 0.2, -0.3]]))
>>> bits.shape, bits.dtype, int(bits[0, 0])          # 1010 padded to a byte -> 0b10100000
((1, 1), dtype('uint8'), 160)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from course_utils.ann.indexes import neighbour_recall  # re-exported for chapter 10
from course_utils.search.hits import Hits, as_matrix, check_dims, check_k, topk

__all__ = ["Int8Codes", "to_float16", "calibrate_int8", "quantize_int8", "dequantize_int8",
           "binarize", "hamming_distances", "hamming_distances_naive", "hamming_search",
           "int8_search", "rescore_search", "neighbour_recall", "bytes_per_vector"]


class Int8Codes(NamedTuple):
    """int8 codes (n, d) and the per-dimension `scale`, `offset` (d,): x ≈ codes * scale + offset."""

    codes: np.ndarray
    scale: np.ndarray
    offset: np.ndarray


def to_float16(vectors) -> np.ndarray:
    """float16 copy of float32 vectors (n, d): half the memory, ~3 significant digits.

    >>> to_float16(np.array([[0.1, 0.2]])).dtype
    dtype('float16')
    """
    return as_matrix(vectors, "vectors").astype(np.float16)


def calibrate_int8(calibration) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension (scale, low) mapping [min, max] of a calibration sample (n, d) onto
    the 256 int8 levels -128..127.

    >>> scale, low = calibrate_int8(np.array([[-1.0, 0.0], [1.0, 2.0]]))
    >>> np.round(scale * 255, 3).tolist(), low.tolist()
    ([2.0, 2.0], [-1.0, 0.0])
    """
    calibration = as_matrix(calibration, "calibration")
    low, high = calibration.min(axis=0), calibration.max(axis=0)
    scale = np.where(high > low, (high - low) / 255.0, 1.0).astype(np.float32)
    return scale, low.astype(np.float32)


def quantize_int8(vectors, calibration=None) -> Int8Codes:
    """int8 codes of vectors (n, d), ranges calibrated on `calibration` (default: the vectors
    themselves). Values outside the calibrated range are clipped.

    >>> q = quantize_int8(np.array([[-1.0, 0.0], [1.0, 2.0]]))
    >>> q.codes.tolist()
    [[-128, -128], [127, 127]]
    """
    vectors = as_matrix(vectors, "vectors")
    scale, low = calibrate_int8(vectors if calibration is None else calibration)
    check_dims(vectors, scale.shape[0], "calibration vectors")
    codes = np.clip(np.rint((vectors - low) / scale) - 128, -128, 127).astype(np.int8)
    return Int8Codes(codes, scale, low + 128 * scale)


def dequantize_int8(q: Int8Codes) -> np.ndarray:
    """float32 approximation (n, d) of the vectors behind `q`."""
    return q.codes.astype(np.float32) * q.scale + q.offset


def binarize(vectors) -> np.ndarray:
    """Sign bits (x > 0) of vectors (n, d), packed 8 per byte: uint8 (n, ceil(d / 8)).

    >>> binarize(np.array([[1.0, -1.0] * 4])).tolist()
    [[170]]
    """
    return np.packbits(as_matrix(vectors, "vectors") > 0, axis=1)


def hamming_distances(a_bits: np.ndarray, b_bits: np.ndarray) -> np.ndarray:
    """Hamming distances (len(a), len(b)) between packed bit rows (uint8, same width): XOR then
    popcount, done on 64-bit words when the width allows it.

    >>> hamming_distances(np.array([[0b1111]], np.uint8), np.array([[0b0101], [0]], np.uint8))
    array([[2, 4]])
    """
    a_bits, b_bits = _check_bits(a_bits, "a_bits"), _check_bits(b_bits, "b_bits")
    if a_bits.shape[1] != b_bits.shape[1]:
        raise ValueError(f"bit widths differ: {a_bits.shape[1]} vs {b_bits.shape[1]} bytes")
    if a_bits.shape[1] % 8 == 0:  # view as uint64 words: 8x fewer XORs and popcounts
        a_bits, b_bits = a_bits.view(np.uint64), b_bits.view(np.uint64)
    out = np.empty((a_bits.shape[0], b_bits.shape[0]), dtype=np.int64)
    for i, row in enumerate(a_bits):
        out[i] = np.bitwise_count(np.bitwise_xor(row, b_bits)).sum(axis=1)
    return out


def hamming_distances_naive(a_bits: np.ndarray, b_bits: np.ndarray) -> np.ndarray:
    """Reference: unpack to booleans and count the differing positions (slow, obviously right)."""
    a, b = np.unpackbits(a_bits, axis=1).astype(bool), np.unpackbits(b_bits, axis=1).astype(bool)
    return (a[:, None, :] != b[None, :, :]).sum(axis=2)


def _check_bits(bits, name: str) -> np.ndarray:
    bits = np.asarray(bits)
    if bits.dtype != np.uint8 or bits.ndim != 2:
        raise TypeError(f"{name} must be packed bits: uint8 of shape (n, d/8) from binarize(), "
                        f"got {bits.dtype} {bits.shape}")
    return np.ascontiguousarray(bits)


def _top_k(scores: np.ndarray, k: int, ids: np.ndarray) -> Hits:
    """Best k per row of `scores` (higher is better) labelled by `ids`, ties by the smaller id;
    pads with -1/-inf."""
    n, m = scores.shape
    ids = np.broadcast_to(ids, scores.shape)
    order = np.lexsort((ids, -scores), axis=1)[:, :k]
    top_s = np.take_along_axis(scores, order, 1).astype(np.float32)
    top_i = np.take_along_axis(ids, order, 1).astype(np.int64)
    if k > m:
        top_s = np.hstack([top_s, np.full((n, k - m), -np.inf, np.float32)])
        top_i = np.hstack([top_i, np.full((n, k - m), -1, np.int64)])
    return Hits(top_s, top_i)


def hamming_search(query_bits, doc_bits, k: int) -> Hits:
    """Top-k documents by smallest Hamming distance; scores = -distance.

    >>> hamming_search(np.array([[255]], np.uint8), np.array([[0], [254]], np.uint8), 1).ids
    array([[1]])
    """
    k = check_k(k)
    return topk(-hamming_distances(query_bits, doc_bits).astype(np.float32), k)


def int8_search(queries, q: Int8Codes, k: int) -> Hits:
    """Top-k by inner product of float32 queries with int8-coded documents, without dequantising
    the collection: q·x ≈ (q * scale)·codes + q·offset."""
    queries, k = as_matrix(queries, "queries"), check_k(k)
    check_dims(queries, q.codes.shape[1], "int8 codes")
    scores = (queries * q.scale) @ q.codes.T.astype(np.float32) + (queries @ q.offset)[:, None]
    return topk(scores, k)


def rescore_search(queries, doc_bits, rescore_vectors, k: int, candidates: int = 100) -> Hits:
    """Binary search for `candidates` per query, then rescore those with `rescore_vectors`
    (float32/float16 (n, d), e.g. kept on disk) by inner product and keep the best k."""
    queries, k = as_matrix(queries, "queries"), check_k(k)
    if candidates < k:
        raise ValueError(f"candidates ({candidates}) must be >= k ({k}): rescoring can only "
                         "re-order the candidates it gets")
    cand = hamming_search(binarize(queries), doc_bits, candidates).ids
    out_s, out_i = [], []
    for row, ids in zip(queries, cand):
        ids = ids[ids >= 0]
        scores = np.asarray(rescore_vectors[ids], np.float32) @ row
        hits = _top_k(scores[None, :], k, ids[None, :])
        out_s.append(hits.scores[0]), out_i.append(hits.ids[0])
    return Hits(np.stack(out_s), np.stack(out_i))


def bytes_per_vector(d: int) -> dict[str, float]:
    """Storage of one d-dimensional vector in each format (int8 ranges and overhead not counted).

    >>> bytes_per_vector(384)
    {'float32': 1536, 'float16': 768, 'int8': 384, 'binary': 48}
    """
    return {"float32": 4 * d, "float16": 2 * d, "int8": d, "binary": (d + 7) // 8}
