"""An LRU cache whose entries also expire after `ttl` seconds, with an injectable clock.

The service keeps two of them: query text → query vector (skips the encoder) and
(query, k, mode, rerank) → results (skips everything). `maxsize=0` disables a cache.

>>> now = [0.0]
>>> c = TTLCache(maxsize=2, ttl=10, clock=lambda: now[0])
>>> c.put("a", 1); c.get("a")
1
>>> now[0] = 11; c.get("a") is None          # expired
True
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

__all__ = ["TTLCache"]


class TTLCache:
    """Least-recently-used cache of at most `maxsize` entries, each valid for `ttl` seconds.

    Thread-safe (one lock). Counters: hits, misses, expired, evicted; `hit_rate` = hits / lookups.
    """

    def __init__(self, maxsize: int = 1024, ttl: float = 300.0,
                 clock: Callable[[], float] = time.monotonic):
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
            raise ValueError(f"maxsize must be an integer >= 0 (0 disables the cache), got {maxsize!r}")
        if not ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        self.maxsize, self.ttl, self._clock = maxsize, float(ttl), clock
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = self.expired = self.evicted = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Hashable, default=None):
        """The cached value (and mark it recently used), or `default` if absent or expired."""
        with self._lock:
            item = self._data.get(key)
            if item is not None and self._clock() >= item[0]:
                del self._data[key]
                self.expired += 1
                item = None
            if item is None:
                self.misses += 1
                return default
            self._data.move_to_end(key)
            self.hits += 1
            return item[1]

    def put(self, key: Hashable, value) -> None:
        """Store `value` for `ttl` seconds, evicting the least recently used entry if full."""
        if self.maxsize == 0:
            return
        with self._lock:
            self._data[key] = (self._clock() + self.ttl, value)
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
                self.evicted += 1

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    @property
    def hit_rate(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0

    def stats(self) -> dict:
        """Counters as a dict (what /metrics shows)."""
        return {"size": len(self), "maxsize": self.maxsize, "ttl_s": self.ttl, "hits": self.hits,
                "misses": self.misses, "expired": self.expired, "evicted": self.evicted,
                "hit_rate": round(self.hit_rate, 4)}
