"""Hidden test cases of chapter 04's exercises (solutions/04_ann_exercises.ipynb).

Exercises: an IVF search by hand (`ivf_search`), product-quantisation encoding (`pq_encode`),
asymmetric distance computation with look-up tables (`adc_scores`) and the ANN benchmarks'
recall@k (`ann_recall`). Reference answers are computed here, at check time, from seeded
clustered vectors (random Gaussian vectors have no structure for an index to exploit); when a
wrong answer matches a known mistake (probing by L2 distance, probing the worst lists, no
padding, interleaved sub-vectors, a quantised query, counting padding as found...) the message
names the mistake, never the expected values.
"""
from __future__ import annotations

import numpy as np

from .cases import Case, Exercise, Fail, as_array, call, held_back
from .vectors import scifact_vectors


def _rng(n: int) -> np.random.Generator:
    return np.random.default_rng(4000 + n)


def _clustered(seed: int, n: int, d: int, blobs: int = 6) -> np.ndarray:
    """Unit vectors around `blobs` directions (float32), like embeddings of a few topics."""
    rng = _rng(seed)
    centres = rng.normal(size=(blobs, d))
    x = centres[rng.integers(0, blobs, n)] + 0.45 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _pair(out) -> tuple:
    if out is None:
        raise Fail("the result is None: did you forget `return`?")
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Fail(f"return a pair `scores, ids` (two arrays), got a {type(out).__name__}")
    return out


def _same(a, b, atol=1e-4) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, atol=atol, rtol=1e-5, equal_nan=True))


# --- 04.ivf_search: probe the nprobe best lists, exact inner product inside, pad to k ----------
def _ivf(queries, vectors, centroids, lists, nprobe, k, probe="ip"):
    q, v, c = (np.asarray(a, np.float64) for a in (queries, vectors, centroids))
    if probe == "ip":
        order = np.argsort(-(q @ c.T), axis=1, kind="stable")
    elif probe == "l2":
        order = np.argsort(((q[:, None, :] - c[None]) ** 2).sum(-1), axis=1, kind="stable")
    else:  # "worst": the lists with the SMALLEST inner product
        order = np.argsort(q @ c.T, axis=1, kind="stable")
    scores, ids = np.full((len(q), k), -np.inf), np.full((len(q), k), -1, np.int64)
    for i in range(len(q)):
        cand = np.concatenate([np.asarray(lists[j], np.int64) for j in order[i, :nprobe]] + [np.zeros(0, np.int64)])
        s = v[cand] @ q[i]
        top = np.argsort(-s, kind="stable")[:k]
        scores[i, :len(top)], ids[i, :len(top)] = s[top], cand[top]
    return scores, ids


_IVF_MISTAKES = (
    (dict(probe="l2"), "you probed the lists whose centroids are nearest in L2 distance; this index "
                       "uses the inner product: probe the nprobe centroids with the LARGEST q · c "
                       "(centroids are means, so their lengths differ and the two orders differ)"),
    (dict(probe="worst"), "you probed the lists with the smallest inner product: sort the centroid "
                          "scores from high to low (np.argsort(-scores)) and take the first nprobe"),
)


def _ivf_case(queries, vectors, centroids, lists, nprobe, k):
    def run(fn):
        out = _pair(call(fn, queries, vectors, centroids, lists, nprobe, k,
                         names=("queries", "vectors", "centroids", "lists", "nprobe", "k")))
        scores, ids = as_array(out[0], "scores"), as_array(out[1], "ids")
        want_s, want_i = _ivf(queries, vectors, centroids, lists, nprobe, k)
        if ids.shape != want_i.shape or scores.shape != want_s.shape:
            if ids.ndim == 2 and ids.shape[0] == want_i.shape[0] and ids.shape[1] < k:
                raise Fail(f"ids has shape {ids.shape}, expected {want_i.shape}: the probed lists "
                           "hold fewer than k vectors here; always return k columns and pad the "
                           "missing places with id -1 and score -inf")
            raise Fail(f"scores/ids have shapes {scores.shape}/{ids.shape}, expected (n_queries, k) "
                       f"= {want_i.shape}")
        if not np.array_equal(ids, want_i):
            for kw, message in _IVF_MISTAKES:
                if np.array_equal(ids, _ivf(queries, vectors, centroids, lists, nprobe, k, **kw)[1]):
                    raise Fail(message)
            if np.array_equal(np.sort(ids, axis=1), np.sort(want_i, axis=1)):
                raise Fail("the right ids in the wrong order: each row must be sorted best first "
                           "(highest inner product first)")
            if (ids != -1).sum() > (want_i != -1).sum() and (ids == -1).sum() == 0 and (want_i == -1).any():
                raise Fail("a row has more real results than its probed lists hold vectors: did "
                           "you search outside the probed lists?")
            raise Fail(f"{int((ids != want_i).sum())} of {ids.size} ids are wrong (probe the nprobe "
                       "lists with the largest q · centroid, then score only their vectors)")
        if not _same(np.where(np.isfinite(scores), scores, -1e9), np.where(np.isfinite(want_s), want_s, -1e9)):
            raise Fail("the ids are right but the scores are not: return each result's inner "
                       "product with the query, and -inf where a place is padding (id -1)")
    return run


def _ivf_data(seed, n, d, nlist, nq, scale=True):
    x = _clustered(seed, n + nq, d)
    rng = _rng(seed + 50)
    cent = x[rng.choice(n, nlist, replace=False)] * (rng.uniform(0.3, 1.5, (nlist, 1)) if scale else 1)
    cent = cent.astype(np.float32)
    assign = np.argmax(x[:n] @ cent.T, axis=1)
    lists = [np.flatnonzero(assign == j) for j in range(nlist)]
    return x[n:], x[:n], cent, lists


_v2 = np.array([[1, 0], [0.8, 0.6], [0, 1], [-0.6, 0.8], [-1, 0], [0.6, -0.8]], np.float32)
_c2 = np.array([[0.9, 0.3], [-0.5, 0.7], [0.2, -0.9]], np.float32)
_l2 = [np.array([0, 1]), np.array([2, 3, 4]), np.array([5])]
_q, _x, _c, _lists = _ivf_data(1, 600, 16, 12, 5)
_qs, _xs, _cs, _ls = _ivf_data(2, 300, 8, 10, 4)
_qe, _xe, _ce, _le = _ivf_data(3, 200, 8, 6, 3)
_le = [l if j != int(np.argmax(_qe[0] @ _ce.T)) else np.zeros(0, np.int64) for j, l in enumerate(_le)]
IVF = Exercise(
    "04.ivf_search", "IVF search by hand", "ivf_search",
    ("For each query: score every centroid with a dot product, keep the nprobe centroids with the "
     "LARGEST scores, gather the vector ids stored in those inverted lists, score exactly those vectors "
     "against the query and keep the k best, best first. Always return k columns: pad with id -1 and "
     "score -inf when the probed lists hold fewer than k vectors.",
     "Per query: `np.argsort` of the negated centroid scores, first nprobe entries, are the lists to "
     "probe; `np.concatenate` joins their ids into one candidate array. Score the candidates exactly, "
     "sort, cut to k, and copy them into result arrays made with `np.full` (-1 and -inf), so short rows "
     "stay padded."),
    (Case("six 2-d vectors in three lists, one query, nprobe = 1", _ivf_case(
        np.array([[0.95, 0.31]], np.float32), _v2, _c2, _l2, 1, 2)),
     Case("600 clustered vectors, 12 lists, nprobe = 3, k = 10", _ivf_case(_q, _x, _c, _lists, 3, 10)),
     Case("centroids of very different lengths (L2 and inner-product order differ)",
          _ivf_case(_q, _x, _c, _lists, 2, 5)),
     Case("nprobe = nlist (must equal exact search)", _ivf_case(_q, _x, _c, _lists, 12, 10)),
     Case("probed lists hold fewer than k vectors (padding)", _ivf_case(_qs, _xs, _cs, _ls, 1, 80)),
     Case("an empty inverted list among the probed ones", _ivf_case(_qe, _xe, _ce, _le, 2, 5)),
     Case("nprobe = 1, k = 1", _ivf_case(_q, _x, _c, _lists, 1, 1))),
    points=3,
)


# --- 04.pq_encode: each sub-vector -> the id of its nearest (L2) sub-centroid ------------------
def _encode(x, books, how="l2", split="blocks"):
    x, books = np.asarray(x, np.float64), np.asarray(books, np.float64)
    m, ksub, dsub = books.shape
    sub = x.reshape(len(x), m, dsub) if split == "blocks" else x.reshape(len(x), dsub, m).transpose(0, 2, 1)
    if how == "ip":
        return np.argmax(np.einsum("nms,mks->nmk", sub, books), axis=2)
    dist = ((sub[:, :, None, :] - books[None]) ** 2).sum(-1)          # (n, m, ksub)
    return np.argmin(dist, axis=2) if how == "l2" else np.argmax(dist, axis=2)


_ENCODE_MISTAKES = (
    (dict(how="ip"), "you picked the sub-centroid with the largest inner product; PQ encodes each "
                     "sub-vector by its NEAREST sub-centroid in L2 distance (FAISS does so for "
                     "every metric): argmin of ||x_j - c||^2"),
    (dict(split="interleaved"), "your sub-vectors interleave the dimensions; sub-vector j is the "
                                "contiguous block x[j * dsub:(j + 1) * dsub] (x.reshape(n, m, dsub))"),
    (dict(how="far"), "you took the FARTHEST sub-centroid (argmax of the distance); use argmin"),
)


def _encode_case(x, books):
    def run(fn):
        out = call(fn, x, books, names=("vectors", "codebooks"))
        codes = as_array(out, "the codes")
        want = _encode(x, books)
        if codes.shape != want.shape:
            hint = " (transposed?)" if codes.shape == want.shape[::-1] else ""
            raise Fail(f"the codes have shape {codes.shape}, expected (n, m) = {want.shape}{hint}")
        if not np.array_equal(codes, want):
            for kw, message in _ENCODE_MISTAKES:
                if np.array_equal(codes, _encode(x, books, **kw)):
                    raise Fail(message)
            raise Fail(f"{int((codes != want).sum())} of {codes.size} codes are wrong")
    return run


def _books(seed, m, ksub, dsub, spread=True):
    b = _rng(seed).normal(size=(m, ksub, dsub))
    if spread:  # sub-centroids of different lengths: nearest and largest-dot-product differ
        b *= _rng(seed + 1).uniform(0.2, 2.0, size=(m, ksub, 1))
    return b.astype(np.float32)


_xp = _clustered(10, 300, 32)
PQ_ENCODE = Exercise(
    "04.pq_encode", "product quantisation: encode", "pq_encode",
    ("Cut each vector into m contiguous sub-vectors of dsub = d / m numbers. For sub-space j, find "
     "among the ksub sub-centroids codebooks[j] the one NEAREST (squared L2 distance) to the "
     "sub-vector, and store its index. The code of a vector is m small integers.",
     "`reshape` turns the vectors into (n, m, dsub) sub-vectors. Broadcasting with two inserted axes "
     "(`None`) against the (m, ksub, dsub) codebooks gives every squared distance at once, shape (n, m, "
     "ksub) after summing the last axis; `argmin` over the ksub axis is the code."),
    (Case("2 vectors, m = 2 sub-spaces of 1 number, 3 sub-centroids each", _encode_case(
        np.array([[0.1, 2.0], [-1.2, 0.4]], np.float32),
        np.array([[[0.0], [1.0], [-1.0]], [[2.2], [0.0], [0.5]]], np.float32))),
     Case("300 clustered 32-d vectors, m = 4, ksub = 16", _encode_case(_xp, _books(11, 4, 16, 8))),
     Case("sub-centroids of different lengths (nearest != largest dot product)",
          _encode_case(_xp[:50], _books(13, 8, 8, 4))),
     Case("ksub = 256 (one byte per sub-vector, as FAISS's PQ48)", _encode_case(_xp[:40], _books(15, 2, 256, 16))),
     Case("m = d (one number per sub-space)", _encode_case(_xp[:20, :6], _books(17, 6, 4, 1))),
     Case("dimensions with very different scales (interleaving shows)", _encode_case(
         (_xp[:30, :12] * np.repeat([5.0, 0.1, 1.0], 4)).astype(np.float32), _books(19, 3, 8, 4)))),
    points=2,
)


# --- 04.adc: scores q · reconstruction(code) with one (m, ksub) table per query ----------------
def _adc(q, codes, books, symmetric=False, l2=False):
    q, books = np.asarray(q, np.float64).reshape(-1), np.asarray(books, np.float64)
    codes = np.asarray(codes, np.int64)
    m, ksub, dsub = books.shape
    qs = q.reshape(m, dsub)
    if symmetric:
        qs = books[np.arange(m), _encode(q[None], books)[0]]
    table = ((qs[:, None, :] - books) ** 2).sum(-1) if l2 else np.einsum("mks,ms->mk", books, qs)
    return table[np.arange(m), codes].sum(axis=1)


_ADC_MISTAKES = (
    (dict(symmetric=True), "you quantised the query too (symmetric distance): in ADC only the "
                           "database vectors are compressed; the table uses the exact query"),
    (dict(l2=True), "you summed squared L2 distances; this index scores by inner product: "
                    "table[j, c] = q_j · codebooks[j, c]"),
)


def _adc_case(q, codes, books):
    def run(fn):
        out = as_array(call(fn, q, codes, books, names=("query", "codes", "codebooks")), "the scores")
        want = _adc(q, codes, books)
        if out.shape != want.shape:
            raise Fail(f"the scores have shape {out.shape}, expected one score per code: {want.shape}")
        if not _same(out, want):
            for kw, message in _ADC_MISTAKES:
                if _same(out, _adc(q, codes, books, **kw)):
                    raise Fail(message)
            raise Fail(f"{int((~np.isclose(out, want, atol=1e-4)).sum())} of {out.size} scores are wrong")
    return run


def _codes(seed, n, m, ksub, dtype=np.int64):
    return _rng(seed).integers(0, ksub, size=(n, m)).astype(dtype)


ADC = Exercise(
    "04.adc", "asymmetric distance computation (look-up tables)", "adc_scores",
    ("The query is not compressed. For sub-space j, compute the dot product of the query's j-th "
     "sub-vector with all ksub sub-centroids: a table of shape (m, ksub), once per query. The score of "
     "a database vector is the sum, over j, of table[j, code[j]] -- m look-ups.",
     "Reshape the query into its m sub-vectors; `np.einsum` can take the dot product of each sub-vector "
     "with every sub-centroid of its own sub-space in one call, giving the (m, ksub) table. Then fancy "
     "indexing with `np.arange(m)` and the codes picks table[j, codes[i, j]] for every code at once; "
     "sum over j."),
    (Case("m = 2, ksub = 3, two codes, by hand", _adc_case(
        np.array([1.0, 2.0], np.float32), np.array([[0, 1], [2, 2]]),
        np.array([[[0.5], [1.0], [-1.0]], [[2.0], [0.0], [0.25]]], np.float32))),
     Case("32-d query, m = 4, ksub = 16, 200 codes", _adc_case(_xp[0], _codes(20, 200, 4, 16), _books(21, 4, 16, 8))),
     Case("uint8 codes and ksub = 256 (FAISS's storage)", _adc_case(
         _xp[1], _codes(22, 100, 2, 256, np.uint8), _books(23, 2, 256, 16))),
     Case("a query far from every sub-centroid", _adc_case(_xp[2] * 3, _codes(24, 50, 8, 8), _books(25, 8, 8, 4))),
     Case("one code", _adc_case(_xp[3], _codes(26, 1, 4, 16), _books(27, 4, 16, 8))),
     Case("scores equal brute force on the reconstructed vectors", _adc_case(
         _xp[4, :12], _encode(_xp[5:45, :12], _books(29, 3, 8, 4)), _books(29, 3, 8, 4)))),
    points=2,
)


# --- 04.recall: mean over queries of |approx top-k ∩ exact top-k| / (valid exact ids) ----------
def _recall(approx, exact, k, pad_counts=False, by_k=False, position=False, cut=True):
    a, e = np.asarray(approx)[:, :k] if cut else np.asarray(approx), np.asarray(exact)[:, :k]
    out = []
    for ra, re in zip(a.tolist(), e.tolist()):
        if position:
            found = sum(x == y and (pad_counts or y != -1) for x, y in zip(ra, re))
        else:
            found = len({x for x in ra if pad_counts or x != -1} & {y for y in re if pad_counts or y != -1})
        valid = len(re) if by_k else max(sum(y != -1 for y in re), 1)
        out.append(found / (k if by_k else valid))
    return float(np.mean(out))


_RECALL_MISTAKES = (
    (dict(pad_counts=True), "padding (-1) in both lists was counted as a neighbour found; -1 "
                            "marks an empty place, never a match"),
    (dict(by_k=True), "you divided by k even where the exact list holds fewer than k real ids "
                      "(padding -1): divide by the number of real ids in the exact top-k"),
    (dict(position=True), "you compared position by position; recall ignores order: count the "
                          "exact top-k ids that appear ANYWHERE in the approximate top-k"),
    (dict(cut=False), "the approximate list has more than k columns: cut both lists to their "
                      "first k before comparing"),
)


def _recall_case(approx, exact, k):
    def run(fn):
        out = as_array(call(fn, approx, exact, k, names=("approx_ids", "exact_ids", "k")), "the recall")
        if out.size != 1:
            raise Fail(f"the recall should be one number (the mean over queries), got shape {out.shape}")
        value, want = float(out.reshape(())), _recall(approx, exact, k)
        if abs(value - want) > 1e-9:
            for kw, message in _RECALL_MISTAKES:
                other = _recall(approx, exact, k, **kw)
                if abs(other - want) > 1e-9 and abs(value - other) <= 1e-9:
                    raise Fail(message)
            raise Fail(f"the recall is off by {abs(value - want):.3g}")
    return run


_ex = np.argsort(-_rng(40).random((20, 50)), axis=1)[:, :10]
_ap = np.where(_rng(41).random((20, 10)) < 0.3, _rng(42).integers(50, 90, (20, 10)), _ex)
_ap = np.array([_rng(43 + i).permutation(r) for i, r in enumerate(_ap)])
RECALL = Exercise(
    "04.recall", "recall@k of an approximate search", "ann_recall",
    ("For each query, count how many ids of the exact top-k also appear in the approximate top-k (order "
     "does not matter), divide by the number of real ids in the exact top-k (padding -1 is not an id), "
     "then average over the queries.",
     "Python sets do the work: per row, the ids of the first k columns of each list as a set, minus the "
     "padding id -1; the overlap's size over the size of the exact set (at least 1) is that query's "
     "recall. Return the mean as a float."),
    (Case("the same ids in the same order", _recall_case(_ex[:3], _ex[:3], 10)),
     Case("the same ids in another order", _recall_case(_ex[:3, ::-1], _ex[:3], 10)),
     Case("20 queries, about 30% of the neighbours missed", _recall_case(_ap, _ex, 10)),
     Case("k smaller than the number of columns", _recall_case(_ap, _ex, 3)),
     Case("padding (-1) in both lists", _recall_case(np.array([[4, 7, -1, -1], [1, 2, 3, -1]]),
                                                     np.array([[7, 9, -1, -1], [3, 1, 2, 5]]), 4)),
     Case("the approximate list has more columns than k", _recall_case(
         np.array([[5, 6, 1, 2]]), np.array([[1, 2]]), 2)),
     Case("Python lists as input", _recall_case([[1, 2, 3], [4, 5, 6]], [[3, 2, 9], [6, 7, 8]], 3))),
    points=1,
)



# --- 04.tune_nprobe: faiss.index_factory + nprobe tuned to a recall target ------------------------
def _ivf_ids(vectors, queries, factory, k, nprobes):
    """{nprobe: ids} of FAISS's own IVF index built as the exercise says (a fresh index each call)."""
    import faiss

    index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    index.train(vectors)
    index.add(vectors)
    found = {}
    for nprobe in nprobes:
        index.nprobe = nprobe
        found[nprobe] = index.search(queries, k)[1]
    return found


def _exact_ids(vectors, queries, k):
    scores = queries.astype(np.float64) @ vectors.astype(np.float64).T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def _tune_case(n_docs, n_queries, nlist, k, target):
    factory = f"IVF{nlist},Flat"

    def run(fn):
        all_vectors = scifact_vectors(2040)
        vectors, queries = all_vectors[:n_docs], all_vectors[2000:2000 + n_queries]
        out = call(fn, vectors, queries, factory, k, target,
                   names=("vectors", "queries", "factory", "k", "target"))
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Fail("return a pair `nprobe, ids`: the nprobe you chose and the index's (n_queries, k) ids")
        nprobe, ids = out
        if not isinstance(nprobe, (int, np.integer)) or not 1 <= int(nprobe) <= nlist:
            raise Fail(f"nprobe must be a whole number from 1 to nlist = {nlist}, got {nprobe!r}")
        nprobe, ids = int(nprobe), np.asarray(ids)
        if ids.shape != (n_queries, k):
            raise Fail(f"the ids have shape {ids.shape}, expected (n_queries, k) = {(n_queries, k)}")
        exact = _exact_ids(vectors, queries, k)
        recall = np.mean([len(set(a) & set(e)) / k for a, e in zip(ids.tolist(), exact.tolist())])
        mine = _ivf_ids(vectors, queries, factory, k, sorted({1, nprobe, max(nprobe - 1, 1)}))
        if recall < target:
            if np.array_equal(ids, mine[1]) and nprobe > 1:
                raise Fail("these are the results of nprobe = 1, FAISS's default: set `index.nprobe` "
                           "before each search")
            raise Fail(f"the returned ids reach recall@{k} {recall:.3f}, below the target: probe more lists")
        if nprobe == nlist or (np.array_equal(ids, exact) and not np.array_equal(mine[nprobe], exact)):
            raise Fail("these are exact-search results (every list probed, or a flat index): the point "
                       "is the SMALLEST nprobe whose IVF results reach the target; return that index's ids")
        if nprobe > 1:
            below = mine[nprobe - 1]
            lower = np.mean([len(set(a) & set(e)) / k for a, e in zip(below.tolist(), exact.tolist())])
            if lower >= target:
                raise Fail(f"nprobe = {nprobe - 1} already reaches the target: return the smallest "
                           "nprobe that does (recall@k counts the exact top-k ids found ANYWHERE in the "
                           "k results; order does not matter)")
    return run


TUNE_NPROBE = Exercise(
    "04.tune_nprobe", "an IVF index from index_factory, nprobe tuned to a recall target", "tune_nprobe",
    ("Build the index with `faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)`, train it on "
     "the vectors and add them. The true neighbours come from an exact `faiss.IndexFlatIP`. Then raise "
     "`index.nprobe` from 1 until recall@k against the exact top-k reaches the target.",
     "An IVF index exposes `nlist` and a settable `nprobe`; set it, call `search`, and compare the ids "
     "with the exact index's, row by row as sets (order does not matter). Stop at the first nprobe "
     "whose mean recall reaches the target and return it with the ids of that search."),
    (Case("2,000 SciFact abstracts, 40 other abstracts as queries, IVF32, recall@10 >= 0.9",
          _tune_case(2000, 40, 32, 10, 0.9)),
     Case("the same vectors, IVF16, recall@5 >= 0.98", _tune_case(2000, 40, 16, 5, 0.98)),
     Case("1,000 abstracts, IVF8, recall@10 >= 0.8", _tune_case(1000, 25, 8, 10, 0.8)),
     Case("2,000 abstracts, IVF48, recall@10 >= 0.95", _tune_case(2000, 40, 48, 10, 0.95)),
     Case("1,500 abstracts, IVF24, recall@1 >= 0.9", _tune_case(1500, 30, 24, 1, 0.9))),
    points=2,
)

# --- held-back cases: the public situations again, with other inputs (graded; `check` never runs them)
_q5, _x5, _c5, _lists5 = _ivf_data(60, 500, 12, 10, 4)
_qs5, _xs5, _cs5, _ls5 = _ivf_data(61, 240, 8, 8, 3)
_qe5, _xe5, _ce5, _le5 = _ivf_data(62, 180, 8, 5, 2)
_le5 = [l if j != int(np.argmax(_qe5[0] @ _ce5.T)) else np.zeros(0, np.int64) for j, l in enumerate(_le5)]
IVF = held_back(
    IVF,
    Case("500 clustered vectors, 10 lists, nprobe = 2, k = 8", _ivf_case(_q5, _x5, _c5, _lists5, 2, 8)),
    Case("centroids of very different lengths, nprobe = 4", _ivf_case(_q5, _x5, _c5, _lists5, 4, 6)),
    Case("nprobe = nlist (must equal exact search)", _ivf_case(_q5, _x5, _c5, _lists5, 10, 5)),
    Case("probed lists hold fewer than k vectors (padding)", _ivf_case(_qs5, _xs5, _cs5, _ls5, 1, 70)),
    Case("an empty inverted list among the probed ones", _ivf_case(_qe5, _xe5, _ce5, _le5, 2, 4)))
_xp5 = _clustered(60, 200, 24)
PQ_ENCODE = held_back(
    PQ_ENCODE,
    Case("200 clustered 24-d vectors, m = 3, ksub = 16", _encode_case(_xp5, _books(61, 3, 16, 8))),
    Case("sub-centroids of different lengths, m = 6", _encode_case(_xp5[:50], _books(63, 6, 8, 4))),
    Case("ksub = 256", _encode_case(_xp5[:30], _books(65, 4, 256, 6))),
    Case("dimensions with very different scales", _encode_case(
        (_xp5[:40] * np.r_[np.full(12, 5.0), np.full(12, 0.1)]).astype(np.float32), _books(67, 2, 8, 12))))
ADC = held_back(
    ADC,
    Case("24-d query, m = 3, ksub = 16, 150 codes", _adc_case(_xp5[0], _codes(60, 150, 3, 16), _books(61, 3, 16, 8))),
    Case("uint8 codes and ksub = 256", _adc_case(_xp5[1], _codes(62, 80, 4, 256, np.uint8), _books(63, 4, 256, 6))),
    Case("a query far from every sub-centroid", _adc_case(_xp5[2] * 4, _codes(64, 40, 6, 8), _books(65, 6, 8, 4))),
    Case("scores equal brute force on the reconstructed vectors", _adc_case(
        _xp5[3, :12], _encode(_xp5[5:35, :12], _books(67, 4, 8, 3)), _books(67, 4, 8, 3))))
_ex5 = np.argsort(-_rng(60).random((15, 40)), axis=1)[:, :8]
_ap5 = np.where(_rng(61).random((15, 8)) < 0.4, _rng(62).integers(40, 70, (15, 8)), _ex5)
_ap5 = np.array([_rng(63 + i).permutation(r) for i, r in enumerate(_ap5)])
RECALL = held_back(
    RECALL,
    Case("the same ids in another order", _recall_case(_ex5[:4, ::-1], _ex5[:4], 8)),
    Case("15 queries, about 40% of the neighbours missed", _recall_case(_ap5, _ex5, 8)),
    Case("k smaller than the number of columns", _recall_case(_ap5, _ex5, 5)),
    Case("padding (-1) in both lists", _recall_case(np.array([[2, -1, -1], [8, 5, -1]]), np.array([[2, 4, -1], [5, -1, -1]]), 3)),
    Case("Python lists, more approximate columns than k", _recall_case([[9, 1, 4, 7]], [[1, 9, 3]], 3)))
TUNE_NPROBE = held_back(
    TUNE_NPROBE,
    Case("1,800 abstracts, IVF40, recall@10 >= 0.85", _tune_case(1800, 35, 40, 10, 0.85)),
    Case("1,200 abstracts, IVF12, recall@3 >= 0.95", _tune_case(1200, 30, 12, 3, 0.95)))

EXERCISES = (IVF, PQ_ENCODE, ADC, RECALL, TUNE_NPROBE)
