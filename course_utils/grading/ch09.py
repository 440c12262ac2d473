"""Hidden test cases of chapter 09's exercises (solutions/09_production_exercises.ipynb).

Exercises: a per-key token-bucket rate limiter replayed over a request trace, a PII scrubber
(e-mails, phone numbers, ID numbers -> placeholders, near-misses such as dates, DOIs and versions
left alone), and a LanceDB table searched with a metadata prefilter (`lance_search`, checked by
its outcome: the nearest rows that pass the filter, k of them when k pass). Traces and texts are fixed or seeded;
reference answers are computed here at check time. A wrong answer that matches a known mistake
(one bucket for every key, post-filtering, rows that fail the filter, ...) gets a message that names the mistake, never the expected values.
"""
from __future__ import annotations

import re

import numpy as np

from .cases import Case, Exercise, Fail, call, held_back
from .vectors import scifact_vectors


def _rng(n: int) -> np.random.Generator:
    return np.random.default_rng(9000 + n)


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
    ("Keep, per key, (tokens, time of the last request); a new key starts with a full bucket of `burst` "
     "tokens. At each request first refill: tokens += (now - last) * rate, at most burst. With at least "
     "one token the request is allowed and costs one token; otherwise it is refused (and costs nothing) "
     "and retry_after says when one token will be there.",
     "A dict maps each key to its (tokens, last time); `dict.get` with (burst, now) as default starts a "
     "new key full. Refill with `min` so the bucket never exceeds burst. An allowed request stores one "
     "token less; a refused one stores the refilled tokens unchanged and waits for the missing fraction "
     "of a token at `rate` tokens per second."),
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
    points=2,
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
    ("Three regular expressions, applied in this order with re.sub: e-mails -> [EMAIL], then ID numbers "
     "(NNN-NN-NNNN and 16-digit card numbers) -> [ID], then phone numbers -> [PHONE]. Pin the digit "
     "groups exactly and put word boundaries (\\b) around them, so that a date, a DOI or a version "
     "number never matches.",
     "E-mail: a local part of letters, digits and ._%+-, an @, dot-separated domain labels, and a "
     "top-level domain of at least two letters. IDs: exactly 3-2-4 digits with hyphens, or four groups "
     "of four digits with optional space or hyphen between groups. Phones: a + followed by 8 to 15 "
     "digits with optional separators (not followed by another digit), or three digits in parentheses "
     "or followed by a separator, then 3 and 4 digits. Anchor each with \\b where a digit group ends."),
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
    points=2,
)


# --- 09.lance_prefilter: a LanceDB table searched with a metadata prefilter ---------------------
_SOURCES = ("pubmed", "preprint", "journal")


def _lance_rows(n: int, seed: int) -> list[dict]:
    rng = _rng(seed)
    vectors = scifact_vectors(820)[:n]
    return [{"id": int(i), "year": int(rng.integers(1995, 2021)), "source": str(rng.choice(_SOURCES)),
             "vector": vectors[i].tolist()} for i in range(n)]


def _lance_reference(rows, query, keep, k):
    allowed = [r for r in rows if keep(r)]
    scores = np.array([np.dot(r["vector"], query) for r in allowed])
    order = np.argsort(-scores, kind="stable")[:k]
    return [allowed[i]["id"] for i in order]


def _lance_case(n, seed, query_row, where, keep, k):
    def run(fn):
        rows = _lance_rows(n, seed)
        query = scifact_vectors(820)[800 + query_row].astype(np.float32)
        out = call(fn, rows, query, where, k, names=("rows", "query_vector", "where", "k"))
        want = _lance_reference(rows, query, keep, k)
        if out is None:
            raise Fail("the result is None: did you forget `return`?")
        if isinstance(out, dict) or hasattr(out, "to_list"):
            raise Fail("return the ids as a list (best first), e.g. `[row['id'] for row in results]`")
        got = list(out)
        if got and isinstance(got[0], dict):
            raise Fail("you returned the result rows; return only their ids: `[r['id'] for r in rows]`")
        try:
            got = [int(i) for i in got]
        except (TypeError, ValueError):
            raise Fail("the result should be a list of integer ids") from None
        by_id = {r["id"]: r for r in rows}
        wrong = [i for i in got if i not in by_id or not keep(by_id[i])]
        if wrong:
            raise Fail(f"{len(wrong)} returned row(s) do not satisfy `where`: pass the condition to the "
                       "query with `.where(where, prefilter=True)`")
        if len(got) < len(want):
            raise Fail(f"{len(got)} results instead of {len(want)}: the filter ran AFTER the top-k search "
                       "(post-filtering) and dropped most of them; filter first: `.where(where, prefilter=True)`")
        if got != want:
            if sorted(got) == sorted(want):
                raise Fail("the right rows in the wrong order: best (nearest) first")
            raise Fail(f"{sum(a != b for a, b in zip(got, want))} of {len(want)} ids are not the nearest "
                       "rows that pass the filter (cosine similarity of the unit vectors)")
    return run


LANCE_PREFILTER = Exercise(
    "09.lance_prefilter", "a LanceDB table searched with a metadata prefilter", "lance_search",
    ("Create a LanceDB table from the rows in a fresh temporary folder (`lancedb.connect` on a folder "
     "from `tempfile.mkdtemp`, then `create_table` with the rows as data), then search it with the "
     "query vector, the SQL condition as a PREfilter (applied before the nearest-neighbour cut) and a "
     "limit of k.",
     "The query builder chains `.distance_type('cosine')`, `.where(condition, prefilter=True)` and "
     "`.limit(k)`; `.to_list()` gives one dict per result, nearest first, holding the row's fields (and "
     "`_distance`)."),
    (Case("300 SciFact abstracts with a year and a source; `year >= 2015`, k = 5",
          _lance_case(300, 30, 0, "year >= 2015", lambda r: r["year"] >= 2015, 5)),
     Case("a selective filter (one source and a year range), k = 10",
          _lance_case(500, 31, 1, "source = 'preprint' AND year < 2000",
                      lambda r: r["source"] == "preprint" and r["year"] < 2000, 10)),
     Case("fewer rows pass the filter than k",
          _lance_case(200, 32, 2, "year = 2003 AND source = 'journal'",
                      lambda r: r["year"] == 2003 and r["source"] == "journal", 50)),
     Case("k = 1 with an IN list", _lance_case(400, 33, 3, "source IN ('pubmed', 'journal')",
                                             lambda r: r["source"] in ("pubmed", "journal"), 1)),
     Case("a year range, k = 20", _lance_case(600, 34, 4, "year BETWEEN 2005 AND 2010",
                                             lambda r: 2005 <= r["year"] <= 2010, 20))),
    points=2,
)

# --- held-back cases: the public situations again, with other inputs (graded; `check` never runs them)
RATE_LIMIT = held_back(
    RATE_LIMIT,
    Case("one key, a burst of 5 requests at once (burst 2)", _limit_case([(0.0, "z")] * 5, 2.0, 2)),
    Case("three keys sharing moments", _limit_case(
        [(0.0, "a"), (0.0, "b"), (0.0, "c"), (0.0, "a"), (0.5, "b"), (0.5, "a"), (0.5, "c")], 1.0, 1)),
    Case("a retrying client and a long pause", _limit_case(
        [(0.0, "k"), (0.0, "k"), (0.125, "k"), (0.25, "k"), (500.0, "k"), (500.0, "k"), (500.0, "k")], 4.0, 2)),
    Case("fractional tokens: rate 0.25 per second", _limit_case(
        [(0.0, "r"), (1.0, "r"), (4.0, "r"), (5.0, "r"), (9.0, "r")], 0.25, 1)),
    Case("a random trace: 300 requests from 4 keys, rate 8/s, burst 3", _limit_case(_trace(60, 300, 4, 0.0625), 8.0, 3)))
PII = held_back(
    PII,
    Case("e-mail addresses", _scrub_case(
        ["Ask anna.maria+lab@uni-bonn.de please.", "Reply to x9@a.b.example.com."], "an e-mail address")),
    Case("US-style and international phone numbers", _scrub_case(
        ["Dial 312-555-0198 or (312) 555-0177.", "Abroad: +49 30 1234 5678.", "hotline 800.555.0100"],
        "a phone number")),
    Case("ID numbers", _scrub_case(["ID 987-65-4321.", "Card 5105 1051 0510 5100 expires."], "an ID number")),
    Case("several kinds in one text", _scrub_case(
        ["Tom (tom@x.org, +1 617 555 0110) gave SSN 111-22-3333."], "a text with several kinds of personal data")),
    Case("dates, DOIs, versions, statistics and registry ids", _scrub_case(
        ["Visit on 2021-11-05, see doi:10.1126/science.1234567.", "Built with torch 2.13.0.",
         "p = 0.042 (95% CI 0.91-1.37), n = 4,321.", "Trial NCT04280705, PMID 32109013."],
        "a number that is not personal data")))
LANCE_PREFILTER = held_back(
    LANCE_PREFILTER,
    Case("350 abstracts, `year < 2005`, k = 7", _lance_case(350, 60, 5, "year < 2005", lambda r: r["year"] < 2005, 7)),
    Case("a selective filter, fewer rows than k", _lance_case(
        250, 61, 6, "source = 'pubmed' AND year BETWEEN 2012 AND 2013",
        lambda r: r["source"] == "pubmed" and 2012 <= r["year"] <= 2013, 30)),
    Case("an IN list, k = 12", _lance_case(450, 62, 7, "source IN ('preprint')", lambda r: r["source"] == "preprint", 12)))

EXERCISES = (RATE_LIMIT, PII, LANCE_PREFILTER)
