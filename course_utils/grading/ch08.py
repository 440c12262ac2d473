"""Hidden test cases of chapter 08's exercises (solutions/08_finetuning_exercises.ipynb).

Exercises: the MultipleNegativesRankingLoss / InfoNCE value in numpy (`mnrl_loss`), hard-negative
mining that never returns a known positive (`mine_hard_negatives`), a train/test leakage check by
normalised text and cosine similarity (`find_leakage`), and a linear adapter fitted in closed form
(`fit_adapter`). Reference answers are computed here, at check time, from seeded inputs; when a
wrong answer matches a known mistake (vectors not normalised, the softmax over the wrong axis, no
scale, positives among the negatives, > instead of >=...) the message names it, never the values.
"""
from __future__ import annotations

import functools
import math
import re

import numpy as np

from .cases import Case, Exercise, Fail, as_array, call, expect_array, held_back


def _rng(n: int) -> np.random.Generator:
    return np.random.default_rng(8000 + n)


def _number(out, what: str = "the loss") -> float:
    arr = as_array(out, what)
    if arr.size != 1:
        raise Fail(f"{what} should be one number (the mean over the batch), got an array of shape {arr.shape}")
    return float(arr.reshape(()))


def _unit(x):
    x = np.asarray(x, np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n == 0, 1, n)


# --- 08.mnrl: in-batch negatives InfoNCE, scale * cosine, optional hard-negative columns --------
def _logsumexp(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def _mnrl(a, p, n=None, scale=20.0, normalise=True, axis=1, use_neg=True, own_neg=False, reduce="mean"):
    f = _unit if normalise else (lambda x: np.asarray(x, np.float64))
    a, p = f(a), f(p)
    cands = p if (n is None or not use_neg or own_neg) else np.vstack([p, f(n)])
    logits = scale * a @ cands.T
    if own_neg and n is not None:
        logits = np.hstack([logits, scale * np.sum(a * f(n), axis=1, keepdims=True)])
    diag = np.diag(logits[:, :len(a)])
    losses = _logsumexp(logits, axis=1) - diag if axis == 1 else _logsumexp(logits[:, :len(a)], axis=0) - diag
    return float(losses.mean() if reduce == "mean" else losses.sum())


_MNRL_MISTAKES = (
    (dict(normalise=False), "the similarities are dot products of vectors that are not unit length: "
                            "normalise every row of anchors, positives (and negatives) first, so "
                            "that a @ b.T is the cosine"),
    (dict(axis=0), "the softmax runs over the wrong axis: each ANCHOR's row of scores (over all the "
                   "candidates) is one classification problem -- normalise along axis=1"),
    (dict(scale=1.0), "the scale is missing: multiply the cosine similarities by `scale` before the "
                      "softmax (cosines lie in [-1, 1]; scaled by 20 the softmax can be confident)"),
    (dict(use_neg=False), "the hard negatives are ignored: add them as extra candidate columns, "
                          "`np.vstack([positives, negatives])`, for every anchor"),
    (dict(own_neg=True), "every anchor must see ALL rows' hard negatives as candidates, not only its "
                         "own: the candidates are all B positives followed by all B negatives"),
    (dict(reduce="sum"), "the loss is the MEAN over the batch of the per-anchor losses, not the sum"),
)


def _check_mnrl(value, args, kwargs):
    want = _mnrl(*args, **kwargs)
    if not math.isfinite(value):
        raise Fail(f"the loss is {value}: exp() overflowed -- with scale 20 (or more) and float32 "
                   "numbers exp(scale * cos) can exceed the largest float; subtract each row's "
                   "maximum before exp (the log-sum-exp trick)")
    if abs(value - want) <= 1e-5 * max(1.0, abs(want)):
        return
    if value < 0:
        raise Fail("the loss is negative: it is -log(probability of the positive), so it is >= 0 "
                   "(did you forget the minus sign?)")
    for variant, message in _MNRL_MISTAKES:
        other = _mnrl(*args, **{**kwargs, **variant})
        if abs(other - want) > 1e-6 and abs(value - other) <= 1e-5 * max(1.0, abs(other)):
            raise Fail(message)
    raise Fail(f"the loss is off by {abs(value - want):.3g}")


def _mnrl_case(a, p, n=None, scale=None):
    def run(fn):
        args = (a, p) if n is None and scale is None else (a, p, n) if scale is None else (a, p, n, scale)
        names = ("anchors", "positives", "negatives", "scale")
        value = _number(call(fn, *args, names=names))
        _check_mnrl(value, (a, p, n), {} if scale is None else {"scale": scale})
    return run


def _batch(seed, b, d, noise=0.7, dtype=np.float64, unit=False):
    rng = _rng(seed)
    a = rng.normal(size=(b, d))
    p = a + noise * rng.normal(size=(b, d))
    n = a + 1.5 * noise * rng.normal(size=(b, d))
    lengths = rng.uniform(0.3, 4.0, size=(b, 1))
    out = [_unit(x) if unit else x * lengths for x in (a, p, n)]
    return [x.astype(dtype) for x in out]


_a2 = np.array([[1.0, 0.0], [0.0, 1.0]])
_p2 = np.array([[0.8, 0.6], [0.6, 0.8]])
MNRL = Exercise(
    "08.mnrl", "MultipleNegativesRankingLoss in numpy", "mnrl_loss",
    ("Normalise the rows; the candidates are the B positives (then the B negatives, if given); the "
     "logits are scale times the anchors against the candidates, one row per anchor. Row i is a softmax "
     "classification whose right answer is column i: loss_i = logsumexp(row i) - logits[i, i]. Return "
     "the mean.",
     "`np.vstack` stacks positives and negatives into one candidate matrix. For a log-sum-exp that does "
     "not overflow, subtract each row's maximum before `np.exp` and add it back after `np.log`. "
     "`np.diag` of a wide matrix gives the first B diagonal entries -- the right answers."),
    (Case("a batch of 2, unit vectors in 2 dimensions", _mnrl_case(_a2, _p2)),
     Case("a batch of 4 whose rows are not unit length", _mnrl_case(*_batch(1, 4, 8)[:2])),
     Case("hard negatives: one per anchor", _mnrl_case(*_batch(2, 3, 6))),
     Case("another scale (5)", _mnrl_case(*_batch(3, 5, 8), scale=5.0)),
     Case("a batch of 1 (no in-batch negative)", _mnrl_case(*_batch(4, 1, 5)[:2])),
     Case("Python lists as input", _mnrl_case(*(x.tolist() for x in _batch(5, 3, 4)[:2]))),
     Case("two identical positives in the batch", _mnrl_case(_a2, np.vstack([_p2[:1], _p2[:1]]))),
     Case("a real-size batch: 32 x 384, float32, with hard negatives",
          _mnrl_case(*_batch(6, 32, 384, dtype=np.float32))),
     Case("float32 unit vectors and scale 100 (exp overflows without care)",
          _mnrl_case(*_batch(7, 8, 16, noise=0.2, dtype=np.float32, unit=True), scale=100.0))),
    points=2,
)


# --- 08.hard_negatives: top-n scored documents that are not known positives ----------------------
def _ref_mine(scores, query_ids, doc_ids, qrels, n, keep_pos=False, keep_self=False, filter_late=False,
              ascending=False, drop_judged=False, unstable=False):
    scores = np.asarray(scores, np.float64)
    out = {}
    for i, q in enumerate(query_ids):
        row = scores[i] if not ascending else -scores[i]
        order = np.argsort(-row, kind="stable")
        if unstable:                                 # ties broken towards the LATER document
            order = len(row) - 1 - np.argsort(-row[::-1], kind="stable")
        judged = qrels.get(q, {})
        bad = lambda d: ((not keep_pos and (judged.get(d, 0) > 0 or (drop_judged and d in judged)))  # noqa: E731
                         or (not keep_self and d == q))
        cands = [doc_ids[j] for j in order]
        out[q] = [d for d in cands[:n] if not bad(d)] if filter_late else [d for d in cands if not bad(d)][:n]
    return out


_MINE_MISTAKES = (
    (dict(filter_late=True), "fewer than n negatives: you took the n best and then removed the "
                             "positives; remove the positives first, then take the n best"),
    (dict(ascending=True), "these are the EASIEST negatives (lowest scores): hard negatives are the "
                           "highest-scoring documents that are not positives"),
    (dict(drop_judged=True), "a document judged 0 in qrels is judged NOT relevant: it may be a "
                             "negative; exclude only relevance > 0"),
    (dict(unstable=True), "on equal scores keep the earlier document (smaller column) first: "
                          "np.argsort(-row, kind='stable')"),
)


def _check_mine(out, scores, query_ids, doc_ids, qrels, n):
    want = _ref_mine(scores, query_ids, doc_ids, qrels, n)
    if out is None:
        raise Fail("the result is None: did you forget `return`?")
    if not isinstance(out, dict):
        raise Fail(f"return a dict {{query_id: [doc ids]}}, got a {type(out).__name__}")
    if set(out) != set(want):
        missing = [q for q in want if q not in out]
        raise Fail(f"query {missing[0]!r} is missing from the result" if missing else
                   "the result has keys that are not query ids")
    for q in want:
        got = out[q]
        if not isinstance(got, list) or any(not isinstance(d, str) for d in got):
            raise Fail(f"query {q!r}: return a list of doc ids (strings from `doc_ids`), not row positions")
        judged = qrels.get(q, {})
        if any(judged.get(d, 0) > 0 for d in got):
            raise Fail(f"query {q!r}: a known positive (relevance > 0 in qrels) was returned as a "
                       "negative -- training would push the query AWAY from a right answer")
        if q in got:
            raise Fail(f"query {q!r}: its own document (doc id == query id) was returned as a negative; "
                       "when queries are also in the corpus, a query's own text is never a negative")
        if len(set(got)) != len(got):
            raise Fail(f"query {q!r}: a document is listed twice")
    if out == want:
        return
    for variant, message in _MINE_MISTAKES:
        other = _ref_mine(scores, query_ids, doc_ids, qrels, n, **variant)
        if other != want and out == other:
            raise Fail(message)
    q = next(q for q in want if out[q] != want[q])
    if len(out[q]) != len(want[q]):
        raise Fail(f"query {q!r}: {len(out[q])} negatives where {len(want[q])} were expected (n per "
                   "query, fewer only when the non-positive documents run out)")
    raise Fail(f"query {q!r}: these are not the n highest-scoring non-positive documents, best first")


def _mine_case(scores, query_ids, doc_ids, qrels, n):
    def run(fn):
        out = call(fn, scores, query_ids, doc_ids, qrels, n, names=("scores", "query_ids", "doc_ids", "qrels", "n"))
        _check_mine(out, scores, query_ids, doc_ids, qrels, n)
    return run


def _mine_data(seed, nq, nd, n_pos=2, self_in_corpus=False):
    rng = _rng(seed)
    doc_ids = [str(x) for x in rng.choice(10_000_000, nd, replace=False)]
    query_ids = [f"q{i}" for i in range(nq)]
    if self_in_corpus:
        query_ids = doc_ids[:nq]
    scores = rng.normal(size=(nq, nd))
    qrels = {}
    for i, q in enumerate(query_ids):
        pos = rng.choice(nd, n_pos, replace=False)
        scores[i, pos] += 2.0                        # positives score high, as they would
        qrels[q] = {doc_ids[j]: 1 for j in pos}
        if self_in_corpus:
            scores[i, i] = 5.0                       # the query's own text: the top score
    return scores, query_ids, doc_ids, qrels


_s_small = np.array([[0.9, 0.8, 0.7, 0.6, 0.5], [0.1, 0.95, 0.3, 0.85, 0.2]])
_ids_small = ["d0", "d1", "d2", "d3", "d4"]
MINE = Exercise(
    "08.hard_negatives", "hard-negative mining without positives", "mine_hard_negatives",
    ("For each query row, sort the documents by decreasing score; walk down that list and skip every "
     "known positive (qrels[query][doc] > 0) and the query's own document (doc id == query id); keep "
     "the first n that remain.",
     "A stable `np.argsort` of the negated row gives the documents best first (equal scores keep their "
     "order). Collect the positives of the query into a set, with `qrels.get` and an empty default for "
     "a query without judgments; filter the ordered ids BEFORE cutting the list to n."),
    (Case("2 queries, 5 documents, n = 2", _mine_case(_s_small, ["q1", "q2"], _ids_small,
                                                      {"q1": {"d0": 1}, "q2": {"d1": 1, "d3": 1}}, 2)),
     Case("the positives are the highest-scoring documents", _mine_case(*_mine_data(1, 4, 30, n_pos=3), 3)),
     Case("a document judged 0 (not relevant) in qrels", _mine_case(_s_small, ["q1", "q2"], _ids_small,
                                                                    {"q1": {"d0": 1, "d1": 0}, "q2": {"d1": 2}}, 3)),
     Case("queries that are also documents of the corpus (each query's own text scores highest)",
          _mine_case(*_mine_data(2, 5, 40, self_in_corpus=True), 4)),
     Case("a query without any judgment", _mine_case(_s_small, ["q1", "q9"], _ids_small, {"q1": {"d2": 1}}, 2)),
     Case("n larger than the number of non-positive documents",
          _mine_case(_s_small, ["q1", "q2"], _ids_small, {"q1": {"d0": 1, "d1": 1}, "q2": {"d4": 1}}, 10)),
     Case("equal scores", _mine_case(np.array([[0.5, 0.7, 0.5, 0.7, 0.5]]), ["q1"], _ids_small, {"q1": {"d1": 1}}, 3)),
     Case("200 queries, 1,000 documents, n = 5", _mine_case(*_mine_data(3, 200, 1000), 5))),
    points=2,
)


# --- 08.leakage: exact (normalised text) and near (cosine >= threshold) duplicates ----------------
def _normtext(t):
    return " ".join(re.findall(r"\w+", t.lower()))


def _ref_leak(test_texts, train_texts, test_vecs, train_vecs, threshold, raw_text=False, raw_vecs=False,
              strict=False, near_first=False):
    norm = (lambda t: t) if raw_text else _normtext
    first = {}
    for j, t in enumerate(train_texts):
        first.setdefault(norm(t), j)
    f = (lambda x: np.asarray(x, np.float64)) if raw_vecs else _unit
    sims = f(test_vecs) @ f(train_vecs).T if len(train_texts) else np.zeros((len(test_texts), 0))
    out = {}
    for i, t in enumerate(test_texts):
        j = int(np.argmax(sims[i])) if sims.shape[1] else None
        near = j is not None and (sims[i, j] > threshold if strict else sims[i, j] >= threshold - 1e-12)
        if norm(t) in first and not (near_first and near):
            out[i] = ("exact", first[norm(t)])
        elif near:
            out[i] = ("near", j)
    return out


_LEAK_MISTAKES = (  # near_first before raw_text: on an exact twin with a high cosine both say 'near'
    (dict(near_first=True), "a test query whose normalised text equals a training query's is 'exact' "
                            "(check the text first), even though its cosine is high too"),
    (dict(raw_text=True), "an exact duplicate was missed: compare NORMALISED texts -- lower-case, "
                          "words only (' '.join(re.findall(r'\\w+', text.lower())))"),
    (dict(raw_vecs=True), "the vectors given are not unit length: normalise the rows before the dot "
                          "product, or it is not the cosine"),
    (dict(strict=True), "a similarity exactly equal to the threshold counts as near (>=, not >)"),
)


def _check_leak(out, args, threshold):
    want = _ref_leak(*args, threshold)
    if out is None:
        raise Fail("the result is None: did you forget `return`?")
    if not isinstance(out, dict):
        raise Fail(f"return a dict {{test index: (kind, train index)}}, got a {type(out).__name__}")
    clean = {}
    for i, v in out.items():
        if v is None:
            raise Fail("list only the leaking test queries: a clean one is simply not a key")
        if not isinstance(v, (tuple, list)) or len(v) != 2 or v[0] not in ("exact", "near"):
            raise Fail(f"each value must be a pair (kind, train index) with kind 'exact' or 'near', got {v!r:.60}")
        clean[int(i)] = (v[0], int(v[1]))
    if clean == want:
        return
    for variant, message in _LEAK_MISTAKES:
        other = _ref_leak(*args, threshold, **variant)
        if other != want and clean == other:
            raise Fail(message)
    if set(clean) == set(want) and all(clean[i][0] == want[i][0] for i in want):
        raise Fail("the right test queries, but a train index is not the right one: for 'exact', the "
                   "first training query with the same normalised text; for 'near', the most similar one "
                   "(argmax over the row of test x train similarities)")
    extra, missed = set(clean) - set(want), set(want) - set(clean)
    raise Fail(f"{len(missed)} leaking test queries missed and {len(extra)} clean ones flagged")


def _leak_case(test_texts, train_texts, test_vecs, train_vecs, threshold):
    def run(fn):
        args = (test_texts, train_texts, test_vecs, train_vecs)
        out = call(fn, *args, threshold, names=("test_texts", "train_texts", "test_vecs", "train_vecs", "threshold"))
        _check_leak(out, args, threshold)
    return run


_TRAIN = ["Vitamin D deficiency raises the risk of fractures.", "Aspirin lowers stroke risk in women.",
          "BRCA1 mutations increase breast cancer risk.", "Statins reduce LDL cholesterol."]
_TEST = ["vitamin D deficiency raises the risk of fractures", "Aspirin LOWERS stroke risk in women!",
         "Coffee improves memory.", "Statins do not reduce LDL cholesterol."]


def _leak_vectors(seed, n_test, n_train, d, near_pairs, cos=0.95, lengths=True):
    """Random vectors; test row i is placed at cosine `cos` from train row j for (i, j) in near_pairs."""
    rng = _rng(seed)
    train = _unit(rng.normal(size=(n_train, d)))
    test = _unit(rng.normal(size=(n_test, d))) * 0.3       # far from everything (cos ~ 0)
    for i, j in near_pairs:
        ortho = rng.normal(size=d)
        ortho -= ortho @ train[j] * train[j]
        ortho /= np.linalg.norm(ortho)
        test[i] = cos * train[j] + math.sqrt(1 - cos ** 2) * ortho
    if lengths:
        test = test * rng.uniform(0.5, 3.0, size=(n_test, 1))
        train = train * rng.uniform(0.5, 3.0, size=(n_train, 1))
    return test, train


def _tie_case():
    """Cosines of exactly 0.5 (every number here is exact in binary)."""
    train = np.array([[0.5, 0.5, 0.5, 0.5], [0.5, -0.5, 0.5, -0.5]])
    test = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0], [0.5, 0.5, -0.5, -0.5]])
    return ["x one", "x two", "x three"], ["a", "b"], test, train, 0.5


def _big_leak():
    rng = _rng(30)
    words = ["cells", "mice", "risk", "vitamin", "cancer", "increase", "reduce", "blood", "gene", "p53"]
    train = [" ".join(rng.choice(words, 6)) for _ in range(120)]
    test = [" ".join(rng.choice(words, 6)) for _ in range(40)]
    for i in range(0, 40, 7):
        test[i] = train[3 * i].upper() + " ."
    tv, trv = _leak_vectors(31, 40, 120, 32, [(i, (5 * i) % 120) for i in range(1, 40, 5)], cos=0.93)
    return test, train, tv, trv, 0.9


LEAK = Exercise(
    "08.leakage", "train/test leakage check", "find_leakage",
    ("Normalise each text (lower-case, keep only the words, single spaces) and each vector (unit "
     "length). A test query is 'exact' if its normalised text equals a training query's (report the "
     "first such), otherwise 'near' if its highest cosine to the training queries is >= threshold "
     "(report that training query). Clean test queries are not in the result.",
     "Normalise texts with `re.findall` of word characters on the lower-cased text, joined by spaces; a "
     "dict from normalised training text to its first index (`setdefault`) answers the exact check. For "
     "the near check, normalise the vectors' rows and take one matrix product; each test row's `max` "
     "and `argmax` give the best training match."),
    (Case("exact duplicates up to case, spacing and punctuation",
          _leak_case(_TEST, _TRAIN, *_leak_vectors(1, 4, 4, 16, []), 0.9)),
     Case("a near-duplicate by cosine (vectors not of unit length)",
          _leak_case(["p", "q", "r"], ["s", "t", "u", "v"], *_leak_vectors(2, 3, 4, 16, [(1, 2)]), 0.9)),
     Case("an exact duplicate whose cosine is also above the threshold",
          _leak_case(_TEST[:2], _TRAIN, *_leak_vectors(3, 2, 4, 16, [(0, 3), (1, 1)]), 0.9)),
     Case("a cosine exactly equal to the threshold", _leak_case(*_tie_case())),
     Case("the same text twice in the training set", _leak_case(["A b."], ["c", "a b", "A  B", "a b"],
                                                                *_leak_vectors(4, 1, 4, 8, []), 0.9)),
     Case("no leak at all", _leak_case(["one", "two"], ["three", "four"], *_leak_vectors(5, 2, 2, 8, []), 0.9)),
     Case("40 test and 120 training queries, threshold 0.9", _leak_case(*_big_leak()))),
    points=2,
)


# --- 08.adapter: W = argmin ||Q W - P||^2 + lam ||W||^2 = (Q^T Q + lam I)^-1 Q^T P ------------------
def _ref_adapter(q, p, lam):
    q, p = np.asarray(q, np.float64), np.asarray(p, np.float64)
    return np.linalg.solve(q.T @ q + lam * np.eye(q.shape[1]), q.T @ p)


def _check_adapter(out, q, p, lam):
    want = _ref_adapter(q, p, lam)
    arr = as_array(out, "W")
    if arr.shape == want.shape and not np.allclose(arr, want, atol=1e-5, rtol=1e-4):
        d, n = want.shape[0], len(q)
        for other, message in (
                (_ref_adapter(q, p, lam).T, "W is transposed: the adapter maps a query row q to q @ W, so "
                                            "solve (Q^T Q + lam I) W = Q^T P"),
                (_ref_adapter(q, p, 0.0) if d <= n else None, "lam is ignored: add lam on the diagonal, "
                                                             "Q^T Q + lam * np.eye(d)"),
                (np.linalg.solve(q.T @ q + lam, q.T @ p), "lam was added to every entry of Q^T Q; add it "
                                                           "on the diagonal only (lam * np.eye(d))"),
                (_ref_adapter(q, p, lam * n), "lam is scaled by the number of rows; use it as given")):
            if other is not None and not np.allclose(other, want, atol=1e-5) and np.allclose(arr, other, atol=1e-5, rtol=1e-4):
                raise Fail(message)
    expect_array(arr, want, "W", atol=1e-5 * max(1.0, float(np.abs(want).max())))


def _adapter_case(q, p, lam):
    return lambda fn: _check_adapter(call(fn, q, p, lam, names=("Q", "P", "lam")), q, p, lam)


def _adapter_data(seed, n, d, noise=0.1):
    rng = _rng(seed)
    q = rng.normal(size=(n, d))
    w = np.eye(d) + 0.3 * rng.normal(size=(d, d))
    return q, q @ w + noise * rng.normal(size=(n, d))


ADAPTER = Exercise(
    "08.adapter", "a linear adapter in closed form", "fit_adapter",
    ("Ridge regression with a matrix target: minimise ||Q W - P||^2 + lam ||W||^2 over W (d x d). "
     "Setting the gradient to zero gives the normal equations (Q^T Q + lam I) W = Q^T P.",
     "`np.linalg.solve` solves A W = B for W without forming an inverse; here A is Q^T Q with lam added "
     "on its diagonal (`np.eye`) and B is Q^T P. Solving is faster and more accurate than "
     "`np.linalg.inv`."),
    (Case("an exact linear map, lam = 0", _adapter_case(*_adapter_data(1, 20, 3, noise=0.0), 0.0)),
     Case("noisy targets, lam = 1", _adapter_case(*_adapter_data(2, 50, 4), 1.0)),
     Case("fewer rows than dimensions (lam > 0 makes it solvable)", _adapter_case(*_adapter_data(3, 5, 8), 0.5)),
     Case("a large lam (W shrinks towards 0)", _adapter_case(*_adapter_data(4, 30, 5), 1000.0)),
     Case("Python lists", _adapter_case(*(x.tolist() for x in _adapter_data(5, 6, 2)), 0.1)),
     Case("embedding-sized: 400 pairs, 64 dimensions, float32",
          _adapter_case(*(x.astype(np.float32) for x in _adapter_data(6, 400, 64)), 2.0))),
    points=2,
)

# --- 08.mine_library: sentence_transformers.util.mine_hard_negatives on (anchor, positive) pairs --
@functools.lru_cache(maxsize=1)
def _model():
    from course_utils.models import load_model

    return load_model()


def _model_path() -> str:
    from course_utils.models import model_path

    return str(model_path())


_PAIRS = [
    ("Vitamin D deficiency weakens bones.", "Low vitamin D levels lead to bone loss."),
    ("Smoking raises the risk of lung cancer.", "Tobacco use increases lung cancer incidence."),
    ("Aspirin lowers the risk of heart attacks.", "Daily aspirin reduces myocardial infarction rates."),
    ("Exercise improves insulin sensitivity.", "Physical activity makes cells respond better to insulin."),
    ("Sleep loss impairs memory.", "Sleep deprivation harms memory consolidation."),
    ("Antibiotics do not treat viral infections.", "Viruses are not killed by antibiotics."),
]
_DISTRACTORS = [
    "Vitamin D is made in the skin under sunlight.", "Calcium intake matters for bone density.",
    "Lung function declines with age.", "Air pollution is linked to cancer.",
    "Aspirin can cause stomach bleeding.", "Heart attacks are more common in winter.",
    "Insulin is produced by the pancreas.", "Running shoes wear out after 800 km.",
    "Memory declines slowly after the age of sixty.", "Naps help young children learn words.",
    "Bacteria can become resistant to antibiotics.", "Influenza viruses mutate every year.",
    "The stock market fell sharply on Monday.", "A new bridge opened in the city centre.",
]


def _mine_reference(anchors, positives, corpus, num_negatives, range_min):
    import datasets
    from IPython.utils.capture import capture_output
    from sentence_transformers.util import mine_hard_negatives

    datasets.disable_progress_bars()
    with capture_output():   # its encoding draws progress bars (widgets in a notebook) even with verbose=False
        found = mine_hard_negatives(datasets.Dataset.from_dict({"anchor": anchors, "positive": positives}),
                                    _model(), corpus=corpus, num_negatives=num_negatives, range_min=range_min,
                                    sampling_strategy="top", output_format="triplet", verbose=False)
    return [(r["anchor"], r["positive"], r["negative"]) for r in found]


@functools.lru_cache(maxsize=None)
def _mine_cached(n_pairs, num_negatives, range_min, extra):
    anchors, positives = (list(x) for x in zip(*_PAIRS[:n_pairs]))
    corpus = positives + _DISTRACTORS[:extra]
    return tuple(_mine_reference(anchors, positives, corpus, num_negatives, range_min)), \
        tuple(_mine_reference(anchors, positives, corpus, num_negatives, 0)) if range_min else ()


def _mine_library_case(n_pairs, num_negatives, range_min, extra):
    def run(fn):
        anchors, positives = (list(x) for x in zip(*_PAIRS[:n_pairs]))
        corpus = positives + _DISTRACTORS[:extra]
        out = call(fn, _model_path(), anchors, positives, corpus, num_negatives, range_min,
                   names=("model_path", "anchors", "positives", "corpus", "num_negatives", "range_min"))
        want, no_skip = _mine_cached(n_pairs, num_negatives, range_min, extra)
        try:
            got = [tuple(str(x) for x in t) for t in out]
        except TypeError:
            raise Fail("return a list of (anchor, positive, negative) triplets of texts") from None
        if any(len(t) != 3 for t in got):
            raise Fail("each item must be one (anchor, positive, negative) triplet")
        positive_of = dict(zip(anchors, positives))
        if any(t[2] == positive_of.get(t[0]) for t in got):
            raise Fail("a positive is used as its own anchor's negative: the mined negatives must "
                       "exclude the pair's positive (mine_hard_negatives does, given the pairs)")
        if sorted(got) == sorted(want):
            return
        if no_skip and sorted(got) == sorted(no_skip):
            raise Fail("you kept the very nearest candidates: `range_min` skips the top-ranked ones "
                       "(the likeliest unlabelled positives); pass it to mine_hard_negatives")
        if len(got) != len(want):
            raise Fail(f"{len(got)} triplets for {len(anchors)} pairs x {num_negatives} negatives: "
                       "one triplet per mined negative (output_format='triplet')")
        raise Fail("not the top-ranked hard negatives: use sampling_strategy='top' (not random "
                   "sampling) with the corpus, num_negatives and range_min given")
    return run


MINE_LIBRARY = Exercise(
    "08.mine_library", "hard negatives with sentence_transformers.util.mine_hard_negatives",
    "mine_triplets",
    ("Load the model from its folder (`SentenceTransformer(model_path)`), put the pairs in a "
     "`datasets.Dataset` with columns anchor and positive, and let `mine_hard_negatives` search "
     "`corpus` for the most similar texts that are not the pair's positive.",
     "`sentence_transformers.util.mine_hard_negatives` takes the pairs as a `datasets.Dataset` "
     "(`Dataset.from_dict`), the model and the corpus; pass the given number of negatives and range_min "
     "through, ask for the top-ranked candidates (sampling_strategy) and for one row per negative "
     "(output_format), and turn its rows into tuples of texts."),
    (Case("4 medical claims with their paraphrases, 10 distractors, 2 negatives each",
          _mine_library_case(4, 2, 0, 10)),
     Case("6 pairs, 14 distractors, 1 negative each, skipping the top 2 candidates (range_min = 2)",
          _mine_library_case(6, 1, 2, 14)),
     Case("2 pairs, 6 distractors, 3 negatives each", _mine_library_case(2, 3, 0, 6)),
     Case("3 pairs, 8 distractors, 2 negatives each, range_min = 1", _mine_library_case(3, 2, 1, 8)),
     Case("5 pairs, no distractors: the other pairs' positives are the only candidates",
          _mine_library_case(5, 1, 0, 0))),
    points=2,
)

# --- held-back cases: the public situations again, with other inputs (graded; `check` never runs them)
MNRL = held_back(
    MNRL,
    Case("a batch of 5 whose rows are not unit length", _mnrl_case(*_batch(60, 5, 6)[:2])),
    Case("hard negatives, scale 10", _mnrl_case(*_batch(61, 4, 8), scale=10.0)),
    Case("a batch of 1", _mnrl_case(*_batch(62, 1, 3)[:2])),
    Case("a batch of 16 x 384, float32, with hard negatives", _mnrl_case(*_batch(63, 16, 384, dtype=np.float32))),
    Case("float32 unit vectors and scale 80", _mnrl_case(*_batch(64, 6, 12, noise=0.1, dtype=np.float32, unit=True),
                                                         scale=80.0)))
_s_small2 = np.array([[0.2, 0.9, 0.4, 0.8, 0.6, 0.1], [0.7, 0.3, 0.95, 0.5, 0.6, 0.65]])
_ids_small2 = ["e0", "e1", "e2", "e3", "e4", "e5"]
MINE = held_back(
    MINE,
    Case("the positives are the highest-scoring documents", _mine_case(*_mine_data(60, 5, 25, n_pos=2), 2)),
    Case("a document judged 0, a query without any judgment", _mine_case(
        _s_small2, ["r1", "r2"], _ids_small2, {"r1": {"e1": 1, "e3": 0}}, 3)),
    Case("queries that are also documents of the corpus", _mine_case(*_mine_data(61, 6, 30, self_in_corpus=True), 3)),
    Case("n larger than the number of non-positive documents", _mine_case(
        _s_small2, ["r1", "r2"], _ids_small2, {"r1": {"e0": 1}, "r2": {"e2": 1, "e5": 2}}, 8)),
    Case("150 queries, 800 documents, n = 4", _mine_case(*_mine_data(62, 150, 800), 4)))
_TRAIN2 = ["Metformin lowers blood glucose.", "Smoking causes lung cancer.", "metformin lowers blood glucose"]
_TEST2 = ["METFORMIN: lowers blood-glucose", "Sleep helps memory.", "Smoking  causes lung cancer"]
LEAK = held_back(
    LEAK,
    Case("exact duplicates up to case, spacing and punctuation; a text twice in training",
         _leak_case(_TEST2, _TRAIN2, *_leak_vectors(60, 3, 3, 12, []), 0.9)),
    Case("near-duplicates by cosine (vectors not of unit length)",
         _leak_case(["a", "b", "c", "d"], ["e", "f", "g"], *_leak_vectors(61, 4, 3, 12, [(0, 2), (3, 1)]), 0.85)),
    Case("an exact duplicate whose cosine is also above the threshold",
         _leak_case(_TEST2[2:], _TRAIN2, *_leak_vectors(62, 1, 3, 12, [(0, 0)]), 0.9)),
    Case("no leak at all", _leak_case(["x y"], ["y x", "z"], *_leak_vectors(63, 1, 2, 6, []), 0.95)))
ADAPTER = held_back(
    ADAPTER,
    Case("an exact linear map, lam = 0", _adapter_case(*_adapter_data(60, 15, 4, noise=0.0), 0.0)),
    Case("noisy targets, lam = 0.3", _adapter_case(*_adapter_data(61, 40, 6), 0.3)),
    Case("fewer rows than dimensions", _adapter_case(*_adapter_data(62, 4, 10), 2.0)),
    Case("a large lam", _adapter_case(*_adapter_data(63, 25, 3), 500.0)),
    Case("300 pairs, 48 dimensions, float32", _adapter_case(*(x.astype(np.float32) for x in _adapter_data(64, 300, 48)), 1.0)))
MINE_LIBRARY = held_back(
    MINE_LIBRARY,
    Case("6 pairs, 5 distractors, 2 negatives each", _mine_library_case(6, 2, 0, 5)),
    Case("4 pairs, 12 distractors, 1 negative each, range_min = 1", _mine_library_case(4, 1, 1, 12)))

EXERCISES = (MNRL, MINE, LEAK, ADAPTER, MINE_LIBRARY)
