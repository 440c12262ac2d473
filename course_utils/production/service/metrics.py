"""Request counters and latency percentiles (p50/p95/p99) per endpoint, for /metrics.

Latencies are kept in a bounded window (the last `window` requests per endpoint), so the
percentiles describe recent traffic and memory stays constant.

>>> m = Metrics()
>>> for ms in range(1, 101): m.observe("/search", 200, ms / 1000)
>>> m.snapshot()["endpoints"]["/search"]["p50_ms"]
50.5
"""
from __future__ import annotations

import threading
from collections import Counter, defaultdict, deque

import numpy as np

__all__ = ["Metrics", "percentiles"]


def percentiles(seconds, qs=(50, 95, 99)) -> dict[str, float]:
    """{'p50_ms': ..., 'p95_ms': ..., 'p99_ms': ...} of durations in seconds (linear interpolation).

    >>> percentiles([0.001, 0.003])["p50_ms"]
    2.0
    """
    arr = np.asarray(list(seconds), dtype=float)
    if arr.size == 0:
        return {f"p{q}_ms": float("nan") for q in qs}
    return {f"p{q}_ms": round(float(np.percentile(arr, q)) * 1000, 3) for q in qs}


class Metrics:
    """Thread-safe counters by (endpoint, status) and recent latencies by endpoint."""

    def __init__(self, window: int = 10_000):
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self._lat: dict[str, deque] = defaultdict(lambda: deque(maxlen=window))
        self._status: dict[str, Counter] = defaultdict(Counter)
        self._lock = threading.Lock()

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self._lat[endpoint].append(float(seconds))
            self._status[endpoint][int(status)] += 1

    def snapshot(self) -> dict:
        """{'endpoints': {path: {requests, by_status, p50_ms, p95_ms, p99_ms}}}."""
        with self._lock:
            out = {}
            for ep in sorted(self._status):
                out[ep] = {"requests": sum(self._status[ep].values()),
                           "by_status": {str(s): n for s, n in sorted(self._status[ep].items())},
                           **percentiles(self._lat[ep])}
            return {"endpoints": out}
