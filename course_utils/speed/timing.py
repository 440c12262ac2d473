"""Measure encoding speed: texts per second for several batch sizes (for chapter 01 and benchmarks).

Timings on a shared machine are noisy: report the best of `repeats` runs, compare ratios measured
in the same run, and never assert on seconds in a test.
"""

from __future__ import annotations

import time

import pandas as pd

from course_utils.embeddings.encoding import encode

__all__ = ["best_time", "throughput"]


def best_time(fn, repeats: int = 3) -> float:
    """Fastest wall-clock seconds of `repeats` calls of fn() (the least disturbed run).

    >>> best_time(lambda: sum(range(1000))) < 1
    True
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def throughput(texts: list[str], model, batch_sizes=(1, 8, 32, 128), repeats: int = 2) -> pd.DataFrame:
    """Texts per second when encoding `texts` (uncached) at each batch size.

    Returns a DataFrame with columns batch_size, seconds, texts_per_s.

    >>> throughput(sentences[:64], model, batch_sizes=(1, 32))         # doctest: +SKIP
    """
    rows = []
    for bs in batch_sizes:
        seconds = best_time(lambda: encode(texts, model, batch_size=bs, cache=False,
                                           show_progress=False), repeats)
        rows.append({"batch_size": bs, "seconds": seconds, "texts_per_s": len(texts) / seconds})
    return pd.DataFrame(rows)
