"""Chapter 05's exercise checks: typical mistakes are named, other correct versions pass."""
import functools
from pathlib import Path

import nbformat
import numpy as np
import pytest

from course_utils.grading import cases, check

ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def _solution():
    """The functions defined in solutions/05_clustering_exercises.ipynb (cells starting with `def `)."""
    nb = nbformat.read(ROOT / "solutions" / "05_clustering_exercises.ipynb", as_version=4)
    namespace = {}
    exec("import math\nimport numpy as np\n" + "\n".join(c.source for c in nb.cells if c.source.startswith("def ")), namespace)
    return namespace


def _kmeans(stale=False, dot=False, nan_empty=False):
    def fn(vectors, init, n_iter):
        x, c = np.asarray(vectors, float), np.array(init, float)
        assign = (lambda c: (x @ c.T).argmax(1)) if dot else (lambda c: ((x[:, None] - c[None]) ** 2).sum(-1).argmin(1))
        labels = assign(c)
        for _ in range(n_iter):
            labels = assign(c)
            for j in range(len(c)):
                if nan_empty or (labels == j).any():
                    with np.errstate(all="ignore"):
                        c[j] = x[labels == j].mean(axis=0) if (labels == j).any() else np.full(x.shape[1], np.nan)
        return (labels if stale else assign(c)), c
    return fn


def _ctfidf(raw_tf=False, total=False, no_one=False):
    def fn(counts):
        counts = np.asarray(counts, float)
        per = counts.sum(1, keepdims=True)
        tf = counts if raw_tf else counts / np.where(per == 0, 1, per)
        f = counts.sum(0)
        a = per.sum() if total else per.mean()
        ratio = a / np.where(f == 0, 1, f)
        return tf * np.log(ratio if no_one else 1 + ratio)
    return fn


def _kmeans_scored(score):
    """cluster_and_score variants that report another number than the ARI of the labels."""
    def fn(vectors, labels_true, k):
        from sklearn.cluster import KMeans
        from sklearn.metrics import adjusted_rand_score, rand_score
        labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(np.asarray(vectors))
        value = {"rand": lambda: rand_score(labels_true, labels), "accuracy": lambda: np.mean(labels == labels_true),
                 "itself": lambda: adjusted_rand_score(labels, labels)}[score]()
        return labels, float(value)
    return fn


def _one_bad_start(vectors, labels_true, k):
    """A clustering far from what k-means reaches: the ARI is honest, the clusters are poor."""
    from sklearn.metrics import adjusted_rand_score
    labels = np.arange(len(vectors)) % k
    return labels, float(adjusted_rand_score(labels_true, labels))


_MISTAKES = [
    ("05.kmeans", _kmeans(stale=True), "BEFORE the centroids moved"),
    ("05.kmeans", _kmeans(dot=True), "largest dot product"),
    ("05.kmeans", _kmeans(nan_empty=True), "mean of nothing"),
    ("05.ctfidf", _ctfidf(raw_tf=True), "not the raw count"),
    ("05.ctfidf", _ctfidf(total=True), "AVERAGE number of words"),
    ("05.ctfidf", _ctfidf(no_one=True), "the 1 +"),
    ("05.silhouette", lambda x, l: _silhouette_variant(x, l, self_in_a=True), "INCLUDING the point itself"),
    ("05.silhouette", lambda x, l: _silhouette_variant(x, l, b_all=True), "NEAREST other cluster"),
    ("05.silhouette", lambda x, l: _silhouette_variant(x, l, euclid=True), "Euclidean distance"),
    ("05.kmeans_ari", _kmeans_scored("rand"), "unadjusted Rand index"),
    ("05.kmeans_ari", _kmeans_scored("accuracy"), "accuracy"),
    ("05.kmeans_ari", _kmeans_scored("itself"), "with itself"),
    ("05.kmeans_ari", _one_bad_start, "well below what k-means"),
]


def _silhouette_variant(x, labels, self_in_a=False, b_all=False, euclid=False):
    from scipy.spatial.distance import cdist
    x, labels = np.asarray(x, float), np.asarray(labels)
    d = cdist(x, x, "euclidean" if euclid else "cosine")
    s = []
    for i in range(len(x)):
        own = labels == labels[i]
        if own.sum() == 1:
            s.append(0.0)
            continue
        a = d[i, own].sum() / (own.sum() - (0 if self_in_a else 1))
        b = d[i, ~own].mean() if b_all else min(d[i, labels == c].mean() for c in set(labels[~own].tolist()))
        s.append((b - a) / max(a, b))
    return float(np.mean(s))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("ex, fn, words", _MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(_MISTAKES)])
def test_typical_mistakes_fail_with_a_message_that_names_them(ex, fn, words, capsys):
    result = check(ex, fn, time_limit=120)
    assert result.status == "failed" and words in result.message, result.message
    assert words in capsys.readouterr().out.replace("\n    ", " ")


def _kmeans_early_stop(vectors, init, n_iter):
    """Another correct version: stops when the assignment no longer changes; float32 arithmetic."""
    x, c = np.asarray(vectors, np.float32), np.array(init, np.float32)
    labels = None
    for _ in range(n_iter):
        new = np.linalg.norm(x[:, None] - c[None], axis=2).argmin(1)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        for j in np.unique(labels):
            c[j] = x[labels == j].mean(0)
    return np.linalg.norm(x[:, None] - c[None], axis=2).argmin(1), c


@pytest.mark.parametrize("ex, fn", [("05.kmeans", _kmeans_early_stop),
                                    ("05.ctfidf", lambda c: _ctfidf()(np.asarray(c).astype(np.float32))),
                                    ("05.silhouette", _silhouette_variant)],
                         ids=["kmeans-early-stop", "ctfidf-float32", "silhouette-scipy-cdist"])
def test_other_correct_implementations_pass(ex, fn, capsys):
    assert check(ex, fn), capsys.readouterr().out


@pytest.mark.parametrize("ex", ["05.kmeans", "05.ctfidf", "05.kmeans_ari", "05.silhouette"])
def test_the_solution_passes(ex):
    assert check(ex, _solution()[cases.get(ex).function])


def test_kmeans_solution_equals_scikit_learn_from_the_same_start():
    from sklearn.cluster import KMeans
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(c, 0.3, size=(40, 2)) for c in ((0, 0), (3, 0), (0, 3))])
    init = x[[0, 40, 80]] + 0.5
    ref = KMeans(3, init=init, n_init=1, max_iter=20, tol=0, algorithm="lloyd").fit(x)
    labels, cents = _solution()["kmeans"](x, init, 20)
    assert np.array_equal(labels, ref.labels_) and np.allclose(cents, ref.cluster_centers_)



