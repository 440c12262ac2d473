"""The FastAPI search service: `create_app(engine, settings)`.

Endpoints (JSON):
- GET  /health                      no key needed: status, documents, model id, modes
- GET  /docs, /openapi.json, /redoc  no key needed: the API's description holds no data
- POST /search {query, k, mode, rerank}   → {results: [{doc_id, score}], cached: bool}
- GET  /recommend/{doc_id}?k=10     → {results}; 404 for an unknown doc id
- GET  /metrics                     latency p50/p95/p99 and status counts per endpoint, cache stats

Errors: 401 missing/unknown X-API-Key · 400 empty query, k out of [1, k_max], unknown mode ·
422 wrong types (FastAPI's validation) · 404 unknown doc id (or one the key may not read) ·
429 rate limit, with Retry-After: per client, and per address for failed authentications
(after `auth_fail_burst` failures an address gets 429 without its key being checked).
Keys are checked against a `KeyStore` (salted hashes; `api_keys` given as a dict are hashed at
start-up). A key's `groups` restrict the documents it may read: the engine filters before it
ranks, and the result cache is keyed by the groups too. Query vectors and results are cached
(LRU + TTL); every request but /health and the docs is audited, failed authentications too.

>>> app = create_app(engine, Settings(api_keys={"secret-1": "alice"}))    # doctest: +SKIP
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from .cache import TTLCache
from .metrics import Metrics
from .security import AuditLog, KeyStore, RateLimiter

__all__ = ["Settings", "SearchRequest", "search_problem", "create_app", "OPEN_PATHS"]

OPEN_PATHS = ("/health", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc")


@dataclass
class Settings:
    """api_keys: {key: client name}, hashed at start-up, or key_store: a `KeyStore` (salted
    hashes, rotation, per-key document groups); neither = no authentication, for local
    experiments only. rate/burst: per-client token bucket; auth_fail_rate/auth_fail_burst: the
    bucket of failed authentications per client address; cache_size 0 disables both caches;
    audit_path None = no log."""
    api_keys: dict | None = None
    key_store: KeyStore | None = None
    auth_fail_rate: float = 0.2
    auth_fail_burst: int = 5
    rate: float = 50.0
    burst: int = 100
    k_max: int = 100
    cache_size: int = 1024
    cache_ttl: float = 300.0
    audit_path: str | None = None
    audit_secret: bytes | None = None
    clock: Callable[[], float] = field(default=time.monotonic)


class SearchRequest(BaseModel):
    query: str
    k: int = 10
    mode: str = "dense"
    rerank: bool = False


def search_problem(engine, query: str, k: int, mode: str, rerank: bool, k_max: int) -> str | None:
    """What is wrong with a search request (a message for a 400 answer), or None if it is valid.

    >>> class E: modes, reranker = ("dense",), None
    >>> search_problem(E(), "aspirin", 0, "dense", False, 100)
    'k=0 is out of range; use 1 <= k <= 100'
    """
    if not query.strip():
        return "query is empty; send a non-empty text in 'query'"
    if not 1 <= k <= k_max:
        return f"k={k} is out of range; use 1 <= k <= {k_max}"
    if mode not in engine.modes:
        return f"unknown mode {mode!r}; choose one of {list(engine.modes)}"
    if rerank and engine.reranker is None:
        return "this service has no re-ranker; send rerank=false"
    return None


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(engine, settings: Settings | None = None) -> FastAPI:
    """A FastAPI app serving `engine` (a `SearchEngine`) under `settings`."""
    s = settings or Settings()
    if s.api_keys is not None and s.key_store is not None:
        raise ValueError("give api_keys or key_store, not both")
    keys = s.key_store
    if s.api_keys is not None:           # hash them now: the app keeps no key in memory
        keys = KeyStore()
        for key, client in s.api_keys.items():
            keys.add(key, client)
    app = FastAPI(title="course_utils search service")
    app.state.metrics = metrics = Metrics()
    app.state.vector_cache = vec_cache = TTLCache(s.cache_size, s.cache_ttl, s.clock)
    app.state.result_cache = res_cache = TTLCache(s.cache_size, s.cache_ttl, s.clock)
    app.state.limiter = limiter = RateLimiter(s.rate, s.burst, s.clock)
    app.state.auth_failures = failures = RateLimiter(s.auth_fail_rate, s.auth_fail_burst, s.clock)
    app.state.audit = audit = AuditLog(s.audit_path, s.audit_secret) if s.audit_path else None

    def authenticate(request: Request) -> JSONResponse | None:
        """None if the request may proceed (client and groups set on request.state), else the
        401/429 answer; failed attempts are counted per client address."""
        address = request.client.host if request.client else "unknown"
        request.state.client = "unauthenticated"
        wait = failures.wait(address)
        if wait > 0:
            request.state.audit = {"address": address, "reason": "too many failed authentications"}
            return _error(429, f"too many failed authentications from this address; retry in "
                          f"{math.ceil(wait)} s", {"Retry-After": str(math.ceil(wait))})
        key = request.headers.get("x-api-key")
        record = keys.verify(key)
        if record is None:
            failures.acquire(address)
            why = "missing X-API-Key header" if key is None else "unknown or expired API key"
            request.state.audit = {"address": address, "reason": why}
            return _error(401, f"{why}; send a valid key in the X-API-Key header")
        request.state.client, request.state.groups = record.client, record.groups
        ok, retry = limiter.acquire(record.client)
        if not ok:
            return _error(429, f"rate limit of {s.rate:g} requests/s (burst {s.burst}) "
                          "exceeded; retry later", {"Retry-After": str(math.ceil(retry))})
        return None

    @app.middleware("http")
    async def guard_and_time(request: Request, call_next):
        start = time.perf_counter()
        path = request.url.path
        endpoint = "/recommend" if path.startswith("/recommend/") else path
        request.state.client, request.state.groups = "anonymous", None
        response = None
        if path not in OPEN_PATHS and keys is not None:
            response = authenticate(request)
        if response is None:
            response = await call_next(request)
        metrics.observe(endpoint, response.status_code, time.perf_counter() - start)
        if audit is not None and path not in OPEN_PATHS:
            audit.write(request.state.client, endpoint, response.status_code,
                        **getattr(request.state, "audit", {}))
        return response

    @app.get("/health")
    def health():
        return {"status": "ok", "documents": len(engine.store), "model_id": engine.store.model_id,
                "modes": list(engine.modes), "reranker": engine.reranker is not None}

    @app.post("/search")
    def search(body: SearchRequest, request: Request):
        query = body.query.strip()
        request.state.audit = {"mode": body.mode, "k": body.k, "rerank": body.rerank,
                               "query_hmac": audit.fingerprint(query) if audit else None}
        problem = search_problem(engine, query, body.k, body.mode, body.rerank, s.k_max)
        if problem:
            return _error(400, problem)
        groups = request.state.groups
        scope = {} if groups is None else {"groups": groups}   # what this key may read
        key = (query, body.k, body.mode, body.rerank, groups)
        results = res_cache.get(key)
        cached = results is not None
        if not cached:
            vec = None
            if body.mode != "bm25":
                vec = vec_cache.get(query)
                if vec is None:
                    vec = engine.encode_query(query)
                    vec_cache.put(query, vec)
            results = engine.search(query, body.k, body.mode, body.rerank, query_vec=vec, **scope)
            res_cache.put(key, results)
        request.state.audit["n_results"] = len(results)
        return {"results": results, "cached": cached}

    @app.get("/recommend/{doc_id}")
    def recommend(doc_id: str, request: Request, k: int = 10):
        request.state.audit = {"doc_id": doc_id, "k": k}
        if not 1 <= k <= s.k_max:
            return _error(400, f"k={k} is out of range; use 1 <= k <= {s.k_max}")
        groups = request.state.groups
        if doc_id not in engine.store or (groups is not None and not engine.readable(doc_id, groups)):
            return _error(404, f"no document with id {doc_id!r} in this collection")
        return {"results": engine.recommend(doc_id, k, **({} if groups is None else {"groups": groups}))}

    @app.get("/metrics")
    def get_metrics():
        return {**metrics.snapshot(), "query_vector_cache": vec_cache.stats(),
                "result_cache": res_cache.stats()}

    return app
