"""Hidden test cases of chapter 09's exercises (solutions/09_production_exercises.ipynb).

Exercises: an LRU cache whose entries expire (`TTLCache`, time passed in as `now`), a per-key
token-bucket rate limiter replayed over a request trace, a PII scrubber (e-mails, phone numbers,
ID numbers -> placeholders, near-misses such as dates, DOIs and versions left alone), and latency
percentiles with numpy's default ('linear') interpolation. Traces and texts are fixed or seeded;
reference answers are computed here at check time. A wrong answer that matches a known mistake
(FIFO instead of LRU, expiry off by one tick, one bucket for every key, nearest-rank percentiles,
...) gets a message that names the mistake, never the expected values.
"""
from __future__ import annotations

import contextlib
import math
import re
import statistics
from collections import OrderedDict

import numpy as np

from .cases import Case, Exercise, Fail, as_array, call


def _rng(n: int) -> np.random.Generator:
    return np.random.default_rng(9000 + n)


# --- 09.ttl_cache: LRU + TTL, get(key, now) / put(key, value, now), hits / misses -------------
class _RefCache:
    """The reference, with switches that reproduce typical mistakes."""

    def __init__(self, maxsize, ttl, lru=True, strict=False, get_refreshes_ttl=False,
                 put_refreshes=True):
        self.maxsize, self.ttl, self.data = maxsize, ttl, OrderedDict()
        self.lru, self.strict, self.get_ttl, self.put_refreshes = lru, strict, get_refreshes_ttl, put_refreshes
        self.hits = self.misses = 0

    def get(self, key, now):
        if key in self.data:
            stored, value = self.data[key]
            if (now > stored + self.ttl) if self.strict else (now >= stored + self.ttl):
                del self.data[key]
            else:
                self.hits += 1
                if self.lru:
                    self.data.move_to_end(key)
                if self.get_ttl:
                    self.data[key] = (now, value)
                return value
        self.misses += 1
        return None

    def put(self, key, value, now):
        if key in self.data and not self.put_refreshes:
            self.data[key] = (self.data[key][0], value)
        else:
            self.data[key] = (now, value)
        self.data.move_to_end(key)
        while len(self.data) > self.maxsize:
            self.data.popitem(last=False)


_CACHE_MISTAKES = (
    (dict(lru=False), "a `get` hit must make its entry the most recently used: you evict in "
                      "insertion order (FIFO), not least-recently-used order (OrderedDict.move_to_end)"),
    (dict(strict=True), "an entry stored at time t is expired from now = t + ttl on (now - t >= ttl): "
                        "your cache still returned it at exactly t + ttl"),
    (dict(get_refreshes_ttl=True), "a `get` must not extend an entry's life: the ttl counts from "
                                   "the `put` (otherwise a popular stale answer is never refreshed)"),
    (dict(put_refreshes=False), "a `put` of a key already in the cache stores the new value with a "
                                "fresh time stamp (its ttl starts again)"),
)


def _replay(cache, ops, what: str):
    """Run ops on `cache`; the list of get results (or raise Fail on a crash-free bad shape)."""
    out = []
    for op in ops:
        if op[0] == "put":
            cache.put(op[1], op[2], op[3])
        else:
            out.append(cache.get(op[1], op[2]))
    return out


def _cache_case(ops, maxsize, ttl):
    def run(cls):
        cache = cls(maxsize, ttl)
        got = _replay(cache, ops, "yours")
        want_cache = _RefCache(maxsize, ttl)
        want = _replay(want_cache, ops, "reference")
        if got != want:
            for flags, message in _CACHE_MISTAKES:
                variant = _replay(_RefCache(maxsize, ttl, **flags), ops, "variant")
                if variant != want and variant == got:
                    raise Fail(message)
            wrong = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
            zero = [v for v in want if v is not None and not v]
            if zero and any(g is None for g, w in zip(got, want) if w is not None and not w):
                raise Fail("a cached value that is falsy (0, '' or []) came back as a miss: test "
                           "`key in self._data`, not the truthiness of the value")
            raise Fail(f"get number {wrong + 1} of {len(want)} returned the wrong value (a hit where "
                       "a miss was due, a miss where a hit was due, or a stale value)")
        for name in ("hits", "misses"):
            value = getattr(cache, name, None)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise Fail(f"the cache needs an integer attribute `{name}` (got {value!r})")
            if value != getattr(want_cache, name):
                raise Fail(f"`{name}` is {value}, but the gets returned {getattr(want_cache, name)} "
                           f"{name}: count every get (an expired entry is a miss)")
    return run


def _random_ops(seed, n, keys, p_put, max_step):
    rng, now, ops = _rng(seed), 0.0, []
    for i in range(n):
        now += float(rng.integers(0, max_step + 1))
        key = f"q{int(rng.integers(0, keys))}"
        ops.append(("put", key, i, now) if rng.random() < p_put else ("get", key, now))
    return ops


_LRU_OPS = [("put", "a", 1, 0), ("put", "b", 2, 1), ("get", "a", 2), ("put", "c", 3, 3),
            ("get", "b", 4), ("get", "a", 4), ("get", "c", 5)]
_TTL_OPS = [("put", "a", "A", 0), ("get", "a", 9.5), ("get", "a", 10), ("get", "a", 11),
            ("put", "a", "A2", 12), ("get", "a", 12)]
TTL_CACHE = Exercise(
    "09.ttl_cache", "an LRU cache with a time-to-live", "TTLCache",
    ("Keep the entries in an `OrderedDict` key -> (time stored, value), oldest use first. `get`: if "
     "the key is there and now - stored < ttl it is a hit (move it to the end, count a hit); "
     "otherwise delete it if present and count a miss. `put`: store (now, value), move it to the "
     "end, and pop the first entries while there are more than maxsize.",
     "`self._data.move_to_end(key)` marks an entry as just used; `self._data.popitem(last=False)` "
     "removes the least recently used one. Expiry is `now - stored >= self.ttl` (so at exactly "
     "stored + ttl the entry is gone); test `key in self._data` -- a cached 0 is still a hit. "
     "`get` must not change the time stamp; `put` of an existing key must."),
    (Case("put, get, a missing key, and the counters",
          _cache_case([("put", "x", 1, 0), ("get", "x", 1), ("get", "y", 1), ("get", "x", 2)], 4, 60)),
     Case("a full cache: the least recently used entry goes", _cache_case(_LRU_OPS, 2, 100)),
     Case("an entry asked for just before, exactly at and after its ttl", _cache_case(_TTL_OPS, 4, 10)),
     Case("a popular entry read again and again", _cache_case(
         [("put", "p", 7, 0)] + [("get", "p", t) for t in (3, 6, 9, 12)], 4, 10)),
     Case("a key put twice (new value, new time stamp)", _cache_case(
         [("put", "k", 1, 0), ("put", "k", 2, 8), ("get", "k", 12), ("get", "k", 19)], 4, 10)),
     Case("falsy values (0, '', [])", _cache_case(
         [("put", "z", 0, 0), ("put", "e", "", 0), ("put", "l", [], 0), ("get", "z", 1),
          ("get", "e", 1), ("get", "l", 1)], 4, 10)),
     Case("maxsize = 1", _cache_case([("put", "a", 1, 0), ("put", "b", 2, 0), ("get", "a", 0),
                                      ("get", "b", 0), ("put", "a", 3, 1), ("get", "b", 1)], 1, 10)),
     Case("a random trace: 3,000 operations on 40 keys, maxsize 10, ttl 30",
          _cache_case(_random_ops(1, 3000, 40, 0.4, 3), 10, 30)),
     Case("a random trace with tuple keys and short ttls", _cache_case(
         [(op[0], (op[1], 10), *op[2:]) for op in _random_ops(2, 1500, 12, 0.5, 2)], 6, 4))),
)


# --- 09.rate_limit: token bucket per key over a trace of (now, key) ---------------------------
def _limit(requests, rate, burst, shared=False, cap=True, charge_denied=False, fixed_retry=False):
    buckets, out = {}, []
    for now, key in requests:
        k = "*" if shared else key
        tokens, last = buckets.get(k, (float(burst), now))
        tokens = tokens + (now - last) * rate
        tokens = min(float(burst), tokens) if cap else tokens
        if tokens >= 1.0:
            buckets[k] = (tokens - 1.0, now)
            out.append((True, 0.0))
        else:
            buckets[k] = (tokens - 1.0 if charge_denied else tokens, now)
            out.append((False, 1.0 / rate if fixed_retry else (1.0 - tokens) / rate))
    return out


_LIMIT_MISTAKES = (
    (dict(shared=True), "every API key has its own bucket: one client's burst must not use up "
                        "another client's tokens (keep a dict key -> (tokens, last time))"),
    (dict(cap=False), "a bucket holds at most `burst` tokens: a client that was quiet for an hour "
                      "may not then fire thousands of requests (min(burst, tokens + elapsed * rate))"),
    (dict(charge_denied=True), "a refused request must not cost a token: otherwise a client that "
                               "keeps retrying is locked out for ever"),
    (dict(fixed_retry=True), "retry_after is the time until the bucket holds one whole token, "
                             "(1 - tokens) / rate -- not always 1 / rate"),
)


def _pairs(out, n):
    if out is None:
        raise Fail("the result is None: did you forget `return`?")
    out = list(out)
    if len(out) != n:
        raise Fail(f"return one (allowed, retry_after) pair per request: {n} requests, {len(out)} pairs")
    for item in out:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise Fail(f"each decision must be a pair (allowed, retry_after), got {item!r:.40}")
    return [(bool(a), float(r)) for a, r in out]


def _same_decisions(a, b):
    return all(x[0] == y[0] and abs(x[1] - y[1]) <= 1e-9 for x, y in zip(a, b))


def _limit_case(requests, rate, burst):
    def run(fn):
        got = _pairs(call(fn, requests, rate, burst, names=("requests", "rate", "burst")), len(requests))
        want = _limit(requests, rate, burst)
        if _same_decisions(got, want):
            return
        for flags, message in _LIMIT_MISTAKES:
            variant = _limit(requests, rate, burst, **flags)
            if not _same_decisions(variant, want) and _same_decisions(got, variant):
                raise Fail(message)
        i = next(i for i, (x, y) in enumerate(zip(got, want)) if x[0] != y[0] or abs(x[1] - y[1]) > 1e-9)
        if got[i][0] != want[i][0]:
            raise Fail(f"request {i + 1} of {len(want)} was {'allowed' if got[i][0] else 'refused'} "
                       "wrongly")
        if got[i][0] and got[i][1] != 0:
            raise Fail("an allowed request has retry_after 0.0")
        raise Fail(f"request {i + 1}: retry_after is off by {abs(got[i][1] - want[i][1]):.3g} s")
    return run


def _trace(seed, n, keys, step):
    """Times on a grid of `step` (a power of two) so every bucket computation is exact."""
    rng, now, out = _rng(seed), 0.0, []
    for _ in range(n):
        now += step * float(rng.integers(0, 4))
        out.append((now, f"key-{int(rng.integers(0, keys))}"))
    return out


RATE_LIMIT = Exercise(
    "09.rate_limit", "a token-bucket rate limiter per API key", "rate_limit",
    ("Keep, per key, (tokens, time of the last request); a new key starts with a full bucket of "
     "`burst` tokens. At each request first refill: tokens += (now - last) * rate, at most burst. "
     "With at least one token the request is allowed and costs one token; otherwise it is refused "
     "(and costs nothing) and retry_after says when one token will be there.",
     "`tokens, last = buckets.get(key, (burst, now))`; `tokens = min(burst, tokens + (now - last) "
     "* rate)`; `if tokens >= 1: buckets[key] = (tokens - 1, now); out.append((True, 0.0))` "
     "`else: buckets[key] = (tokens, now); out.append((False, (1 - tokens) / rate))`."),
    (Case("one key, a burst of 4 requests at once (burst 3)",
          _limit_case([(0.0, "a")] * 4, 1.0, 3)),
     Case("two keys sharing the same moment", _limit_case(
         [(0.0, "a"), (0.0, "a"), (0.0, "b"), (0.0, "a"), (0.0, "b")], 1.0, 2)),
     Case("a client that retries while refused", _limit_case(
         [(0.0, "a"), (0.0, "a"), (0.25, "a"), (0.5, "a"), (0.75, "a"), (1.0, "a"), (1.0, "a")], 1.0, 1)),
     Case("a long pause (the bucket refills, but only up to burst)", _limit_case(
         [(0.0, "a")] * 2 + [(1000.0, "a")] * 4, 2.0, 2)),
     Case("fractional tokens: rate 0.5 per second", _limit_case(
         [(0.0, "k"), (0.5, "k"), (1.0, "k"), (2.0, "k"), (2.5, "k"), (4.5, "k")], 0.5, 1)),
     Case("a random trace: 400 requests from 5 keys, rate 4/s, burst 5",
          _limit_case(_trace(1, 400, 5, 0.125), 4.0, 5)),
     Case("a random trace: 300 requests from 2 keys, rate 2/s, burst 1",
          _limit_case(_trace(2, 300, 2, 0.25), 2.0, 1))),
)


# --- 09.scrub_pii: e-mails, phone numbers, ID numbers -> placeholders ------------------------
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_IDS = re.compile(r"\b\d{3}-\d{2}-\d{4}\b|\b\d{4}(?:[ -]?\d{4}){3}\b")
_PHONE = re.compile(r"\+\d(?:[ -]?\d){7,14}(?!\d)|(?:\(\d{3}\) ?|\b\d{3}[-. ])\d{3}[-. ]\d{4}\b")


def _scrub(text: str) -> str:
    text = _EMAIL.sub("[EMAIL]", text)
    text = _IDS.sub("[ID]", text)
    return _PHONE.sub("[PHONE]", text)


def _scrub_case(texts, trouble):
    """`trouble`: what the failure means, for the learner (the texts are not shown)."""
    def run(fn):
        for text in texts:
            out = call(fn, text, names=("text",))
            if not isinstance(out, str):
                raise Fail("the result must be the scrubbed text (a str)" +
                           (": did you forget `return`?" if out is None else f", got {type(out).__name__}"))
            want = _scrub(text)
            if out == want:
                continue
            if want == text:
                raise Fail(f"{trouble} was changed, but it holds no personal data: make the patterns "
                           "stricter (exact digit groups, word boundaries \\b)")
            tags = ("[EMAIL]", "[PHONE]", "[ID]")
            short = [t for t in tags if out.count(t) < want.count(t)]
            extra = [t for t in tags if out.count(t) > want.count(t)]
            if short and extra:
                raise Fail(f"{trouble} got the placeholder {extra[0]} instead of {short[0]} (replace "
                           "e-mails first, then ID numbers, then phone numbers)")
            if short:
                raise Fail(f"{trouble} was not (completely) replaced by {short[0]}")
            if extra:
                raise Fail(f"{trouble}: a {extra[0]} too many (a pattern matched something it should not)")
            raise Fail(f"{trouble}: the placeholders are right but the text around them is not -- did a "
                       "pattern swallow a neighbouring character (such as a final '.') or leave part of "
                       "the number behind?")
    return run


_NEAR_MISSES = {
    "a date or a year": ["Enrolment ran from 2019-03-15 to 15/03/2021.", "Published in 2020 (vol. 12).",
                         "Follow-up: 1999-2004, then 03.11.2015."],
    "a DOI or a URL": ["See https://doi.org/10.1016/j.cell.2020.01.001 for details.",
                       "doi:10.1038/s41586-020-2649-2", "Data at https://example.org/v2/files/20210315"],
    "a version number": ["Computed with numpy 1.26.4 and Python 3.11.7.", "Model v2.10.3 (build 4411)."],
    "statistics (p-values, counts, intervals)": [
        "OR 1.23 (95% CI 1.05-1.44), p < 0.001, n = 12,345.", "A cohort of 1,234,567 adults; 10^6 cells."],
    "a trial registry or PubMed id": ["Registered as NCT01234567 (PMID: 31234567).",
                                      "ISBN 978-3-16-148410-0"],
    "a social-media handle": ["Follow @scifact_bot for updates."],
}
PII = Exercise(
    "09.scrub_pii", "a PII scrubber for query logs", "scrub_pii",
    ("Three regular expressions, applied in this order with re.sub: e-mails -> [EMAIL], then ID "
     "numbers (NNN-NN-NNNN and 16-digit card numbers) -> [ID], then phone numbers -> [PHONE]. Pin "
     "the digit groups exactly and put word boundaries (\\b) around them, so that a date, a DOI "
     "or a version number never matches.",
     "E-mail: r'[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}'. IDs: "
     "r'\\b\\d{3}-\\d{2}-\\d{4}\\b|\\b\\d{4}(?:[ -]?\\d{4}){3}\\b'. Phones: "
     "r'\\+\\d(?:[ -]?\\d){7,14}(?!\\d)' for international numbers, and "
     "r'(?:\\(\\d{3}\\) ?|\\b\\d{3}[-. ])\\d{3}[-. ]\\d{4}\\b' for (NNN) NNN-NNNN and NNN-NNN-NNNN."),
    (Case("e-mail addresses (with dots, plus signs, digits, sub-domains)", _scrub_case(
        ["Contact jane.doe@example.org today.", "Write to j.smith+trial@med.uni-heidelberg.de or "
         "bob1985@mail.co.uk.", "MAIL: A_B@X.IO"], "an e-mail address")),
     Case("US-style phone numbers: (NNN) NNN-NNNN, NNN-NNN-NNNN, NNN.NNN.NNNN", _scrub_case(
         ["Call (202) 555-0143 now.", "Phone 202-555-0143 or 202.555.0199.", "fax: (415)555-2671"],
         "a US-style phone number")),
     Case("international phone numbers starting with +", _scrub_case(
         ["Reach me on +44 20 7946 0958.", "Mobile: +4915112345678", "Tel +1-202-555-0143; +33 1 23 45 67 89."],
         "an international phone number")),
     Case("ID numbers: NNN-NN-NNNN and 16-digit card numbers", _scrub_case(
         ["SSN 123-45-6789 on file.", "Card 4111 1111 1111 1111, exp 04/27.", "4111-1111-1111-1111 and "
          "5500005555555559"], "an ID number")),
     Case("an e-mail, a phone number and an ID in one text", _scrub_case(
         ["Patient 123-45-6789 (mary.k@clinic.com, (617) 555-0110) asked about aspirin."],
         "a text with several kinds of personal data")),
     Case("dates and years", _scrub_case(_NEAR_MISSES["a date or a year"], "a date or a year")),
     Case("DOIs and URLs", _scrub_case(_NEAR_MISSES["a DOI or a URL"], "a DOI or a URL")),
     Case("version numbers", _scrub_case(_NEAR_MISSES["a version number"], "a version number")),
     Case("p-values, counts and confidence intervals",
          _scrub_case(_NEAR_MISSES["statistics (p-values, counts, intervals)"], "a statistic")),
     Case("trial registry ids, PubMed ids, ISBNs",
          _scrub_case(_NEAR_MISSES["a trial registry or PubMed id"], "a registry id or ISBN")),
     Case("an @handle and a text with no personal data at all", _scrub_case(
         _NEAR_MISSES["a social-media handle"] + ["Aspirin lowers the risk of colorectal cancer.", ""],
         "a text without personal data"))),
)


# --- 09.percentile: numpy's default 'linear' percentile, written by hand ----------------------
@contextlib.contextmanager
def _no_library_percentile():
    """Replace the library percentile functions for the duration of a check."""
    def refuse(*args, **kwargs):
        raise Fail("you called a library percentile function: the exercise is to write the "
                   "interpolation yourself (sort, position h = (n - 1) * q / 100, interpolate)")
    saved = {(mod, name): getattr(mod, name) for mod, name in
             ((np, "percentile"), (np, "quantile"), (np, "nanpercentile"), (np, "nanquantile"),
              (statistics, "quantiles"), (statistics, "median"))}
    try:
        for mod, name in saved:
            setattr(mod, name, refuse)
        yield
    finally:
        for (mod, name), fn in saved.items():
            setattr(mod, name, fn)


def _nearest_rank(v, q):
    s = sorted(v)
    return float(s[max(0, math.ceil(q / 100 * len(s)) - 1)])


def _n_not_n1(v, q):
    s = sorted(v)
    h = min(len(s) - 1, len(s) * q / 100)
    lo = math.floor(h)
    hi = min(lo + 1, len(s) - 1)
    return float(s[lo] + (h - lo) * (s[hi] - s[lo]))


def _unsorted(v, q):
    s, h = list(v), (len(v) - 1) * q / 100
    lo = math.floor(h)
    return float(s[lo] + (h - lo) * (s[min(lo + 1, len(s) - 1)] - s[lo]))


_PCT_MISTAKES = (
    (_nearest_rank, "that is the nearest-rank percentile (a value of the sample); numpy's default "
                    "interpolates linearly between the two values around position (n - 1) * q / 100"),
    (lambda v, q: float(sorted(v)[min(int(len(v) * q / 100), len(v) - 1)]),
     "you took sorted[int(n * q / 100)] without interpolating: the position is h = (n - 1) * q / 100, "
     "and the result lies between sorted[floor(h)] and sorted[floor(h) + 1]"),
    (_n_not_n1, "the position of percentile q among n sorted values is (n - 1) * q / 100 (0 is the "
                "minimum, 100 the maximum), not n * q / 100"),
    (_unsorted, "sort the values first (a copy: `sorted(values)` or `np.sort`)"),
)


def _pct_case(values, qs):
    def run(fn):
        want = [float(np.percentile(np.asarray(values, float), q)) for q in qs]
        with _no_library_percentile():
            got = [call(fn, values, q, names=("values", "q")) for q in qs]
        for q, out, w in zip(qs, got, want):
            arr = as_array(out, f"the result for q = {q}")
            if arr.size != 1:
                raise Fail(f"return one number for one q; got shape {arr.shape}")
            value = float(arr.reshape(()))
            if abs(value - w) <= 1e-9 * max(1.0, abs(w)):
                continue
            for wrong, message in _PCT_MISTAKES:
                try:
                    other = wrong(list(values), q)
                except (IndexError, ValueError):
                    continue
                if abs(other - w) > 1e-9 and abs(value - other) <= 1e-9 * max(1.0, abs(w)):
                    raise Fail(message)
            raise Fail(f"the {q}th percentile is off by {abs(value - w):.3g}")
    return run


_lat = np.round(_rng(40).lognormal(np.log(20), 0.6, 1000), 3)
PERCENTILE = Exercise(
    "09.percentile", "latency percentiles (linear interpolation)", "percentile",
    ("Sort a copy of the values. Percentile q sits at the (fractional) position h = (n - 1) * q / "
     "100 of the sorted list: 0 is the smallest value, 100 the largest. Interpolate linearly "
     "between the values at floor(h) and floor(h) + 1.",
     "`s = sorted(values)`; `h = (len(s) - 1) * q / 100`; `lo = math.floor(h)`; `hi = min(lo + 1, "
     "len(s) - 1)`; `return float(s[lo] + (h - lo) * (s[hi] - s[lo]))`."),
    (Case("one value", _pct_case([42.0], [0, 50, 99])),
     Case("two values, the median", _pct_case([10.0, 20.0], [50, 25])),
     Case("the minimum and the maximum (q = 0, q = 100)", _pct_case([3.0, 1.0, 2.0, 9.0], [0, 100])),
     Case("unsorted latencies as a Python list", _pct_case([12.5, 3.2, 8.8, 41.0, 7.7, 9.1], [50, 95, 99])),
     Case("ties", _pct_case([5, 5, 5, 7, 7, 100], [50, 90, 99])),
     Case("20 latencies, q = 95 (between two values)", _pct_case(list(_rng(41).uniform(1, 50, 20)), [95, 99])),
     Case("1,000 latencies as a numpy array (it must not be sorted in place)", _pct_case(_lat, [50, 95, 99, 99.9]))),
)

EXERCISES = (TTL_CACHE, RATE_LIMIT, PII, PERCENTILE)
