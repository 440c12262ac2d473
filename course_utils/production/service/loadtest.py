"""A bounded load test on loopback: N requests from C concurrent clients (threads + httpx).

`query_mix(texts, n_requests, n_distinct, seed)` draws the request stream: `n_distinct` different
queries, each request picks one uniformly, so about 1 - n_distinct / n_requests of the requests
repeat an earlier one (the best hit rate a cache can reach on this stream).

>>> mix = query_mix(["a", "b", "c"], n_requests=6, n_distinct=2, seed=0)
>>> len(mix), len(set(mix))
(6, 2)
"""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np

from .metrics import percentiles

__all__ = ["query_mix", "run_load"]


def query_mix(texts: Sequence[str], n_requests: int, n_distinct: int, seed: int = 0) -> list[str]:
    """A request stream of `n_requests` queries drawn from `n_distinct` of `texts`.

    Every one of the `n_distinct` queries appears at least once (when n_requests >= n_distinct).
    """
    if not 1 <= n_distinct <= len(texts):
        raise ValueError(f"n_distinct must be in [1, {len(texts)}], got {n_distinct}")
    if n_requests < 1:
        raise ValueError(f"n_requests must be >= 1, got {n_requests}")
    rng = np.random.default_rng(seed)
    pool = [texts[i] for i in rng.choice(len(texts), n_distinct, replace=False)]
    picks = list(range(n_distinct))[:n_requests] + rng.integers(
        0, n_distinct, max(n_requests - n_distinct, 0)).tolist()
    rng.shuffle(picks)
    return [pool[i] for i in picks]


def run_load(url: str, queries: Sequence[str], concurrency: int = 4, api_key: str | None = None,
             k: int = 10, mode: str = "dense", timeout: float = 30.0) -> dict:
    """POST every query in `queries` to `{url}/search` from `concurrency` threads.

    Returns requests, concurrency, seconds, throughput_rps, p50/p95/p99 latency (client side,
    ms), status counts and cached (share of answers the server marked as cached).
    """
    import httpx

    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    headers = {"X-API-Key": api_key} if api_key else {}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    cached = [0]
    lock = threading.Lock()
    next_i = [0]

    def worker():
        with httpx.Client(base_url=url, headers=headers, timeout=timeout) as client:
            while True:
                with lock:
                    i = next_i[0]
                    next_i[0] += 1
                if i >= len(queries):
                    return
                t0 = time.perf_counter()
                r = client.post("/search", json={"query": queries[i], "k": k, "mode": mode})
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    cached[0] += bool(r.status_code == 200 and r.json().get("cached"))

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    return {"requests": len(queries), "concurrency": concurrency, "seconds": round(seconds, 3),
            "throughput_rps": round(len(queries) / seconds, 1), **percentiles(latencies),
            "status": dict(sorted(statuses.items())), "cached": round(cached[0] / len(queries), 4)}
