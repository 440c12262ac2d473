"""The search service: status codes, validation messages, caches, rate limit, audit log, metrics."""
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from course_utils.lexical.bm25 import BM25
from course_utils.production.service import SearchEngine, Settings, TTLCache, create_app, query_mix
from course_utils.production.service.metrics import Metrics, percentiles
from course_utils.production.service.security import AuditLog, RateLimiter
from course_utils.search.store import VectorStore

DOCS = {"d1": "aspirin lowers stroke risk", "d2": "vitamin d and bone loss",
        "d3": "statins reduce cholesterol", "d4": "aspirin and bleeding in the stomach"}
VOCAB = sorted({w for t in DOCS.values() for w in t.split()} | {"unknown"})


def toy_encode(text):
    v = np.zeros(len(VOCAB), np.float32)
    for w in text.lower().split():
        v[VOCAB.index(w) if w in VOCAB else VOCAB.index("unknown")] += 1
    return v / np.linalg.norm(v)


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


@pytest.fixture
def engine():
    store = VectorStore("toy-bow", len(VOCAB))
    ids = list(DOCS)
    store.add(ids, np.stack([toy_encode(DOCS[d]) for d in ids]))
    calls = []

    def encode(text):
        calls.append(text)
        return toy_encode(text)

    eng = SearchEngine(store, encode, DOCS, bm25=BM25().fit([DOCS[d] for d in ids]), bm25_ids=ids,
                       reranker=lambda q, texts: [float(len(set(q.split()) & set(t.split()))) for t in texts],
                       depth=4, rerank_depth=4)
    eng.calls = calls
    return eng


def client_for(engine, tmp_path, **kw):
    clock = Clock()
    s = Settings(api_keys={"key-a": "alice", "key-b": "bob"}, audit_path=str(tmp_path / "audit.jsonl"),
                 audit_secret=b"test", clock=clock, **kw)
    return TestClient(create_app(engine, s)), clock


A = {"X-API-Key": "key-a"}


def test_health_needs_no_key(engine, tmp_path):
    c, _ = client_for(engine, tmp_path)
    r = c.get("/health")
    assert r.status_code == 200 and r.json()["documents"] == 4 and r.json()["model_id"] == "toy-bow"


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_search_modes(engine, tmp_path, mode):
    c, _ = client_for(engine, tmp_path)
    r = c.post("/search", json={"query": "aspirin stroke", "k": 2, "mode": mode}, headers=A)
    assert r.status_code == 200
    assert r.json()["results"][0]["doc_id"] == "d1" and 1 <= len(r.json()["results"]) <= 2


def test_rerank_reorders_by_reranker(engine, tmp_path):
    c, _ = client_for(engine, tmp_path)
    r = c.post("/search", json={"query": "aspirin bleeding stomach", "k": 4, "rerank": True}, headers=A)
    assert r.status_code == 200 and r.json()["results"][0]["doc_id"] == "d4"


@pytest.mark.parametrize("body, status, words", [
    ({"query": "   "}, 400, "query is empty"),
    ({"query": "aspirin", "k": 0}, 400, "out of range"),
    ({"query": "aspirin", "k": 101}, 400, "out of range"),
    ({"query": "aspirin", "mode": "sparse"}, 400, "unknown mode"),
    ({"query": "aspirin", "k": "ten"}, 422, None),
    ({"k": 3}, 422, None),
])
def test_validation(engine, tmp_path, body, status, words):
    c, _ = client_for(engine, tmp_path)
    r = c.post("/search", json=body, headers=A)
    assert r.status_code == status
    if words:
        assert words in r.json()["error"]


def test_auth(engine, tmp_path):
    c, _ = client_for(engine, tmp_path)
    r = c.post("/search", json={"query": "aspirin"})
    assert r.status_code == 401 and "X-API-Key" in r.json()["error"]
    r = c.post("/search", json={"query": "aspirin"}, headers={"X-API-Key": "nope"})
    assert r.status_code == 401 and "unknown API key" in r.json()["error"]
    assert c.get("/metrics").status_code == 401


def test_recommend(engine, tmp_path):
    c, _ = client_for(engine, tmp_path)
    r = c.get("/recommend/d1?k=2", headers=A)
    assert r.status_code == 200
    ids = [x["doc_id"] for x in r.json()["results"]]
    assert ids[0] == "d4" and "d1" not in ids and len(ids) == 2
    assert c.get("/recommend/zzz", headers=A).status_code == 404
    assert c.get("/recommend/d1?k=0", headers=A).status_code == 400


def test_caches_count_hits_and_expire(engine, tmp_path):
    c, clock = client_for(engine, tmp_path, cache_ttl=60)
    body = {"query": "vitamin bone", "k": 2}
    first = c.post("/search", json=body, headers=A).json()
    second = c.post("/search", json=body, headers=A).json()
    assert not first["cached"] and second["cached"] and first["results"] == second["results"]
    assert engine.calls == ["vitamin bone"]                      # encoded once
    c.post("/search", json={**body, "k": 3}, headers=A)            # new result, cached vector
    assert engine.calls == ["vitamin bone"]
    m = c.get("/metrics", headers=A).json()
    assert m["result_cache"]["hits"] == 1 and m["result_cache"]["misses"] == 2
    assert m["query_vector_cache"]["hits"] == 1
    clock.t = 61                                                   # TTL passed
    assert not c.post("/search", json=body, headers=A).json()["cached"]
    assert engine.calls == ["vitamin bone"] * 2


def test_cache_disabled(engine, tmp_path):
    c, _ = client_for(engine, tmp_path, cache_size=0)
    for _ in range(2):
        assert not c.post("/search", json={"query": "aspirin"}, headers=A).json()["cached"]
    assert len(engine.calls) == 2


def test_rate_limit_per_key_with_retry_after(engine, tmp_path):
    c, clock = client_for(engine, tmp_path, rate=1.0, burst=2)
    codes = [c.post("/search", json={"query": "aspirin"}, headers=A).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = c.post("/search", json={"query": "aspirin"}, headers=A)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert c.post("/search", json={"query": "aspirin"}, headers={"X-API-Key": "key-b"}).status_code == 200
    clock.t = 1.0
    assert c.post("/search", json={"query": "aspirin"}, headers=A).status_code == 200


def test_metrics_and_audit_log(engine, tmp_path):
    c, _ = client_for(engine, tmp_path)
    c.post("/search", json={"query": "aspirin stroke"}, headers=A)
    c.post("/search", json={"query": ""}, headers={"X-API-Key": "key-b"})
    m = c.get("/metrics", headers=A).json()
    ep = m["endpoints"]["/search"]
    assert ep["requests"] == 2 and ep["by_status"] == {"200": 1, "400": 1}
    assert {"p50_ms", "p95_ms", "p99_ms"} <= set(ep)
    lines = AuditLog(tmp_path / "audit.jsonl").read()
    assert [x["client"] for x in lines[:2]] == ["alice", "bob"]
    raw = (tmp_path / "audit.jsonl").read_text()
    assert "aspirin" not in raw and "key-a" not in raw               # no raw query, no key
    assert lines[0]["query_hmac"] == AuditLog(tmp_path / "x", secret=b"test").fingerprint("aspirin stroke")
    assert json.loads(raw.splitlines()[0])["n_results"] == 4


def test_ttlcache_lru_eviction():
    cache = TTLCache(maxsize=2, ttl=10, clock=Clock())
    cache.put("a", 1); cache.put("b", 2); cache.get("a"); cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.evicted == 1
    with pytest.raises(ValueError, match="maxsize"):
        TTLCache(maxsize=-1)


def test_rate_limiter_refill_matches_naive():
    clock = Clock()
    rl = RateLimiter(rate=2.0, burst=3, clock=clock)
    allowed = []
    for step in range(40):
        clock.t = step * 0.1
        allowed.append(rl.acquire("k")[0])
    # 3 burst tokens + 2/s over 3.9 s -> 3 + floor(7.8) = 10 allowed
    assert sum(allowed) == 10


def test_percentiles_match_numpy():
    x = np.random.default_rng(0).exponential(0.01, 500)
    p = percentiles(x)
    assert p["p95_ms"] == pytest.approx(np.percentile(x, 95) * 1000, abs=1e-3)
    m = Metrics()
    m.observe("/a", 200, 0.5)
    assert m.snapshot()["endpoints"]["/a"]["requests"] == 1


def test_query_mix_repeats():
    mix = query_mix([f"q{i}" for i in range(50)], n_requests=200, n_distinct=40, seed=1)
    assert len(mix) == 200 and len(set(mix)) == 40
    with pytest.raises(ValueError):
        query_mix(["a"], 5, 2)


def test_doctests():
    import doctest

    from course_utils.production.service import app, cache, engine, loadtest, metrics, security
    for module in (app, cache, engine, loadtest, metrics, security):
        assert doctest.testmod(module).failed == 0, module.__name__
