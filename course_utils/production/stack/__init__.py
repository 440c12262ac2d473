"""A production deployment on one machine: replicas behind nginx, a shared Redis cache, metrics.

    info = write_bundle(folder, doc_ids, texts, vectors, "all-MiniLM-L6-v2")
    with Stack(folder, replicas=2) as stack:        # nginx -> 2 uvicorn replicas, Redis beside
        httpx.get(f"{stack.url}/search", params={"q": "aspirin and stroke"})

Modules, one role each: bundle (what a replica serves, and its versions), replica (the service
a balancer sees: /health, /ready, /search, /metrics; circuit breaker; cache), breaker (the
circuit breaker), result_cache (Redis client side, the cache key), redis_server (redis-server on
loopback), nginx (the balancer's config and process), prom_metrics (Prometheus metrics and
reading them back), stack (all of it, always stopped).
"""
from .breaker import CircuitBreaker
from .bundle import hashing_encoder, load_engine, read_bundle_info, write_bundle
from .nginx import nginx_config, run_nginx
from .prom_metrics import ServiceMetrics, delta, histogram_quantile, scrape, summarise
from .redis_server import redis_config, run_redis
from .replica import DEGRADED_HEADER, create_replica_app
from .result_cache import RedisCache, search_cache_key
from .stack import Stack, load_during, replica_command

__all__ = ["CircuitBreaker", "hashing_encoder", "load_engine", "read_bundle_info", "write_bundle",
           "nginx_config", "run_nginx", "ServiceMetrics", "delta", "histogram_quantile", "scrape",
           "summarise", "redis_config", "run_redis", "DEGRADED_HEADER", "create_replica_app",
           "RedisCache", "search_cache_key", "Stack", "replica_command", "load_during"]
