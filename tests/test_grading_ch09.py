"""Chapter 09's exercise checks: typical mistakes fail with a message that names them, and other
correct implementations pass (the generic tests -- solutions pass, notebooks grade -- are in
test_grading.py)."""
import math
import re
from collections import OrderedDict

import numpy as np
import pytest
from test_grading import _reference

from course_utils.grading import check


# ------------------------------------------------------------------ 09.ttl_cache
def _cache_class(lru=True, strict=False, get_refreshes=False, put_refreshes=True, truthy=False):
    class Cache:
        def __init__(self, maxsize, ttl):
            self.maxsize, self.ttl, self.d = maxsize, ttl, OrderedDict()
            self.hits = self.misses = 0

        def get(self, key, now):
            item = self.d.get(key)
            if item is not None and (bool(item[1]) or not truthy):   # truthy: `if value:` loses a cached 0
                fresh = now - item[0] <= self.ttl if strict else now - item[0] < self.ttl
                if fresh:
                    self.hits += 1
                    if lru:
                        self.d.move_to_end(key)
                    if get_refreshes:
                        self.d[key] = (now, item[1])
                    return item[1]
                del self.d[key]
            self.misses += 1
            return None

        def put(self, key, value, now):
            stamp = self.d[key][0] if key in self.d and not put_refreshes else now
            self.d[key] = (stamp, value)
            self.d.move_to_end(key)
            while len(self.d) > self.maxsize:
                self.d.popitem(last=False)
    return Cache


class _NoCounters(_cache_class()):
    def get(self, key, now):
        value = super().get(key, now)
        self.hits = self.misses = 0
        return value


# ------------------------------------------------------------------ 09.rate_limit
def _limiter(shared=False, cap=True, charge=False, fixed=False):
    def rate_limit(requests, rate, burst):
        buckets, out = {}, []
        for now, key in requests:
            k = "all" if shared else key
            tokens, last = buckets.get(k, (burst, now))
            tokens += (now - last) * rate
            if cap:
                tokens = min(burst, tokens)
            if tokens >= 1:
                buckets[k] = (tokens - 1, now)
                out.append((True, 0.0))
            else:
                buckets[k] = (tokens - 1 if charge else tokens, now)
                out.append((False, 1 / rate if fixed else (1 - tokens) / rate))
        return out
    return rate_limit


def _gcra(requests, rate, burst):
    """Another correct limiter: GCRA (the 'theoretical arrival time' form of a token bucket)."""
    tat, out = {}, []
    for now, key in requests:
        t = max(tat.get(key, now), now)
        if t - now <= (burst - 1) / rate:
            tat[key] = t + 1 / rate
            out.append((True, 0.0))
        else:
            out.append((False, t - now - (burst - 1) / rate))
    return out


# ------------------------------------------------------------------ 09.scrub_pii
def _digits_scrubber(text):                           # every long run of digits is "an ID"
    text = re.sub(r"\S+@\S+", "[EMAIL]", text)
    return re.sub(r"\d[\d -]{7,}\d", "[ID]", text)


def _no_boundaries(text):                             # the right groups, but no \b
    text = re.sub(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", "[EMAIL]", text)
    text = re.sub(r"\d{3}-\d{2}-\d{4}|\d{4}(?:[ -]?\d{4}){3}", "[ID]", text)
    return re.sub(r"\+\d(?:[ -]?\d){7,14}|(?:\(\d{3}\) ?|\d{3}[-. ])\d{3}[-. ]\d{4}", "[PHONE]", text)


def _phones_first(text):                              # right patterns, wrong order: IDs become phones
    ref = _reference("09.scrub_pii")
    text = re.sub(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", "[EMAIL]", text)
    text = re.sub(r"\b\d{3}-\d{2}-\d{4}\b|\b\d{4}(?:[ -]?\d{4}){3}\b", "[PHONE]", text)
    return ref(text)


def _no_intl(text):                                   # forgot the +CC form of phone numbers
    text = re.sub(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}", "[EMAIL]", text)
    text = re.sub(r"\b\d{3}-\d{2}-\d{4}\b|\b\d{4}(?:[ -]?\d{4}){3}\b", "[ID]", text)
    return re.sub(r"(?:\(\d{3}\) ?|\b\d{3}[-. ])\d{3}[-. ]\d{4}\b", "[PHONE]", text)


# ------------------------------------------------------------------ 09.percentile
def _nearest_rank(values, q):
    s = sorted(values)
    return float(s[max(0, math.ceil(q / 100 * len(s)) - 1)])


def _n_position(values, q):
    s = sorted(values)
    h = min(len(s) - 1, len(s) * q / 100)
    lo = math.floor(h)
    return float(s[lo] + (h - lo) * (s[min(lo + 1, len(s) - 1)] - s[lo]))


def _in_place(values, q):
    values.sort()
    return _reference("09.percentile")(values, q)


_MISTAKES = [
    ("09.ttl_cache", _cache_class(lru=False), "FIFO"),
    ("09.ttl_cache", _cache_class(strict=True), "exactly t + ttl"),
    ("09.ttl_cache", _cache_class(get_refreshes=True), "must not extend"),
    ("09.ttl_cache", _cache_class(put_refreshes=False), "fresh time stamp"),
    ("09.ttl_cache", _cache_class(truthy=True), "falsy"),
    ("09.ttl_cache", _NoCounters, "`hits` is 0"),
    ("09.rate_limit", _limiter(shared=True), "its own bucket"),
    ("09.rate_limit", _limiter(cap=False), "at most `burst` tokens"),
    ("09.rate_limit", _limiter(charge=True), "must not cost a token"),
    ("09.rate_limit", _limiter(fixed=True), "not always 1 / rate"),
    ("09.scrub_pii", _digits_scrubber, "swallow a neighbouring character"),
    ("09.scrub_pii", _no_boundaries, "holds no personal data"),
    ("09.scrub_pii", _phones_first, "instead of [ID]"),
    ("09.scrub_pii", _no_intl, "international phone number was not"),
    ("09.percentile", _nearest_rank, "nearest-rank"),
    ("09.percentile", lambda v, q: float(sorted(v)[min(int(len(v) * q / 100), len(v) - 1)]), "without interpolating"),
    ("09.percentile", _n_position, "(n - 1) * q / 100"),
    ("09.percentile", lambda v, q: float(np.percentile(v, q)), "library percentile"),
    ("09.percentile", _in_place, "changed its input"),
]


@pytest.mark.parametrize("ex, fn, words", _MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(_MISTAKES)])
def test_typical_mistakes_fail_with_a_message_that_names_them(ex, fn, words, capsys):
    result = check(ex, fn)
    assert result.status == "failed" and words in result.message, result.message
    assert words in capsys.readouterr().out.replace("\n    ", " ")


def _percentile_numpy_free(values, q):                 # interpolation written as a weighted sum
    s = np.sort(np.asarray(values, dtype=float))
    h = (len(s) - 1) * q / 100
    lo, frac = int(h), h - int(h)
    return float((1 - frac) * s[lo] + frac * s[min(lo + 1, len(s) - 1)])


@pytest.mark.parametrize("ex, fn", [
    ("09.ttl_cache", _cache_class()),                 # OrderedDict instead of a plain dict
    ("09.rate_limit", _gcra),                         # GCRA: the same decisions, another state
    ("09.percentile", _percentile_numpy_free),
], ids=["cache-ordereddict", "limit-gcra", "percentile-weighted"])
def test_other_correct_implementations_pass(ex, fn, capsys):
    assert check(ex, fn), capsys.readouterr().out
