"""Clustering embeddings: k-means (scikit-learn and FAISS), choosing k, agglomerative, HDBSCAN, and
measuring a clustering with and without true labels.

Every function takes `vectors`, a float32 array of shape (n, d) (L2-normalised embeddings in the
course, though nothing here requires it), and returns plain arrays: `labels` is int64 of shape (n,)
with clusters numbered 0..k-1 (HDBSCAN marks noise with -1). Randomness is seeded (`seed`).
Keywords for clusters and near-duplicate checks are in `course_utils.cluster.labels`; plots in
`course_utils.cluster.plots`.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = ["check_vectors", "KMeansResult", "kmeans", "choose_k", "linkage_matrix", "agglomerative", "hdbscan",
           "centroids", "evaluate_clustering", "silhouette"]


class KMeansResult(NamedTuple):
    """labels int64 (n,), centroids float32 (k, d), inertia = sum of squared distances to them."""

    labels: np.ndarray
    centroids: np.ndarray
    inertia: float


# ------------------------------------------------------------------ checks (clear errors)
def check_vectors(vectors, min_points: int = 2) -> np.ndarray:
    arr = np.asarray(vectors)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"vectors must be a numeric array of shape (n, d), got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"vectors must have shape (n, d), got shape {arr.shape}")
    if len(arr) < min_points:
        raise ValueError(f"clustering needs at least {min_points} points, got {len(arr)}: "
                         "a single point is its own cluster and there is nothing to group")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise ValueError(f"vectors have NaN or inf in {int(bad.sum())} row(s), first rows "
                         f"{np.flatnonzero(bad)[:5].tolist()}; drop or re-encode them first")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _check_k(k, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an integer, got {k!r}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of points ({n}), got k={k}")
    return int(k)


def _check_labels(labels, n: int, name: str = "labels") -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or len(arr) != n:
        raise ValueError(f"{name} has {arr.size if arr.ndim else 1} entries (shape {arr.shape}) "
                         f"but there are {n} points: one label per point, in the same order")
    return arr


# ------------------------------------------------------------------ k-means
def kmeans(vectors, k: int, seed: int = 0, backend: str = "sklearn", n_init: int = 5,
           max_iter: int = 100) -> KMeansResult:
    """Lloyd's k-means: minimise sum_i |x_i - c_label(i)|^2 (MacQueen 1967; k-means++ seeding,
    Arthur & Vassilvitskii 2007), best of `n_init` seeded restarts.

    backend "sklearn" is `sklearn.cluster.KMeans` (greedy k-means++ init); "faiss" is
    `faiss.Kmeans` with k-means++ init (same objective, float32 BLAS, fast on many points; its
    default random init often merges two true clusters even with 10 restarts). A single run of
    either can get stuck in a poor local minimum: keep n_init > 1.

    >>> x = np.array([[0, 0], [0, 1], [10, 10], [10, 11]], dtype=np.float32)
    >>> r = kmeans(x, 2)
    >>> r.labels.tolist() in ([0, 0, 1, 1], [1, 1, 0, 0]), round(r.inertia, 3)
    (True, 1.0)
    """
    x = check_vectors(vectors, min_points=1)
    k = _check_k(k, len(x))
    if backend == "sklearn":
        return _kmeans_sklearn(x, k, seed, n_init, max_iter)
    if backend == "faiss":
        return _kmeans_faiss(x, k, seed, n_init, max_iter)
    raise ValueError(f"backend must be 'sklearn' or 'faiss', got {backend!r}")


def _kmeans_sklearn(x, k, seed, n_init, max_iter) -> KMeansResult:
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=k, n_init=n_init, max_iter=max_iter, random_state=seed).fit(x)
    return KMeansResult(model.labels_.astype(np.int64), model.cluster_centers_.astype(np.float32),
                        float(model.inertia_))


def _kmeans_faiss(x, k, seed, n_init, max_iter) -> KMeansResult:
    import faiss

    km = faiss.Kmeans(x.shape[1], k, niter=max_iter, nredo=n_init, seed=seed, verbose=False,
                      min_points_per_centroid=1, max_points_per_centroid=len(x),  # no subsampling
                      init_method=faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS)
    km.train(x)
    dist, assign = km.index.search(x, 1)
    return KMeansResult(assign[:, 0].astype(np.int64), km.centroids.astype(np.float32),
                        float(dist.sum()))


def choose_k(vectors, ks, seed: int = 0, metric: str = "cosine", n_init: int = 3) -> pd.DataFrame:
    """k-means for each k in `ks`: inertia (for the elbow plot) and silhouette (higher is better).

    Returns a DataFrame with columns k, inertia, silhouette, one row per k.

    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(c, 0.1, (20, 2)) for c in ([5, 0], [0, 5], [-5, -5])])
    >>> choose_k(x, [2, 3, 4]).set_index("k").silhouette.idxmax()
    3
    """
    x = check_vectors(vectors)
    ks = [_check_k(k, len(x) - 1) for k in ks]  # silhouette needs k <= n - 1
    if not ks or min(ks) < 2:
        raise ValueError(f"ks must be a non-empty list of k >= 2 (silhouette is undefined for k=1), got {ks}")
    rows = []
    for k in ks:
        result = _kmeans_sklearn(x, k, seed, n_init, 100)
        rows.append({"k": k, "inertia": result.inertia,
                     "silhouette": silhouette(x, result.labels, metric=metric)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ hierarchical and density
def linkage_matrix(vectors, method: str = "ward") -> np.ndarray:
    """scipy's agglomerative merge tree, (n - 1, 4), for `scipy.cluster.hierarchy.dendrogram`.

    method: "ward" (merge the pair that least increases within-cluster variance; Euclidean),
    "average", "complete" or "single" (with cosine distance).

    >>> linkage_matrix(np.array([[0.0], [1.0], [5.0]])).shape
    (2, 4)
    """
    from scipy.cluster.hierarchy import linkage

    x = check_vectors(vectors)
    if method not in ("ward", "average", "complete", "single"):
        raise ValueError(f"method must be ward, average, complete or single, got {method!r}")
    return linkage(x.astype(np.float64), method=method,
                   metric="euclidean" if method == "ward" else "cosine")


def agglomerative(vectors, k: int, method: str = "ward") -> np.ndarray:
    """Labels (n,) from cutting the agglomerative tree into (at most) k clusters.

    >>> agglomerative(np.array([[0.0], [0.1], [5.0], [5.2]]), 2).tolist()
    [0, 0, 1, 1]
    """
    from scipy.cluster.hierarchy import fcluster

    x = check_vectors(vectors)
    k = _check_k(k, len(x))
    tree = fcluster(linkage_matrix(x, method), t=k, criterion="maxclust")
    _, labels = np.unique(tree, return_inverse=True)  # 1-based tree ids -> 0..k-1
    return labels.astype(np.int64)


def hdbscan(vectors, min_cluster_size: int = 10, min_samples: int | None = None) -> np.ndarray:
    """HDBSCAN (Campello, Moulavi & Sander 2013) via `sklearn.cluster.HDBSCAN`: finds the number
    of clusters itself and labels points in no dense region as noise (-1). Deterministic.

    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0, 0.1, (30, 2)), rng.normal(5, 0.1, (30, 2))])
    >>> len(set(hdbscan(x, min_cluster_size=5)) - {-1})
    2
    """
    from sklearn.cluster import HDBSCAN

    x = check_vectors(vectors)
    if not 2 <= min_cluster_size <= len(x):
        raise ValueError(f"min_cluster_size must be in [2, {len(x)}], got {min_cluster_size}")
    model = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, copy=True)
    return model.fit_predict(x).astype(np.int64)


def centroids(vectors, labels) -> tuple[np.ndarray, np.ndarray]:
    """(cluster ids, mean vector of each cluster) for every label except noise (-1).

    >>> ids, c = centroids(np.array([[0.0, 0], [2, 0], [0, 4]]), [0, 0, 1])
    >>> ids.tolist(), c.tolist()
    ([0, 1], [[1.0, 0.0], [0.0, 4.0]])
    """
    x = check_vectors(vectors, min_points=1)
    labels = _check_labels(labels, len(x))
    ids = np.array(sorted(set(labels.tolist()) - {-1}))
    return ids, np.stack([x[labels == c].mean(axis=0) for c in ids]).astype(np.float32)


# ------------------------------------------------------------------ measuring a clustering
def evaluate_clustering(labels_true, labels_pred) -> dict:
    """Agreement of a clustering with true labels (1 = identical partitions; ~0 = chance):

    ARI (adjusted Rand index, Hubert & Arabie 1985), NMI (normalised mutual information,
    arithmetic mean), V-measure = harmonic mean of homogeneity and completeness (Rosenberg &
    Hirschberg 2007); plus n_clusters and noise (share of points labelled -1, counted as one
    cluster by the scores).

    >>> evaluate_clustering(["a", "a", "b", "b"], [1, 1, 0, 0])["ARI"]
    1.0
    """
    from sklearn import metrics

    pred = np.asarray(labels_pred)
    true = _check_labels(labels_true, len(pred), "labels_true")
    pred = _check_labels(pred, len(true), "labels_pred")
    h, c, v = metrics.homogeneity_completeness_v_measure(true, pred)
    return {"ARI": float(metrics.adjusted_rand_score(true, pred)),
            "NMI": float(metrics.normalized_mutual_info_score(true, pred)),
            "V-measure": float(v), "homogeneity": float(h), "completeness": float(c),
            "n_clusters": len(set(pred.tolist()) - {-1}),
            "noise": float(np.mean(pred == -1)) if np.issubdtype(pred.dtype, np.number) else 0.0}


def silhouette(vectors, labels, metric: str = "cosine", sample_size: int | None = None,
               seed: int = 0) -> float:
    """Mean silhouette (b - a) / max(a, b) (Rousseeuw 1987): a = mean distance to the own cluster,
    b = to the nearest other one. In [-1, 1], needs no true labels; noise (-1) is left out.

    >>> x = np.array([[0.0, 0], [0, 1], [5, 0], [5, 1]])        # a = 1, b = (5 + 26 ** 0.5) / 2
    >>> round(silhouette(x, [0, 0, 1, 1], metric="euclidean"), 3)
    0.802
    """
    from sklearn.metrics import silhouette_score

    x = check_vectors(vectors)
    labels = _check_labels(labels, len(x))
    keep = labels != -1
    n_clusters = len(set(labels[keep].tolist()))
    if not 2 <= n_clusters <= keep.sum() - 1:
        raise ValueError(f"silhouette needs 2 <= clusters <= points - 1, got {n_clusters} "
                         f"cluster(s) for {int(keep.sum())} non-noise points")
    return float(silhouette_score(x[keep], labels[keep], metric=metric,
                                  sample_size=sample_size, random_state=seed))
