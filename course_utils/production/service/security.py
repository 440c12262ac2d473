"""API keys, per-key rate limiting (token bucket → 429 + Retry-After) and a JSON-lines audit log.

What the audit log must not leak: it records *who* (the client name the key maps to, never the
key), *when*, *what kind* of request (endpoint, mode, k, status, result count) and a keyed hash
(HMAC-SHA256 with a server secret) of the query — enough to count repeats and answer "did client
X search for this exact text?" when you hold the text, but not a readable copy of the queries,
which may themselves contain personal data. A plain unsalted hash of a short query is
reversible by guessing; the secret makes that guessing impossible without the server's key.

>>> now = [0.0]
>>> rl = RateLimiter(rate=1.0, burst=2, clock=lambda: now[0])
>>> [rl.acquire("alice")[0] for _ in range(3)]
[True, True, False]
>>> round(rl.acquire("alice")[1], 3)         # seconds until the next token
1.0
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["RateLimiter", "AuditLog", "query_fingerprint"]


class RateLimiter:
    """One token bucket per key: `burst` tokens, refilled at `rate` tokens per second.

    `acquire(key)` → (allowed, retry_after_seconds); retry_after is 0.0 when allowed.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        if not rate > 0:
            raise ValueError(f"rate must be > 0 requests per second, got {rate!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be an integer >= 1, got {burst!r}")
        self.rate, self.burst, self._clock = float(rate), burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}   # key -> (tokens, last time)
        self._lock = threading.Lock()

    def acquire(self, key: str) -> tuple[bool, float]:
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return True, 0.0
            self._buckets[key] = (tokens, now)
            return False, (1.0 - tokens) / self.rate


def query_fingerprint(query: str, secret: bytes) -> str:
    """HMAC-SHA256 of the query under `secret`, first 16 hex digits.

    >>> query_fingerprint("aspirin", b"s") == query_fingerprint("aspirin", b"s")
    True
    """
    return hmac.new(secret, query.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


class AuditLog:
    """Append one JSON object per request to `path` (thread-safe); `read()` returns them.

    Fields: ts (UTC ISO), client, endpoint, status, and the request's details given by the
    caller (the app passes mode, k, n_results and `query_hmac`, never the raw query).
    """

    def __init__(self, path, secret: bytes | None = None, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.secret = secret if secret is not None else os.urandom(32)
        self._clock = clock
        self._lock = threading.Lock()

    def fingerprint(self, query: str) -> str:
        return query_fingerprint(query, self.secret)

    def write(self, client: str, endpoint: str, status: int, **details) -> None:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self._clock())) + "Z"
        line = json.dumps({"ts": ts, "client": client, "endpoint": endpoint, "status": int(status),
                           **details}, sort_keys=True)
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
