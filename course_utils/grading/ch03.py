"""Hidden test cases of chapter 03's exercises (solutions/03_evaluation_exercises.ipynb).

Exercises: recall@k, nDCG@k (trec_eval's linear gain), MRR@k over queries, and a paired
randomization (sign-flip) test. A ranking is a list of doc ids, best first, so ties in scores
never arise here (trec_eval's tie order is the notebook's text, not a test). Reference values come
from `course_utils.evaluate` (checked against pytrec_eval) or exact enumeration, at check time;
when a wrong answer matches a known mistake (precision instead of recall, log2(rank) discount,
exponential gain, a one-sided test...) the message names the mistake, never the expected value.
"""
from __future__ import annotations

import math

import numpy as np

from .cases import Case, Exercise, Fail, as_array, call, held_back


def _rng(n: int) -> np.random.Generator:
    return np.random.default_rng(3000 + n)


def _number(out, what: str = "the result") -> float:
    arr = as_array(out, what)
    if arr.size != 1:
        raise Fail(f"{what} should be one number, got an array of shape {arr.shape}")
    return float(arr.reshape(()))


def _metric(fn, args, names, zero_division: str) -> float:
    """The learner's fn(*args) as a float; a ZeroDivisionError becomes `zero_division`."""
    try:
        out = call(fn, *args, names=names)
    except ZeroDivisionError as err:
        raise Fail(f"your function divided by zero ({err}): {zero_division}") from None
    return _number(out)


def _diagnose(value: float, want: float, mistakes, args, nonfinite: str, atol: float = 1e-9) -> None:
    """Pass if value == want; otherwise Fail naming the first known mistake that gives `value`."""
    if not math.isfinite(value):
        raise Fail(f"the result is {value}: {nonfinite}")
    if abs(value - want) <= atol:
        return
    for wrong, message in mistakes:
        try:
            other = wrong(*args)
        except ZeroDivisionError:
            continue
        if abs(other - want) > atol and abs(value - other) <= atol:
            raise Fail(message)
    raise Fail(f"the result is off by {abs(value - want):.3g}")


def _labels(ranking, qrel, k=None):
    return [qrel.get(d, 0) for d in list(ranking)[:k]]


def _n_rel(qrel):
    return sum(1 for g in qrel.values() if g > 0)


def _hits(ranking, qrel, k):
    return sum(1 for g in _labels(ranking, qrel, k) if g > 0)


# --- 03.recall: recall@k = relevant in the top k / relevant in qrel (0 if none) ----------------
def _recall(ranking, qrel, k):
    return _hits(ranking, qrel, k) / _n_rel(qrel) if _n_rel(qrel) else 0.0


_RECALL_MISTAKES = (
    (lambda r, q, k: _hits(r, q, k) / k,
     "you divided by k: that is precision@k. Recall divides by the number of relevant documents "
     "in qrel (labels > 0), retrieved or not"),
    (lambda r, q, k: _hits(r, q, k) / min(k, _n_rel(q)),
     "you divided by min(k, R) ('capped' recall, used by some benchmarks); this exercise follows "
     "trec_eval: divide by R, the number of relevant documents"),
    (lambda r, q, k: _hits(r, q, k) / len(list(r)),
     "you divided by the number of retrieved documents; recall divides by the number of relevant "
     "documents in qrel"),
    (lambda r, q, k: _hits(r, q, k) / len(q),
     "R counted every judged document; a document judged 0 is NOT relevant: count labels > 0"),
    (lambda r, q, k: sum(1 for d in list(r)[:k] if d in q) / _n_rel(q),
     "a document in qrel with label 0 was counted as found: it is judged NOT relevant (test "
     "`qrel.get(doc, 0) > 0`)"),
    (lambda r, q, k: sum(g for g in _labels(r, q, k) if g > 0) / sum(g for g in q.values() if g > 0),
     "graded labels: a document with relevance 2 is still ONE relevant document -- count "
     "documents, do not add up their grades"),
    (lambda r, q, k: _hits(r, q, None) / _n_rel(q),
     "documents beyond rank k were counted: only `ranking[:k]` is retrieved at cutoff k"),
)


def _recall_case(ranking, qrel, k):
    def run(fn):
        value = _metric(fn, (ranking, qrel, k), ("ranking", "qrel", "k"),
                        "with no relevant document in qrel, recall is defined as 0.0 here (as in "
                        "trec_eval): return 0.0 before dividing")
        _diagnose(value, _recall(ranking, qrel, k), _RECALL_MISTAKES, (ranking, qrel, k),
                  "a division by zero? With no relevant document, return 0.0")
    return run


_QREL = {"d1": 2, "d4": 1, "d7": 1, "d8": 2}
_RANKING = ["d3", "d7", "d1", "d9", "d4"]
_docs = [f"doc{i}" for i in range(200)]
_big_qrel = {d: int(g) for d, g in zip(_rng(1).choice(_docs, 12, replace=False), _rng(2).integers(0, 3, 12))}
_big_ranking = [str(d) for d in _rng(3).permutation(_docs)[:100]]
RECALL = Exercise(
    "03.recall", "recall@k", "recall_at_k",
    ("Recall@k = (relevant documents among the first k of the ranking) / (relevant documents in qrel). "
     "A document is relevant when its label is > 0; documents missing from qrel count 0. The "
     "denominator is not k (that would be precision) and includes relevant documents that were never "
     "retrieved.",
     "Two counts: the relevant documents in all of qrel (labels above 0) and those among `ranking[:k]` "
     "(`qrel.get` with a default of 0 handles unjudged documents). Return 0.0 when qrel holds no "
     "relevant document, before dividing."),
    (Case("the chapter's 5-document example, k = 5", _recall_case(_RANKING, _QREL, 5)),
     Case("a cutoff inside the ranking (k = 2)", _recall_case(_RANKING, _QREL, 2)),
     Case("fewer documents retrieved than k", _recall_case(["a", "b", "c"], {"b": 1, "z": 1}, 10)),
     Case("a query with no relevant document (every label 0)", _recall_case(["a", "b"], {"a": 0, "c": 0}, 2)),
     Case("documents judged 0 (not relevant) in the top k",
          _recall_case(["a", "b", "c", "d", "e"], {"a": 0, "b": 1, "c": 0, "x": 1}, 3)),
     Case("graded labels (0, 1, 2)", _recall_case(["a", "b", "c", "d"], {"a": 2, "c": 1, "d": 2, "e": 2}, 3)),
     Case("an empty ranking", _recall_case([], {"a": 1}, 10)),
     Case("100 retrieved, 12 judged (graded), k = 20", _recall_case(_big_ranking, _big_qrel, 20)),
     Case("a tuple as the ranking", _recall_case(tuple(_RANKING), _QREL, 4))),
    points=1,
)


# --- 03.ndcg: nDCG@k, gain = relevance, discount log2(rank + 1), ideal from all qrel labels ----
def _dcg(gains, offset=1, gain=lambda g: g):
    return sum(gain(g) / math.log2(rank + offset) for rank, g in enumerate(gains, 1) if g > 0)


def _ndcg_variant(ranking, qrel, k, offset=1, gain=lambda g: g, ideal="qrel", cut_ideal=True,
                  normalise=True, cut=True):
    labels = _labels(ranking, qrel, k if cut else None)
    source = list(qrel.values()) if ideal == "qrel" else _labels(ranking, qrel)
    best = sorted(source, reverse=True)[:k] if cut_ideal else sorted(source, reverse=True)
    idcg = _dcg(best, offset, gain)
    if not normalise:
        return _dcg(labels, offset, gain)
    return _dcg(labels, offset, gain) / idcg if idcg > 0 else 0.0


def _ndcg(ranking, qrel, k):
    return _ndcg_variant(ranking, qrel, k)


_NDCG_MISTAKES = (
    (lambda r, q, k: _ndcg_variant(r, q, k, offset=2),
     "your discount is one rank too deep: the document at rank 1 counts fully, gain / log2(1 + 1); "
     "with 0-based positions i (enumerate) the discount is log2(i + 2)"),
    (lambda r, q, k: _ndcg_variant(r, q, k, gain=lambda g: 2 ** g - 1),
     "you used the exponential gain 2^rel - 1 (Burges et al. 2005); this exercise follows "
     "trec_eval: the gain is the relevance itself"),
    (lambda r, q, k: _ndcg_variant(r, q, k, gain=lambda g: 1),
     "graded labels: the gain is the relevance itself (a 2 counts twice as much as a 1), not 1 for "
     "every relevant document"),
    (lambda r, q, k: _ndcg_variant(r, q, k, ideal="ranking"),
     "the ideal ranking must come from ALL labels in qrel -- including relevant documents the "
     "system never retrieved -- not from the retrieved documents re-sorted"),
    (lambda r, q, k: _ndcg_variant(r, q, k, cut_ideal=False),
     "cut the ideal ranking at k too: IDCG@k sums only the first k gains of the ideal order"),
    (lambda r, q, k: _ndcg_variant(r, q, k, normalise=False),
     "you returned DCG@k; divide it by the ideal DCG@k (the DCG of the best possible ranking)"),
    (lambda r, q, k: _ndcg_variant(r, q, k, cut=False),
     "documents beyond rank k were counted: DCG@k sums only the first k ranks"),
)
_LOG_RANK = ("is a discount log2(1) = 0? The document at rank 1 is divided by log2(1 + 1) = 1: "
             "the discount is log2(rank + 1) with ranks from 1")


_NO_RELEVANT = ("this query has no relevant document, so the ideal DCG is 0 and nDCG is 0/0: "
                "return 0.0 in that case")


def _ndcg_case(ranking, qrel, k):
    def run(fn):
        # A division by zero (or a nan/inf) has two different causes: name the one this case has.
        why = _NO_RELEVANT if not any(g > 0 for g in qrel.values()) else _LOG_RANK
        value = _metric(fn, (ranking, qrel, k), ("ranking", "qrel", "k"), why)
        _diagnose(value, _ndcg(ranking, qrel, k), _NDCG_MISTAKES, (ranking, qrel, k), why)
    return run


_graded_docs = [f"p{i}" for i in range(60)]
_graded_qrel = {d: int(g) for d, g in zip(_rng(10).choice(_graded_docs, 15, replace=False),
                                          _rng(11).integers(0, 4, 15))}
_graded_run = [str(d) for d in _rng(12).permutation(_graded_docs)[:40]]
NDCG = Exercise(
    "03.ndcg", "nDCG@k with graded relevance", "ndcg_at_k",
    ("DCG@k = sum over ranks i = 1..k of rel_i / log2(i + 1), rel_i = the label of the document at rank "
     "i (0 if not in qrel). The ideal DCG@k is the same sum over ALL labels of qrel sorted from high to "
     "low and cut at k. nDCG@k = DCG@k / IDCG@k, and 0.0 when IDCG@k is 0.",
     "Write one small DCG function over a list of gains, discounting position i (from 1) by "
     "`math.log2(i + 1)`. The run's gains are the labels of the first k documents (`qrel.get` with "
     "default 0); the ideal gains are all of qrel's labels sorted from high to low, cut at k. Divide, "
     "and return 0.0 when the ideal DCG is 0."),
    (Case("one relevant document at rank 3, k = 10", _ndcg_case(["a", "b", "c", "d"], {"c": 1}, 10)),
     Case("the chapter's 5-document example with graded labels, k = 5", _ndcg_case(_RANKING, _QREL, 5)),
     Case("a relevant document at rank 1", _ndcg_case(["a", "b", "c"], {"a": 1, "c": 1}, 3)),
     Case("a relevant document that was never retrieved", _ndcg_case(["a", "b", "c"], {"b": 1, "z": 1}, 3)),
     Case("a query with no relevant document (every label 0)", _ndcg_case(["a", "b"], {"a": 0, "c": 0}, 10)),
     Case("fewer documents retrieved than k, graded labels", _ndcg_case(["a", "b"], {"b": 2, "a": 1}, 10)),
     Case("more relevant documents than k (the ideal is cut at k)",
          _ndcg_case(["x", "a", "b", "c", "d"], {"a": 1, "b": 2, "c": 1, "d": 2, "e": 1, "f": 2}, 3)),
     Case("a perfect ranking", _ndcg_case(["a", "b", "c", "d"], {"a": 3, "b": 2, "c": 1}, 4)),
     Case("k = 1", _ndcg_case(["a", "b"], {"b": 1, "a": 1}, 1)),
     Case("40 retrieved, 15 judged with labels 0-3, k = 10", _ndcg_case(_graded_run, _graded_qrel, 10))),
    points=2,
)


# --- 03.mrr: mean over the queries of qrels of 1 / rank of the first relevant doc within k -----
def _rr(ranking, qrel, k, start=1, cut=True, relevant=lambda doc, q: q.get(doc, 0) > 0):
    docs = list(ranking)[:k] if cut else list(ranking)
    return next((1.0 / (rank + start - 1) for rank, d in enumerate(docs, 1) if relevant(d, qrel)), 0.0)


def _mrr_variant(rankings, qrels, k, over="qrels", **kw):
    if over == "qrels":
        queries = list(qrels)
    elif over == "rankings":
        queries = [q for q in rankings if q in qrels]
    else:  # only the queries where something relevant was found
        queries = [q for q in qrels if _rr(rankings.get(q, []), qrels[q], k) > 0]
    if not queries:
        return 0.0
    return sum(_rr(rankings.get(q, []), qrels[q], k, **kw) for q in queries) / len(queries)


def _mrr(rankings, qrels, k):
    return _mrr_variant(rankings, qrels, k)


_MRR_MISTAKES = (
    (lambda r, q, k: _mrr_variant(r, q, k, over="rankings"),
     "a query of qrels that is missing from `rankings` must count as 0 in the mean -- averaging "
     "only over the answered queries lets a system look better by dropping its hard ones "
     "(chapter 03, section 6.2)"),
    (lambda r, q, k: _mrr_variant(r, q, k, over="found"),
     "you averaged only over queries where a relevant document was found; queries with none in the "
     "top k count 0 and stay in the mean"),
    (lambda r, q, k: _mrr_variant(r, q, k, cut=False),
     "a relevant document beyond rank k was counted: RR@k is 0 when the first relevant document "
     "is not among the first k"),
    (lambda r, q, k: _mrr_variant(r, q, k, start=2),
     "your ranks start at 2: the first position is rank 1 (with enumerate(ranking), rank = i + 1)"),
    (lambda r, q, k: _mrr_variant(r, q, k, relevant=lambda doc, qrel: doc in qrel),
     "a document in qrel with label 0 was treated as relevant: it is judged NOT relevant (test "
     "`qrel.get(doc, 0) > 0`)"),
)


def _mrr_case(rankings, qrels, k):
    def run(fn):
        value = _metric(fn, (rankings, qrels, k), ("rankings", "qrels", "k"),
                        "the first position is rank 1, so RR = 1 / (i + 1) with 0-based i")
        _diagnose(value, _mrr(rankings, qrels, k), _MRR_MISTAKES, (rankings, qrels, k),
                  "a division by zero?")
    return run


def _many(seed: int, n_queries: int):
    rng = _rng(seed)
    docs = [f"d{i}" for i in range(300)]
    qrels, rankings = {}, {}
    for i in range(n_queries):
        q = f"q{i}"
        qrels[q] = {str(d): int(g) for d, g in zip(rng.choice(docs, 3, replace=False), rng.integers(0, 3, 3))}
        if rng.random() < 0.9:
            rankings[q] = [str(d) for d in rng.permutation(docs)[:int(rng.integers(0, 60))]]
        rankings[f"extra{i}"] = ["d1"] if i % 10 == 0 else rankings.get(q, [])
    for q in list(qrels)[:8]:   # make sure some queries find something early
        first = next((d for d, g in qrels[q].items() if g > 0), None)
        if first and q in rankings:
            rankings[q] = [d for d in rankings[q] if d != first]
            rankings[q].insert(int(rng.integers(0, 4)), first)
    return rankings, qrels


MRR = Exercise(
    "03.mrr", "MRR@k over queries", "mrr_at_k",
    ("For one query, RR@k = 1 / (rank of the first relevant document), ranks starting at 1, and 0 if no "
     "relevant document is among the first k. MRR@k is the mean of RR@k over EVERY query of qrels: a "
     "query missing from `rankings` (or with an empty list) counts 0; queries only in `rankings` are "
     "ignored.",
     "Write the reciprocal rank of one query first: walk the first k documents with `enumerate` "
     "starting at 1 and stop at the first relevant one (`next` with a default of 0.0 does this in one "
     "line). Then average it over the queries of qrels, looking each up in `rankings` with an empty "
     "list as the default -- divide by the number of queries in qrels, not in rankings."),
    (Case("two queries: first relevant at rank 2, and at rank 1",
          _mrr_case({"qa": _RANKING, "qb": ["x1", "x2"]}, {"qa": _QREL, "qb": {"x1": 1}}, 10)),
     Case("the first relevant document beyond rank k", _mrr_case({"q": ["a", "b", "c", "d"]}, {"q": {"d": 1}}, 3)),
     Case("a query of qrels missing from the rankings",
          _mrr_case({"q1": ["a", "b"]}, {"q1": {"b": 1}, "q2": {"c": 1}}, 10)),
     Case("a query with no relevant document found",
          _mrr_case({"q1": ["a", "b"], "q2": ["c", "d"]}, {"q1": {"a": 1}, "q2": {"z": 1}}, 10)),
     Case("a document judged 0 (not relevant) at rank 1",
          _mrr_case({"q1": ["a", "b", "c"]}, {"q1": {"a": 0, "c": 2}}, 10)),
     Case("an empty ranking, and a query that is only in the rankings",
          _mrr_case({"q1": [], "q2": ["b"], "q9": ["a"]}, {"q1": {"a": 1}, "q2": {"b": 1}}, 5)),
     Case("a query whose labels are all 0", _mrr_case({"q1": ["a"], "q2": ["b"]}, {"q1": {"a": 1}, "q2": {"b": 0}}, 5)),
     Case("200 queries with graded labels, k = 10", _mrr_case(*_many(20, 200), 10))),
    points=1,
)


# --- 03.randomization: paired sign-flip test, two-sided, p = (1 + #extreme) / (1 + n) ----------
_TOL = 1e-12
MC_ATOL = 0.02  # Monte Carlo error of a p-value from 10,000 draws: standard error <= 0.005


def _signs(n: int) -> np.ndarray:
    return 1.0 - 2.0 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1)


def _exact(d, side: str = "two", strict: bool = False) -> float:
    """The exact sign-flip p-value by enumerating all 2^n sign patterns (n <= 16)."""
    d = np.asarray(d, np.float64)
    means, obs = _signs(len(d)) @ d / len(d), d.mean()
    if side == "upper":
        return float(np.mean(means >= obs - _TOL))
    extreme = np.abs(means) > abs(obs) + _TOL if strict else np.abs(means) >= abs(obs) - _TOL
    return float(np.mean(extreme))


def _unpaired(a, b, draws: int = 20_000) -> float:
    """A permutation test that shuffles all 2n scores between the systems (wrong for paired data)."""
    rng = np.random.default_rng(0)
    pooled, n = np.r_[a, b], len(a)
    obs = np.mean(b) - np.mean(a)
    perm = rng.permuted(np.tile(pooled, (draws, 1)), axis=1)
    null = perm[:, n:].mean(axis=1) - perm[:, :n].mean(axis=1)
    return float(np.mean(np.abs(null) >= abs(obs) - _TOL))


def _p_value(fn, a, b, n_resamples, seed) -> float:
    out = call(fn, a, b, n_resamples, seed, names=("scores_a", "scores_b", "n_resamples", "seed"))
    p = _number(out, "the p-value")
    if not math.isfinite(p) or not 0 < p <= 1:
        raise Fail(f"a p-value lies in (0, 1]; got {p}" + (
            " -- p = 0 claims a certainty no finite test gives: p = (1 + count) / (1 + n_resamples)"
            if p == 0 else ""))
    return p


def _approx_case(a, b, n_resamples=10_000):
    """p must be within MC_ATOL of the exact p; known mistakes get their own message."""
    def run(fn):
        p = _p_value(fn, a, b, n_resamples, 0)
        d = np.asarray(b, np.float64) - np.asarray(a, np.float64)
        want = _exact(d)
        if abs(p - want) <= MC_ATOL:
            return
        one_sided = (_exact(d, "upper"), _exact(-d, "upper"))
        if any(abs(p - o) <= MC_ATOL for o in one_sided):
            raise Fail("that looks like a one-sided p-value: the test is two-sided -- count the "
                       "shuffles with |mean| >= |observed mean|, whatever the sign")
        if abs(p - _exact(d, strict=True)) <= MC_ATOL:
            raise Fail("shuffles whose |mean| equals the observed |mean| must count as extreme "
                       "(>=, not >); ties are common with hit/miss metrics")
        if abs(p - _unpaired(a, b)) <= MC_ATOL:
            raise Fail("you shuffled scores across queries: a paired test keeps each query's two "
                       "scores together and only flips which system got which -- the sign of "
                       "d_q = b_q - a_q")
        raise Fail(f"the p-value is off by {abs(p - want):.2f} -- more than random draws explain")
    return run


def _identical(fn):
    a = _rng(40).uniform(0, 1, 20)
    p = _p_value(fn, a, a.copy(), 2_000, 0)
    if abs(p - 1.0) > _TOL:
        raise Fail("with no difference at all, every shuffle is at least as extreme as the observed "
                   "mean (|0| >= |0|): count with >=, not >, so that p = 1")


def _certain(fn):
    rng = _rng(41)
    a = rng.uniform(0, 0.8, 300)
    b = a + 0.1 + 0.02 * rng.random(300)
    p = _p_value(fn, a.tolist(), b.tolist(), 999, 0)
    if abs(p - 1 / 1000) > _TOL:
        used = " -- did you use n_resamples?" if abs(p - 1 / 10_001) < _TOL else ""
        raise Fail("when no shuffle reaches the observed difference, p must be (1 + 0) / (1 + "
                   f"n_resamples), the smallest value the test can give{used}")


def _reproducible(fn):
    rng = _rng(42)
    a = rng.uniform(0, 1, 50)
    b = a + rng.normal(0, 0.3, 50)
    first, again = (_p_value(fn, a, b, 10_000, 7) for _ in range(2))
    if first != again:
        raise Fail("two calls with the same seed gave different p-values: draw the signs from "
                   "`np.random.default_rng(seed)`, created inside your function")
    others = {_p_value(fn, a, b, 10_000, s) for s in (1, 2, 3)}
    if len(others) == 1:
        raise Fail("seeds 1, 2 and 3 gave the very same p-value: is `seed` used?")


def _paired_data():
    rng = _rng(43)
    a = rng.uniform(0, 0.9, 12)
    return a, a + 0.06 + 0.01 * rng.random(12)


def _moderate(seed: int, n: int = 12):
    rng = _rng(seed)
    a = rng.uniform(0, 1, n)
    return a, np.clip(a + rng.normal(0.12, 0.25, n), 0, 1)


_hit_a = [1, 0, 0, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0]
_hit_b = [1, 1, 1, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0]
RANDOMIZATION = Exercise(
    "03.randomization", "paired randomization test", "randomization_test",
    ("Work with the per-query differences d = scores_b - scores_a. If the systems were equal, each d_q "
     "could have had either sign. Draw n_resamples random sign vectors (±1 per query) from "
     "np.random.default_rng(seed), compute the mean of each sign-flipped d, and count how often its "
     "absolute value reaches |mean(d)|. p = (1 + count) / (1 + n_resamples).",
     "Make the generator once with `np.random.default_rng(seed)` and draw a whole (n_resamples, n) "
     "matrix of +1/-1 signs from it in one call; multiplying it with d and taking the mean along the "
     "queries gives every shuffled mean at once. Count the shuffles whose absolute mean reaches the "
     "observed one (with >=, and a tolerance of about 1e-12 for rounding), then add 1 to the count and "
     "to n_resamples."),
    (Case("two identical systems (every difference is 0)", _identical),
     Case("12 queries, B better on most", _approx_case(*_moderate(44))),
     Case("the same 12 queries with A and B swapped (B worse)", _approx_case(*_moderate(44)[::-1])),
     Case("hit/miss scores (differences -1, 0, +1, many ties), as Python lists", _approx_case(_hit_a, _hit_b)),
     Case("queries of very different difficulty, B a little better on every one", _approx_case(*_paired_data())),
     Case("a consistent improvement on 300 queries, n_resamples = 999", _certain),
     Case("16 queries, a small, unclear difference", _approx_case(*_moderate(50, 16))),
     Case("the same seed twice, then three other seeds", _reproducible)),
    points=2,
)



# --- 03.compare_runs: pytrec_eval per-query nDCG@10 of two runs + scipy's paired t-test -------------
def _synthetic_runs(seed: int, n_queries: int, n_docs: int, drop_b: int):
    """qrels with graded labels and two runs (B better on average); B misses `drop_b` queries."""
    rng = _rng(seed)
    qrels, run_a, run_b = {}, {}, {}
    for q in range(n_queries):
        qid = f"q{q}"
        docs = [f"d{q}_{j}" for j in range(n_docs)]
        rel = rng.choice(docs, size=3, replace=False)
        qrels[qid] = {str(d): int(g) for d, g in zip(rel, rng.integers(1, 3, 3))}
        base = rng.random(n_docs)
        boost = np.array([1.0 if d in qrels[qid] else 0.0 for d in docs])
        run_a[qid] = {d: float(s) for d, s in zip(docs, base + 0.3 * boost * rng.random(n_docs))}
        if q >= drop_b:
            run_b[qid] = {d: float(s) for d, s in zip(docs, base + 0.6 * boost * rng.random(n_docs)
                                                         + 1e-3 * rng.random(n_docs))}
    return qrels, run_a, run_b


def _per_query_ndcg(qrels, run) -> np.ndarray:
    import pytrec_eval

    found = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run)
    return np.array([found.get(q, {}).get("ndcg_cut_10", 0.0) for q in sorted(qrels)])


def _compare_reference(qrels, run_a, run_b):
    from scipy.stats import ttest_ind, ttest_rel

    a, b = _per_query_ndcg(qrels, run_a), _per_query_ndcg(qrels, run_b)
    answered_b = np.array([q in run_b for q in sorted(qrels)])
    return {"a": float(a.mean()), "b": float(b.mean()), "p_value": float(ttest_rel(b, a).pvalue),
            "b_answered_only": float(b[answered_b].mean()), "p_unpaired": float(ttest_ind(b, a).pvalue)}


def _compare_case(seed, n_queries, n_docs, drop_b):
    def run(fn):
        qrels, run_a, run_b = _synthetic_runs(seed, n_queries, n_docs, drop_b)
        out = call(fn, qrels, run_a, run_b, names=("qrels", "run_a", "run_b"))
        ref = _compare_reference(qrels, run_a, run_b)
        if not isinstance(out, dict) or not {"a", "b", "p_value"} <= set(out):
            raise Fail('return a dict with the keys "a", "b" (mean nDCG@10 of each run) and "p_value"')
        a, b, p = (_number(out[key], f'out["{key}"]') for key in ("a", "b", "p_value"))
        if abs(a - ref["a"]) > 1e-6:
            raise Fail('out["a"] is not the mean nDCG@10 of run_a over the queries of qrels '
                       '(pytrec_eval measure "ndcg_cut.10", key "ndcg_cut_10")')
        if abs(b - ref["b"]) > 1e-6:
            if drop_b and abs(b - ref["b_answered_only"]) < 1e-6:
                raise Fail(f'out["b"] averages only the queries run_b answered: pytrec_eval leaves the '
                           f"{drop_b} unanswered queries out of its result; each of them must count as 0 "
                           "in the mean (and in the test), or a system looks better by answering less")
            raise Fail('out["b"] is not the mean nDCG@10 of run_b over the queries of qrels')
        if abs(p - ref["p_value"]) > 1e-6:
            if abs(p - ref["p_unpaired"]) < 1e-6:
                raise Fail("the p-value is an UNPAIRED t-test (ttest_ind): both runs answer the same "
                           "queries, so pair them per query (scipy.stats.ttest_rel)")
            raise Fail("the p-value is not the two-sided paired t-test of the per-query nDCG@10 values "
                       "(the same query order for both runs, every query of qrels)")
    return run


COMPARE_RUNS = Exercise(
    "03.compare_runs", "two runs compared with pytrec_eval and a paired t-test", "compare_runs",
    ("Evaluate each run with pytrec_eval's `RelevanceEvaluator`, built from the qrels and the measure "
     "'ndcg_cut.10': its `evaluate(run)` gives one value per query. Line both systems up over EVERY "
     "query of qrels (a query a run did not answer scores 0), then average and run scipy's paired "
     "t-test.",
     "`evaluate(run)` returns a dict for each query it could score; look every query of qrels up in it "
     "(0.0 when absent), in the same order for both runs. `scipy.stats.ttest_rel(b, a)` pairs element i "
     "of b with element i of a; its `.pvalue` is two-sided."),
    (Case("30 queries, both runs answer every query", _compare_case(60, 30, 25, 0)),
     Case("40 queries; run_b returns nothing for 6 of them", _compare_case(61, 40, 20, 6)),
     Case("12 queries, few documents each", _compare_case(62, 12, 8, 2)),
     Case("60 queries, 30 documents each", _compare_case(63, 60, 30, 0)),
     Case("25 queries; run_b misses one", _compare_case(64, 25, 15, 1))),
    points=2,
)

# --- held-back cases: the public situations again, with other inputs (graded; `check` never runs them)
_docs2 = [f"x{i}" for i in range(150)]
_qrel2 = {d: int(g) for d, g in zip(_rng(70).choice(_docs2, 10, replace=False), _rng(71).integers(0, 4, 10))}
_ranking2 = [str(d) for d in _rng(72).permutation(_docs2)[:80]]
RECALL = held_back(
    RECALL,
    Case("a cutoff inside the ranking (k = 3)", _recall_case(["e", "f", "g", "h"], {"f": 1, "h": 2, "q": 1}, 3)),
    Case("fewer documents retrieved than k", _recall_case(["m", "n"], {"n": 2, "o": 1, "p": 1}, 8)),
    Case("a query with no relevant document", _recall_case(["a", "b", "c"], {"b": 0}, 3)),
    Case("judged-0 documents and graded labels in the top k",
         _recall_case(["a", "b", "c", "d", "e"], {"a": 0, "b": 2, "c": 0, "d": 1, "y": 2}, 4)),
    Case("80 retrieved, 10 judged (graded), k = 25", _recall_case(_ranking2, _qrel2, 25)))
NDCG = held_back(
    NDCG,
    Case("one relevant document at rank 2, k = 5", _ndcg_case(["a", "b", "c"], {"b": 1}, 5)),
    Case("graded labels, a relevant document never retrieved",
         _ndcg_case(["a", "b", "c", "d"], {"a": 1, "c": 3, "z": 2}, 4)),
    Case("a query with no relevant document", _ndcg_case(["a"], {"a": 0}, 5)),
    Case("more relevant documents than k", _ndcg_case(["e", "d", "c", "b", "a"], {"a": 2, "b": 2, "c": 1, "d": 3, "e": 1}, 2)),
    Case("80 retrieved, 10 judged with labels 0-3, k = 20", _ndcg_case(_ranking2, _qrel2, 20)))
MRR = held_back(
    MRR,
    Case("three queries: first relevant at ranks 3, 1 and none",
         _mrr_case({"a": ["x", "y", "z"], "b": ["u"], "c": ["v", "w"]}, {"a": {"z": 2}, "b": {"u": 1}, "c": {"t": 1}}, 5)),
    Case("the first relevant document beyond rank k", _mrr_case({"q": ["a", "b", "c"]}, {"q": {"c": 1, "a": 0}}, 2)),
    Case("queries of qrels missing from the rankings, one only in the rankings",
         _mrr_case({"q1": ["a"], "q9": ["b"]}, {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 2}}, 10)),
    Case("150 queries with graded labels, k = 5", _mrr_case(*_many(70, 150), 5)))
RANDOMIZATION = held_back(
    RANDOMIZATION,
    Case("14 queries, B better on most", _approx_case(*_moderate(70, 14))),
    Case("the same 14 queries with A and B swapped", _approx_case(*_moderate(70, 14)[::-1])),
    Case("hit/miss scores with many ties", _approx_case([0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1], [1, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0])),
    Case("15 queries, a small, unclear difference", _approx_case(*_moderate(71, 15))))
COMPARE_RUNS = held_back(
    COMPARE_RUNS,
    Case("35 queries, both runs answer every query", _compare_case(70, 35, 20, 0)),
    Case("30 queries; run_b returns nothing for 4 of them", _compare_case(71, 30, 18, 4)),
    Case("15 queries, few documents each", _compare_case(72, 15, 7, 3)))

EXERCISES = (RECALL, NDCG, MRR, RANDOMIZATION, COMPARE_RUNS)
