"""Chapter 04's exercise checks: typical mistakes are named, other correct versions pass."""
import functools
from pathlib import Path

import nbformat
import numpy as np
import pytest

from course_utils.grading import check

ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def _solution():
    """The functions defined in solutions/04_ann_exercises.ipynb (cells starting with `def `)."""
    nb = nbformat.read(ROOT / "solutions" / "04_ann_exercises.ipynb", as_version=4)
    namespace = {}
    exec("import math\nimport numpy as np\n" + "\n".join(c.source for c in nb.cells if c.source.startswith("def ")), namespace)
    return namespace


def _ivf(probe_order, pad=True):
    def fn(queries, vectors, centroids, lists, nprobe, k):
        q, v, c = (np.asarray(a, np.float32) for a in (queries, vectors, centroids))
        out_s, out_i = [], []
        for query in q:
            probe = probe_order(query, c)[:nprobe]
            cand = np.concatenate([np.asarray(lists[j], np.int64) for j in probe])
            s = v[cand] @ query
            top = np.argsort(-s)[:k]
            kk = k if pad else len(top)
            row_s, row_i = np.full(kk, -np.inf), np.full(kk, -1)
            row_s[:len(top)], row_i[:len(top)] = s[top], cand[top]
            out_s.append(row_s), out_i.append(row_i)
        if not pad:
            width = min(map(len, out_i))
            return np.array([r[:width] for r in out_s]), np.array([r[:width] for r in out_i])
        return np.array(out_s), np.array(out_i)
    return fn


_best_ip = lambda q, c: np.argsort(-(c @ q))
_nearest_l2 = lambda q, c: np.argsort(((c - q) ** 2).sum(axis=1))
_worst_ip = lambda q, c: np.argsort(c @ q)


def _encode(how):
    def fn(vectors, codebooks):
        x, b = np.asarray(vectors, float), np.asarray(codebooks, float)
        m, ksub, dsub = b.shape
        if how == "interleaved":
            sub = x.reshape(len(x), dsub, m).transpose(0, 2, 1)
        else:
            sub = x.reshape(len(x), m, dsub)
        if how == "ip":
            return np.einsum("nms,mks->nmk", sub, b).argmax(axis=2)
        return ((sub[:, :, None] - b[None]) ** 2).sum(-1).argmin(axis=2)
    return fn


def _adc_sdc(query, codes, codebooks):            # the query quantised too
    b = np.asarray(codebooks, float)
    m, ksub, dsub = b.shape
    qs = np.asarray(query, float).reshape(m, dsub)
    qcode = ((qs[:, None] - b) ** 2).sum(-1).argmin(axis=1)
    table = np.einsum("mks,ms->mk", b, b[np.arange(m), qcode])
    return table[np.arange(m), np.asarray(codes, int)].sum(axis=1)


def _recall(pad_counts=False, by_k=False, position=False):
    def fn(approx_ids, exact_ids, k):
        vals = []
        for a, e in zip(np.asarray(approx_ids)[:, :k].tolist(), np.asarray(exact_ids)[:, :k].tolist()):
            if position:
                found = sum(x == y and y != -1 for x, y in zip(a, e))
            else:
                found = len((set(a) & set(e)) - (set() if pad_counts else {-1}))
            vals.append(found / (k if by_k else max(sum(y != -1 for y in e), 1)))
        return float(np.mean(vals))
    return fn


def _tune(mode):
    """tune_nprobe variants: nprobe never set on the index, exact search returned, recall counted by position."""
    def fn(vectors, queries, factory, k, target):
        import faiss
        x, q = np.ascontiguousarray(vectors, np.float32), np.ascontiguousarray(queries, np.float32)
        flat = faiss.IndexFlatIP(x.shape[1])
        flat.add(x)
        true_ids = flat.search(q, k)[1]
        if mode == "exact":
            return 1, true_ids
        index = faiss.index_factory(x.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
        index.train(x)
        index.add(x)
        for nprobe in range(1, index.nlist + 1):
            if mode != "unset":
                index.nprobe = nprobe
            ids = index.search(q, k)[1]
            recall = (ids == true_ids).mean() if mode == "positional" else \
                np.mean([len(set(a) & set(e)) / k for a, e in zip(ids.tolist(), true_ids.tolist())])
            if recall >= target:
                return nprobe, ids
        return index.nlist, ids
    return fn


_MISTAKES = [
    ("04.ivf_search", _ivf(_nearest_l2), "L2 distance"),
    ("04.ivf_search", _ivf(_worst_ip), "smallest inner product"),
    ("04.ivf_search", _ivf(_best_ip, pad=False), "pad the"),
    ("04.pq_encode", _encode("ip"), "largest inner product"),
    ("04.pq_encode", _encode("interleaved"), "interleave"),
    ("04.adc", _adc_sdc, "quantised the query"),
    ("04.recall", _recall(pad_counts=True), "padding (-1) in both lists"),
    ("04.recall", _recall(by_k=True), "divided by k"),
    ("04.recall", _recall(position=True), "position by position"),
    ("04.tune_nprobe", _tune("unset"), "FAISS's default"),
    ("04.tune_nprobe", _tune("exact"), "exact-search results"),
    ("04.tune_nprobe", _tune("positional"), "already reaches the target"),
]


@pytest.mark.parametrize("ex, fn, words", _MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(_MISTAKES)])
def test_typical_mistakes_fail_with_a_message_that_names_them(ex, fn, words, capsys):
    result = check(ex, fn, time_limit=120)
    assert result.status == "failed" and words in result.message, result.message
    assert words in capsys.readouterr().out.replace("\n    ", " ")


def _ivf_masked(queries, vectors, centroids, lists, nprobe, k):
    """Another correct version, vectorised: score everything, mask what the probed lists do not hold."""
    q, v, c = (np.asarray(a, np.float64) for a in (queries, vectors, centroids))
    owner = np.full(len(v), -1)
    for j, ids in enumerate(lists):
        owner[np.asarray(ids, int)] = j
    probe = np.argsort(-(q @ c.T), axis=1)[:, :nprobe]                     # (nq, nprobe)
    allowed = (owner[None, :, None] == probe[:, None, :]).any(axis=2)      # (nq, n)
    scores = np.where(allowed, q @ v.T, -np.inf)
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(scores, ids, axis=1)
    if ids.shape[1] < k:
        ids = np.hstack([ids, np.full((len(q), k - ids.shape[1]), -1)])
        top = np.hstack([top, np.full((len(q), k - top.shape[1]), -np.inf)])
    return top, np.where(np.isfinite(top), ids, -1)


@pytest.mark.parametrize("ex, fn", [
    ("04.ivf_search", _ivf_masked),
    ("04.recall", lambda a, e, k: float(np.mean([len(set(x[:k]) & set(y[:k]) - {-1}) / max(1, sum(t != -1 for t in y[:k]))
                                                 for x, y in zip(np.asarray(a).tolist(), np.asarray(e).tolist())]))),
    ("04.adc", lambda q, codes, b: np.stack([np.asarray(b)[j][np.asarray(codes)[:, j]] for j in range(np.asarray(b).shape[0])], 1)
     .reshape(len(codes), -1) @ np.asarray(q, float)),      # brute force on the reconstructed vectors
], ids=["ivf-vectorised", "recall-sets", "adc-reconstruct"])
def test_other_correct_implementations_pass(ex, fn, capsys):
    assert check(ex, fn), capsys.readouterr().out


@pytest.mark.parametrize("ex", ["04.ivf_search", "04.pq_encode", "04.adc", "04.recall"])
def test_the_solution_passes(ex):
    from course_utils.grading import cases
    assert check(ex, _solution()[cases.get(ex).function])


def test_the_library_exercise_solution_passes(capsys):
    assert check("04.tune_nprobe", _solution()["tune_nprobe"], time_limit=120), capsys.readouterr().out
