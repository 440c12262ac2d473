"""The service's metrics in Prometheus' text exposition format, and reading them back.

Each replica owns a `ServiceMetrics` (its own `CollectorRegistry`, so several apps can live in one
process) and serves `GET /metrics` with `exposition()`. The definitions (chapter 09b shows them):

    search_requests_total{endpoint, status}      Counter
    search_request_seconds{endpoint}             Histogram (buckets BUCKETS)
    search_cache_lookups_total{result}           Counter   hit | miss | error
    search_degraded_total{reason}                Counter   answers from BM25 alone, and why
    search_encoder_breaker{search_encoder_breaker=closed|half_open|open}   Enum (1 for the current state)
    search_ready                                 Gauge     1 once the model and index are loaded
    process_cpu_seconds_total ...                the process collector (CPU time, memory)

A monitoring server scrapes every replica (never the balancer: it would see a random one). The
notebook does the scraper's part: `scrape(url)` parses one exposition into {(name, labels): value}
samples, `delta(before, after)` subtracts two scrapes, and `histogram_quantile(q, buckets)`
estimates a latency percentile from cumulative bucket counts as Prometheus' function of that name
does (linear interpolation inside the bucket that holds the q-th observation).

>>> round(histogram_quantile(0.5, [(0.01, 2), (0.1, 6), (float("inf"), 8)]), 6)
0.055
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

__all__ = ["BUCKETS", "ServiceMetrics", "scrape", "parse_exposition", "delta", "histogram_quantile",
           "summarise"]

BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12)


class ServiceMetrics:
    """The metric objects of one replica, registered in their own registry."""

    def __init__(self, buckets: Sequence[float] = BUCKETS):
        from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, ProcessCollector

        self.registry = r = CollectorRegistry()
        self.requests = Counter("search_requests", "HTTP requests answered", ["endpoint", "status"], registry=r)
        self.latency = Histogram("search_request_seconds", "Time to answer a request", ["endpoint"],
                                 buckets=buckets, registry=r)
        self.cache = Counter("search_cache_lookups", "Result-cache lookups", ["result"], registry=r)
        self.degraded = Counter("search_degraded", "Answers served from BM25 alone", ["reason"], registry=r)
        self.breaker = Enum("search_encoder_breaker", "State of the encoder's circuit breaker",
                            states=["closed", "half_open", "open"], registry=r)
        self.ready = Gauge("search_ready", "1 when the model and the index are loaded", registry=r)
        ProcessCollector(registry=r)

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(int(status))).inc()
        self.latency.labels(endpoint).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """(body, content type) of the text exposition format."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def parse_exposition(text: str) -> dict[tuple, float]:
    """{(sample name, ((label, value), ...)): value} of an exposition text."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, tuple(sorted(s.labels.items()))): float(s.value)
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(url: str, timeout: float = 5.0) -> dict[tuple, float]:
    """GET `{url}/metrics` and parse it (see `parse_exposition`)."""
    import httpx

    r = httpx.get(f"{url}/metrics", timeout=timeout)
    r.raise_for_status()
    return parse_exposition(r.text)


def delta(before: dict, after: dict) -> dict[tuple, float]:
    """after - before for every sample of `after` (a sample missing before counts from 0)."""
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float:
    """The q-quantile from cumulative (upper bound, count) buckets, sorted, ending at +Inf."""
    buckets = sorted(buckets)
    total = buckets[-1][1]
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower                          # above the last finite bound: report it
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = upper, count
    return lower


def summarise(samples: Sequence[dict], seconds: float, qs: Sequence[float] = (0.5, 0.95, 0.99)) -> dict:
    """Request rate, latency percentiles per endpoint, cache hit rate and errors, from the deltas
    of every replica over `seconds` (add the replicas' samples: counters and buckets add up)."""
    total: dict[tuple, float] = defaultdict(float)
    for s in samples:
        for key, value in s.items():
            total[key] += value
    endpoints: dict[str, dict] = {}
    for (name, labels), value in total.items():
        lab = dict(labels)
        if name == "search_requests_total":
            ep = endpoints.setdefault(lab["endpoint"], {"requests": 0.0, "errors": 0.0})
            ep["requests"] += value
            ep["errors"] += value if lab["status"].startswith("5") else 0.0
    out = {}
    for ep, row in sorted(endpoints.items()):
        buckets = [(float(dict(lab)["le"]), v) for (name, lab), v in total.items()
                   if name == "search_request_seconds_bucket" and dict(lab)["endpoint"] == ep]
        out[ep] = {"requests": int(row["requests"]), "rate_per_s": round(row["requests"] / seconds, 2),
                   "errors": int(row["errors"]),
                   **{f"p{round(q * 100)}_ms": round(histogram_quantile(q, buckets) * 1000, 1) for q in qs}}
    cache = {r: total.get(("search_cache_lookups_total", (("result", r),)), 0.0) for r in ("hit", "miss", "error")}
    looked = sum(cache.values())
    degraded = sum(v for (name, _), v in total.items() if name == "search_degraded_total")
    return {"endpoints": out, "cache_hit_rate": round(cache["hit"] / looked, 4) if looked else 0.0,
            "cache_errors": int(cache["error"]), "degraded": int(degraded)}
