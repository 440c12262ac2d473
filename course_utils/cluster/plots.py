"""Looking at clusters: a seeded UMAP projection (to 2-D for maps, to a few dimensions for
HDBSCAN) and the chapter's plots (choosing k, scatters coloured by two labellings side by side,
a dendrogram of cluster centroids).

Each plot function returns the matplotlib Axes (or array of Axes) it drew on.
UMAP (McInnes, Healy & Melville 2018, arXiv:1802.03426) is compiled by numba on first use: the
first call in a fresh environment takes a minute or more; later calls take about a second.
"""

from __future__ import annotations

import warnings

import numpy as np

from course_utils.cluster.algorithms import check_vectors

__all__ = ["umap_project", "plot_choose_k", "plot_side_by_side", "plot_centroid_dendrogram"]


def umap_project(vectors, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1,
                 metric: str = "cosine", n_components: int = 2) -> np.ndarray:
    """UMAP projection of vectors (n, d) to float32 (n, n_components), reproducible for a seed.

    Distances in the picture are only roughly faithful: nearby points were neighbours in the
    original space, but gaps between far-apart groups carry little meaning.

    >>> xy = umap_project(vectors, seed=0)             # doctest: +SKIP
    >>> xy.shape                                       # doctest: +SKIP
    (643, 2)
    """
    x = check_vectors(vectors)
    if not 2 <= n_neighbors < len(x):
        raise ValueError(f"n_neighbors must be in [2, {len(x) - 1}] for {len(x)} points, got {n_neighbors}")
    import umap

    reducer = umap.UMAP(n_components=n_components, n_neighbors=n_neighbors, min_dist=min_dist,
                        metric=metric, random_state=seed)
    with warnings.catch_warnings():  # "n_jobs overridden to 1 by setting random_state": intended
        warnings.filterwarnings("ignore", message=".*n_jobs.*", category=UserWarning)
        return reducer.fit_transform(x).astype(np.float32)


def plot_choose_k(table, axes=None, best_k: int | None = None):
    """Two panels from `cluster.choose_k`'s table: inertia (elbow) and silhouette against k."""
    import matplotlib.pyplot as plt

    if axes is None:
        axes = plt.subplots(1, 2, figsize=(11, 3.8))[1]
    axes[0].plot(table["k"], table["inertia"], marker="o")
    axes[0].set(xlabel="number of clusters k", ylabel="inertia (sum of squared distances)",
                title="Elbow: inertia always falls; look for the bend")
    axes[1].plot(table["k"], table["silhouette"], marker="o", color="tab:green")
    sil = np.asarray(table["silhouette"], dtype=float)
    axes[1].set(xlabel="number of clusters k", ylabel="mean silhouette (cosine; range -1 to 1)",
                title="Silhouette: higher = better separated",
                ylim=(min(0.0, 1.2 * sil.min()), max(0.25, 1.2 * sil.max())))  # from 0: no zoom on noise
    axes[1].axhline(0, color="grey", lw=0.8)
    if best_k is not None:
        for ax in axes:
            ax.axvline(best_k, color="crimson", ls="--", lw=1, label=f"highest silhouette (k = {best_k})")
            ax.legend()
    return axes


def _scatter(ax, xy, labels, title, legend_title, cmap_name, max_legend=12, colors=None,
             markers=None):
    import matplotlib.pyplot as plt

    labels = np.asarray(labels)
    names = sorted(set(labels.tolist()), key=lambda v: (str(v) == "-1", str(v)))
    cmap = plt.get_cmap("tab20" if len(names) > plt.get_cmap(cmap_name).N else cmap_name)
    for i, name in enumerate(names):
        m = labels == name
        noise = str(name) == "-1"
        colour = (colors or {}).get(name, "lightgrey" if noise else cmap(i % cmap.N))
        ax.scatter(xy[m, 0], xy[m, 1], s=7 if noise else 12, alpha=0.35 if noise else 0.75,
                   color=colour, marker=(markers or {}).get(name, "o"),
                   label="noise" if noise else str(name))
    ax.set(title=title, xlabel="UMAP 1", ylabel="UMAP 2", xticks=[], yticks=[])
    if len(names) <= max_legend:
        ax.legend(title=legend_title, fontsize=8, title_fontsize=9, markerscale=2,
                  loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)


def plot_side_by_side(xy, labels_left, labels_right, titles=("clusters", "true labels"),
                      legend_titles=("cluster", "label"), cmaps=("tab10", "Dark2"), axes=None,
                      colors=(None, None), markers=(None, None)):
    """The same 2-D points twice, coloured by two labellings (e.g. clusters vs true topics).

    By default two different palettes, so nobody reads "same colour" as "same group" across the
    panels. colors: optional ({label: colour} left, {label: colour} right) to make one colour mean
    one thing in both panels (e.g. each cluster in the colour of its main topic); markers:
    optional {label: marker} per panel to tell apart labels that share a colour.
    """
    import matplotlib.pyplot as plt

    xy = np.asarray(xy)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"xy must have shape (n, 2), got {xy.shape}")
    for name, lab in (("labels_left", labels_left), ("labels_right", labels_right)):
        if len(lab) != len(xy):
            raise ValueError(f"{name} has {len(lab)} entries for {len(xy)} points")
    if axes is None:
        axes = plt.subplots(1, 2, figsize=(15, 6))[1]
    _scatter(axes[0], xy, labels_left, titles[0], legend_titles[0], cmaps[0], colors=colors[0],
             markers=markers[0])
    _scatter(axes[1], xy, labels_right, titles[1], legend_titles[1], cmaps[1], colors=colors[1],
             markers=markers[1])
    return axes


def plot_centroid_dendrogram(centroid_vectors, names, ax=None, title="Clusters merged by similarity"):
    """Dendrogram (average linkage, cosine distance) of cluster centroids (k, d), leaves named."""
    import matplotlib.pyplot as plt
    from scipy.cluster.hierarchy import dendrogram, linkage

    c = check_vectors(centroid_vectors)
    if len(names) != len(c):
        raise ValueError(f"{len(names)} names for {len(c)} centroids")
    if ax is None:
        ax = plt.subplots(figsize=(9, 0.45 * len(c) + 1.5))[1]
    tree = linkage(c.astype(np.float64), method="average", metric="cosine")
    dendrogram(tree, labels=list(names), orientation="right", ax=ax, color_threshold=0)
    ax.set(title=title, xlabel="cosine distance between centroids (average linkage)")
    return ax
