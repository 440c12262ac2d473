"""API keys kept as salted hashes (with rotation and per-key document access), per-key rate
limiting (token bucket → 429 + Retry-After) and a JSON-lines audit log.

Key storage: `KeyStore` never holds a key itself, only a random salt and SHA-256(salt + key) per
key, so a copy of its file does not let anyone call the service. API keys are long random strings
(`KeyStore.issue` makes 32 random bytes), so one salted SHA-256 is enough; a slow hash (scrypt,
Argon2) is what human-chosen *passwords* need. Rotation: `rotate(client, grace)` issues a new key
and lets the client's old keys work for `grace` more seconds, so callers can switch without an
outage. Each key may carry `groups`: the document access groups it may read (None = all).

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
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from course_utils.paths import atomic_write

__all__ = ["RateLimiter", "AuditLog", "query_fingerprint", "hash_key", "KeyRecord", "KeyStore"]


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

    def wait(self, key: str) -> float:
        """Seconds until `key` has a token again (0.0 if it has one now); consumes nothing."""
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate


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


def hash_key(key: str, salt: bytes) -> str:
    """SHA-256 of salt + key, hex: what a `KeyStore` keeps instead of the key.

    >>> hash_key("k", b"salt") == hash_key("k", b"salt") != hash_key("k", b"pepper")
    True
    """
    return hashlib.sha256(salt + key.encode("utf-8")).hexdigest()


@dataclass
class KeyRecord:
    """One stored key: who it belongs to, its salt and salted hash, when it stops working
    (`expires`, clock seconds; None = never) and the document groups it may read (None = all)."""
    key_id: str
    client: str
    salt: str
    sha256: str
    expires: float | None = None
    groups: frozenset | None = None


class KeyStore:
    """API keys as salted hashes: add/issue, verify, rotate with a grace window, save/load.

    >>> now = [0.0]
    >>> ks = KeyStore(clock=lambda: now[0])
    >>> old = ks.issue("alice", groups={"public"})
    >>> ks.verify(old).client, ks.verify("a guess")
    ('alice', None)
    >>> new = ks.rotate("alice", grace=60)          # the old key works 60 s more
    >>> now[0] = 59; ks.verify(old) is not None and ks.verify(new) is not None
    True
    >>> now[0] = 61; ks.verify(old) is None and ks.verify(new).groups == frozenset({"public"})
    True
    """

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._records: dict[str, KeyRecord] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._records)

    def add(self, key: str, client: str, groups: Iterable[str] | None = None,
            expires: float | None = None) -> str:
        """Store `key` (hashed with a fresh salt) for `client`; returns its key id (not secret)."""
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"an API key must be a non-empty string, got {key!r}; "
                             "KeyStore.issue makes a random one")
        salt = secrets.token_bytes(16)
        key_id = secrets.token_hex(4)
        record = KeyRecord(key_id, client, salt.hex(), hash_key(key, salt), expires,
                           None if groups is None else frozenset(groups))
        with self._lock:
            self._records[key_id] = record
        return key_id

    def issue(self, client: str, groups: Iterable[str] | None = None,
              expires: float | None = None) -> str:
        """A new random key for `client` (shown once: only its hash is kept)."""
        key = "sk-" + secrets.token_urlsafe(32)
        self.add(key, client, groups, expires)
        return key

    def verify(self, key: str | None) -> KeyRecord | None:
        """The record of a valid, unexpired `key`, else None (constant-time hash comparison).

        Checks every stored key's salted hash: fine for hundreds of keys; for millions, give keys
        a public id prefix and look up one record."""
        if not key:
            return None
        now = self._clock()
        found = None
        with self._lock:
            records = list(self._records.values())
        for r in records:
            if hmac.compare_digest(hash_key(key, bytes.fromhex(r.salt)), r.sha256) and \
                    (r.expires is None or now < r.expires):
                found = r
        return found

    def rotate(self, client: str, grace: float = 0.0) -> str:
        """Issue a new key for `client` with the groups of its current key; its older keys
        stop working after `grace` seconds (0: at once). Raises KeyError for an unknown client."""
        now = self._clock()
        with self._lock:
            mine = [r for r in self._records.values() if r.client == client
                    and (r.expires is None or now < r.expires)]
            if not mine:
                raise KeyError(f"no valid key for client {client!r}; add or issue one first")
            for r in mine:
                r.expires = now + grace if r.expires is None else min(r.expires, now + grace)
        return self.issue(client, mine[-1].groups)

    def revoke(self, client: str) -> int:
        """Remove every key of `client`; returns how many were removed."""
        with self._lock:
            gone = [k for k, r in self._records.items() if r.client == client]
            for k in gone:
                del self._records[k]
        return len(gone)

    def records(self) -> list[KeyRecord]:
        """The stored records (salts and hashes, never keys)."""
        with self._lock:
            return list(self._records.values())

    def save(self, path) -> None:
        """Write the records as JSON (atomically): salts and hashes only."""
        rows = [{**r.__dict__, "groups": None if r.groups is None else sorted(r.groups)}
                for r in self.records()]
        atomic_write(path, json.dumps(rows, indent=1, sort_keys=True))

    @classmethod
    def load(cls, path, clock: Callable[[], float] = time.time) -> "KeyStore":
        """A KeyStore from a file written by `save`."""
        store = cls(clock)
        for row in json.loads(Path(path).read_text(encoding="utf-8")):
            groups = row.get("groups")
            store._records[row["key_id"]] = KeyRecord(**{**row, "groups": None if groups is None
                                                         else frozenset(groups)})
        return store
