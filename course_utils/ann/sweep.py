"""Sweeps of ANN indexes: recall@k against exact search, queries per second, build time, memory.

    df = sweep(vectors, queries, {"Flat": {}, "IVF256,Flat": {"nprobe": [1, 4, 16]},
                                  "HNSW32": {"efSearch": [16, 64]}})
    pareto(df)                         # the settings no other setting beats on recall and QPS
    tune(df, target_recall=0.95)       # per index, the smallest setting that meets the target

Measurement choices (as ann-benchmarks does, single CPU by default):
- recall@k is computed against exact inner-product search on the same vectors (never assumed);
- QPS batched = all queries in one `index.search` call (best of `repeats`); QPS single = one
  query per call over the first `n_single` queries (what a search service sees per request);
- build seconds = train + add; memory = `faiss.serialize_index` size / n (fixed costs such as
  centroids and codebooks included, so small collections look more expensive per vector).
Timings on a shared machine are noisy: compare ratios measured in the same run.
"""
from __future__ import annotations

import itertools
import time

import numpy as np
import pandas as pd
from tqdm import tqdm  # text bars: no ipywidgets needed

from course_utils.ann import indexes as ann
from course_utils.search.exact import exact_search_faiss
from course_utils.search.hits import Hits, as_matrix, check_k

__all__ = ["sweep", "pareto", "tune", "plot_recall_qps", "plot_recall_qps_panels", "plot_memory_recall",
           "PANELS"]


def sweep(vectors, queries, grid: dict, k: int = 10, *, train=None, exact: Hits | None = None,
          n_single: int = 100, repeats: int = 3, threads: int = 1,
          show_progress: bool = True) -> pd.DataFrame:
    """Build each index of `grid` once and measure every search setting; one row per setting.

    vectors: float32 (n, d), L2-normalised; queries: (n_queries, d). grid: {factory string:
    {search parameter: [values]}}, e.g. {"HNSW32": {"efSearch": [16, 64]}, "Flat": {}}; several
    parameters are crossed. A key may also be any name whose dict holds "factory" and/or
    "build" (build_index parameters): {"HNSW32 efC=100": {"factory": "HNSW32", "build":
    {"efConstruction": 100}, "efSearch": [16]}}. exact: the exact top-k Hits (FAISS flat if None).
    Columns: index, family, setting, one column per parameter, recall@k, qps_batch, qps_single,
    ms_per_query, build_s, bytes_per_vector, n.

    >>> x, q = ann.clustered_data(2000, 20, d=16)
    >>> sweep(x, q, {"HNSW8": {"efSearch": [8, 32]}}, show_progress=False)["recall@10"].is_monotonic_increasing
    True
    """
    v, q, k = as_matrix(vectors, "vectors", allow_1d=False), as_matrix(queries, "queries"), check_k(k)
    if not isinstance(grid, dict) or not grid:
        raise ValueError("grid must be a non-empty dict {factory: {parameter: [values]}}, "
                         "e.g. {'IVF256,Flat': {'nprobe': [1, 4, 16]}}")
    exact = exact_search_faiss(q, v, k) if exact is None else exact
    if exact.ids.shape != (len(q), k):
        raise ValueError(f"exact hits have shape {exact.ids.shape}, expected {(len(q), k)}")
    settings = {name: _settings(name, params) for name, params in grid.items()}
    rows = []
    with ann.faiss_threads(threads), tqdm(total=sum(len(s[2]) for s in settings.values()),
                                           desc="sweep", disable=not show_progress) as bar:
        for name, (factory, build, combos) in settings.items():
            start = time.perf_counter()
            index = ann.build_index(factory, v, train, threads=threads, **build)
            base = {"index": name, "family": ann.family(factory),
                    "build_s": time.perf_counter() - start,
                    "bytes_per_vector": ann.index_bytes(index) / len(v), "n": len(v)}
            for combo in combos:
                bar.set_postfix_str(f"{name} {_label(combo)}")
                rows.append({**base, "setting": _label(combo), **combo,
                             **_measure(index, q, k, exact, combo, n_single, repeats)})
                bar.update()
    return _order_columns(pd.DataFrame(rows), k)


def _settings(name: str, params) -> tuple[str, dict, list[dict]]:
    if not isinstance(params, dict):
        raise TypeError(f"grid[{name!r}] must be a dict {{parameter: [values]}}, got "
                        f"{type(params).__name__}")
    params = dict(params)
    factory, build = params.pop("factory", name), dict(params.pop("build", {}))
    names = list(params)
    values = [list(params[n]) if np.ndim(params[n]) else [params[n]] for n in names]
    return factory, build, [dict(zip(names, combo)) for combo in itertools.product(*values)]


def _label(combo: dict) -> str:
    return ", ".join(f"{name}={value}" for name, value in combo.items()) or "-"


def _measure(index, q, k, exact, combo, n_single, repeats) -> dict:
    hits = ann.search(index, q, k, **combo)  # also warms up caches before the timings
    one = q[: max(1, min(n_single, len(q)))]
    batch = _best_seconds(lambda: index.search(q, k), repeats)
    single = _best_seconds(lambda: [index.search(one[i:i + 1], k) for i in range(len(one))],
                           repeats)
    return {f"recall@{k}": ann.neighbour_recall(hits, exact, k), "qps_batch": len(q) / batch,
            "qps_single": len(one) / single, "ms_per_query": 1000 * single / len(one)}


def _best_seconds(fn, repeats: int, min_seconds: float = 0.05) -> float:
    """Seconds per call of fn: best of `repeats` rounds, each repeating fn for >= min_seconds.

    A single 5 ms call is at the mercy of the scheduler on a busy machine; a round of several
    calls is not.
    """
    best = np.inf
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        best = min(best, elapsed / calls)
    return best


def _order_columns(df: pd.DataFrame, k: int) -> pd.DataFrame:
    first = ["index", "family", "setting"]
    last = [f"recall@{k}", "qps_batch", "qps_single", "ms_per_query", "build_s",
            "bytes_per_vector", "n"]
    params = [c for c in df.columns if c not in first + last]
    return df[first + params + last]


def _recall_col(df: pd.DataFrame) -> str:
    cols = [c for c in df.columns if c.startswith("recall@")]
    if not cols:
        raise ValueError("expected a sweep() DataFrame with a recall@k column")
    return cols[0]


def pareto(df: pd.DataFrame, y: str = "qps_batch") -> pd.DataFrame:
    """Rows no other row beats on both recall and `y` (higher is better), by recall.

    >>> df = pd.DataFrame({"recall@10": [0.5, 0.9, 0.8], "qps_batch": [100, 50, 40]})
    >>> pareto(df).index.tolist()
    [0, 1]
    """
    r = _recall_col(df)
    ordered = df.sort_values([r, y], ascending=[False, False])
    best, keep = -np.inf, []
    for idx, value in ordered[y].items():
        if value > best:
            keep.append(idx)
            best = value
    return df.loc[keep].sort_values(r)


def tune(df: pd.DataFrame, target_recall: float = 0.95, max_ms: float | None = None,
         prefer: str = "qps_batch") -> pd.DataFrame:
    """Per index, the smallest search setting that meets the recall (and latency) target.

    "Smallest values that meet your recall and latency targets": within an index, settings are
    ordered by their parameter values and the first that qualifies is kept. Indexes are then
    ranked by `prefer` (qps_* high first; ms_per_query, bytes_per_vector or build_s low first),
    so row 0 is the cheapest choice. No qualifying setting raises, naming the best recall seen.

    >>> df = pd.DataFrame({"index": ["H"] * 2, "efSearch": [16, 64], "recall@10": [0.9, 0.99],
    ...                    "qps_batch": [900, 300], "ms_per_query": [1.0, 3.0]})
    >>> tune(df, 0.95)["efSearch"].tolist()
    [64]
    """
    r = _recall_col(df)
    ok = df[df[r] >= target_recall]
    if max_ms is not None:
        ok = ok[ok["ms_per_query"] <= max_ms]
    if ok.empty:
        best = df.loc[df[r].idxmax()]
        raise ValueError(f"no setting reaches {r} >= {target_recall}"
                         + (f" within {max_ms} ms per query" if max_ms is not None else "")
                         + f"; the best was {best[r]:.3f} ({best['index']} "
                         f"{best.get('setting', '')}). Sweep larger nprobe / efSearch, or add "
                         "exact re-ranking (',RFlat' with k_factor_rf)")
    params = [c for c in df.columns if c not in {"index", "family", "setting", r, "qps_batch",
                                                  "qps_single", "ms_per_query", "build_s",
                                                  "bytes_per_vector", "n"}]
    first = ok.sort_values(params, na_position="first").groupby("index", sort=False).head(1)
    high_first = prefer.startswith("qps") or prefer.startswith("recall")
    return first.sort_values(prefer, ascending=not high_first)


_COLOURS = {"Flat": "black", "IVF-Flat": "tab:orange", "IVF-SQ": "tab:red", "IVF-PQ": "tab:purple",
            "OPQ+IVF-PQ": "tab:brown", "IVF-PQ + re-rank": "tab:pink", "HNSW": "tab:blue",
            "SQ": "tab:green", "PQ": "tab:olive", "LSH": "tab:gray", "LSH + re-rank": "tab:cyan"}


def _family_styles(df: pd.DataFrame) -> dict:
    """index -> (colour, linestyle, marker): a fixed colour per family, styles cycle within it."""
    styles, seen = {}, {}
    for name, fam in dict(zip(df["index"], df["family"])).items():
        i = seen[fam] = seen.get(fam, -1) + 1
        styles[name] = (_COLOURS.get(fam, "tab:olive"), ("-", "--", ":", "-.")[i % 4],
                        "osD^v"[i % 5])
    return styles


def plot_recall_qps(df: pd.DataFrame, y: str = "qps_batch", ax=None, title: str | None = None,
                    min_recall: float | None = None):
    """Recall (x) against queries per second (y, log): one line per index, coloured by family,
    and the Pareto front (dashed black). min_recall zooms on the high-recall corner."""
    import matplotlib.pyplot as plt

    r = _recall_col(df)
    ax = ax if ax is not None else plt.subplots(figsize=(9, 5.5))[1]
    styles = _family_styles(df)  # from the whole frame, so a zoom keeps the same styles
    shown = df if min_recall is None else df[df[r] >= min_recall]
    for name, part in shown.groupby("index", sort=False):
        colour, ls, marker = styles[name]
        part = part.sort_values(r)
        ax.plot(part[r], part[y], ls=ls, marker=marker, ms=4, color=colour, label=name)
    front = pareto(shown, y)
    ax.plot(front[r], front[y], color="black", ls="--", lw=1.2, alpha=0.7, label="Pareto front")
    ax.set(yscale="log", xlabel=f"{r} against exact search",
           ylabel=f"queries per second ({y.split('_')[1]}, log)",
           title=title or f"Recall vs speed ({len(df)} settings, n = {df['n'].iloc[0]:,})")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return ax


# the panels of `plot_recall_qps_panels`: families that trade speed for recall the same way
PANELS = {"IVF and SQ": ("IVF-Flat", "IVF-SQ", "SQ"),
          "PQ and OPQ": ("IVF-PQ", "OPQ+IVF-PQ", "IVF-PQ + re-rank", "PQ", "OPQ+PQ"),
          "HNSW": ("HNSW", "HNSW + re-rank"),
          "LSH": ("LSH", "LSH + re-rank")}


def plot_recall_qps_panels(df: pd.DataFrame, y: str = "qps_batch", min_recall: float | None = None,
                           axes=None, ncols: int = 2):
    """Small multiples of the recall-QPS chart: one panel per group of `PANELS` present in df.

    In each panel every index is a line in its own colour (few per panel, so they stay apart),
    exact search ("Flat") a black star and the Pareto front of the *whole* sweep a grey dashed
    line, on shared axes: a panel shows how its family compares with the best of all.
    Returns the array of Axes (one per panel drawn).
    """
    import matplotlib.pyplot as plt

    r = _recall_col(df)
    shown = df if min_recall is None else df[df[r] >= min_recall]
    groups = {name: fams for name, fams in PANELS.items() if shown["family"].isin(fams).any()}
    if not groups:
        raise ValueError(f"no index of the families {sorted(set(df['family']))} is in PANELS")
    nrows = -(-len(groups) // ncols)
    if axes is None:
        axes = plt.subplots(nrows, ncols, figsize=(6.2 * ncols, 4.2 * nrows), sharex=True,
                            sharey=True, squeeze=False)[1]
    axes = np.ravel(axes)
    front, flat = pareto(shown, y), shown[shown["family"] == "Flat"]
    for ax, (name, fams) in zip(axes, groups.items()):
        part = shown[shown["family"].isin(fams)]
        colours = plt.get_cmap("tab10")
        for i, (index, rows) in enumerate(part.groupby("index", sort=False)):
            rows = rows.sort_values(r)
            ax.plot(rows[r], rows[y], marker="o", ms=4, color=colours(i % 10), label=index)
        ax.plot(front[r], front[y], color="grey", ls="--", lw=1, label="Pareto front (all indexes)")
        if len(flat):
            ax.scatter(flat[r], flat[y], marker="*", s=140, color="black", zorder=3,
                       label="exact search (Flat)")
        ax.set(yscale="log", title=name, xlabel=f"{r} against exact search",
               ylabel=f"queries per second ({y.split('_')[1]}, log)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="lower left")
        ax.tick_params(labelbottom=True, labelleft=True)
    for ax in axes[len(groups):]:
        ax.set_visible(False)
    return axes[:len(groups)]


def plot_memory_recall(df: pd.DataFrame, ax=None, title: str | None = None):
    """Bytes per vector (x, log) against the best recall each index reached (y), by family.

    The indexes on the memory-recall front (no other index has both fewer bytes and more recall)
    are numbered on the chart and listed beside it (name, bytes per vector, recall), so labels
    never collide; the others are identified by their family's colour.
    """
    import matplotlib.pyplot as plt

    r = _recall_col(df)
    ax = ax if ax is not None else plt.subplots(figsize=(9, 5))[1]
    best = df.groupby("index", sort=False).agg(bytes=("bytes_per_vector", "first"),
                                               recall=(r, "max"), family=("family", "first"))
    styles = _family_styles(df)
    for fam, part in best.groupby("family", sort=False):
        ax.scatter(part["bytes"], part["recall"], s=45, color=styles[part.index[0]][0],
                   label=fam, zorder=3)
    front, top = [], -np.inf  # label the indexes no other beats on both memory and recall
    for name, row in best.sort_values(["bytes", "recall"], ascending=[True, False]).iterrows():
        if row["recall"] > top:
            front.append(name)
            top = row["recall"]
    for i, name in enumerate(front, 1):  # numbered on the chart, named in a list beside it
        ax.annotate(str(i), (best.loc[name, "bytes"], best.loc[name, "recall"]), fontsize=8,
                    xytext=(0, 7), textcoords="offset points", ha="center", fontweight="bold")
    ax.text(1.02, 1.0, "memory-recall front:\n" + "\n".join(
        f"{i}. {name} ({best.loc[name, 'bytes']:,.0f} B, {best.loc[name, 'recall']:.3f})"
        for i, name in enumerate(front, 1)), transform=ax.transAxes, va="top", fontsize=8)
    ax.plot(best.loc[front, "bytes"], best.loc[front, "recall"], color="black", ls="--", lw=1,
            alpha=0.6, label="memory-recall front")
    ax.set(xscale="log", xlabel="bytes per vector (serialised index / n, log)",
           ylabel=f"best {r} over the sweep",
           title=title or "Memory vs recall: what each byte per vector buys")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    return ax
