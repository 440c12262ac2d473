"""FAISS k-means against scikit-learn's on well-separated blobs: the same partition (ARI 1), the
same objective (inertia within 1%), and centroids that match after pairing them up."""
import faiss  # noqa: F401  (pinned: fail, never skip)
import numpy as np
import pytest

from course_utils import cluster  # noqa: E402


def separated_blobs(k=8, n_per=150, d=32, sd=0.05, seed=0):
    """k unit-direction centres in d dimensions (random, nearly orthogonal), tight noise, normalised
    rows: the geometry of embedding clusters, but with a known answer."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.concatenate([c + rng.normal(0, sd, (n_per, d)) for c in centres])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.repeat(np.arange(k), n_per)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_faiss_kmeans_agrees_with_sklearn(seed):
    """With 10 restarts each, both find the planted partition (one run of FAISS can merge two
    blobs and split another: seed 0 with n_init=1 reaches inertia 209 vs 86)."""
    x, truth = separated_blobs(seed=seed)
    ref = cluster.kmeans(x, 8, seed=seed, backend="sklearn", n_init=10)
    fast = cluster.kmeans(x, 8, seed=seed, backend="faiss", n_init=10)
    assert cluster.evaluate_clustering(truth, ref.labels)["ARI"] == pytest.approx(1.0)
    assert cluster.evaluate_clustering(ref.labels, fast.labels)["ARI"] == pytest.approx(1.0)
    assert fast.inertia == pytest.approx(ref.inertia, rel=0.01)
    # pair each FAISS centroid with the sklearn centroid of the same points
    for c in range(8):
        members = fast.labels == c
        other = np.bincount(ref.labels[members]).argmax()
        np.testing.assert_allclose(fast.centroids[c], ref.centroids[other], atol=1e-4)


def test_one_faiss_run_can_get_stuck_and_restarts_fix_it():
    x, _ = separated_blobs(seed=0)
    one = cluster.kmeans(x, 8, seed=0, backend="faiss", n_init=1)
    ten = cluster.kmeans(x, 8, seed=0, backend="faiss", n_init=10)
    assert ten.inertia < 0.7 * one.inertia


def test_faiss_inertia_is_sum_of_squared_distances():
    x, _ = separated_blobs(k=4, n_per=50, seed=3)
    res = cluster.kmeans(x, 4, backend="faiss")
    manual = float(((x - res.centroids[res.labels]) ** 2).sum())
    assert res.inertia == pytest.approx(manual, rel=1e-4)
