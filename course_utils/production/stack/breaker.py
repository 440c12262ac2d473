"""A circuit breaker: stop calling a failing dependency for a while, then try it again.

Three states (the pattern of Nygard's *Release It!*, as in resilience4j and pybreaker):
- **closed**: calls go through; `failure_threshold` failures in a row open the breaker;
- **open**: calls are refused at once (the caller takes its fallback) for `reset_timeout` s;
- **half_open**: after that, one trial call is let through: success closes the breaker,
  failure opens it again for another `reset_timeout`.

A call slower than `slow_call_s` counts as a failure, as a timeout would: a dependency that
answers too late is, for a search service, as bad as one that does not answer.

>>> now = [0.0]
>>> b = CircuitBreaker(failure_threshold=2, reset_timeout=10, clock=lambda: now[0])
>>> b.record(False); b.record(False); b.state
'open'
>>> b.allow()
False
>>> now[0] = 11; b.allow(), b.state
(True, 'half_open')
>>> b.record(True); b.state
'closed'
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["STATES", "CircuitBreaker"]

STATES = ("closed", "half_open", "open")


class CircuitBreaker:
    """Thread-safe breaker; `allow()` before a call, `record(ok, seconds)` after it.

    Counters: `opened` (times it opened), `refused` (calls refused while open/half-open),
    `transitions` (list of (time, new state)).
    """

    def __init__(self, failure_threshold: int = 5, reset_timeout: float = 5.0,
                 slow_call_s: float | None = None, clock: Callable[[], float] = time.monotonic):
        if isinstance(failure_threshold, bool) or not isinstance(failure_threshold, int) \
                or failure_threshold < 1:
            raise ValueError(f"failure_threshold must be an integer >= 1, got {failure_threshold!r}")
        if not reset_timeout > 0:
            raise ValueError(f"reset_timeout must be a positive number of seconds, got {reset_timeout!r}")
        self.failure_threshold, self.reset_timeout = failure_threshold, float(reset_timeout)
        self.slow_call_s, self._clock = slow_call_s, clock
        self.state, self.failures, self.opened_at = "closed", 0, 0.0
        self.opened = self.refused = 0
        self.transitions: list[tuple[float, str]] = []
        self._trial_running = False
        self._lock = threading.Lock()

    def _move(self, state: str) -> None:
        self.state = state
        self.transitions.append((self._clock(), state))

    def allow(self) -> bool:
        """May the caller call the dependency now? (In half-open, only one trial at a time.)"""
        with self._lock:
            if self.state == "open" and self._clock() - self.opened_at >= self.reset_timeout:
                self._move("half_open")
            if self.state == "closed" or (self.state == "half_open" and not self._trial_running):
                self._trial_running = self.state == "half_open"
                return True
            self.refused += 1
            return False

    def record(self, ok: bool, seconds: float = 0.0) -> None:
        """Report the outcome of an allowed call (a slow success counts as a failure)."""
        ok = ok and (self.slow_call_s is None or seconds <= self.slow_call_s)
        with self._lock:
            self._trial_running = False
            if ok:
                self.failures = 0
                if self.state != "closed":
                    self._move("closed")
                return
            self.failures += 1
            if self.state == "half_open" or self.failures >= self.failure_threshold:
                if self.state != "open":
                    self.opened += 1
                    self._move("open")
                self.opened_at = self._clock()

    def call(self, fn: Callable, *args, fallback: Callable | None = None, **kwargs):
        """fn(*args, **kwargs) through the breaker; `fallback()` when refused or when fn raises.

        Without a fallback, a refused call raises RuntimeError and fn's exception propagates.
        """
        if not self.allow():
            if fallback is None:
                raise RuntimeError(f"circuit open: not calling {getattr(fn, '__name__', fn)!r} "
                                   f"for up to {self.reset_timeout:g} s")
            return fallback()
        t0 = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except Exception:
            self.record(False)
            if fallback is None:
                raise
            return fallback()
        self.record(True, time.perf_counter() - t0)
        return result
