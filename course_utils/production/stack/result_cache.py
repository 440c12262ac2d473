"""The shared query-result cache: one Redis for every replica, keyed so a re-index is never stale.

The key holds the collection version (a fingerprint of the indexed vectors and ids) and the
model version (the query encoder's id) beside a hash of the request, so re-indexing the
collection or changing the model makes every old entry unreachable at once -- no flush needed,
the old entries simply expire (TTL) or are evicted (`maxmemory-policy allkeys-lru`).

Redis is an optimisation, never a dependency: any Redis error (down, slow, full) counts as a
miss and the request is answered without the cache. Socket timeouts are short, so a dead Redis
costs milliseconds, not seconds.

>>> search_cache_key("aspirin", 10, "hybrid", collection="c1a2", model="all-MiniLM-L6-v2")
'search:c1a2:all-MiniLM-L6-v2:hybrid:10:90ea1eeaf311dc6d503bf7cb8056f8bb'
"""
from __future__ import annotations

import hashlib
import json
import threading

__all__ = ["search_cache_key", "RedisCache"]


def search_cache_key(query: str, k: int, mode: str, *, collection: str, model: str) -> str:
    """`search:{collection}:{model}:{mode}:{k}:{md5(query)}` -- readable prefix, fixed length."""
    digest = hashlib.md5(query.strip().encode("utf-8")).hexdigest()
    return f"search:{collection}:{model}:{mode}:{int(k)}:{digest}"


class RedisCache:
    """get/put of JSON values in Redis at `url` with a time-to-live; errors are misses.

    Counters: hits, misses, errors (a lookup or write that Redis did not answer).
    """

    def __init__(self, url: str, ttl: float = 300.0, timeout: float = 0.25):
        import redis

        if not ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        self.url, self.ttl = url, ttl
        self._redis = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._errors = (redis.exceptions.RedisError, OSError)
        self.hits = self.misses = self.errors = 0
        self._lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def lookup(self, key: str) -> tuple[object, str]:
        """(value or None, outcome): outcome is "hit", "miss" or "error" (Redis did not answer)."""
        try:
            raw = self._redis.get(key)
        except self._errors:
            self._count("errors")
            return None, "error"
        self._count("misses" if raw is None else "hits")
        return (None, "miss") if raw is None else (json.loads(raw), "hit")

    def get(self, key: str):
        """The cached value, or None (absent, expired, or Redis unavailable)."""
        return self.lookup(key)[0]

    def put(self, key: str, value) -> bool:
        """Store `value` (JSON-serialisable) for `ttl` seconds; False if Redis did not take it."""
        try:
            self._redis.set(key, json.dumps(value), px=int(self.ttl * 1000))
            return True
        except self._errors:
            self._count("errors")
            return False

    def stats(self) -> dict:
        lookups = self.hits + self.misses + self.errors
        return {"hits": self.hits, "misses": self.misses, "errors": self.errors,
                "hit_rate": round(self.hits / lookups, 4) if lookups else 0.0}
