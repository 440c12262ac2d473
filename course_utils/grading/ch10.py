"""Hidden test cases of chapter 10's exercises (solutions/10_fast_embeddings_exercises.ipynb).

Exercises: scalar int8 quantisation with per-dimension calibration (`quantize_int8`), binary
quantisation with Hamming search and float rescoring (`binary_search`), exponential backoff with
full jitter that honours Retry-After (`backoff_delay`, random numbers from a scripted fake RNG),
and batching texts under item and token limits (`make_batches`). Reference answers are computed
here at check time from seeded inputs; a wrong answer that matches a known mistake (uint8 codes,
no clipping, 256 levels, no rescoring, ties broken arbitrarily, attempts counted from 1, the cap
applied after the jitter, `<` where `<=` belongs...) gets a message that names it.
"""
from __future__ import annotations

import numpy as np

from .cases import Case, Exercise, Fail, as_array, call, expect_hits, held_back
from .vectors import scifact_vectors


def _rng(n: int) -> np.random.Generator:
    return np.random.default_rng(10_000 + n)


def _unit(x) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _topical(seed: int, n: int, d: int, topics: int = 8, spread: float = 0.8) -> np.ndarray:
    """Unit vectors around a few directions, like real embeddings (float32)."""
    rng = _rng(seed)
    centres = rng.normal(size=(topics, d))
    return _unit(centres[rng.integers(0, topics, n)] + spread * rng.normal(size=(n, d))).astype(np.float32)


# --- 10.int8: codes = clip(round((x - lo) / scale) - 128, -128, 127), scale = (hi - lo) / 255 --
def _q8(x, lo, hi, levels=255, rounding=np.rint, offset=128, clip=True):
    x, lo, hi = (np.asarray(a, np.float64) for a in (x, lo, hi))
    scale = (hi - lo) / levels
    ok = scale > 0
    codes = np.where(ok, rounding((x - lo) / np.where(ok, scale, 1.0)), 0.0) - offset
    return np.clip(codes, -128, 127) if clip else codes


def _wrap(codes) -> np.ndarray:
    """What int8 storage makes of out-of-range integers (they wrap around)."""
    return np.asarray(codes, np.int64).astype(np.int8).astype(np.int64)


def _close_codes(got, want) -> bool:
    """Equal, except a rounding tie broken the other way in at most 0.1% of the codes."""
    diff = np.abs(np.asarray(got, np.int64) - np.asarray(want, np.int64))
    return diff.max(initial=0) <= 1 and np.count_nonzero(diff) <= max(1, 0.001 * diff.size)


_INT8_MISTAKES = (
    (lambda x, lo, hi: _q8(x, lo, hi, levels=256),
     "the 256 codes -128..127 have 255 steps between them: scale = (hi - lo) / 255, not / 256"),
    (lambda x, lo, hi: _q8(x, lo, hi, rounding=np.floor),
     "round to the nearest code (np.rint or np.round), do not truncate: truncation doubles the worst "
     "error and biases every value downwards"),
    (lambda x, lo, hi: _wrap(_q8(x, lo, hi, offset=0, clip=False).clip(0, 255)),
     "the codes 0..255 do not fit in int8 (they wrapped around): subtract 128, so lo maps to -128 "
     "and hi to 127"),
    (lambda x, lo, hi: _wrap(_q8(x, lo, hi, clip=False)),
     "values outside [lo, hi] must be clipped to -128 and 127 (np.clip before casting): otherwise "
     "they wrap around and a large value becomes a very small one"),
)


def _int8_case(vectors, lo, hi):
    def run(fn):
        out = call(fn, vectors, lo, hi, names=("vectors", "lo", "hi"))
        want = _q8(vectors, lo, hi).astype(np.int64)
        if out is None:
            raise Fail("the result is None: did you forget `return`?")
        if not isinstance(out, np.ndarray):
            raise Fail(f"return a numpy array of dtype int8, got a {type(out).__name__}")
        if out.shape != want.shape:
            raise Fail(f"the codes have shape {out.shape}; expected one code per value, {want.shape}")
        if out.dtype == np.uint8:
            raise Fail("the codes are uint8: this exercise uses int8 codes -128..127 (subtract 128 and "
                       "cast with .astype(np.int8)), the layout of int8 vector indexes")
        if out.dtype != np.int8:
            raise Fail(f"the codes must have dtype int8 (one byte each: the point of quantising), got {out.dtype}")
        got = out.astype(np.int64)
        if _close_codes(got, want):
            return
        x = np.asarray(vectors, np.float64)
        flat = np.asarray(hi, np.float64) == np.asarray(lo, np.float64)
        if flat.any() and (got[:, flat] != -128).any():
            raise Fail("a dimension with hi == lo (constant in the calibration data) must get code "
                       "-128 everywhere; dividing by its zero scale gives nan or inf")
        for wrong, message in _INT8_MISTAKES:
            other = wrong(vectors, lo, hi)
            if not _close_codes(other, want) and _close_codes(got, other):
                raise Fail(message)
        outside = (x < np.asarray(lo)) | (x > np.asarray(hi))
        if outside.any() and _close_codes(got[~outside], want[~outside]):
            raise Fail("values outside [lo, hi] must be clipped to -128 and 127")
        raise Fail(f"{int(np.count_nonzero(got != want))} of {want.size} codes are wrong")
    return run


_cal = _topical(1, 400, 32)
_lo, _hi = _cal.min(axis=0), _cal.max(axis=0)
_flat = _rng(2).normal(size=(20, 6))
_flat[:, 2] = 0.5
_big = _topical(3, 600, 384)
INT8 = Exercise(
    "10.int8", "scalar int8 quantisation", "quantize_int8",
    ("Each dimension j gets its own step: scale_j = (hi_j - lo_j) / 255. A value x maps to round((x - "
     "lo_j) / scale_j), a number 0..255; subtract 128 to land in int8's -128..127, clip values that "
     "fall outside [lo, hi], and cast to np.int8.",
     "Work in float64 with lo and hi broadcast over the rows. Where hi == lo the step is 0: divide by a "
     "safe step of 1 there (`np.where`) and give those codes -128. `np.rint` rounds, `np.clip` keeps "
     "the codes inside -128..127, and `astype(np.int8)` stores them."),
    (Case("2 vectors of 2 dimensions, easy to check by hand", _int8_case(
        np.array([[0.0, -1.0], [1.0, 1.0], [0.25, 0.1]]), np.array([0.0, -1.0]), np.array([1.0, 1.0]))),
     Case("calibrated on the same 400 vectors (every value inside [lo, hi])", _int8_case(_cal, _lo, _hi)),
     Case("values outside the calibration range", _int8_case(_topical(4, 200, 32, spread=1.5), _lo, _hi)),
     Case("a constant dimension (hi == lo)", _int8_case(_flat, _flat.min(axis=0), _flat.max(axis=0))),
     Case("Python lists as input", _int8_case([[0.1, 0.8, -0.3]], [-1.0, 0.0, -0.5], [1.0, 1.0, 0.5])),
     Case("600 embeddings of 384 dimensions (float32)", _int8_case(_big, _big.min(axis=0), _big.max(axis=0)))),
    points=2,
)


# --- 10.binary: sign bits, Hamming top-n_candidates (stable), float rescoring, top-k ----------
def _packed(x, ge=False):
    x = np.asarray(x, np.float64)
    return np.packbits(x >= 0 if ge else x > 0, axis=1)


def _hamming(qb, vb) -> np.ndarray:
    return np.unpackbits(qb[:, None, :] ^ vb[None, :, :], axis=-1).sum(axis=-1, dtype=np.int64)


def _candidates(queries, vectors, n_cand, ge=False) -> np.ndarray:
    dist = _hamming(_packed(queries, ge), _packed(vectors, ge))
    return np.argsort(dist, axis=1, kind="stable")[:, :n_cand]


def _rescored(queries, vectors, cand, k):
    q, v = np.asarray(queries, np.float64), np.asarray(vectors, np.float64)
    scores = np.einsum("qd,qcd->qc", q, v[cand])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, 1), np.take_along_axis(cand, order, 1)


def _pair(out):
    if out is None:
        raise Fail("the result is None: did you forget `return`?")
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Fail(f"return a pair `scores, ids` (two arrays), got a {type(out).__name__}")
    return out


def _binary_case(queries, vectors, k, n_cand):
    def run(fn):
        scores_out, ids_out = _pair(call(fn, queries, vectors, k, n_cand,
                                         names=("queries", "vectors", "k", "n_candidates")))
        ids = np.asarray(ids_out)
        if ids.dtype.kind == "f" and np.asarray(scores_out).dtype.kind in "iu":
            raise Fail("return `scores, ids` in that order (as FAISS's `D, I = index.search(...)`)")
        if ids.dtype.kind not in "iu":
            raise Fail(f"ids must be an integer array (row positions), got dtype {ids.dtype}")
        scores = as_array(scores_out, "the scores")
        nq = len(queries)
        for name, arr in (("scores", scores), ("ids", ids)):
            if arr.shape != (nq, k):
                raise Fail(f"{name} has shape {arr.shape}, expected (n_queries, k) = {(nq, k)}")
        q, v = np.asarray(queries, np.float64), np.asarray(vectors, np.float64)
        if (ids < 0).any() or (ids >= len(v)).any():
            raise Fail(f"some ids are not row positions of `vectors` (0 to {len(v) - 1})")
        true = np.einsum("qd,qkd->qk", q, v[ids])
        if np.allclose(scores, -_hamming(_packed(q), _packed(v))[np.arange(nq)[:, None], ids]) or \
                np.allclose(scores, _hamming(_packed(q), _packed(v))[np.arange(nq)[:, None], ids]):
            raise Fail("the scores are Hamming distances: after picking the candidates, score them with "
                       "the float vectors (dot product) and return those scores")
        if not np.allclose(scores, true, atol=1e-4):
            raise Fail("the scores do not belong to the ids next to them: scores[i, j] must be the dot "
                       "product of query i and vectors[ids[i, j]] (the float vectors)")
        cand = _candidates(q, v, n_cand)
        want_scores, _ = _rescored(q, v, cand, k)
        if np.allclose(scores, want_scores, atol=1e-5):
            return
        hamming_first = cand[:, :k]
        if np.array_equal(ids, hamming_first):
            raise Fail("you returned the first k candidates in Hamming order: rescore all n_candidates "
                       "with the float vectors and keep the k best by that score")
        if (np.diff(scores, axis=1) > 1e-6).any():
            raise Fail("the results are not sorted best first (decreasing float score)")
        exact = -np.sort(-(q @ v.T), axis=1)[:, :k]
        if np.allclose(scores, exact, atol=1e-5):
            raise Fail("you searched every vector with the float scores (exact search): score only "
                       "the n_candidates that are nearest in Hamming distance")
        if (q == 0).any() or (v == 0).any():
            ge = _rescored(q, v, _candidates(q, v, n_cand, ge=True), k)[0]
            if np.allclose(scores, ge, atol=1e-5):
                raise Fail("a value of exactly 0 must give bit 0: the bit is (x > 0), not (x >= 0)")
        if not all(set(r) <= set(c) for r, c in zip(ids.tolist(), cand.tolist())):
            raise Fail("some results are not among the n_candidates nearest in Hamming distance: with "
                       "equal distances keep the smaller ids (np.argsort(dist, kind='stable')), not "
                       "argpartition's arbitrary order")
        raise Fail("the k results are not the k best-scoring candidates")
    return run


def _with_zeros(seed, n, d):
    x = _rng(seed).normal(size=(n, d)).round(0)           # many exact zeros
    x[np.all(x == 0, axis=1), 0] = 1.0
    return x


_docs = _topical(10, 3000, 384)
BINARY = Exercise(
    "10.binary", "binary quantisation with rescoring", "binary_search",
    ("Turn every vector into bits, 1 where a value is > 0, packed 8 per byte with np.packbits(..., "
     "axis=1). The Hamming distance between two codes is the number of 1 bits in their XOR. Take the "
     "n_candidates documents nearest in Hamming distance (ties: smaller id first), score just those "
     "with the float vectors, and return the k best, best first.",
     "`np.packbits` of the boolean array (values > 0) along axis 1 makes the codes. Broadcasting the "
     "query codes against the document codes with XOR (`^`), then `np.unpackbits` and a sum over the "
     "bits, gives every Hamming distance; a stable `np.argsort` picks the candidates. Rescore them with "
     "`np.einsum` and order with `np.take_along_axis`."),
    (Case("2 queries, 12 vectors of 16 dimensions, k = 3 of 6 candidates",
          _binary_case(_topical(11, 2, 16), _topical(12, 12, 16), 3, 6)),
     Case("n_candidates = k (the rescoring only sorts)", _binary_case(_topical(13, 4, 32), _topical(14, 50, 32), 5, 5)),
     Case("n_candidates = every vector (rescoring = exact search)",
          _binary_case(_topical(15, 3, 24), _topical(16, 40, 24), 4, 40)),
     Case("8 dimensions: many equal Hamming distances, also at the candidate cut-off",
          _binary_case(_rng(17).normal(size=(5, 8)), _rng(18).normal(size=(200, 8)), 5, 20)),
     Case("20 dimensions (not a multiple of 8)", _binary_case(_topical(19, 3, 20), _topical(20, 60, 20), 3, 10)),
     Case("values that are exactly 0", _binary_case(_with_zeros(21, 3, 16), _with_zeros(22, 80, 16), 3, 8)),
     Case("30 queries, 3,000 embeddings of 384 dimensions, k = 10 of 100 candidates",
          _binary_case(_topical(23, 30, 384), _docs, 10, 100))),
    points=2,
)


# --- 10.backoff: delay = U * min(cap, base * 2 ** attempt), at least Retry-After --------------
class _ScriptedRng:
    """A fake RNG: random() and uniform(a, b) draw from a fixed list of numbers in [0, 1)."""

    def __init__(self, values):
        self.values, self.draws = list(values), 0

    def random(self):
        value = self.values[self.draws % len(self.values)]
        self.draws += 1
        return value

    def uniform(self, low=0.0, high=1.0):
        return low + (high - low) * self.random()


def _delay(attempt, base, cap, u, retry_after=None, variant=""):
    grow = base * 2 ** (attempt + (variant == "one-based"))
    ceiling = grow if variant == "no-cap" else min(cap, grow)
    if variant == "cap-after":
        delay = min(cap, u * grow)
    elif variant == "equal":
        delay = ceiling / 2 + u * ceiling / 2
    elif variant == "no-jitter":
        delay = ceiling
    else:
        delay = u * ceiling
    if retry_after is None or variant == "ignore-ra":
        return delay
    if variant == "ra-replaces":
        return float(retry_after)
    if variant == "ra-added":
        return delay + retry_after
    return max(delay, retry_after)


_BACKOFF_MISTAKES = (
    ("one-based", "the first retry is attempt 0 and may wait up to `base`: the ceiling is "
                  "base * 2 ** attempt (you doubled once too often)"),
    ("no-cap", "the ceiling must never exceed `cap`: min(cap, base * 2 ** attempt)"),
    ("cap-after", "cap the ceiling before drawing, min(cap, base * 2 ** attempt), and then draw uniformly "
                  "below it; capping the drawn delay makes many clients wait exactly `cap` together"),
    ("equal", "that is 'equal jitter' (half the ceiling plus a random half); this exercise uses full "
              "jitter: a uniform draw between 0 and the ceiling"),
    ("no-jitter", "without jitter every client that failed together retries together (a thundering "
                  "herd): multiply the ceiling by a uniform random number in [0, 1)"),
    ("ignore-ra", "the server's Retry-After was ignored: never retry sooner than it says"),
    ("ra-replaces", "Retry-After is a minimum, not the delay: return max(jittered delay, retry_after)"),
    ("ra-added", "Retry-After is a minimum, not an extra wait: return max(jittered delay, retry_after), "
                 "not their sum"),
)


def _backoff_case(calls, values):
    """calls: (attempt, base, cap, retry_after) per call; one scripted RNG shared by all calls."""
    def run(fn):
        rng, got, want, us = _ScriptedRng(values), [], [], []
        for attempt, base, cap, retry_after in calls:
            before = rng.draws
            try:
                out = fn(attempt, base, cap, rng, retry_after)
            except AttributeError as err:
                raise Fail(f"the rng here offers rng.random() and rng.uniform(low, high) only ({err})") from None
            drawn = rng.draws - before
            if drawn != 1:
                raise Fail(f"one call drew {drawn} random numbers: draw exactly one per call (also when "
                           "retry_after is given), so a seeded client replays the same delays")
            arr = as_array(out, "the delay")
            if arr.size != 1:
                raise Fail(f"return one number (seconds), got shape {arr.shape}")
            u = values[before % len(values)]
            us.append(u)
            got.append(float(arr.reshape(())))
            want.append(_delay(attempt, base, cap, u, retry_after))
        if np.allclose(got, want, rtol=1e-9, atol=1e-12):
            return
        for variant, message in _BACKOFF_MISTAKES:
            other = [_delay(a, b, c, u, ra, variant) for (a, b, c, ra), u in zip(calls, us)]
            if not np.allclose(other, want, rtol=1e-9, atol=1e-12) and np.allclose(got, other, rtol=1e-9, atol=1e-12):
                raise Fail(message)
        if any(g < 0 for g in got):
            raise Fail("a delay is negative")
        wrong = next(i for i, (g, w) in enumerate(zip(got, want)) if abs(g - w) > 1e-9 * max(1, abs(w)))
        raise Fail(f"call {wrong + 1} of {len(calls)} returned a wrong delay")
    return run


_U = [0.5, 0.25, 0.75, 0.125, 0.9, 0.6, 0.3]
BACKOFF = Exercise(
    "10.backoff", "exponential backoff with full jitter", "backoff_delay",
    ("The ceiling doubles with every retry and stops at cap: the smaller of cap and base times 2 to the "
     "power attempt, attempt 0 being the first retry. Full jitter waits a uniform random time between 0 "
     "and the ceiling (one draw from rng). If the server sent Retry-After, never wait less than that.",
     "`rng.random()` is uniform in [0, 1): scale it by the ceiling. Draw it before looking at "
     "retry_after, so every call draws exactly once, then let Retry-After raise the delay with `max` "
     "when it is given (it may be None)."),
    (Case("attempts 0 to 5, the cap far away", _backoff_case([(a, 1.0, 100.0, None) for a in range(6)], _U)),
     Case("attempts 3 to 9: the cap is reached", _backoff_case([(a, 0.5, 8.0, None) for a in range(3, 10)], _U)),
     Case("random numbers at the edges (0.0 and 0.999)",
          _backoff_case([(2, 1.0, 30.0, None), (4, 1.0, 30.0, None)], [0.0, 0.999])),
     Case("Retry-After longer than the jittered delay", _backoff_case([(0, 0.5, 10.0, 3.0), (1, 0.5, 10.0, 2.5)], _U)),
     Case("Retry-After shorter than the jittered delay",
          _backoff_case([(5, 1.0, 60.0, 0.5), (4, 2.0, 60.0, 1.0)], [0.9, 0.8])),
     Case("Retry-After of 0 seconds, and no Retry-After",
          _backoff_case([(2, 1.0, 60.0, 0.0), (2, 1.0, 60.0, None)], [0.4, 0.4])),
     Case("attempt 60 (a client that kept retrying for a long time)",
          _backoff_case([(60, 0.1, 20.0, None), (61, 0.1, 20.0, None)], [0.33, 0.66]))),
    points=1,
)


# --- 10.batches: contiguous batches under max_items and max_tokens, order kept ---------------
def _greedy(counts, max_items, max_tokens, strict=False):
    out, cur, used = [], [], 0
    for i, n in enumerate(counts):
        full = len(cur) >= max_items - strict or used + n > max_tokens - strict
        if cur and full:
            out.append(cur)
            cur, used = [], 0
        cur.append(i)
        used += n
    return out + ([cur] if cur else [])


def _words(text: str) -> int:
    return len(text.split())


def _batches_case(texts, max_items, max_tokens, count_tokens=_words):
    def run(fn):
        counts = [count_tokens(t) for t in texts]
        out = call(fn, texts, max_items, max_tokens, count_tokens,
                   names=("texts", "max_items", "max_tokens", "count_tokens"))
        if out is None:
            raise Fail("the result is None: did you forget `return`?")
        try:
            batches = [list(b) for b in out]
        except TypeError:
            raise Fail(f"return a list of batches, each a list of positions; got {type(out).__name__}") from None
        if any(isinstance(i, str) for b in batches for i in b):
            raise Fail("a batch must hold the texts' positions (0, 1, 2, ...), not the texts: positions "
                       "let the caller put the vectors back in order")
        try:
            batches = [[int(i) for i in b] for b in batches]
        except (TypeError, ValueError):
            raise Fail("each batch must be a list of integer positions") from None
        flat = [i for b in batches for i in b]
        if sorted(flat) != list(range(len(texts))):
            lost = len(set(range(len(texts))) - set(flat))
            raise Fail(f"every text must be in exactly one batch: {lost} missing, "
                       f"{len(flat) - len(set(flat))} repeated" if lost or len(flat) != len(set(flat))
                       else "the batches hold positions that do not exist")
        if flat != list(range(len(texts))):
            raise Fail("the order changed: read the batches one after the other and you must get "
                       "0, 1, 2, ... -- never reorder texts (the vectors must come back in order)")
        if any(not b for b in batches):
            raise Fail("an empty batch: every request must carry at least one text")
        if any(len(b) > max_items for b in batches):
            raise Fail(f"a batch holds more than max_items = {max_items} texts")
        if any(sum(counts[i] for i in b) > max_tokens for b in batches):
            raise Fail("a batch holds more than max_tokens tokens in total (count each text with "
                       "count_tokens; the API would refuse the request)")
        best = len(_greedy(counts, max_items, max_tokens))
        if len(batches) > best:
            if len(batches) == len(_greedy(counts, max_items, max_tokens, strict=True)):
                raise Fail("a batch may hold exactly max_items texts and exactly max_tokens tokens "
                           "(<=, not <): you started a new batch too early")
            raise Fail(f"{len(batches)} batches where {best} suffice: keep adding texts to the current "
                       "batch while both limits allow it")
    return run


def _too_long(fn):
    texts = ["short text", "this one is far too long for the limit of five tokens", "ok"]
    try:
        out = call(fn, texts, 4, 5, _words, names=("texts", "max_items", "max_tokens", "count_tokens"))
    except ValueError:
        return
    raise Fail("a text longer than max_tokens can never be sent, whole or in a batch: raise ValueError "
               f"(saying which text) instead of returning {type(out).__name__}")


_lengths = _rng(30).integers(1, 40, 300)
_many = [" ".join(["w"] * int(n)) for n in _lengths]
BATCHES = Exercise(
    "10.batches", "batching under item and token limits", "make_batches",
    ("Walk through the texts in order, keeping a current batch and its token total. Before adding a "
     "text, check whether it still fits: fewer than max_items texts in the batch and total + its tokens "
     "<= max_tokens. If not, close the batch and start a new one with this text. A text that alone "
     "exceeds max_tokens raises ValueError.",
     "Keep the current batch (a list of positions) and its token total. For each text, count its tokens "
     "once; raise ValueError for a text above max_tokens; close the current batch (when it is not "
     "empty) if it already holds max_items texts or this text would push it over max_tokens. After the "
     "loop, the last batch still has to be appended."),
    (Case("5 texts, the item limit binds", _batches_case(["a b", "c", "d e f", "g", "h"], 2, 100)),
     Case("the token limit binds", _batches_case(["one two three", "four five", "six", "seven eight nine ten"], 10, 5)),
     Case("a batch that is exactly full (max_tokens and max_items reached together)",
          _batches_case(["a b", "c d", "e f g h", "i"], 2, 4)),
     Case("one text exactly max_tokens long", _batches_case(["x y z", "a b c d e", "f"], 3, 5)),
     Case("a text longer than max_tokens", _too_long),
     Case("no texts at all", _batches_case([], 8, 100)),
     Case("max_items = 1", _batches_case(["a", "b c", "d"], 1, 10)),
     Case("count_tokens = len (characters), a tuple of texts",
          _batches_case(("alpha", "be", "gamma delta", "e", "zeta eta theta"), 3, 14, len)),
     Case("300 texts of 1-39 words, at most 32 per batch and 400 tokens", _batches_case(_many, 32, 400))),
    points=2,
)



# --- 10.binary_faiss: quantize_embeddings("ubinary") + faiss.IndexBinaryFlat + float rescoring ----
def _hamming_candidates(docs, queries, n):
    """FAISS's own binary search, as the exercise asks for it (the reference's candidates)."""
    import faiss

    bits_d = np.packbits(docs > 0, axis=1)
    bits_q = np.packbits(queries > 0, axis=1)
    index = faiss.IndexBinaryFlat(docs.shape[1])
    index.add(bits_d)
    return index.search(bits_q, n)[1]


def _binary_recall(ids, exact, k):
    return float(np.mean([len(set(a[:k]) & set(e[:k])) / k for a, e in zip(ids.tolist(), exact.tolist())]))


def _float_rescored(docs, queries, cand, k):
    scores = np.einsum("qd,qcd->qc", queries.astype(np.float64), docs[cand].astype(np.float64))
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, 1), np.take_along_axis(cand, order, 1)


def _binary_faiss_case(n_docs, n_queries, k, multiplier):
    def run(fn):
        vectors = scifact_vectors(2060)
        docs, queries = vectors[:n_docs], vectors[2000:2000 + n_queries]
        out = call(fn, docs, queries, k, multiplier, names=("doc_vectors", "query_vectors", "k", "rescore_multiplier"))
        scores, ids = expect_hits(out, n_queries, k)
        if ids.min() < 0 or ids.max() >= n_docs:
            raise Fail("some ids are not rows of doc_vectors (-1: fewer candidates than k?)")
        exact = np.argsort(-(queries.astype(np.float64) @ docs.astype(np.float64).T), axis=1, kind="stable")[:, :k]
        true = np.einsum("qd,qkd->qk", queries.astype(np.float64), docs[ids].astype(np.float64))
        if not np.allclose(scores, true, atol=1e-4):
            raise Fail("the scores are not the float dot products of the query with the returned "
                       "documents: rescore the binary candidates with the float32 vectors (Hamming "
                       "distances are only the first pass)")
        if (np.diff(scores, axis=1) > 1e-6).any():
            raise Fail("the results are not sorted by the rescored similarity, best first: after "
                       "rescoring, re-rank the candidates by the float scores")
        cand = _hamming_candidates(docs, queries, k * multiplier)
        want = _binary_recall(_float_rescored(docs, queries, cand, k)[1], exact, k)
        got = _binary_recall(ids, exact, k)
        if got < want - 0.02:
            only_k = _binary_recall(_float_rescored(docs, queries, cand[:, :k], k)[1], exact, k)
            if abs(got - only_k) <= 0.02 and only_k < want - 0.02:
                raise Fail(f"recall@{k} {got:.3f}: you rescored only k candidates; fetch k * "
                           "rescore_multiplier from the binary index, rescore them all, keep the best k")
            raise Fail(f"recall@{k} against exact search is {got:.3f}, below what binary search + "
                       "rescoring reaches here: the sign bits of quantize_embeddings(x, 'ubinary') in "
                       "a faiss.IndexBinaryFlat(d) (d in bits), then float rescoring")
        if got > 0.999 and want < 0.98:
            raise Fail("these are the exact results (a float search over all documents): the point is "
                       "to search the 32x smaller binary codes and rescore only the candidates")
    return run


BINARY_FAISS = Exercise(
    "10.binary_faiss", "binary search with quantize_embeddings and faiss.IndexBinaryFlat, rescored",
    "binary_rescore_search",
    ("Quantise documents and queries with `sentence_transformers.util.quantize_embeddings(x, "
     "'ubinary')` (one bit per dimension, packed into uint8), put the documents' codes in a "
     "`faiss.IndexBinaryFlat(d)` (d = dimensions = bits), fetch k * rescore_multiplier candidates by "
     "Hamming distance, then rescore them with the float vectors and keep the best k.",
     "`faiss.IndexBinaryFlat` takes the number of BITS; its `search` on the query codes returns Hamming "
     "distances and candidate ids (ask for k times the multiplier). Rescore each query's candidates "
     "with a dot product of the float vectors and keep the k best, best first (`np.argsort` of the "
     "negated scores)."),
    (Case("2,000 SciFact abstracts, 30 other abstracts as queries, k = 10, multiplier 4",
          _binary_faiss_case(2000, 30, 10, 4)),
     Case("the same, k = 5, multiplier 8", _binary_faiss_case(2000, 30, 5, 8)),
     Case("500 abstracts, k = 3, multiplier 3", _binary_faiss_case(500, 12, 3, 3)),
     Case("k = 1, multiplier 10", _binary_faiss_case(2000, 20, 1, 10)),
     Case("multiplier 1 (as many candidates as results)", _binary_faiss_case(1000, 15, 10, 1))),
    points=2,
)

# --- held-back cases: the public situations again, with other inputs (graded; `check` never runs them)
_cal2 = _topical(60, 300, 24)
_flat2 = _rng(61).normal(size=(15, 5))
_flat2[:, 0] = -0.25
INT8 = held_back(
    INT8,
    Case("calibrated on the same 300 vectors", _int8_case(_cal2, _cal2.min(axis=0), _cal2.max(axis=0))),
    Case("values outside the calibration range", _int8_case(_topical(62, 100, 24, spread=2.0), _cal2.min(axis=0),
                                                             _cal2.max(axis=0))),
    Case("a constant dimension (hi == lo)", _int8_case(_flat2, _flat2.min(axis=0), _flat2.max(axis=0))),
    Case("Python lists as input", _int8_case([[0.5, -0.5], [2.0, 0.0]], [0.0, -1.0], [1.0, 1.0])))
BINARY = held_back(
    BINARY,
    Case("3 queries, 30 vectors of 24 dimensions, k = 4 of 9 candidates",
         _binary_case(_topical(60, 3, 24), _topical(61, 30, 24), 4, 9)),
    Case("n_candidates = every vector", _binary_case(_topical(62, 2, 16), _topical(63, 25, 16), 3, 25)),
    Case("8 dimensions: many equal Hamming distances", _binary_case(_rng(64).normal(size=(4, 8)),
                                                                    _rng(65).normal(size=(150, 8)), 4, 15)),
    Case("12 dimensions (not a multiple of 8), values that are exactly 0",
         _binary_case(_with_zeros(66, 3, 12), _with_zeros(67, 70, 12), 3, 9)),
    Case("20 queries, 3,000 embeddings of 384 dimensions, k = 8 of 60 candidates",
         _binary_case(_topical(68, 20, 384), _docs, 8, 60)))
BACKOFF = held_back(
    BACKOFF,
    Case("attempts 0 to 4, the cap far away", _backoff_case([(a, 0.25, 50.0, None) for a in range(5)], [0.7, 0.1, 0.45, 0.2, 0.95])),
    Case("attempts 2 to 8: the cap is reached", _backoff_case([(a, 1.0, 10.0, None) for a in range(2, 9)], _U[::-1])),
    Case("Retry-After longer and shorter than the delay",
         _backoff_case([(1, 1.0, 20.0, 4.0), (6, 1.0, 20.0, 0.25), (3, 1.0, 20.0, 0.0)], [0.5, 0.85, 0.2])),
    Case("attempt 100", _backoff_case([(100, 0.2, 15.0, None)], [0.4])))
_many2 = [" ".join(["w"] * int(n)) for n in _rng(60).integers(1, 25, 200)]
BATCHES = held_back(
    BATCHES,
    Case("the item limit binds", _batches_case(["a", "b", "c", "d e", "f", "g h i"], 3, 50)),
    Case("the token limit binds, a batch exactly full", _batches_case(["a b c", "d", "e f", "g h i j", "k"], 4, 4)),
    Case("a text longer than max_tokens, no texts", lambda fn: (_too_long(fn), _batches_case([], 2, 5)(fn))),
    Case("count_tokens = len (characters)", _batches_case(("ab", "cdef", "g", "hijklm", "no"), 2, 7, len)),
    Case("200 texts of 1-24 words, at most 16 per batch and 150 tokens", _batches_case(_many2, 16, 150)))
BINARY_FAISS = held_back(
    BINARY_FAISS,
    Case("1,500 abstracts, k = 7, multiplier 5", _binary_faiss_case(1500, 25, 7, 5)),
    Case("800 abstracts, k = 4, multiplier 6", _binary_faiss_case(800, 10, 4, 6)))

EXERCISES = (INT8, BINARY, BACKOFF, BATCHES, BINARY_FAISS)
