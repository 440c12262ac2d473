"""Unit tests of course_utils.cluster, cluster_labels and cluster_plots on seeded synthetic data."""
import os

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from course_utils import cluster, cluster_labels, cluster_plots  # noqa: E402


def blobs(n_per=30, centres=((5, 0, 0), (0, 5, 0), (0, 0, 5)), sd=0.3, seed=0):
    """Well-separated Gaussian blobs in 3-D (different directions, so cosine separates them too)."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(c, sd, (n_per, len(c))) for c in centres]).astype(np.float32)
    return x, np.repeat(np.arange(len(centres)), n_per)


X, Y = blobs()


# ------------------------------------------------------------------ k-means
@pytest.mark.parametrize("backend", ["sklearn", "faiss"])
def test_kmeans_recovers_blobs(backend):
    res = cluster.kmeans(X, 3, seed=0, backend=backend)
    assert res.labels.dtype == np.int64 and res.labels.shape == (90,)
    assert res.centroids.shape == (3, 3) and res.centroids.dtype == np.float32
    assert cluster.evaluate_clustering(Y, res.labels)["ARI"] == pytest.approx(1.0)
    manual = ((X - res.centroids[res.labels]) ** 2).sum()
    assert res.inertia == pytest.approx(manual, rel=1e-4)


@pytest.mark.parametrize("backend", ["sklearn", "faiss"])
def test_kmeans_is_seeded(backend):
    x = np.random.default_rng(1).normal(size=(200, 8)).astype(np.float32)  # no structure: init matters
    a = cluster.kmeans(x, 5, seed=3, backend=backend)
    b = cluster.kmeans(x, 5, seed=3, backend=backend)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_kmeans_k_equals_n_and_inputs_untouched():
    x = X[:4].copy()
    res = cluster.kmeans(x, 4)
    assert sorted(res.labels.tolist()) == [0, 1, 2, 3] and res.inertia == pytest.approx(0, abs=1e-6)
    np.testing.assert_array_equal(x, X[:4])


@pytest.mark.parametrize("backend", ["sklearn", "faiss"])
def test_kmeans_bad_input(backend):
    with pytest.raises(ValueError, match=r"k must be between 1 and the number of points \(90\)"):
        cluster.kmeans(X, 91, backend=backend)
    bad = X.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf in 1 row\(s\), first rows \[5\]"):
        cluster.kmeans(bad, 3, backend=backend)
    with pytest.raises(TypeError, match="k must be an integer"):
        cluster.kmeans(X, 2.5, backend=backend)
    with pytest.raises(ValueError, match=r"shape \(n, d\)"):
        cluster.kmeans(X[0], 1, backend=backend)


def test_kmeans_unknown_backend():
    with pytest.raises(ValueError, match="backend must be"):
        cluster.kmeans(X, 3, backend="torch")


def test_choose_k_picks_three_blobs():
    table = cluster.choose_k(X, [2, 3, 4, 5])
    assert list(table.columns) == ["k", "inertia", "silhouette"]
    assert table.set_index("k").silhouette.idxmax() == 3
    assert table.inertia.is_monotonic_decreasing
    with pytest.raises(ValueError, match="k >= 2"):
        cluster.choose_k(X, [1, 2])
    with pytest.raises(ValueError, match="between 1 and the number of points"):
        cluster.choose_k(X[:5], [5])


# ------------------------------------------------------------------ hierarchical, density
def test_agglomerative_matches_sklearn_ward():
    from sklearn.cluster import AgglomerativeClustering

    x = np.random.default_rng(2).normal(size=(60, 5)).astype(np.float32)
    ours = cluster.agglomerative(x, 4, method="ward")
    ref = AgglomerativeClustering(n_clusters=4, linkage="ward").fit_predict(x)
    assert cluster.evaluate_clustering(ref, ours)["ARI"] == pytest.approx(1.0)
    assert sorted(set(ours.tolist())) == [0, 1, 2, 3]


def test_linkage_matrix_and_methods():
    z = cluster.linkage_matrix(X, "average")
    assert z.shape == (89, 4) and (np.diff(z[:, 2]) >= -1e-9).all()  # merge heights never fall
    assert cluster.evaluate_clustering(Y, cluster.agglomerative(X, 3, "average"))["ARI"] == 1.0
    with pytest.raises(ValueError, match="method must be"):
        cluster.linkage_matrix(X, "centroid")
    with pytest.raises(ValueError, match="at least 2 points"):
        cluster.agglomerative(X[:1], 1)


def test_hdbscan_finds_blobs_and_noise():
    rng = np.random.default_rng(0)
    far = rng.uniform(-30, 30, size=(5, 3)).astype(np.float32)  # isolated points: noise
    labels = cluster.hdbscan(np.vstack([X, far]), min_cluster_size=10)
    assert len(set(labels.tolist()) - {-1}) == 3
    assert (labels[-5:] == -1).all()
    assert cluster.evaluate_clustering(Y, labels[:90])["ARI"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="min_cluster_size"):
        cluster.hdbscan(X, min_cluster_size=1)


def test_centroids_skip_noise():
    ids, c = cluster.centroids(X, np.where(Y == 2, -1, Y))
    assert ids.tolist() == [0, 1]
    np.testing.assert_allclose(c[1], X[Y == 1].mean(axis=0), atol=1e-6)
    with pytest.raises(ValueError, match="one label per point"):
        cluster.centroids(X, Y[:-1])


# ------------------------------------------------------------------ measures
def test_evaluate_clustering_hand_checked():
    perfect = cluster.evaluate_clustering(["a", "a", "b", "b"], [7, 7, 3, 3])
    assert perfect["ARI"] == perfect["NMI"] == perfect["V-measure"] == 1.0
    assert perfect["n_clusters"] == 2 and perfect["noise"] == 0
    # everything in one cluster: complete (1) but not homogeneous (0) -> V = 0, ARI = 0
    lumped = cluster.evaluate_clustering(["a", "a", "b", "b"], [0, 0, 0, 0])
    assert lumped["completeness"] == 1.0 and lumped["homogeneity"] == 0 and lumped["ARI"] == 0
    assert cluster.evaluate_clustering([0, 0, 1, 1], [0, -1, 1, 1])["noise"] == 0.25


def test_evaluate_clustering_length_mismatch():
    with pytest.raises(ValueError, match="labels_true has 3 entries .* but there are 4 points"):
        cluster.evaluate_clustering([0, 1, 1], [0, 1, 1, 0])


def test_silhouette_against_manual_formula():
    x = np.random.default_rng(4).normal(size=(12, 3))
    labels = np.array([0] * 5 + [1] * 4 + [2] * 3)
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    s = []
    for i in range(len(x)):
        own = labels == labels[i]
        a = d[i, own].sum() / (own.sum() - 1)
        b = min(d[i, labels == c].mean() for c in set(labels) - {labels[i]})
        s.append((b - a) / max(a, b))
    assert cluster.silhouette(x, labels, metric="euclidean") == pytest.approx(np.mean(s), rel=1e-5)


def test_silhouette_errors_and_noise():
    with pytest.raises(ValueError, match="2 <= clusters"):
        cluster.silhouette(X, np.zeros(90, int))
    with pytest.raises(ValueError, match="one label per point"):
        cluster.silhouette(X, Y[:10])
    noisy = np.where(np.arange(90) % 10 == 0, -1, Y)
    assert cluster.silhouette(X, noisy) == pytest.approx(cluster.silhouette(X[noisy != -1], Y[noisy != -1]))


# ------------------------------------------------------------------ keywords (c-TF-IDF)
def test_ctfidf_hand_computed():
    counts = np.array([[2, 0], [1, 1]])
    # tf = [[1, 0], [.5, .5]]; f = [3, 1]; A = 2  ->  W = tf * log(1 + A / f)
    expected = np.array([[np.log(1 + 2 / 3), 0], [0.5 * np.log(1 + 2 / 3), 0.5 * np.log(3)]])
    np.testing.assert_allclose(cluster_labels.ctfidf(counts), expected)
    with pytest.raises(ValueError, match="non-negative"):
        cluster_labels.ctfidf(np.array([[-1, 2]]))


def test_cluster_keywords():
    texts = ["the goal in the match", "a late goal wins the match", "match report: goal!",
             "parliament votes on the budget", "budget vote in parliament", "the budget passes",
             "noise document about cooking"]
    labels = [0, 0, 0, 5, 5, 5, -1]
    kw = cluster_labels.cluster_keywords(texts, labels, top_n=2)
    assert set(kw) == {0, 5}                    # noise gets no keywords
    assert set(kw[0]) == {"goal", "match"} and kw[5][0] == "budget"
    with pytest.raises(ValueError, match="7 texts but 6 labels"):
        cluster_labels.cluster_keywords(texts, labels[:-1])
    with pytest.raises(ValueError, match="every label is noise"):
        cluster_labels.cluster_keywords(texts[:2], [-1, -1], min_df=1)


# ------------------------------------------------------------------ near-duplicates
def test_plant_duplicates():
    texts = [f"story {i} " + " ".join(f"w{i}_{j}" for j in range(40)) for i in range(10)]
    original = list(texts)
    new, pairs = cluster_labels.plant_duplicates(texts, n=3, drop=0.25, seed=1)
    assert texts == original and len(new) == 13 and len(pairs) == 3
    for i, j in pairs:
        assert j >= 10 and set(new[j].split()) <= set(new[i].split())
        assert 0.5 < len(new[j].split()) / len(new[i].split()) < 1
    assert cluster_labels.plant_duplicates(texts, n=3, drop=0.25, seed=1) == (new, pairs)
    with pytest.raises(ValueError, match="n must be between 1"):
        cluster_labels.plant_duplicates(texts, n=11)


def test_pair_precision_recall_and_sweep():
    res = cluster_labels.pair_precision_recall([(0, 1, 0.99), (3, 2)], [(1, 0), (4, 5)])
    assert res == {"found": 2, "known": 2, "correct": 1, "precision": 0.5, "recall": 0.5}
    assert np.isnan(cluster_labels.pair_precision_recall([], [(0, 1)])["precision"])
    v = np.eye(4, dtype=np.float32)
    v[1] = [0.999, 0.0447, 0, 0]   # cos(0, 1) = 0.999
    v[3] = [0, 0, 0.96, 0.28]      # cos(2, 3) = 0.96, not a known duplicate
    table = cluster_labels.duplicate_sweep(v, [(0, 1)], [0.95, 0.99])
    assert table.precision.tolist() == [0.5, 1.0] and table.recall.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="cosines in"):
        cluster_labels.duplicate_sweep(v, [(0, 1)], [2.0])


# ------------------------------------------------------------------ plots and projection
def test_plots_draw_with_titles_and_legends():
    import matplotlib.pyplot as plt

    axes = cluster_plots.plot_choose_k(cluster.choose_k(X, [2, 3, 4]), best_k=3)
    assert axes[0].get_xlabel() and axes[1].get_legend() is not None
    xy = X[:, :2]
    axes = cluster_plots.plot_side_by_side(xy, Y, np.where(Y == 0, -1, Y))
    assert [t.get_text() for t in axes[1].get_legend().get_texts()][-1] == "noise"
    ids, c = cluster.centroids(X, Y)
    ax = cluster_plots.plot_centroid_dendrogram(c, ["a", "b", "c"])
    assert sorted(t.get_text() for t in ax.get_yticklabels()) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="2 names for 3 centroids"):
        cluster_plots.plot_centroid_dendrogram(c, ["a", "b"])
    with pytest.raises(ValueError, match="labels_left has 5 entries for 90 points"):
        cluster_plots.plot_side_by_side(xy, Y[:5], Y)
    lo, hi = cluster_plots.plot_choose_k(cluster.choose_k(X, [2, 3]))[1].get_ylim()
    assert lo <= 0 and hi >= 0.25                                 # the silhouette axis starts at 0
    plt.close("all")


def test_side_by_side_colours_can_mean_the_same_in_both_panels():
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt

    topic = np.array(["a", "b", "c"])[Y]
    colours = {"a": "tab:red", "b": "tab:blue", "c": "tab:green"}
    left = {c: colours[topic[Y == c][0]] for c in range(3)}       # each cluster in its topic's colour
    axes = cluster_plots.plot_side_by_side(X[:, :2], Y, topic, colors=(left, colours),
                                           markers=({0: "s"}, None))
    for ax, names in ((axes[0], ["0", "1", "2"]), (axes[1], ["a", "b", "c"])):
        got = {t.get_label(): mcolors.to_hex(t.get_facecolor()[0]) for t in ax.collections}
        assert sorted(got) == names
    assert mcolors.to_hex(axes[0].collections[0].get_facecolor()[0]) == mcolors.to_hex("tab:red")
    plt.close("all")


def test_umap_project_validates_before_compiling():
    with pytest.raises(ValueError, match="n_neighbors"):
        cluster_plots.umap_project(X[:10], n_neighbors=15)
    with pytest.raises(ValueError, match="NaN"):
        cluster_plots.umap_project(np.full((20, 3), np.nan))


@pytest.mark.skipif(os.environ.get("COURSE_SLOW_TESTS") != "1",
                    reason="UMAP compiles with numba on first use (~1.5 min); set COURSE_SLOW_TESTS=1")
def test_umap_project_seeded_and_keeps_blobs_apart():
    a = cluster_plots.umap_project(X, seed=0, n_neighbors=10)
    b = cluster_plots.umap_project(X, seed=0, n_neighbors=10)
    assert a.shape == (90, 2) and a.dtype == np.float32
    np.testing.assert_allclose(a, b)
    assert cluster.kmeans(a, 3).labels.tolist() and cluster.evaluate_clustering(
        Y, cluster.kmeans(a, 3).labels)["ARI"] == pytest.approx(1.0)
