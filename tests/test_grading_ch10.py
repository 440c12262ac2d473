"""Chapter 10's exercise checks: typical mistakes fail with a message that names them, and other
correct implementations pass (the generic tests -- solutions pass, notebooks grade -- are in
test_grading.py)."""
import numpy as np
import pytest
from test_grading import _reference

from course_utils.grading import check


# ------------------------------------------------------------------ 10.int8
def _int8(levels=255, rounding=np.rint, offset=128, clip=True, dtype=np.int8, guard=True):
    def quantize_int8(vectors, lo, hi):
        x, lo, hi = (np.asarray(a, np.float64) for a in (vectors, lo, hi))
        scale = (hi - lo) / levels
        with np.errstate(divide="ignore", invalid="ignore"):
            codes = rounding((x - lo) / (np.where(scale > 0, scale, 1.0) if guard else scale))
        codes = np.where(scale > 0, codes, 0.0) - offset if guard else codes - offset
        if clip:
            codes = np.clip(codes, -128, 127)
        return np.nan_to_num(codes).astype(np.int64).astype(dtype)
    return quantize_int8


def _int8_float32(vectors, lo, hi):                   # the same formula in float32 arithmetic
    x, lo, hi = (np.asarray(a, np.float32) for a in (vectors, lo, hi))
    scale = (hi - lo) / np.float32(255)
    codes = np.round((x - lo) / np.where(scale > 0, scale, np.float32(1))) - 128
    return np.clip(np.where(scale > 0, codes, -128), -128, 127).astype(np.int8)


# ------------------------------------------------------------------ 10.binary
def _bits(x, ge=False):
    x = np.asarray(x, np.float64)
    return np.packbits(x >= 0 if ge else x > 0, axis=1)


def _hamming(q, v, ge=False):
    return np.unpackbits(_bits(q, ge)[:, None, :] ^ _bits(v, ge)[None, :, :], axis=-1).sum(-1)


def _binary(rescore=True, ge=False, stable=True, hamming_scores=False):
    def binary_search(queries, vectors, k, n_candidates):
        q, v = np.asarray(queries, np.float64), np.asarray(vectors, np.float64)
        dist = _hamming(q, v, ge)
        if stable:
            cand = np.argsort(dist, axis=1, kind="stable")[:, :n_candidates]
        else:                                         # argpartition: ties at the cut-off in any order
            cand = np.argpartition(dist, n_candidates - 1, axis=1)[:, :n_candidates][:, ::-1]
        scores = np.einsum("qd,qcd->qc", q, v[cand])
        if not rescore:
            cand, scores = cand[:, :k], scores[:, :k]
            return scores, cand
        if hamming_scores:
            return -np.take_along_axis(dist, cand[:, :k], 1).astype(float), cand[:, :k]
        order = np.argsort(-scores, axis=1)[:, :k]
        return np.take_along_axis(scores, order, 1), np.take_along_axis(cand, order, 1)
    return binary_search


def _exact(queries, vectors, k, n_candidates):
    s = np.asarray(queries, float) @ np.asarray(vectors, float).T
    ids = np.argsort(-s, axis=1)[:, :k]
    return np.take_along_axis(s, ids, 1), ids


def _binary_lookup_table(queries, vectors, k, n_candidates):   # popcount by a 256-entry table
    table = np.array([bin(i).count("1") for i in range(256)], np.int32)
    q, v = np.asarray(queries, np.float32), np.asarray(vectors, np.float32)
    dist = table[np.packbits(q > 0, axis=1)[:, None, :] ^ np.packbits(v > 0, axis=1)[None]].sum(-1)
    cand = np.argsort(dist, axis=1, kind="mergesort")[:, :n_candidates]
    s = (q[:, None, :] * v[cand]).sum(-1)
    order = np.argsort(-s, axis=1)[:, :k]
    return np.take_along_axis(s, order, 1), np.take_along_axis(cand, order, 1)


# ------------------------------------------------------------------ 10.backoff
def _backoff(kind=""):
    def backoff_delay(attempt, base, cap, rng, retry_after=None):
        if kind == "two-draws":
            rng.random()
        grow = base * 2 ** (attempt + (kind == "one-based"))
        ceiling = grow if kind == "no-cap" else min(cap, grow)
        u = rng.random()
        delay = {"cap-after": min(cap, u * grow), "equal": ceiling / 2 + u * ceiling / 2,
                 "no-jitter": ceiling}.get(kind, u * ceiling)
        if retry_after is None or kind == "ignore-ra":
            return delay
        if kind == "ra-replaces":
            return retry_after
        return max(delay, retry_after)
    return backoff_delay


def _backoff_uniform(attempt, base, cap, rng, retry_after=None):
    delay = rng.uniform(0, min(cap, base * 2.0 ** attempt))
    return max(delay, retry_after or 0.0)


# ------------------------------------------------------------------ 10.batches
def _batches(strict=False, positions=True, sort=False, check_long=True):
    def make_batches(texts, max_items, max_tokens, count_tokens):
        order = sorted(range(len(texts)), key=lambda i: count_tokens(texts[i])) if sort else range(len(texts))
        out, cur, used = [], [], 0
        for i in order:
            n = count_tokens(texts[i])
            if check_long and n > max_tokens:
                raise ValueError("too long")
            full = len(cur) >= max_items - strict or used + n > max_tokens - strict
            if cur and full:
                out.append(cur)
                cur, used = [], 0
            cur.append(i if positions else texts[i])
            used += n
        return out + ([cur] if cur else [])
    return make_batches


def _from_the_end(texts, max_items, max_tokens, count_tokens):
    """Greedy from the last text backwards: as few batches, but cut in other places."""
    rev = _batches()(list(texts)[::-1], max_items, max_tokens, count_tokens)
    n = len(texts)
    return [[n - 1 - i for i in b][::-1] for b in rev][::-1]


def _binary_faiss(mode):
    """binary_rescore_search variants: no rescoring (Hamming order), only k candidates, exact float search."""
    def fn(doc_vectors, query_vectors, k, rescore_multiplier):
        import faiss
        from sentence_transformers.util import quantize_embeddings
        docs, queries = np.asarray(doc_vectors, np.float32), np.asarray(query_vectors, np.float32)
        if mode == "exact":
            scores = queries @ docs.T
            ids = np.argsort(-scores, axis=1)[:, :k]
            return np.take_along_axis(scores, ids, 1), ids
        index = faiss.IndexBinaryFlat(docs.shape[1])
        index.add(quantize_embeddings(docs, "ubinary"))
        dist, cand = index.search(quantize_embeddings(queries, "ubinary"), k * (1 if mode == "k only" else rescore_multiplier))
        if mode == "no rescoring":
            return -dist[:, :k].astype(np.float32), cand[:, :k]
        scores = np.einsum("qd,qcd->qc", queries, docs[cand])
        order = np.argsort(-scores, axis=1)[:, :k]
        return np.take_along_axis(scores, order, 1), np.take_along_axis(cand, order, 1)
    return fn


_MISTAKES = [
    ("10.int8", _int8(dtype=np.uint8, offset=0), "uint8"),
    ("10.int8", _int8(dtype=np.int16), "dtype int8"),
    ("10.int8", _int8(levels=256), "/ 255, not / 256"),
    ("10.int8", _int8(rounding=np.floor), "do not truncate"),
    ("10.int8", _int8(offset=0, clip=False), "subtract 128"),
    ("10.int8", _int8(clip=False), "must be clipped"),
    ("10.int8", _int8(guard=False), "hi == lo"),
    ("10.binary", _binary(rescore=False), "Hamming order"),
    ("10.binary", _binary(hamming_scores=True), "Hamming distances"),
    ("10.binary", _exact, "exact search"),
    ("10.binary", _binary(ge=True), "(x > 0), not (x >= 0)"),
    ("10.binary", _binary(stable=False), "kind='stable'"),
    ("10.backoff", _backoff("one-based"), "attempt 0"),
    ("10.backoff", _backoff("no-cap"), "never exceed `cap`"),
    ("10.backoff", _backoff("cap-after"), "cap the ceiling before drawing"),
    ("10.backoff", _backoff("equal"), "equal jitter"),
    ("10.backoff", _backoff("no-jitter"), "thundering"),
    ("10.backoff", _backoff("ignore-ra"), "Retry-After was ignored"),
    ("10.backoff", _backoff("ra-replaces"), "is a minimum, not the delay"),
    ("10.backoff", _backoff("two-draws"), "draw exactly one"),
    ("10.backoff", lambda a, b, c, rng, ra=None: np.random.default_rng(0).random() * min(c, b * 2 ** a),
     "draw exactly one"),
    ("10.batches", _batches(strict=True), "<=, not <"),
    ("10.batches", _batches(positions=False), "not the texts"),
    ("10.batches", _batches(sort=True), "the order changed"),
    ("10.batches", _batches(check_long=False), "raise ValueError"),
    ("10.binary_faiss", _binary_faiss("no rescoring"), "rescore the binary candidates"),
    ("10.binary_faiss", _binary_faiss("k only"), "rescored only k candidates"),
    ("10.binary_faiss", _binary_faiss("exact"), "exact results"),
]


@pytest.mark.parametrize("ex, fn, words", _MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(_MISTAKES)])
def test_typical_mistakes_fail_with_a_message_that_names_them(ex, fn, words, capsys):
    result = check(ex, fn, time_limit=120)
    assert result.status == "failed" and words in result.message, result.message
    assert words in capsys.readouterr().out.replace("\n    ", " ")


@pytest.mark.parametrize("ex, fn", [
    ("10.int8", _int8_float32),
    ("10.binary", _binary_lookup_table),
    ("10.backoff", _backoff_uniform),
    ("10.batches", _from_the_end),
], ids=["int8-float32", "binary-lookup-table", "backoff-uniform", "batches-from-the-end"])
def test_other_correct_implementations_pass(ex, fn, capsys):
    assert check(ex, fn), capsys.readouterr().out


def test_the_solutions_are_the_ones_the_notebook_uses():
    assert _reference("10.batches")(["a b", "c", "d e f"], 2, 4, lambda t: len(t.split())) == [[0, 1], [2]]


def test_the_binary_faiss_solution_passes(capsys):
    assert check("10.binary_faiss", _reference("10.binary_faiss"), time_limit=120), capsys.readouterr().out
