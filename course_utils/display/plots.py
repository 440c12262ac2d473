"""Small matplotlib helpers shared by the chapters (each returns the Axes it drew on)."""

from __future__ import annotations

import textwrap

import numpy as np

__all__ = ["similarity_heatmap", "scatter_with_fit"]


def _axes(ax, figsize):
    import matplotlib.pyplot as plt

    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def similarity_heatmap(matrix, labels, ax=None, title="Cosine similarity", fmt="{:.2f}",
                       cbar_label="cosine similarity", wrap=30):
    """Annotated heat map of a square similarity matrix (n, n) with `labels` on both axes.

    Labels are wrapped at `wrap` characters (never cut), and the colour bar is labelled
    `cbar_label`.

    >>> ax = similarity_heatmap(np.eye(2), ["a", "b"])          # doctest: +SKIP
    """
    matrix = np.asarray(matrix)
    if matrix.shape != (len(labels), len(labels)):
        raise ValueError(f"matrix {matrix.shape} does not match {len(labels)} labels")
    ax = _axes(ax, (1.1 * len(labels) + 3, 0.9 * len(labels) + 2.5))
    image = ax.imshow(matrix, cmap="viridis", vmin=min(0, matrix.min()), vmax=1)
    shown = [textwrap.fill(str(lab), wrap) for lab in labels]
    ax.set_xticks(range(len(labels)), shown, rotation=40, ha="right", rotation_mode="anchor",
                  fontsize=8)
    ax.set_yticks(range(len(labels)), shown, fontsize=8)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, fmt.format(matrix[i, j]), ha="center", va="center",
                    color="white" if matrix[i, j] < 0.6 else "black", fontsize=8)
    ax.figure.colorbar(image, ax=ax, shrink=0.8, label=cbar_label)
    ax.set_title(title)
    return ax


def scatter_with_fit(x, y, ax=None, xlabel="", ylabel="", title="", alpha=0.25, y_range=None):
    """Scatter of y against x with a least-squares line, e.g. gold scores vs cosine similarity.

    With `y_range=(low, high)` (a bounded scale such as STS's 0-5) the line is drawn only where
    it stays inside that range, and the y axis shows the whole range.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    ax = _axes(ax, (6, 4.5))
    ax.scatter(x, y, s=8, alpha=alpha)
    slope, intercept = np.polyfit(x, y, 1)
    grid = np.linspace(x.min(), x.max(), 200)
    line = slope * grid + intercept
    if y_range is not None:
        low, high = y_range
        inside = (line >= low) & (line <= high)
        grid, line = grid[inside], line[inside]
        pad = 0.03 * (high - low)
        ax.set_ylim(low - pad, high + pad)
    ax.plot(grid, line, color="crimson", lw=2, label="least-squares fit")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(loc="upper left")
    return ax
