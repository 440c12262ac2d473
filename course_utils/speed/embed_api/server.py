"""A local embedding server in the shape of the common hosted embedding APIs, with fault injection.

`POST /v1/embeddings` takes `{"model": str, "input": str | [str, ...], "encoding_format":
"float" | "base64"}` and answers `{"object": "list", "data": [{"object": "embedding", "index": i,
"embedding": [...]}], "model": ..., "usage": {"prompt_tokens": n, "total_tokens": n}}` -- the
request and response shape of OpenAI's embeddings endpoint (and of the many services that copy
it), so the official `openai` client works against it via `base_url`. Errors are JSON
`{"error": {"message", "type", "code"}}` with status 400 (bad request: too many items or tokens,
not strings), 404 (unknown model), 429 (rate limited, with `Retry-After` and `retry-after-ms`
headers) or 500.

Faults (`FaultConfig`) are drawn from a seeded RNG: a share of requests gets 429, a share gets
500, a share is slowed down by `slow_seconds`, and every request can get `latency` added.
Injected errors are decided before any encoding, so a failed request embeds nothing.
`app.state.stats` counts requests per status and texts embedded (GET /stats returns it).

>>> app = create_app(hash_encoder(8), faults=FaultConfig(share_429=0.2, seed=0))   # doctest: +SKIP
>>> with serving.serve_app(app) as url: ...                                       # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import random
import threading
from collections import Counter
from dataclasses import dataclass

import numpy as np
from fastapi import FastAPI, Request  # at module level: the route's annotation must resolve
from starlette.concurrency import run_in_threadpool

from .client import count_tokens

__all__ = ["FaultConfig", "hash_encoder", "create_app"]


@dataclass(frozen=True)
class FaultConfig:
    """Shares (0..1) of requests that fail with 429 / 500 or are slowed; seconds added to all."""

    share_429: float = 0.0
    share_500: float = 0.0
    share_slow: float = 0.0
    slow_seconds: float = 1.0
    latency: float = 0.0
    retry_after: float = 0.05
    seed: int = 0

    def __post_init__(self):
        for name in ("share_429", "share_500", "share_slow"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a share between 0 and 1, got {getattr(self, name)}")
        if self.share_429 + self.share_500 > 1.0:
            raise ValueError("share_429 + share_500 must not exceed 1")
        if min(self.slow_seconds, self.latency, self.retry_after) < 0:
            raise ValueError("slow_seconds, latency and retry_after must be >= 0")


def hash_encoder(dim: int = 16):
    """A deterministic stand-in encoder for tests: texts -> unit vectors (n, dim) from a hash.

    >>> enc = hash_encoder(4); bool(np.allclose(enc(["a"]), enc(["a"])))
    True
    """
    def encode(texts):
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).standard_normal(dim))
        vecs = np.asarray(rows, np.float32)
        return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    return encode


def _error(status: int, message: str, kind: str, headers: dict | None = None):
    from fastapi.responses import JSONResponse

    body = {"error": {"message": message, "type": kind, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(encoder, model_name: str = "all-MiniLM-L6-v2", faults: FaultConfig | None = None,
               max_items: int = 256, max_tokens: int = 8192, max_tokens_per_input: int = 512):
    """FastAPI app serving `encoder` (texts -> float32 (n, d)) as model `model_name`.

    Limits per request, as hosted APIs have: `max_items` texts, `max_tokens` tokens in total,
    `max_tokens_per_input` per text (`count_tokens`); exceeding one is a 400 error.
    """
    if not callable(encoder):
        raise TypeError("encoder must be callable: texts (list of str) -> float32 array (n, d)")
    faults = faults or FaultConfig()
    app = FastAPI(title="course embedding API (local)")
    rng, lock, encode_lock = random.Random(faults.seed), threading.Lock(), threading.Lock()
    app.state.stats = stats = {"requests": 0, "status": Counter(), "texts_embedded": 0,
                               "tokens": 0}
    app.state.faults = faults

    def _encode(texts):
        with encode_lock:  # one forward pass at a time: the model runs on 1 thread anyway
            return np.asarray(encoder(texts), dtype=np.float32)

    def _reply(status: int, response):
        stats["status"][status] += 1
        return response

    @app.get("/health")
    def health():
        return {"status": "ok", "model": model_name}

    @app.get("/stats")
    def get_stats():
        return {**stats, "status": dict(stats["status"])}

    @app.post("/v1/embeddings")
    async def embeddings(request: Request):
        with lock:
            stats["requests"] += 1
            u, slow = rng.random(), rng.random() < faults.share_slow
        await asyncio.sleep(faults.latency + (faults.slow_seconds if slow else 0.0))
        if u < faults.share_429:
            ms = int(faults.retry_after * 1000)
            return _reply(429, _error(429, "Rate limit reached; retry after the delay given.",
                                      "rate_limit_exceeded",
                                      {"Retry-After": str(max(1, round(faults.retry_after))),
                                       "retry-after-ms": str(ms)}))
        if u < faults.share_429 + faults.share_500:
            return _reply(500, _error(500, "The server had an error (injected).", "server_error"))
        try:
            body = await request.json()
        except ValueError:
            return _reply(400, _error(400, "body is not JSON", "invalid_request_error"))
        problem, texts = _validate(body, model_name, max_items, max_tokens, max_tokens_per_input)
        if problem:
            status = 404 if problem.startswith("model") else 400
            return _reply(status, _error(status, problem, "invalid_request_error"))
        vectors = await run_in_threadpool(_encode, texts)
        tokens = sum(count_tokens(t) for t in texts)
        with lock:
            stats["texts_embedded"] += len(texts)
            stats["tokens"] += tokens
        as_b64 = body.get("encoding_format") == "base64"
        data = [{"object": "embedding", "index": i,
                 "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode() if as_b64
                 else v.tolist()} for i, v in enumerate(vectors)]
        return _reply(200, {"object": "list", "data": data, "model": model_name,
                            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    return app


def _validate(body, model_name, max_items, max_tokens, max_per_input):
    """(problem message or None, texts)."""
    if not isinstance(body, dict) or "input" not in body or "model" not in body:
        return "the body must be a JSON object with 'model' and 'input'", []
    if body["model"] != model_name:
        return f"model {body['model']!r} does not exist; this server serves {model_name!r}", []
    texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        return "'input' must be a string or a non-empty list of strings", []
    if body.get("encoding_format", "float") not in ("float", "base64"):
        return "'encoding_format' must be 'float' or 'base64'", []
    if len(texts) > max_items:
        return f"too many inputs: {len(texts)} > {max_items} per request", []
    counts = [count_tokens(t) for t in texts]
    if max(counts) > max_per_input:
        return f"an input has {max(counts)} tokens > {max_per_input} allowed per input", []
    if sum(counts) > max_tokens:
        return f"too many tokens: {sum(counts)} > {max_tokens} per request", []
    if any(not t.strip() for t in texts):
        return "inputs must not be empty strings", []
    return None, texts
