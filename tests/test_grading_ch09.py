"""Chapter 09's exercise checks: typical mistakes fail with a message that names them, and other
correct implementations pass (the generic tests -- solutions pass, notebooks grade -- are in
test_grading.py)."""
import re

import numpy as np
import pytest
from test_grading import _reference

from course_utils.grading import check


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


# ------------------------------------------------------------------ 09.lance_prefilter
def _lance(mode):
    """lance_search variants: the filter after the top-k (post-filtering), no filter, the rows instead of ids."""
    def fn(rows, query_vector, where, k):
        import tempfile

        import lancedb
        table = lancedb.connect(tempfile.mkdtemp()).create_table("docs", data=rows)
        query = table.search(np.asarray(query_vector, dtype=np.float32)).distance_type("cosine")
        if mode != "no filter":
            query = query.where(where, prefilter=mode != "post")
        found = query.limit(k).to_list()
        return found if mode == "rows" else [r["id"] for r in found]
    return fn


_MISTAKES = [
    ("09.rate_limit", _limiter(shared=True), "its own bucket"),
    ("09.rate_limit", _limiter(cap=False), "at most `burst` tokens"),
    ("09.rate_limit", _limiter(charge=True), "must not cost a token"),
    ("09.rate_limit", _limiter(fixed=True), "not always 1 / rate"),
    ("09.scrub_pii", _digits_scrubber, "swallow a neighbouring character"),
    ("09.scrub_pii", _no_boundaries, "holds no personal data"),
    ("09.scrub_pii", _phones_first, "instead of [ID]"),
    ("09.scrub_pii", _no_intl, "international phone number was not"),
    ("09.lance_prefilter", _lance("post"), "post-filtering"),
    ("09.lance_prefilter", _lance("no filter"), "do not satisfy `where`"),
    ("09.lance_prefilter", _lance("rows"), "return only their ids"),
]


@pytest.mark.parametrize("ex, fn, words", _MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(_MISTAKES)])
def test_typical_mistakes_fail_with_a_message_that_names_them(ex, fn, words, capsys):
    result = check(ex, fn, time_limit=120)
    assert result.status == "failed" and words in result.message, result.message
    assert words in capsys.readouterr().out.replace("\n    ", " ")


@pytest.mark.parametrize("ex, fn", [
    ("09.rate_limit", _gcra),                         # GCRA: the same decisions, another state
], ids=["limit-gcra"])
def test_other_correct_implementations_pass(ex, fn, capsys):
    assert check(ex, fn), capsys.readouterr().out


def test_the_lance_solution_passes(capsys):
    assert check("09.lance_prefilter", _reference("09.lance_prefilter"), time_limit=120), capsys.readouterr().out
