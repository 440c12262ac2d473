"""One replica of the search service, as a load balancer sees it: /health, /ready, /search, /metrics.

    python -m course_utils.production.stack.replica --bundle BUNDLE --port 8001 \\
        --redis redis://127.0.0.1:6379/0 --name r1

runs uvicorn on 127.0.0.1:8001 with `create_replica_app`. The app answers at once and loads the
model and the index in a background thread, so the two probes differ:
- `GET /health` -- *alive*: the process answers HTTP (a supervisor restarts it when this fails);
- `GET /ready`  -- *can serve*: model and index loaded (503 until then). A balancer sends traffic
  only to ready replicas; restarting a replica that is merely still loading would loop forever.

`GET /search?q=...&k=10&mode=hybrid` (idempotent, so the balancer may retry it on another replica;
`POST /search` takes the same fields as JSON) answers from the shared Redis result cache when it
can. Degradation, never failure, when a dependency misbehaves:
- the query encoder runs behind a `CircuitBreaker`; when it fails or is slow the breaker opens and
  answers come from BM25 alone, with the header `X-Degraded: encoder-unavailable; bm25-only`
  (degraded answers are not cached, so recovery is immediate);
- Redis down or slow: the lookup counts as an error and the request is answered without the cache.
Every answer carries `X-Replica`, `X-Cache` (hit / miss / error / off) and `X-Search-Mode`.
`GET /metrics` is Prometheus' text format (`prom_metrics.ServiceMetrics`). With `--faults`,
`POST /admin/faults {"encoder_fail": true, "encoder_delay_s": 0}` injects encoder faults (the
balancer's config hides /admin/).
"""
from __future__ import annotations

import argparse
import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from course_utils.production.service.app import search_problem
from course_utils.production.stack.breaker import CircuitBreaker
from course_utils.production.stack.prom_metrics import ServiceMetrics
from course_utils.production.stack.result_cache import search_cache_key

__all__ = ["DEGRADED_HEADER", "create_replica_app", "main"]

DEGRADED_HEADER = "encoder-unavailable; bm25-only"
ENDPOINTS = ("/health", "/ready", "/search", "/metrics", "/admin/faults")


class _Query(BaseModel):
    q: str
    k: int = 10
    mode: str = "hybrid"


class _Faults(BaseModel):
    encoder_fail: bool = False
    encoder_delay_s: float = 0.0


def create_replica_app(load_engine: Callable[[], object], versions: dict, *, name: str = "replica",
                       cache=None, breaker: CircuitBreaker | None = None, k_max: int = 100,
                       faults: bool = False, startup_delay_s: float = 0.0) -> FastAPI:
    """The replica's app. load_engine() -> SearchEngine runs in a thread after start-up;
    versions: {"collection_version", "model_version"} (they key the cache); cache: a
    `RedisCache` (or any object with lookup/put) or None."""
    breaker = breaker or CircuitBreaker(failure_threshold=3, reset_timeout=2.0, slow_call_s=2.0)
    metrics = ServiceMetrics()
    state = {"engine": None, "error": None, "started": time.time()}
    injected = _Faults()

    def load():
        try:
            time.sleep(startup_delay_s)
            state["engine"] = load_engine()
            metrics.ready.set(1)
        except Exception as err:                      # reported by /ready, never crashes the app
            state["error"] = f"{type(err).__name__}: {err}"

    @contextlib.asynccontextmanager
    async def lifespan(app):
        metrics.ready.set(0)
        metrics.breaker.state(breaker.state)
        threading.Thread(target=load, name=f"load-{name}", daemon=True).start()
        yield

    app = FastAPI(title=f"search replica {name}", lifespan=lifespan)
    app.state.breaker, app.state.metrics, app.state.cache = breaker, metrics, cache

    @app.middleware("http")
    async def measure(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        path = request.url.path
        metrics.observe(path if path in ENDPOINTS else "other", response.status_code,
                        time.perf_counter() - start)
        response.headers["X-Replica"] = name
        return response

    @app.get("/health")
    def health():
        return {"status": "alive", "replica": name, "uptime_s": round(time.time() - state["started"], 1)}

    @app.get("/ready")
    def ready():
        engine = state["engine"]
        if engine is None:
            why = state["error"] or "loading the model and the index"
            return JSONResponse({"ready": False, "replica": name, "why": why}, status_code=503)
        return {"ready": True, "replica": name, "documents": len(engine.store),
                "encoder_breaker": breaker.state, **versions}

    def encode(engine, query: str):
        if injected.encoder_delay_s:
            time.sleep(injected.encoder_delay_s)
        if injected.encoder_fail:
            raise RuntimeError("the encoder failed (injected fault)")
        return engine.encode_query(query)

    def answer(q: str, k: int, mode: str):
        engine = state["engine"]
        if engine is None:
            return JSONResponse({"error": "not ready: still loading the model and the index; "
                                 "retry on another replica"}, status_code=503)
        problem = search_problem(engine, q, k, mode, False, k_max)
        if problem:
            return JSONResponse({"error": problem}, status_code=400)
        key = search_cache_key(q, k, mode, collection=versions["collection_version"], model=versions["model_version"])
        results, outcome = cache.lookup(key) if cache is not None else (None, "off")
        if cache is not None:
            metrics.cache.labels(outcome).inc()
        used, vec = mode, None
        if results is None:
            if mode != "bm25":
                vec = breaker.call(encode, engine, q, fallback=lambda: None)
                metrics.breaker.state(breaker.state)
                if vec is None:
                    used = "bm25"
                    metrics.degraded.labels("encoder").inc()
            results = engine.search(q, k, used, query_vec=vec)
            if cache is not None and used == mode:
                cache.put(key, results)
        headers = {"X-Cache": outcome, "X-Search-Mode": used}
        if used != mode:
            headers["X-Degraded"] = DEGRADED_HEADER
        return JSONResponse({"results": results, "mode": used, "cached": outcome == "hit"}, headers=headers)

    @app.get("/search")
    def search_get(q: str, k: int = 10, mode: str = "hybrid"):
        return answer(q, k, mode)

    @app.post("/search")
    def search_post(body: _Query):
        return answer(body.q, body.k, body.mode)

    @app.get("/metrics")
    def prometheus():
        metrics.breaker.state(breaker.state)
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    if faults:
        @app.post("/admin/faults")
        def set_faults(body: _Faults):
            injected.encoder_fail, injected.encoder_delay_s = body.encoder_fail, body.encoder_delay_s
            return {"replica": name, **injected.model_dump()}

    return app


def main(argv=None) -> int:
    """Command line: build the app from a bundle folder and serve it with uvicorn on 127.0.0.1."""
    import uvicorn

    from course_utils.production.stack.bundle import load_engine, read_bundle_info
    from course_utils.production.stack.result_cache import RedisCache

    p = argparse.ArgumentParser(prog="python -m course_utils.production.stack.replica",
                                description="one replica of the course's search service")
    p.add_argument("--bundle", type=Path, required=True, help="folder written by bundle.write_bundle")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--name", default="replica")
    p.add_argument("--redis", default=None, help="redis://127.0.0.1:PORT/0 (none: no cache)")
    p.add_argument("--cache-ttl", type=float, default=300.0, help="seconds a cached result lives")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the query encoder")
    p.add_argument("--breaker-failures", type=int, default=3)
    p.add_argument("--breaker-reset", type=float, default=2.0, help="seconds open before a trial call")
    p.add_argument("--slow-call", type=float, default=2.0, help="an encoder call slower than this fails")
    p.add_argument("--faults", action="store_true", help="enable POST /admin/faults (fault injection)")
    p.add_argument("--startup-delay", type=float, default=0.0, help="extra seconds before loading")
    a = p.parse_args(argv)
    info = read_bundle_info(a.bundle)
    app = create_replica_app(lambda: load_engine(a.bundle, a.threads), info, name=a.name,
                             cache=RedisCache(a.redis, ttl=a.cache_ttl) if a.redis else None,
                             breaker=CircuitBreaker(a.breaker_failures, a.breaker_reset, a.slow_call),
                             faults=a.faults, startup_delay_s=a.startup_delay)
    uvicorn.run(app, host="127.0.0.1", port=a.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
