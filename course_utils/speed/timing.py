"""Measure speed on a noisy shared machine: repeats, their spread, and same-run ratios.

Timings on a shared machine are noisy: report the best of `repeats` runs together with how far
the repeats spread, compare ratios measured in the same run (round-robin, so a change in the
machine's load hits every contender alike), and never assert on seconds in a test.
"""

from __future__ import annotations

import time
from typing import Callable, NamedTuple

import pandas as pd

from course_utils.embeddings.encoding import encode

__all__ = ["Timing", "time_repeats", "best_time", "compare_times", "throughput"]


class Timing(NamedTuple):
    """Wall-clock seconds of each repeat of one measurement.

    >>> t = Timing((2.0, 1.0, 1.5))
    >>> t.best, t.worst, t.spread
    (1.0, 2.0, 1.0)
    """

    times: tuple[float, ...]

    @property
    def best(self) -> float:
        """Fastest repeat: the least disturbed run."""
        return min(self.times)

    @property
    def worst(self) -> float:
        """Slowest repeat."""
        return max(self.times)

    @property
    def spread(self) -> float:
        """(slowest - fastest) / fastest: how noisy the repeats were (0 = identical)."""
        return self.worst / self.best - 1 if self.best > 0 else 0.0


def _check_repeats(repeats: int) -> int:
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a whole number >= 1, got {repeats!r}")
    return repeats


def time_repeats(fn: Callable[[], object], repeats: int = 3) -> Timing:
    """Seconds of `repeats` calls of fn(), as a `Timing` (best, worst, spread).

    >>> time_repeats(lambda: sum(range(1000)), 3).best < 1
    True
    """
    times = []
    for _ in range(_check_repeats(repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return Timing(tuple(times))


def best_time(fn: Callable[[], object], repeats: int = 3) -> float:
    """Fastest wall-clock seconds of `repeats` calls of fn() (the least disturbed run).

    >>> best_time(lambda: sum(range(1000))) < 1
    True
    """
    return time_repeats(fn, repeats).best


def compare_times(fns: dict[str, Callable[[], object]], repeats: int = 3,
                  baseline: str | None = None) -> pd.DataFrame:
    """Time several callables round-robin (round 1 calls each once, then round 2, ...), so that a
    change in the machine's load hits all of them alike.

    Returns one row per name (index) with columns best_s, worst_s, spread (see `Timing`), and
    speedup = best_s of `baseline` (default: the first) / best_s of this row, with speedup_min and
    speedup_max, the lowest and highest per-round ratio: how far the ratio moved between rounds.

    >>> table = compare_times({"slow": lambda: sum(range(20000)), "fast": lambda: 0})
    >>> list(table.columns)
    ['best_s', 'worst_s', 'spread', 'speedup', 'speedup_min', 'speedup_max']
    >>> bool(table.loc["fast", "speedup"] > 1)
    True
    """
    if not fns:
        raise ValueError("fns is empty: pass {name: callable} for each thing to time")
    baseline = next(iter(fns)) if baseline is None else baseline
    if baseline not in fns:
        raise ValueError(f"baseline {baseline!r} is not one of the timed names: {', '.join(fns)}")
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(_check_repeats(repeats)):
        for name, fn in fns.items():
            times[name].append(time_repeats(fn, 1).best)
    base = times[baseline]
    rows = {}
    for name, ts in times.items():
        t = Timing(tuple(ts))
        rounds = [b / x for b, x in zip(base, ts)]
        rows[name] = {"best_s": t.best, "worst_s": t.worst, "spread": t.spread,
                      "speedup": min(base) / t.best, "speedup_min": min(rounds),
                      "speedup_max": max(rounds)}
    return pd.DataFrame.from_dict(rows, orient="index")


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
