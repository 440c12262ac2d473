"""Hidden test cases of chapter 02's exercises (solutions/02_semantic_search_exercises.ipynb).

Exercises: exact top-k search (`top_k`), Hits -> TREC run (`to_run`), MMR re-ranking (`mmr`) and
post-filtering with over-fetch (`post_filter`). Reference answers are computed here, at check time,
from seeded inputs; messages say what situation broke and what kind of mistake it looks like,
never the expected values.
"""
from __future__ import annotations

import numpy as np

from .cases import Case, Exercise, Fail, as_array, call, held_back
from .vectors import scifact_vectors

ATOL = 1e-5  # float32 dot products of unit vectors agree with float64 to ~1e-6


def _rng(n: int) -> np.random.Generator:
    return np.random.default_rng(2000 + n)


def _unit(x) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _unit_rows(seed: int, n: int, d: int) -> np.ndarray:
    return _unit(_rng(seed).normal(size=(n, d))).astype(np.float32)


def _topical(seed: int, n: int, d: int, topics: int = 1, spread: float = 0.6) -> np.ndarray:
    """Unit vectors around `topics` directions: all pairwise cosines positive, like real embeddings."""
    rng = _rng(seed)
    centres = rng.normal(size=(topics, d)) + 1.0  # the common shift keeps every cosine positive
    rows = centres[rng.integers(0, topics, n)] + spread * rng.normal(size=(n, d))
    return _unit(rows).astype(np.float32)


def _pair(out) -> tuple:
    if out is None:
        raise Fail("the result is None: did you forget `return`?")
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        size = f" of length {len(out)}" if hasattr(out, "__len__") else ""
        raise Fail(f"return a pair `scores, ids` (two arrays), got a {type(out).__name__}{size}")
    return out


def _int_ids(ids_out, scores_out, what: str = "ids") -> np.ndarray:
    ids = np.asarray(ids_out)
    if ids.dtype.kind == "f" and np.asarray(scores_out).dtype.kind in "iu":
        raise Fail("the first array holds integers and the second floats: return `scores, ids` in "
                   "that order, as FAISS's `D, I = index.search(...)` does")
    if ids.dtype.kind not in "iu":
        raise Fail(f"{what} must be an integer array (row positions), got dtype {ids.dtype}")
    return ids


def _shape(arr: np.ndarray, expected: tuple, name: str, one_d_query: bool, n: int) -> None:
    if arr.shape == expected:
        return
    nq, k = expected
    if one_d_query and arr.shape == (k,):
        raise Fail(f"{name} has shape ({k},): a 1-D query is one query, so return shape (1, k) -- "
                   "treat it as `queries[None, :]`")
    if k > n and arr.shape == (nq, n):
        raise Fail(f"{name} has shape {arr.shape}: k = {k} is more than the {n} vectors; still return "
                   "k columns, padding the missing places with id -1 and score -inf")
    if arr.shape == (nq, n) and n != k:
        raise Fail(f"{name} has shape {arr.shape}: that is every vector; keep only the k best")
    hint = " (transposed?)" if arr.shape == expected[::-1] else ""
    raise Fail(f"{name} has shape {arr.shape}, expected (n_queries, k) = {expected}{hint}")


# --- 02.topk: exact top-k by inner product, best first, padded with -1 / -inf -------------------
def _check_topk(out, queries, vectors, k) -> None:
    q = np.atleast_2d(np.asarray(queries, np.float64))
    v = np.asarray(vectors, np.float64)
    full = q @ v.T
    n = len(v)
    expected = np.hstack([-np.sort(-full, axis=1)[:, :k], np.full((len(q), max(0, k - n)), -np.inf)])
    scores_out, ids_out = _pair(out)
    ids = _int_ids(ids_out, scores_out)
    scores = as_array(scores_out, "the scores")
    for name, arr in (("scores", scores), ("ids", ids)):
        _shape(arr, expected.shape, name, np.ndim(queries) == 1, n)
    pad = ~np.isfinite(expected)
    if (ids[pad] != -1).any() or (scores[pad] != -np.inf).any():
        raise Fail("with k larger than the number of vectors, the places after the real results "
                   "must hold id -1 and score -inf (the convention of course_utils.search and FAISS)")
    real_ids = ids[~pad]
    if (real_ids < 0).any() or (real_ids >= n).any():
        raise Fail(f"some ids are not row positions of `vectors` (0 to {n - 1})")
    for row in np.where(pad, -1 - np.arange(ids.shape[1]), ids):   # padding made unique per row
        if len(set(row.tolist())) != len(row):
            raise Fail("a row lists the same vector twice")
    true = np.where(pad, -np.inf, np.take_along_axis(full, np.where(pad, 0, ids), axis=1))
    if not np.allclose(scores[~pad], true[~pad], atol=ATOL):
        raise Fail("the scores do not belong to the ids next to them (scores[i, j] must be the "
                   "similarity of query i and vector ids[i, j]): reorder both arrays the same way")
    steps = np.diff(true[:, :n], axis=1)
    if (steps > ATOL).any():
        if (steps >= -ATOL).all():
            raise Fail("the results come worst first: sort by decreasing score (e.g. argpartition "
                       "and argsort on `-scores`)")
        raise Fail("the k results are not sorted best first: argpartition moves the k best to the "
                   "front in no particular order; sort those k by score")
    wrong = ~np.isclose(true[~pad], expected[~pad], atol=ATOL)
    if wrong.any():
        raise Fail(f"{int(wrong.sum())} of the {int((~pad).sum())} results are not among the k best")


def _topk_case(queries, vectors, k):
    def run(fn):
        _check_topk(call(fn, queries, vectors, k, names=("queries", "vectors", "k")), queries, vectors, k)
    return run


def _tied():
    """4 distinct vectors, each 3 times; at most two non-zero terms per dot product (exact)."""
    base = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0.6, 0.8, 0, 0], [0, 0.6, 0.8, 0]], np.float32)
    q = np.array([[0.8, 0.6, 0, 0], [0, 0, 0.6, 0.8]], np.float32)
    return q, np.repeat(base, 3, axis=0)


TOPK = Exercise(
    "02.topk", "exact top-k search", "top_k",
    ("Score every (query, vector) pair with one matrix product (queries times the transpose of "
     "vectors). Per row, `np.argpartition` on the negated scores moves the positions of the k largest "
     "to the front, in no order; sort just those k by decreasing score and return (scores, ids).",
     "`np.take_along_axis` reads, row by row, the values at the positions `np.argpartition` and then "
     "`np.argsort` give you; apply the same order to scores and ids. A 1-D query becomes one row with "
     "`np.atleast_2d`; when k > n, search with min(k, n) and pad the rest with `np.full` (-1 for ids, "
     "-inf for scores)."),
    (Case("3 queries, 20 vectors, k = 5", _topk_case(_unit_rows(1, 3, 8), _unit_rows(2, 20, 8), 5)),
     Case("k = 1", _topk_case(_unit_rows(3, 4, 8), _unit_rows(4, 10, 8), 1)),
     Case("k equal to the number of vectors", _topk_case(_unit_rows(5, 2, 6), _unit_rows(6, 7, 6), 7)),
     Case("one query given as a 1-D array of shape (d,)", _topk_case(_unit_rows(7, 1, 16)[0],
                                                                       _unit_rows(8, 30, 16), 4)),
     Case("ties: equal scores, also at the k-th place (any order among equals is accepted)",
          _topk_case(*_tied(), 5)),
     Case("Python lists as input", _topk_case(_unit_rows(11, 2, 4).tolist(), _unit_rows(12, 9, 4).tolist(), 3)),
     Case("50 queries, 2,000 vectors of 384 dimensions (float32), k = 10",
          _topk_case(_unit_rows(13, 50, 384), _unit_rows(14, 2000, 384), 10)),
     Case("a deep cut: k = 300 of 2,000 vectors",
          _topk_case(_unit_rows(15, 20, 384), _unit_rows(14, 2000, 384), 300)),
     Case("k larger than the number of vectors", _topk_case(_unit_rows(9, 2, 5), _unit_rows(10, 3, 5), 5))),
    points=1,
)


# --- 02.to_run: Hits (scores, ids) -> {qid: {doc_id: score}}, skipping -1 ----------------------
def _ref_run(scores, ids, query_ids, doc_ids) -> dict:
    return {str(q): {doc_ids[i]: float(s) for s, i in zip(srow, irow) if i != -1}
            for q, srow, irow in zip(query_ids, np.asarray(scores).tolist(), np.asarray(ids).tolist())}


def _check_run(out, scores, ids, query_ids, doc_ids) -> None:
    want = _ref_run(scores, ids, query_ids, doc_ids)
    if out is None:
        raise Fail("the result is None: did you forget `return`?")
    if not isinstance(out, dict):
        raise Fail(f"return a dict {{query_id: {{doc_id: score}}}}, got a {type(out).__name__}")
    if any(not isinstance(key, str) for key in out):
        raise Fail("query ids must be strings (`str(qid)`): qrels use string ids, and 1 != '1', so "
                   "an integer key never meets its judgments")
    missing = [q for q in want if q not in out]
    if missing:
        empty = " (it has no results: give it an empty dict; a query absent from a run is skipped " \
                "by the evaluator, which raises the average)" if not want[missing[0]] else ""
        raise Fail(f"query {missing[0]!r} is missing from the run{empty}")
    if set(out) != set(want):
        raise Fail(f"the run has {len(out)} queries, expected one per row of hits ({len(want)})")
    last = doc_ids[-1]
    for q, docs in want.items():
        got = out[q]
        if not isinstance(got, dict):
            raise Fail(f"query {q!r}: its results must be a dict {{doc_id: score}}, got a {type(got).__name__}")
        if set(got) != set(docs):
            if last in got and last not in docs:
                raise Fail(f"query {q!r} lists doc {last!r}, which no result points to: id -1 means "
                           "'no result', but in Python `doc_ids[-1]` is the LAST doc id -- skip ids "
                           "equal to -1")
            if all(str(i) in got for i in np.asarray(ids)[list(want).index(q)] if i != -1) \
                    and set(map(str, range(len(doc_ids)))) >= set(got):
                raise Fail(f"query {q!r}: the keys are row positions; map each id to its doc id "
                           "with `doc_ids[i]`")
            raise Fail(f"query {q!r}: {len(set(got) ^ set(docs))} doc id(s) differ from the results' "
                       "doc ids")
        for d, s in got.items():
            if not isinstance(s, float):
                raise Fail(f"query {q!r}: scores must be Python floats (`float(s)`), got "
                           f"{type(s).__name__}; pytrec_eval rejects numpy float32 scores")
            if abs(s - docs[d]) > 1e-6:
                raise Fail(f"query {q!r}: the score of doc {d!r} is not the score of its hit")
        if list(got) != list(docs):
            raise Fail(f"query {q!r}: keep the documents in rank order (best first); evaluators "
                       "re-sort, but people reading a run do not")


def _run_case(scores, ids, query_ids, doc_ids):
    def run(fn):
        out = call(fn, scores, ids, query_ids, doc_ids, names=("scores", "ids", "query_ids", "doc_ids"))
        _check_run(out, scores, ids, query_ids, doc_ids)
    return run


_DOCS = ["4983", "5836", "7912", "18670", "31715818", "13734012", "11172205", "19058822"]


def _hits(seed: int, nq: int, k: int, n: int, pad_from=None, dtype=np.float32):
    """Hits-like arrays: distinct ids per row, decreasing scores; row r padded from pad_from[r]."""
    rng = _rng(seed)
    ids = np.stack([rng.permutation(n)[:k] for _ in range(nq)]).astype(np.int64)
    scores = -np.sort(-rng.uniform(-0.2, 0.9, size=(nq, k)), axis=1).astype(dtype)
    for r, start in enumerate(pad_from or []):
        if start is not None:
            ids[r, start:], scores[r, start:] = -1, -np.inf
    return scores, ids


_real_docs = [str(x) for x in _rng(20).choice(40_000_000, 500, replace=False)]
TO_RUN = Exercise(
    "02.to_run", "hits to a TREC run", "to_run",
    ("A run is {query_id: {doc_id: score}}. Walk over the rows of `scores` and `ids` together with "
     "`query_ids`; in each row keep the (score, id) pairs whose id is not -1, and map the id (a row "
     "position) to its document with `doc_ids[id]`. Every query gets an entry, even an empty one.",
     "Loop over the query ids together with the rows of scores and ids (`zip`), turning each row into a "
     "dict comprehension that skips the padding id -1 and maps a row position to its document through "
     "`doc_ids`. Key each query by `str(qid)`, and convert every score with `float`: pytrec_eval "
     "refuses numpy float32 scores."),
    (Case("2 queries, k = 3, no padding (float64 scores)",
          _run_case(*_hits(1, 2, 3, 8, dtype=np.float64), ["q1", "q2"], _DOCS)),
     Case("a row padded with id -1 (fewer results than k)",
          _run_case(*_hits(2, 2, 4, 8, pad_from=[None, 2], dtype=np.float64), ["a", "b"], _DOCS)),
     Case("a query with no results at all (its whole row is padding)",
          _run_case(*_hits(3, 3, 3, 8, pad_from=[None, 0, None], dtype=np.float64), ["x", "y", "z"], _DOCS)),
     Case("integer query ids", _run_case(*_hits(4, 3, 2, 8, dtype=np.float64), [1, 3, 5], _DOCS)),
     Case("float32 scores, as a search returns them", _run_case(*_hits(5, 2, 3, 8), ["q1", "q2"], _DOCS)),
     Case("doc ids that look like numbers, in another order than the row positions",
          _run_case(*_hits(6, 2, 3, 5, dtype=np.float64), ["q1", "q2"], ["3", "0", "4", "1", "2"])),
     Case("100 queries, k = 10, 500 documents, some rows padded",
          _run_case(*_hits(7, 100, 10, 500, pad_from=[None] * 90 + [3, 7, 0, 9, 1, None, 5, 2, 8, 4]),
                    [str(1000 + i) for i in range(100)], _real_docs))),
    points=1,
)


# --- 02.mmr: Maximal Marginal Relevance (Carbonell & Goldstein 1998) --------------------------
def _mmr_variant(q, c, k, lam, penalty="max", swap=False, ties="first", plain=False):
    q = np.asarray(q, np.float64).reshape(-1)
    c = np.asarray(c, np.float64)
    rel, sims = c @ q, c @ c.T
    picked = []
    for _ in range(k):
        if picked:
            near = sims[:, picked]
            red = {"max": near.max(axis=1), "sum": near.sum(axis=1), "mean": near.mean(axis=1)}[penalty]
        else:
            red = np.zeros(len(c))
        a, b = (1 - lam, lam) if swap else (lam, 1 - lam)
        gain = rel if plain else a * rel - b * red
        gain = np.where(np.isin(np.arange(len(c)), picked), -np.inf, gain)
        best = np.flatnonzero(gain == gain.max())
        picked.append(int(best[0] if ties == "first" else best[-1]))
    return picked


_MMR_MISTAKES = (
    (dict(plain=True), "your list is the plain similarity order: the redundancy penalty "
                       "-(1 - λ) · max(similarity to the items already picked) has no effect"),
    (dict(penalty="sum"), "you penalise by the sum of the similarities to the picked items; MMR "
                          "uses the maximum (the single most similar item already picked)"),
    (dict(penalty="mean"), "you penalise by the mean similarity to the picked items; MMR uses the "
                           "maximum (the single most similar item already picked)"),
    (dict(swap=True), "λ and 1 - λ are swapped: λ weighs the similarity to the query, 1 - λ the "
                      "redundancy"),
    (dict(ties="last"), "on a tie, pick the smaller position (what np.argmax does)"),
)


def _check_mmr(out, q, c, k, lam) -> None:
    want = _mmr_variant(q, c, k, lam)
    if out is None:
        raise Fail("the result is None: did you forget `return`?")
    arr = np.asarray(out)
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise Fail(f"return a list of k integer positions (indexes into cand_vectors), got "
                   f"{type(out).__name__} with dtype {arr.dtype} and shape {arr.shape}")
    if len(arr) != k:
        raise Fail(f"returned {len(arr)} positions, expected k = {k}")
    got = arr.tolist()
    twice = [p for p in set(got) if got.count(p) > 1]
    if twice:
        raise Fail(f"position {twice[0]} is picked twice: once picked, a candidate leaves the pool")
    if got == want:
        return
    for variant, message in _MMR_MISTAKES:
        if got == _mmr_variant(q, c, k, lam, **variant) != want:
            raise Fail(message)
    step = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
    raise Fail(f"pick number {step + 1} is not MMR's choice (the picks before it are right)")


def _mmr_case(q, c, k, lam):
    def run(fn):
        _check_mmr(call(fn, q, c, k, lam, names=("query_vec", "cand_vectors", "k", "lam")), q, c, k, lam)
    return run


def _near_duplicates():
    """Candidates: a tight group of three near-duplicates (most similar to the query), two
    mid-similar items on other aspects, one off-topic item."""
    rng = _rng(30)
    q = _unit(np.r_[1.0, 0.3, 0.3, 0.0, 0.0, 0.0])
    group = _unit(np.r_[1.0, 0.35, 0.25, 0, 0, 0] + 0.03 * rng.normal(size=(3, 6)))
    others = _unit(np.array([[0.7, 0.1, 0.2, 0.6, 0.1, 0.0], [0.6, 0.3, 0.0, 0.0, 0.7, 0.1],
                             [0.5, 0.2, 0.6, 0.2, 0.0, 0.5], [0.2, 0.1, 0.1, 0.3, 0.3, 0.9]]))
    return q.astype(np.float32), np.vstack([group[:1], others[:1], group[1:], others[1:]]).astype(np.float32)


def _duplicates():
    """Exact duplicate candidates (dyadic coordinates: every sum is exact): ties."""
    c = np.array([[0.6, 0.8, 0, 0], [1, 0, 0, 0], [0.6, 0.8, 0, 0], [0, 0.6, 0.8, 0], [1, 0, 0, 0],
                  [0, 0, 0.6, 0.8]], np.float32)
    return np.array([0.8, 0.6, 0, 0], np.float32), c


_q6, _c6 = _near_duplicates()
_topics = _topical(31, 30, 384, topics=3, spread=1.2)
_q384 = _unit(_topics[:10].mean(axis=0)).astype(np.float32)
MMR = Exercise(
    "02.mmr", "MMR re-ranking", "mmr",
    ("Greedy: start with nothing picked; k times, pick the candidate (not yet picked) with the largest "
     "λ · sim(query, c) − (1 − λ) · max over picked p of sim(c, p), where the max term is 0 for the "
     "first pick. Vectors are unit length, so similarity is a dot product.",
     "Precompute the relevance of every candidate (candidates times the query) and the "
     "candidate-to-candidate similarity matrix. Keep, for each candidate, its largest similarity to "
     "anything picked so far and update it after each pick with `np.maximum`; at each step mask the "
     "picked candidates with -inf and take `np.argmax` of the MMR gain (it keeps the smaller position "
     "on a tie)."),
    (Case("λ = 1 (no redundancy penalty)", _mmr_case(_q6, _c6, 4, 1.0)),
     Case("three near-duplicates among 7 candidates, λ = 0.5", _mmr_case(_q6, _c6, 4, 0.5)),
     Case("three near-duplicates among 7 candidates, λ = 0.7", _mmr_case(_q6, _c6, 5, 0.7)),
     Case("exact duplicate candidates (ties)", _mmr_case(*_duplicates(), 4, 0.5)),
     Case("k equal to the number of candidates", _mmr_case(_q6, _c6, 7, 0.6)),
     Case("the query given as shape (1, d)", _mmr_case(_q6[None, :], _c6, 3, 0.5)),
     Case("30 candidates of 384 dimensions from 3 topics, λ = 0.7", _mmr_case(_q384, _topics, 10, 0.7)),
     Case("30 candidates of 384 dimensions from 3 topics, λ = 0.3", _mmr_case(_q384, _topics, 10, 0.3))),
    points=2,
)


# --- 02.post_filter: keep the first k allowed results of an over-fetched search ----------------
def _ref_post(scores, ids, allowed, k):
    ok = {int(a) for a in np.asarray(list(allowed)).ravel()}
    ids, scores = np.asarray(ids), np.asarray(scores, np.float64)
    out_s, out_i = np.full((len(ids), k), -np.inf), np.full((len(ids), k), -1, np.int64)
    for r in range(len(ids)):
        kept = [j for j in range(ids.shape[1]) if ids[r, j] != -1 and int(ids[r, j]) in ok][:k]
        out_s[r, :len(kept)], out_i[r, :len(kept)] = scores[r, kept], ids[r, kept]
    return out_s, out_i


def _check_post(out, scores, ids, allowed, k) -> None:
    want_s, want_i = _ref_post(scores, ids, allowed, k)
    s_out, i_out = _pair(out)
    got_i = _int_ids(i_out, s_out)
    got_s = as_array(s_out, "the scores")
    for name, arr in (("scores", got_s), ("ids", got_i)):
        if arr.shape != want_i.shape:
            short = " -- always return k columns, padding rows that have fewer than k allowed " \
                    "results with id -1 and score -inf" if arr.ndim == 2 and arr.shape[1] < k else ""
            raise Fail(f"{name} has shape {arr.shape}, expected (n_queries, k) = {want_i.shape}{short}")
    ok = {int(a) for a in np.asarray(list(allowed)).ravel()}
    if any(int(i) not in ok for i in got_i[got_i != -1]):
        raise Fail("a result that is not in `allowed` was kept")
    pad = want_i == -1
    if any(len(set(row[row != -1].tolist())) < int((row != -1).sum()) for row in got_i):
        raise Fail("a row returns a document twice")
    if not np.array_equal(got_i, want_i):
        same_sets = all(set(g[g != -1]) == set(w[w != -1]) for g, w in zip(got_i, want_i))
        if same_sets:
            raise Fail("the right documents, in the wrong order: keep the search's order (best "
                       "first) and put the padding last; set operations such as np.intersect1d "
                       "sort by id")
        raise Fail(f"{int((got_i != want_i).sum())} of {got_i.size} ids differ from the first k "
                   "allowed results of each row")
    if (got_s[pad] != -np.inf).any():
        raise Fail("padding places must have score -inf (and id -1)")
    if not np.allclose(got_s[~pad], want_s[~pad], atol=1e-6):
        raise Fail("the scores no longer match their ids: move scores and ids together")


def _post_case(scores, ids, allowed, k):
    def run(fn):
        out = call(fn, scores, ids, allowed, k, names=("scores", "ids", "allowed", "k"))
        _check_post(out, scores, ids, allowed, k)
    return run


def _fetched(seed, nq, m, n, pad_from=None):
    return _hits(seed, nq, m, n, pad_from)


_s1, _i1 = _fetched(40, 3, 8, 20)
_s6, _i6 = _fetched(45, 25, 40, 400)
POST_FILTER = Exercise(
    "02.post_filter", "post-filtering with over-fetch", "post_filter",
    ("The search already fetched m >= k results per query (best first). In each row keep, in their "
     "order, the results whose id is in `allowed` (never the padding id -1), cut to k, and pad the row "
     "to k with id -1 and score -inf when fewer than k survive.",
     "Start from result arrays filled with the padding (`np.full` with -1 and -inf). For each row, list "
     "the positions whose id is real and allowed (a Python set answers `in` fast), cut that list to k "
     "and copy those positions' ids and scores to the front of the row. Vectorised, `np.isin` marks the "
     "allowed ids and a stable `np.argsort` moves them forward in order."),
    (Case("allowed given as a Python set; every row has at least k allowed results",
          _post_case(_s1, _i1, set(range(0, 20, 2)) | {1, 3, 5, 7, 9, 11}, 2)),
     Case("a row with fewer than k allowed results",
          _post_case(*_fetched(41, 3, 8, 20), {0, 1, 2, 3, 4, 5}, 3)),
     Case("a row with no allowed result at all",
          _post_case(np.array([[0.9, 0.8, 0.7], [0.6, 0.5, 0.4]], np.float32),
                     np.array([[4, 2, 7], [5, 1, 3]]), {1, 3, 5, 8}, 2)),
     Case("allowed given as a numpy array of ids", _post_case(*_fetched(42, 4, 10, 30), np.arange(0, 30, 3), 3)),
     Case("fetched rows that already end in padding (-1)",
          _post_case(*_fetched(43, 3, 6, 12, pad_from=[4, None, 2]), np.arange(12), 5)),
     Case("allowed as a list, k = 1", _post_case(*_fetched(44, 5, 6, 15), [2, 3, 5, 7, 11, 13], 1)),
     Case("25 queries, 40 fetched (over-fetch 4), k = 10, a selective filter",
          _post_case(_s6, _i6, np.flatnonzero(_rng(46).random(400) < 0.2), 10))),
    points=2,
)

# --- 02.faiss_filter: FAISS IndexFlatIP search restricted to allowed ids (an IDSelector) ----------
_SCIFACT_ROWS = 1500   # SciFact abstracts (precomputed all-MiniLM-L6-v2 vectors) used as the corpus


def _filtered_reference(docs, queries, allowed, k):
    docs, queries = np.asarray(docs, np.float64), np.asarray(queries, np.float64)
    allowed = np.unique(np.asarray(list(allowed), np.int64))
    scores = queries @ docs[allowed].T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    ids = np.full((len(queries), k), -1, np.int64)
    out = np.full((len(queries), k), -np.inf)
    n = min(k, len(allowed))
    ids[:, :n] = allowed[order[:, :n]]
    out[:, :n] = np.take_along_axis(scores, order[:, :n], axis=1)
    return out, ids


def _check_filtered(out, docs, queries, allowed, k):
    want_s, want_i = _filtered_reference(docs, queries, allowed, k)
    got_s, got_i = _pair(out)
    got_i = np.asarray(got_i)
    if got_i.shape != want_i.shape:
        raise Fail(f"the ids have shape {got_i.shape}, expected (n_queries, k) = {want_i.shape}")
    allowed_set = {int(a) for a in allowed}
    outside = [int(i) for i in got_i.ravel() if int(i) != -1 and int(i) not in allowed_set]
    ordered = np.sort(np.asarray(list(allowed_set), np.int64))
    if outside and got_i.max() < len(ordered) and np.array_equal(ordered[np.clip(got_i, 0, None)], want_i):
        raise Fail("your ids are positions in the filtered subset (0, 1, ... of docs[allowed_ids]), not "
                   "the documents' own ids: map them back, or keep all vectors in the index and let an "
                   "IDSelector do the filtering")
    if outside:
        raise Fail(f"{len(outside)} returned id(s) are not in `allowed_ids`: the filter was not applied "
                   "to the search (pass `faiss.SearchParameters(sel=faiss.IDSelectorBatch(...))`)")
    missing = (got_i == -1) & (want_i != -1)
    if missing.any():
        raise Fail(f"{int(missing.any(axis=1).sum())} row(s) have fewer than k results although enough "
                   "allowed documents exist: that is post-filtering (search top-k, then drop what is "
                   "not allowed); filter DURING the search with an IDSelector so every row gets k")
    if not np.array_equal(got_i, want_i):
        if np.array_equal(np.sort(got_i, axis=1), np.sort(want_i, axis=1)):
            raise Fail("the right documents in the wrong order: each row must be best first")
        raise Fail(f"{int((got_i != want_i).sum())} of {got_i.size} ids differ from the exact top-k "
                   "among the allowed documents (an inner-product index on the vectors as given?)")
    got_s = np.asarray(got_s, np.float64)
    real = want_i != -1
    if got_s.shape != want_s.shape or not np.allclose(got_s[real], want_s[real], atol=1e-4):
        if got_s.shape == want_s.shape and np.allclose(got_s[real], 2 - 2 * want_s[real], atol=1e-3):
            raise Fail("the scores are squared L2 distances (IndexFlatL2): use IndexFlatIP, whose "
                       "scores are the inner products (= cosines of unit vectors)")
        raise Fail("the ids are right but the scores are not their inner products with the query")


def _faiss_filter_case(n_docs, n_queries, allowed_fraction, k, seed, tiny_allowed=None):
    def run(fn):
        vectors = scifact_vectors(_SCIFACT_ROWS + 40)
        docs = vectors[:n_docs]
        queries = vectors[_SCIFACT_ROWS:_SCIFACT_ROWS + n_queries]
        rng = _rng(seed)
        allowed = (np.asarray(tiny_allowed) if tiny_allowed is not None
                   else np.flatnonzero(rng.random(n_docs) < allowed_fraction))
        out = call(fn, docs, queries, allowed, k, names=("doc_vectors", "query_vectors", "allowed_ids", "k"))
        _check_filtered(out, docs, queries, allowed, k)
    return run


FAISS_FILTER = Exercise(
    "02.faiss_filter", "FAISS search with an ID filter (IndexFlatIP + IDSelector)", "filtered_search",
    ("Put ALL document vectors in a `faiss.IndexFlatIP(d)` (so a result's id is its row number), then "
     "search with search parameters that carry a selector of the allowed ids: FAISS then considers only "
     "those documents and every row gets k results when k are allowed.",
     "The selector is `faiss.IDSelectorBatch`, built from the allowed ids as an int64 array; wrap it in "
     "`faiss.SearchParameters` (its `sel` field) and hand that to the index's `search` through its "
     "`params` keyword. FAISS wants float32, C-contiguous arrays (`np.ascontiguousarray`)."),
    (Case("1,500 SciFact abstracts, 5 claims' vectors, half the documents allowed, k = 5",
          _faiss_filter_case(1500, 5, 0.5, 5, 50)),
     Case("a selective filter: 3% of the documents allowed, k = 10",
          _faiss_filter_case(1500, 8, 0.03, 10, 51)),
     Case("fewer allowed documents than k (the rest of each row is id -1)",
          _faiss_filter_case(400, 3, 0.0, 6, 52, tiny_allowed=[7, 120, 301, 399])),
     Case("allowed ids as a Python list, k = 1", _faiss_filter_case(800, 4, 0.0, 1, 53, tiny_allowed=list(range(5, 800, 7)))),
     Case("every document allowed (the plain top-k)", _faiss_filter_case(600, 6, 1.01, 8, 54))),
    points=2,
)

# --- held-back cases: the public situations again, with other inputs (graded; `check` never runs them)
TOPK = held_back(
    TOPK,
    Case("4 queries, 25 vectors, k = 6", _topk_case(_unit_rows(60, 4, 8), _unit_rows(61, 25, 8), 6)),
    Case("one 1-D query, k = 2", _topk_case(_unit_rows(62, 1, 12)[0], _unit_rows(63, 40, 12), 2)),
    Case("k larger than the number of vectors", _topk_case(_unit_rows(64, 3, 6), _unit_rows(65, 4, 6), 9)),
    Case("30 queries, 1,500 vectors of 384 dimensions, k = 7",
         _topk_case(_unit_rows(66, 30, 384), _unit_rows(67, 1500, 384), 7)))
TO_RUN = held_back(
    TO_RUN,
    Case("3 queries, k = 4, rows padded", _run_case(*_hits(60, 3, 4, 8, pad_from=[2, None, 0]), ["u", "v", "w"], _DOCS)),
    Case("integer query ids, float32 scores", _run_case(*_hits(61, 4, 3, 8), [7, 8, 9, 10], _DOCS)),
    Case("doc ids in another order than the row positions",
         _run_case(*_hits(62, 2, 4, 6, dtype=np.float64), ["a", "b"], ["5", "2", "0", "4", "1", "3"])),
    Case("60 queries, k = 8, 500 documents, some rows padded",
         _run_case(*_hits(63, 60, 8, 500, pad_from=[None] * 55 + [0, 4, None, 7, 1]),
                   [str(5000 + i) for i in range(60)], _real_docs)))
_q7, _t7 = _unit(_topical(60, 12, 16, topics=2, spread=0.8).mean(axis=0)).astype(np.float32), _topical(61, 12, 16, 2, 0.8)
_topics2 = _topical(62, 40, 384, topics=4, spread=1.2)
MMR = held_back(
    MMR,
    Case("λ = 1, 12 candidates from 2 topics", _mmr_case(_q7, _t7, 5, 1.0)),
    Case("12 candidates from 2 topics, λ = 0.5", _mmr_case(_q7, _t7, 6, 0.5)),
    Case("the query given as shape (1, d), λ = 0.8", _mmr_case(_q7[None, :], _t7, 4, 0.8)),
    Case("k equal to the number of candidates", _mmr_case(_q7, _t7, 12, 0.4)),
    Case("40 candidates of 384 dimensions from 4 topics, λ = 0.6",
         _mmr_case(_unit(_topics2[:8].mean(axis=0)).astype(np.float32), _topics2, 12, 0.6)))
POST_FILTER = held_back(
    POST_FILTER,
    Case("allowed as a set, every row has k allowed results", _post_case(*_fetched(60, 4, 10, 20), set(range(1, 20, 2)), 2)),
    Case("rows with fewer than k allowed results", _post_case(*_fetched(61, 3, 6, 20), {2, 4, 6, 8}, 4)),
    Case("fetched rows ending in padding, allowed as an array",
         _post_case(*_fetched(62, 3, 7, 14, pad_from=[None, 3, 5]), np.arange(0, 14, 2), 3)),
    Case("30 queries, 30 fetched, k = 8, a selective filter",
         _post_case(*_fetched(63, 30, 30, 300), np.flatnonzero(_rng(64).random(300) < 0.25), 8)))
FAISS_FILTER = held_back(
    FAISS_FILTER,
    Case("1,200 abstracts, 4 claims, a third allowed, k = 7", _faiss_filter_case(1200, 4, 0.33, 7, 60)),
    Case("a selective filter: 2% allowed, k = 12", _faiss_filter_case(1500, 6, 0.02, 12, 61)),
    Case("fewer allowed documents than k", _faiss_filter_case(500, 2, 0.0, 5, 62, tiny_allowed=[3, 250, 499])))

EXERCISES = (TOPK, TO_RUN, MMR, POST_FILTER, FAISS_FILTER)
