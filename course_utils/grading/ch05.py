"""Hidden test cases of chapter 05's exercises (solutions/05_clustering_exercises.ipynb).

Exercises: k-means by hand (Lloyd's iterations from given centroids, `kmeans`), c-TF-IDF weights
(`ctfidf`, the formula of `course_utils.cluster.labels`), scikit-learn's KMeans scored with
`adjusted_rand_score` against true classes (`cluster_and_score`) and the mean cosine
silhouette (`silhouette`, = scikit-learn's `silhouette_score(metric="cosine")`). Reference answers are
computed here at check time (scikit-learn for the ARI); messages name the typical mistake (stale
labels, an empty cluster's nan centroid, the unadjusted Rand index, raw counts as tf...), never
the expected values.
"""
from __future__ import annotations

import functools

import numpy as np
from sklearn.metrics import adjusted_rand_score, rand_score, silhouette_score

from .cases import Case, Exercise, Fail, as_array, call, held_back


def _rng(n: int) -> np.random.Generator:
    return np.random.default_rng(5000 + n)


# --- 05.kmeans: Lloyd's iterations; empty cluster keeps its centroid; final labels fresh ------
def _assign(x, c, metric="l2"):
    if metric == "ip":
        return np.argmax(x @ c.T, axis=1)
    return np.argmin(((x[:, None, :] - c[None]) ** 2).sum(-1), axis=1)


def _lloyd(x, init, n_iter, stale=False, metric="l2"):
    x, c = np.asarray(x, np.float64), np.array(init, np.float64)
    labels = _assign(x, c, metric)
    for _ in range(n_iter):
        labels = _assign(x, c, metric)
        for j in range(len(c)):
            if (labels == j).any():
                c[j] = x[labels == j].mean(axis=0)
    return (labels if stale else _assign(x, c, metric)), c


_KMEANS_MISTAKES = (
    (dict(stale=True), "the labels are those of the last assignment step, computed BEFORE the "
                       "centroids moved; return the labels of the final centroids (assign once "
                       "more after the loop)"),
    (dict(metric="ip"), "you assigned points by the largest dot product; k-means assigns each "
                        "point to the centroid at the smallest (squared) Euclidean distance"),
)


def _kmeans_case(x, init, n_iter):
    def run(fn):
        out = call(fn, x, init, n_iter, names=("vectors", "init_centroids", "n_iter"))
        if out is None:
            raise Fail("the result is None: did you forget `return`?")
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Fail(f"return a pair `labels, centroids`, got a {type(out).__name__}")
        labels, cents = as_array(out[0], "labels"), as_array(out[1], "centroids")
        want_l, want_c = _lloyd(x, init, n_iter)
        if labels.shape != want_l.shape or cents.shape != want_c.shape:
            raise Fail(f"labels/centroids have shapes {labels.shape}/{cents.shape}, expected "
                       f"{want_l.shape}/{want_c.shape} (labels (n,), centroids (k, d))")
        if np.isnan(cents).any():
            raise Fail("a centroid is nan: a cluster lost all its points and you took the mean of "
                       "nothing. Keep an empty cluster's previous centroid")
        if not np.allclose(cents, want_c, atol=1e-4):
            for kw, message in _KMEANS_MISTAKES:
                if np.allclose(cents, _lloyd(x, init, n_iter, **kw)[1], atol=1e-4):
                    raise Fail(message)
            raise Fail(f"{int((~np.isclose(cents, want_c, atol=1e-4)).any(axis=1).sum())} of "
                       f"{len(want_c)} centroids are wrong after {n_iter} iteration(s)")
        if not np.array_equal(labels, want_l):
            for kw, message in _KMEANS_MISTAKES:
                if np.array_equal(labels, _lloyd(x, init, n_iter, **kw)[0]):
                    raise Fail(message)
            raise Fail(f"the centroids are right but {int((labels != want_l).sum())} of "
                       f"{len(labels)} labels are wrong")
    return run


def _blobs(seed, n, d, k, spread=0.3):
    rng = _rng(seed)
    centres = rng.normal(size=(k, d)) * 2
    return (centres[rng.integers(0, k, n)] + spread * rng.normal(size=(n, d))).astype(np.float32)


_b = _blobs(1, 120, 2, 3)
_unit = _blobs(3, 300, 384, 8, spread=1.0)
_unit = (_unit / np.linalg.norm(_unit, axis=1, keepdims=True)).astype(np.float32)
_scaled = _blobs(5, 90, 3, 3) * np.array([[1.0], [4.0], [0.2]] * 30, np.float32)
KMEANS = Exercise(
    "05.kmeans", "k-means (Lloyd's algorithm) by hand", "kmeans",
    ("Repeat n_iter times: (1) assign every point to its nearest centroid (smallest squared Euclidean "
     "distance), (2) move every centroid to the mean of its points; a centroid whose cluster is empty "
     "stays where it is. After the loop, assign once more, so the labels belong to the centroids you "
     "return.",
     "Broadcasting the points against the centroids (insert an axis in each) gives all squared "
     "distances at once; `argmin` along the centroid axis is the assignment. Move each centroid to "
     "`x[labels == j].mean(axis=0)` only when that cluster is not empty. Work on a float copy of the "
     "initial centroids (`np.array`), and assign once more after the loop."),
    (Case("six 1-d points, two centroids, by hand", _kmeans_case(
        np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]]), np.array([[0.0], [1.0]]), 3)),
     Case("three 2-d blobs, 10 iterations", _kmeans_case(_b, _b[:3], 10)),
     Case("one iteration (are the labels those of the returned centroids?)", _kmeans_case(_b, _b[[0, 1, 2]], 1)),
     Case("a centroid far from every point (its cluster stays empty)", _kmeans_case(
         _b, np.vstack([_b[:2], [[100.0, 100.0]]]), 5)),
     Case("points of very different lengths (distance, not dot product)", _kmeans_case(_scaled, _scaled[:3], 4)),
     Case("n_iter = 0 (labels of the initial centroids)", _kmeans_case(_b, _b[5:8], 0)),
     Case("300 unit vectors of 384 dimensions, k = 8", _kmeans_case(_unit, _unit[:8], 6)),
     Case("Python lists as input", _kmeans_case([[0.0, 0.0], [0.0, 1.0], [5.0, 5.0], [6.0, 5.0]],
                                                [[0.0, 0.0], [6.0, 5.0]], 2))),
    points=2,
)


# --- 05.ctfidf: W(t, c) = tf(t, c) * log(1 + A / f(t)) ------------------------------------------
def _ctfidf(counts, tf="share", avg="mean", plus_one=True, log=np.log):
    counts = np.asarray(counts, np.float64)
    per = counts.sum(axis=1, keepdims=True)
    t = counts / np.where(per == 0, 1, per) if tf == "share" else counts
    f = counts.sum(axis=0)
    a = per.mean() if avg == "mean" else per.sum()
    ratio = a / np.where(f == 0, 1, f)
    return t * log(1 + ratio if plus_one else ratio)


_CTFIDF_MISTAKES = (
    (dict(tf="raw"), "tf(t, c) is the word's count in the cluster DIVIDED by the cluster's total "
                     "word count (a share), not the raw count"),
    (dict(avg="total"), "A is the AVERAGE number of words per cluster (total words / number of "
                        "clusters), not the total"),
    (dict(plus_one=False), "the idf part is log(1 + A / f(t)): the 1 + keeps it positive for "
                           "words more frequent than A"),
    (dict(log=np.log10), "use the natural logarithm (np.log), as BERTopic does"),
    (dict(log=np.log2), "use the natural logarithm (np.log), as BERTopic does"),
)


def _ctfidf_case(counts):
    def run(fn):
        out = as_array(call(fn, counts, names=("counts",)), "the weights")
        want = _ctfidf(counts)
        if out.shape != want.shape:
            hint = " (transposed?)" if out.shape == want.shape[::-1] else ""
            raise Fail(f"the weights have shape {out.shape}, expected (n_clusters, n_words) = {want.shape}{hint}")
        if (~np.isfinite(out)).any():
            raise Fail("the weights hold nan/inf: a cluster with no words, or a word that occurs "
                       "nowhere, must get weight 0, not a division by zero")
        if not np.allclose(out, want, atol=1e-9):
            for kw, message in _CTFIDF_MISTAKES:
                if np.allclose(out, _ctfidf(counts, **kw), atol=1e-9):
                    raise Fail(message)
            raise Fail(f"{int((~np.isclose(out, want, atol=1e-9)).sum())} of {out.size} weights are wrong")
    return run


_counts = _rng(10).poisson(_rng(11).gamma(0.6, 3.0, size=(5, 40)))
CTFIDF = Exercise(
    "05.ctfidf", "class-based TF-IDF (c-TF-IDF)", "ctfidf",
    ("Treat each cluster as one big document. W(t, c) = tf(t, c) * log(1 + A / f(t)): tf is the count "
     "of word t in cluster c divided by all words of c; f(t) is the count of t over all clusters; A is "
     "the average number of words per cluster. Guard the divisions: an empty cluster or a word with "
     "f(t) = 0 gets weight 0.",
     "Three sums with `counts.sum`: per cluster (keep the axis, for broadcasting), per word, and their "
     "mean A. Divide counts by the per-cluster totals, then multiply by `np.log(1 + A / f)`; use "
     "`np.where` to swap zero denominators for 1 first, so empty clusters and unused words give 0, not "
     "nan."),
    (Case("the chapter's 2 x 2 example", _ctfidf_case(np.array([[2, 0], [1, 1]]))),
     Case("5 clusters x 40 words of skewed counts", _ctfidf_case(_counts)),
     Case("a word more frequent than A (the 1 + matters)", _ctfidf_case(np.array([[50, 1, 0], [40, 0, 2], [30, 3, 1]]))),
     Case("clusters of very different sizes", _ctfidf_case(np.array([[100, 20, 5], [1, 0, 2]]))),
     Case("a cluster with no words and a word that never occurs", _ctfidf_case(
         np.array([[3, 0, 1], [0, 0, 0], [1, 0, 4]]))),
     Case("Python lists of integers", _ctfidf_case([[1, 2, 3], [3, 2, 1], [0, 5, 0], [2, 2, 2]]))),
    points=2,
)


# --- 05.ari: adjusted Rand index from the contingency table ------------------------------------
def _digits(n: int, seed: int):
    """n of scikit-learn's bundled 8x8 handwritten digits (64-d, shipped, no download), shuffled."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = _rng(seed).permutation(len(x))[:n]
    return x[order].astype(np.float64), y[order]


def _overlapping_blobs(n: int, seed: int, classes: int = 4, d: int = 16):
    rng = _rng(seed)
    centres = rng.normal(size=(classes, d)) * 2.0
    y = rng.integers(0, classes, n)
    return centres[y] + rng.normal(size=(n, d)) * 1.6, y


@functools.lru_cache(maxsize=None)
def _reference_ari(n, seed, kind, k):
    from sklearn.cluster import KMeans

    x, y = (_digits if kind == "digits" else _overlapping_blobs)(n, seed)
    return float(adjusted_rand_score(y, KMeans(k, n_init=10, random_state=0).fit_predict(x)))


def _kmeans_sklearn_case(n, seed, kind, k):
    def run(fn):
        x, y = (_digits if kind == "digits" else _overlapping_blobs)(n, seed)
        out = call(fn, x, y, k, names=("vectors", "labels_true", "k"))
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Fail("return a pair `labels, ari`: the cluster of each vector and the ARI against labels_true")
        labels, ari = np.asarray(out[0]), out[1]
        if labels.shape != y.shape:
            raise Fail(f"labels has shape {labels.shape}, expected one cluster id per vector {y.shape}")
        if len(np.unique(labels)) != k:
            raise Fail(f"labels holds {len(np.unique(labels))} distinct clusters, expected k = {k}")
        ari = float(as_array(ari, "the ARI").reshape(-1)[0])
        want = float(adjusted_rand_score(y, labels))
        if abs(ari - want) > 1e-9:
            if abs(ari - float(rand_score(y, labels))) <= 1e-9:
                raise Fail("that is the unadjusted Rand index (sklearn's rand_score): use "
                           "adjusted_rand_score, which subtracts what chance agreement gives")
            if abs(ari - float(np.mean(labels == y))) <= 1e-9:
                raise Fail("that is an accuracy (labels == labels_true): cluster ids are arbitrary "
                           "names, cluster 3 need not be class 3; the ARI compares pairs of points")
            if abs(ari - 1.0) <= 1e-9:
                raise Fail("an ARI of exactly 1: did you compare the clustering with itself instead "
                           "of with labels_true?")
            raise Fail("the ARI returned is not adjusted_rand_score(labels_true, labels) of your labels")
        best = _reference_ari(n, seed, kind, k)
        if ari < best - 0.08:
            raise Fail(f"your clustering's ARI is {ari:.3f}, well below what k-means with several "
                       "restarts reaches on these vectors: use KMeans(n_clusters=k, n_init=10, "
                       "random_state=...) on the vectors as given")
    return run


SKLEARN_KMEANS = Exercise(
    "05.kmeans_ari", "scikit-learn KMeans scored with adjusted_rand_score", "cluster_and_score",
    ("Cluster with scikit-learn's `KMeans` (several restarts, a fixed random_state so a re-run gives "
     "the same clusters), then score the labels against the true classes with "
     "`sklearn.metrics.adjusted_rand_score`.",
     "KMeans takes n_clusters, n_init (restarts) and random_state; its fit_predict returns the "
     "labels. adjusted_rand_score compares two labelings of the same points: the true classes "
     "and yours (not your labels with themselves, not an accuracy)."),
    (Case("400 of scikit-learn's handwritten digits (64 pixels), k = 10", _kmeans_sklearn_case(400, 20, "digits", 10)),
     Case("300 points in 4 overlapping blobs (16-d), k = 4", _kmeans_sklearn_case(300, 21, "blobs", 4)),
     Case("the digits again, k = 6 (fewer clusters than classes)", _kmeans_sklearn_case(300, 22, "digits", 6)),
     Case("200 points in 4 blobs, k = 3", _kmeans_sklearn_case(200, 23, "blobs", 3)),
     Case("250 other digits, k = 10", _kmeans_sklearn_case(250, 24, "digits", 10))),
    points=1,
)


# --- 05.silhouette: mean over points of (b - a) / max(a, b), cosine distance ------------------
def _silhouette(x, labels, self_in_a=False, b_all=False, metric="cosine"):
    x, labels = np.asarray(x, np.float64), np.asarray(labels)
    if metric == "cosine":
        u = x / np.linalg.norm(x, axis=1, keepdims=True)
        dist = np.clip(1 - u @ u.T, 0, 2)
    else:
        dist = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    np.fill_diagonal(dist, 0)
    s = np.zeros(len(x))
    for i in range(len(x)):
        own = labels == labels[i]
        if own.sum() == 1:
            continue
        a = dist[i, own].sum() / (own.sum() - (0 if self_in_a else 1))
        b = dist[i, ~own].mean() if b_all else min(dist[i, labels == c].mean() for c in set(labels[~own].tolist()))
        s[i] = (b - a) / max(a, b) if max(a, b) > 0 else 0.0
    return float(s.mean())


_SILHOUETTE_MISTAKES = (
    (dict(self_in_a=True), "a(i) averaged over the point's own cluster INCLUDING the point itself "
                           "(distance 0): divide by the cluster size minus 1"),
    (dict(b_all=True), "b(i) is the mean distance to the NEAREST other cluster (the smallest of the "
                       "per-cluster means), not to all points outside the own cluster"),
    (dict(metric="euclidean"), "you used the Euclidean distance; this exercise uses the cosine "
                               "distance 1 - cos(x, y), as chapter 05 does"),
)


def _silhouette_case(x, labels):
    def run(fn):
        out = as_array(call(fn, x, labels, names=("vectors", "labels")), "the silhouette")
        if out.size != 1:
            raise Fail(f"return the MEAN silhouette (one number), got an array of shape {out.shape}")
        value = float(out.reshape(()))
        if not np.isfinite(value):
            raise Fail(f"the silhouette is {value}: a point alone in its cluster has a = 0/0 -- give it s = 0")
        want = float(silhouette_score(np.asarray(x, np.float64), labels, metric="cosine"))
        if abs(value - want) > 1e-6:
            for kw, message in _SILHOUETTE_MISTAKES:
                other = _silhouette(x, labels, **kw)
                if abs(other - want) > 1e-6 and abs(value - other) <= 1e-6:
                    raise Fail(message)
            raise Fail(f"the silhouette is off by {abs(value - want):.3g}")
    return run


def _labelled_blobs(seed, n=60, d=8, k=3):
    rng = _rng(seed)
    labels = rng.integers(0, k, n)
    return (rng.normal(size=(k, d))[labels] + 0.4 * rng.normal(size=(n, d))).astype(np.float32), labels


_sx = _blobs(40, 90, 8, 3, spread=1.2)
_sl = _rng(41).integers(0, 3, 90)
SILHOUETTE = Exercise(
    "05.silhouette", "mean silhouette (cosine distance)", "silhouette",
    ("For each point i: a = its mean cosine distance (1 - cos) to the OTHER points of its cluster; b = "
     "the smallest, over the other clusters, of its mean distance to that cluster's points; its "
     "silhouette is b minus a, divided by the larger of the two, and 0 for a point alone in its "
     "cluster. Return the mean over the points.",
     "Normalise the rows, then one matrix product gives every cosine, and 1 minus it every distance "
     "(`np.fill_diagonal` sets the self-distances to exactly 0). With a boolean mask of the point's own "
     "cluster, a is that row's sum over the mask divided by the cluster size minus 1; b is the smallest "
     "of the row's means over the other clusters' masks."),
    (Case("two tight pairs of 2-d vectors", _silhouette_case(
        np.array([[1.0, 0.1], [1.0, 0.2], [0.1, 1.0], [0.2, 1.0]]), np.array([0, 0, 1, 1]))),
     Case("three blobs of directions, labelled by blob", _silhouette_case(*_labelled_blobs(42))),
     Case("random labels (silhouette near 0 or below)", _silhouette_case(_sx, _sl)),
     Case("a cluster of one point", _silhouette_case(_sx[:10], np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 3]))),
     Case("string labels and clusters of different sizes", _silhouette_case(
         _sx[:12], ["a"] * 7 + ["b"] * 3 + ["c"] * 2)),
     Case("vectors of very different lengths (cosine ignores length)", _silhouette_case(
         _sx[:30] * np.repeat([0.1, 1.0, 20.0], 10)[:, None], _sl[:30]))),
    points=2,
)

# --- held-back cases: the public situations again, with other inputs (graded; `check` never runs them)
_b5 = _blobs(60, 100, 3, 4)
_unit5 = _blobs(61, 200, 384, 6, spread=1.0)
_unit5 = (_unit5 / np.linalg.norm(_unit5, axis=1, keepdims=True)).astype(np.float32)
_scaled5 = _blobs(62, 60, 2, 2) * np.array([[0.3], [5.0]] * 30, np.float32)
KMEANS = held_back(
    KMEANS,
    Case("four 3-d blobs, 8 iterations", _kmeans_case(_b5, _b5[:4], 8)),
    Case("one iteration", _kmeans_case(_b5, _b5[[3, 1, 4, 1]] + 0.01, 1)),
    Case("a centroid far from every point", _kmeans_case(_b5, np.vstack([_b5[:3], [[-90.0, 80.0, 70.0]]]), 4)),
    Case("points of very different lengths", _kmeans_case(_scaled5, _scaled5[:2], 5)),
    Case("n_iter = 0", _kmeans_case(_b5, _b5[10:14], 0)),
    Case("200 unit vectors of 384 dimensions, k = 6", _kmeans_case(_unit5, _unit5[:6], 5)))
_counts5 = _rng(60).poisson(_rng(61).gamma(0.5, 4.0, size=(4, 30)))
CTFIDF = held_back(
    CTFIDF,
    Case("4 clusters x 30 words of skewed counts", _ctfidf_case(_counts5)),
    Case("a word more frequent than A", _ctfidf_case(np.array([[70, 2, 1], [60, 1, 0]]))),
    Case("clusters of very different sizes", _ctfidf_case(np.array([[3, 1, 0, 2], [200, 40, 10, 5], [0, 1, 1, 0]]))),
    Case("a cluster with no words and a word that never occurs",
         _ctfidf_case([[0, 0, 0, 0], [2, 0, 5, 1], [1, 0, 0, 3]])))
SKLEARN_KMEANS = held_back(
    SKLEARN_KMEANS,
    Case("350 other digits, k = 10", _kmeans_sklearn_case(350, 60, "digits", 10)),
    Case("250 points in 4 overlapping blobs, k = 5", _kmeans_sklearn_case(250, 61, "blobs", 5)),
    Case("the digits, k = 8", _kmeans_sklearn_case(280, 62, "digits", 8)))
_sx5 = _blobs(62, 70, 6, 4, spread=1.2)
_sl5 = _rng(63).integers(0, 4, 70)
SILHOUETTE = held_back(
    SILHOUETTE,
    Case("four blobs of directions, labelled by blob", _silhouette_case(*_labelled_blobs(60, n=50, d=6, k=4))),
    Case("random labels", _silhouette_case(_sx5, _sl5)),
    Case("two clusters of one point", _silhouette_case(_sx5[:9], np.array([0, 0, 0, 0, 1, 1, 1, 2, 3]))),
    Case("string labels, vectors of very different lengths", _silhouette_case(
        _sx5[:15] * np.repeat([0.05, 1.0, 30.0], 5)[:, None], ["x"] * 6 + ["y"] * 5 + ["z"] * 4)))

EXERCISES = (KMEANS, CTFIDF, SKLEARN_KMEANS, SILHOUETTE)
