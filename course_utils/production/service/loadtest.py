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
             k: int = 10, mode: str = "dense", timeout: float = 30.0, *, method: str = "POST",
             max_seconds: float | None = None, records: list | None = None) -> dict:
    """Send every query in `queries` to `{url}/search` from `concurrency` threads.

    method "POST" sends {"query", "k", "mode"} as JSON (the chapter 09 service); "GET" sends
    `?q=...&k=...&mode=...` (the replicas of chapter 09b). `max_seconds` stops sending new
    requests after that time. A request that got no HTTP answer (connection refused or reset,
    timeout) counts under status 0. If `records` is a list, one dict per request is appended:
    t (start, s since the test began), latency_s, status, and the answer's X-Replica, X-Cache
    and X-Degraded headers.

    Returns requests (sent), concurrency, seconds, throughput_rps, p50/p95/p99 latency (client
    side, ms), status counts and cached (share of answers the server marked as cached).
    """
    import httpx

    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if method not in ("GET", "POST"):
        raise ValueError(f"method must be 'GET' or 'POST', got {method!r}")
    headers = {"X-API-Key": api_key} if api_key else {}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    cached = [0]
    lock = threading.Lock()
    next_i = [0]
    start = time.perf_counter()
    deadline = start + max_seconds if max_seconds else float("inf")

    def send(client, query):
        if method == "GET":
            return client.get("/search", params={"q": query, "k": k, "mode": mode})
        return client.post("/search", json={"query": query, "k": k, "mode": mode})

    def worker():
        with httpx.Client(base_url=url, headers=headers, timeout=timeout) as client:
            while True:
                with lock:
                    i = next_i[0]
                    next_i[0] += 1
                if i >= len(queries) or time.perf_counter() > deadline:
                    return
                t0 = time.perf_counter()
                try:
                    r = send(client, queries[i])
                except httpx.TransportError:
                    r = None
                dt = time.perf_counter() - t0
                status = r.status_code if r is not None else 0
                with lock:
                    latencies.append(dt)
                    statuses[status] = statuses.get(status, 0) + 1
                    cached[0] += bool(status == 200 and r.json().get("cached"))
                    if records is not None:
                        h = r.headers if r is not None else {}
                        records.append({"t": t0 - start, "latency_s": dt, "status": status,
                                        "replica": h.get("x-replica"), "cache": h.get("x-cache"),
                                        "degraded": h.get("x-degraded")})

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    sent = len(latencies)
    return {"requests": sent, "concurrency": concurrency, "seconds": round(seconds, 3),
            "throughput_rps": round(sent / seconds, 1), **percentiles(latencies),
            "status": dict(sorted(statuses.items())), "cached": round(cached[0] / max(sent, 1), 4)}
