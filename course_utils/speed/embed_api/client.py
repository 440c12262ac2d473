"""A robust client for embedding APIs (`POST /v1/embeddings`, the shape of OpenAI's endpoint).

What it guarantees: every input text gets exactly one vector, in input order, or an exception
says why not. How:

- batching within the provider's limits: at most `max_items` texts and `max_tokens` tokens per
  request (`token_budget_batches`; a single text over the limit is an error, not a silent truncation);
- retries with exponential backoff and *full jitter* on 429, 5xx and network errors/timeouts
  (`backoff_delay`: a uniform draw in [0, min(cap, base * 2**attempt)], AWS Architecture Blog,
  "Exponential Backoff and Jitter", 2015), never shorter than the server's `Retry-After`;
  other 4xx (e.g. 400) are permanent and raise `EmbeddingAPIError` at once;
- a client-side rate limit (`requests_per_second`) and at most `concurrency` requests in flight
  (asyncio + httpx.AsyncClient);
- token and cost counting from the responses' `usage` (`price_per_million_tokens`);
- a content-hash cache (`MemoryCache`, or a `course_utils.embeddings.cache.EmbeddingCache`): a text seen
  before costs no request; duplicates within one call are sent once.

`sleep` and `rng` can be injected so tests check the backoff schedule without waiting.

>>> token_budget_batches(["a b", "c", "d e f"], max_items=2, max_tokens=4)
[[0, 1], [2]]
>>> client = EmbeddingClient(url, model="all-MiniLM-L6-v2")        # doctest: +SKIP
>>> vectors = client.embed(["first text", "second text"])          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import base64
import random
import re
import threading
import time
from collections import Counter

import numpy as np

from course_utils.embeddings.cache import text_key

__all__ = ["count_tokens", "token_budget_batches", "backoff_delay", "EmbeddingAPIError", "RetriesExhausted",
           "MemoryCache", "EmbeddingClient"]

_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """Approximate token count: words and punctuation marks (the server bills the same count).

    >>> count_tokens("Hello, world!")
    4
    """
    return max(1, len(_TOKEN.findall(text)))


def token_budget_batches(texts: list[str], max_items: int, max_tokens: int, count=count_tokens) -> list[list[int]]:
    """Split positions 0..n-1 into consecutive batches of <= max_items texts and <= max_tokens
    tokens in total (greedy). A single text longer than max_tokens raises ValueError."""
    if max_items < 1 or max_tokens < 1:
        raise ValueError(f"max_items and max_tokens must be >= 1, got {max_items}, {max_tokens}")
    batches, current, used = [], [], 0
    for i, text in enumerate(texts):
        n = count(text)
        if n > max_tokens:
            raise ValueError(f"text {i} has {n} tokens, more than max_tokens={max_tokens} allowed "
                             "per request: chunk it first (see course_utils.rag.chunking)")
        if current and (len(current) == max_items or used + n > max_tokens):
            batches.append(current)
            current, used = [], 0
        current.append(i)
        used += n
    return batches + [current] if current else batches


def backoff_delay(attempt: int, base: float = 0.5, cap: float = 20.0, rng=random,
                  retry_after: float | None = None) -> float:
    """Seconds to wait before retry number `attempt` (0 = first retry): full jitter, i.e.
    uniform in [0, min(cap, base * 2**attempt)], and at least `retry_after` if the server sent one.

    >>> backoff_delay(3, base=1.0, rng=random.Random(0)) <= 8.0
    True
    """
    delay = rng.uniform(0.0, min(cap, base * 2 ** attempt))
    return max(delay, retry_after or 0.0)


class EmbeddingAPIError(RuntimeError):
    """A permanent error from the API (4xx other than 429): retrying cannot help."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class RetriesExhausted(RuntimeError):
    """A batch still failed after `max_retries` retries (429 / 5xx / network errors)."""


class MemoryCache:
    """In-memory content-hash cache with the `get`/`put` interface of `EmbeddingCache`."""

    def __init__(self):
        self._store: dict[str, np.ndarray] = {}
        self.hits = self.misses = 0

    def get(self, texts):
        found = {i: self._store[text_key(t)] for i, t in enumerate(texts) if text_key(t) in self._store}
        missing = [i for i in range(len(texts)) if i not in found]
        self.hits, self.misses = self.hits + len(found), self.misses + len(missing)
        return found, missing

    def put(self, texts, vectors):
        self._store.update({text_key(t): np.asarray(v, np.float32) for t, v in zip(texts, vectors)})

    def __len__(self):
        return len(self._store)


class _RateLimiter:
    """At most `rate` request starts per second, evenly spaced (a leaky bucket)."""

    def __init__(self, rate: float | None, sleep):
        self.interval, self.sleep, self.next_at = (1.0 / rate if rate else 0.0), sleep, 0.0
        self.lock = asyncio.Lock()

    async def wait(self):
        if not self.interval:
            return
        async with self.lock:
            now = time.monotonic()
            start = max(now, self.next_at)
            self.next_at = start + self.interval
        if start > now:
            await self.sleep(start - now)


class EmbeddingClient:
    """Embed texts through an embedding API; see the module docstring for the guarantees."""

    RETRYABLE = {408, 409, 429, 500, 502, 503, 504}

    def __init__(self, base_url: str, model: str, api_key: str = "local-key", *,
                 max_items: int = 128, max_tokens: int = 8000, concurrency: int = 4,
                 requests_per_second: float | None = None, max_retries: int = 6,
                 base_delay: float = 0.5, max_delay: float = 20.0, timeout: float = 30.0,
                 price_per_million_tokens: float = 0.02, cache=None, rng=None, sleep=None):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if concurrency < 1 or max_retries < 0:
            raise ValueError("concurrency must be >= 1 and max_retries >= 0")
        self.base_url, self.model, self.api_key = base_url.rstrip("/"), model, api_key
        self.max_items, self.max_tokens, self.concurrency = max_items, max_tokens, concurrency
        self.requests_per_second, self.max_retries = requests_per_second, max_retries
        self.base_delay, self.max_delay, self.timeout = base_delay, max_delay, timeout
        self.price = price_per_million_tokens
        self.cache = MemoryCache() if cache is None else cache
        self.rng, self.sleep = rng or random.Random(0), sleep or asyncio.sleep
        self.stats = {"requests": 0, "status": Counter(), "retries": 0, "tokens": 0,
                      "texts_sent": 0, "cache_hits": 0, "delays": []}

    @property
    def cost(self) -> float:
        """Dollars spent so far at `price_per_million_tokens` (tokens from the responses' usage)."""
        return self.stats["tokens"] * self.price / 1e6

    def embed(self, texts) -> np.ndarray:
        """Synchronous `aembed` (also inside Jupyter, whose event loop is already running)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.aembed(texts))
        box = {}
        thread = threading.Thread(target=lambda: box.update(r=_run(self.aembed, texts, box)))
        thread.start(), thread.join()
        if "error" in box:
            raise box["error"]
        return box["r"]

    async def aembed(self, texts) -> np.ndarray:
        """float32 vectors (len(texts), d), row i for texts[i]; each distinct text requested once."""
        import httpx

        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a list of strings; for one text use [text]")
        texts = list(texts)
        if not texts:
            raise ValueError("no texts to embed: the list is empty")
        unique = list(dict.fromkeys(texts))
        found, missing = self.cache.get(unique)
        self.stats["cache_hits"] += len(found)
        todo = [unique[i] for i in missing]
        batches = token_budget_batches(todo, self.max_items, self.max_tokens)
        limiter, gate = _RateLimiter(self.requests_per_second, self.sleep), asyncio.Semaphore(self.concurrency)
        headers = {"Authorization": f"Bearer {self.api_key}"}
        async with httpx.AsyncClient(base_url=self.base_url, headers=headers,
                                     timeout=self.timeout) as http:
            async def run(batch):
                async with gate:
                    return await self._post(http, [todo[i] for i in batch], limiter)
            results = await asyncio.gather(*(run(b) for b in batches))
        for batch, vectors in zip(batches, results):
            self.cache.put([todo[i] for i in batch], vectors)
            found.update({missing[i]: v for i, v in zip(batch, vectors)})
        position = {t: i for i, t in enumerate(unique)}
        return np.stack([found[position[t]] for t in texts]).astype(np.float32)

    async def _post(self, http, batch: list[str], limiter) -> np.ndarray:
        import httpx

        body = {"model": self.model, "input": batch, "encoding_format": "float"}
        for attempt in range(self.max_retries + 1):
            await limiter.wait()
            self.stats["requests"] += 1
            retry_after = None
            try:
                response = await http.post("/v1/embeddings", json=body)
                status = response.status_code
            except (httpx.TimeoutException, httpx.TransportError) as err:
                status, problem = "network", f"{type(err).__name__}: {err}"
            self.stats["status"][status] += 1
            if status == 200:
                return self._parse(response.json(), len(batch))
            if status != "network":
                problem = _message(response)
                if status not in self.RETRYABLE:
                    raise EmbeddingAPIError(status, problem)
                retry_after = _retry_after(response)
            if attempt == self.max_retries:
                raise RetriesExhausted(f"a batch of {len(batch)} texts failed {attempt + 1} times; "
                                       f"last error: {status} {problem}")
            delay = backoff_delay(attempt, self.base_delay, self.max_delay, self.rng, retry_after)
            self.stats["retries"] += 1
            self.stats["delays"].append(delay)
            await self.sleep(delay)

    def _parse(self, payload: dict, n: int) -> np.ndarray:
        data = sorted(payload.get("data", []), key=lambda row: row["index"])
        if [row["index"] for row in data] != list(range(n)):
            raise EmbeddingAPIError(200, f"the response has indices {[r['index'] for r in data]} "
                                         f"for a batch of {n} texts")
        self.stats["tokens"] += payload.get("usage", {}).get("total_tokens", 0)
        self.stats["texts_sent"] += n
        rows = [np.frombuffer(base64.b64decode(r["embedding"]), "<f4") if isinstance(r["embedding"], str)
                else np.asarray(r["embedding"], np.float32) for r in data]
        return np.stack(rows)


def _run(fn, texts, box):
    try:
        return asyncio.run(fn(texts))
    except BaseException as err:  # handed to the caller's thread
        box["error"] = err


def _message(response) -> str:
    try:
        return response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def _retry_after(response) -> float | None:
    """Seconds from `retry-after-ms` (preferred: finer) or `Retry-After` (seconds), if present."""
    for name, factor in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = response.headers.get(name)
        if value:
            try:
                return float(value) * factor
            except ValueError:
                pass
    return None
