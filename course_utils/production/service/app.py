"""The FastAPI search service: `create_app(engine, settings)`.

Endpoints (JSON):
- GET  /health                      no key needed: status, documents, model id, modes
- POST /search {query, k, mode, rerank}   → {results: [{doc_id, score}], cached: bool}
- GET  /recommend/{doc_id}?k=10     → {results}; 404 for an unknown doc id
- GET  /metrics                     latency p50/p95/p99 and status counts per endpoint, cache stats

Errors: 401 missing/unknown X-API-Key · 400 empty query, k out of [1, k_max], unknown mode ·
422 wrong types (FastAPI's validation) · 404 unknown doc id · 429 rate limit, with Retry-After.
Query vectors and results are cached (LRU + TTL); every authenticated request is audited.

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
from .security import AuditLog, RateLimiter

__all__ = ["Settings", "SearchRequest", "search_problem", "create_app"]


@dataclass
class Settings:
    """api_keys: {key: client name} (None = no authentication, for local experiments only);
    rate/burst: per-key token bucket; cache_size 0 disables both caches; audit_path None = no log."""
    api_keys: dict | None = None
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
    app = FastAPI(title="course_utils search service")
    app.state.metrics = metrics = Metrics()
    app.state.vector_cache = vec_cache = TTLCache(s.cache_size, s.cache_ttl, s.clock)
    app.state.result_cache = res_cache = TTLCache(s.cache_size, s.cache_ttl, s.clock)
    app.state.limiter = limiter = RateLimiter(s.rate, s.burst, s.clock)
    app.state.audit = audit = AuditLog(s.audit_path, s.audit_secret) if s.audit_path else None

    @app.middleware("http")
    async def guard_and_time(request: Request, call_next):
        start = time.perf_counter()
        path = request.url.path
        endpoint = "/recommend" if path.startswith("/recommend/") else path
        request.state.client = "anonymous"
        response = None
        if endpoint != "/health" and s.api_keys is not None:
            key = request.headers.get("x-api-key")
            if key not in s.api_keys:
                why = "missing X-API-Key header" if key is None else "unknown API key"
                response = _error(401, f"{why}; send a valid key in the X-API-Key header")
            else:
                request.state.client = s.api_keys[key]
                ok, retry = limiter.acquire(key)
                if not ok:
                    response = _error(429, f"rate limit of {s.rate:g} requests/s (burst {s.burst}) "
                                      "exceeded; retry later", {"Retry-After": str(math.ceil(retry))})
        if response is None:
            response = await call_next(request)
        metrics.observe(endpoint, response.status_code, time.perf_counter() - start)
        if audit is not None and endpoint != "/health" and response.status_code != 401:
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
        key = (query, body.k, body.mode, body.rerank)
        results = res_cache.get(key)
        cached = results is not None
        if not cached:
            vec = None
            if body.mode != "bm25":
                vec = vec_cache.get(query)
                if vec is None:
                    vec = engine.encode_query(query)
                    vec_cache.put(query, vec)
            results = engine.search(query, body.k, body.mode, body.rerank, query_vec=vec)
            res_cache.put(key, results)
        request.state.audit["n_results"] = len(results)
        return {"results": results, "cached": cached}

    @app.get("/recommend/{doc_id}")
    def recommend(doc_id: str, request: Request, k: int = 10):
        request.state.audit = {"doc_id": doc_id, "k": k}
        if not 1 <= k <= s.k_max:
            return _error(400, f"k={k} is out of range; use 1 <= k <= {s.k_max}")
        if doc_id not in engine.store:
            return _error(404, f"no document with id {doc_id!r} in this collection")
        return {"results": engine.recommend(doc_id, k)}

    @app.get("/metrics")
    def get_metrics():
        return {**metrics.snapshot(), "query_vector_cache": vec_cache.stats(),
                "result_cache": res_cache.stats()}

    return app
