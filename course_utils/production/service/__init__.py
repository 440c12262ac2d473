"""A small search service: FastAPI app, LRU+TTL caches, API keys, rate limits, audit log, metrics.

    engine = SearchEngine(store, encode_query, doc_text, bm25=BM25().fit(texts))
    app = create_app(engine, Settings(api_keys={"k1": "alice"}))
    with serving.serve_app(app) as url: ...            # course_utils.production.serving

Modules: engine (dense / BM25 / hybrid / re-rank / recommend over a VectorStore), cache (LRU with a
time-to-live and an injectable clock), security (API keys as salted hashes with rotation and
document groups, token-bucket rate limiting, JSON-lines audit log), metrics (latency percentiles,
counters), app (the FastAPI factory), loadtest.
"""
from .app import Settings, create_app
from .cache import TTLCache
from .engine import MODES, SearchEngine
from .loadtest import query_mix, run_load
from .metrics import Metrics
from .security import AuditLog, KeyStore, RateLimiter

__all__ = ["Settings", "create_app", "TTLCache", "MODES", "SearchEngine", "query_mix", "run_load",
           "Metrics", "AuditLog", "KeyStore", "RateLimiter"]
