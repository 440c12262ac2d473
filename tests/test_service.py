"""The search service: status codes, validation messages, caches, rate limit, audit log, metrics."""
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from course_utils.lexical.bm25 import BM25
from course_utils.production.service import SearchEngine, Settings, TTLCache, create_app, query_mix
from course_utils.production.service.metrics import Metrics, percentiles
from course_utils.production.service.security import AuditLog, KeyStore, RateLimiter
from course_utils.runs import trec_order
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
    assert r.status_code == 401 and "unknown or expired API key" in r.json()["error"]
    assert c.get("/metrics").status_code == 401


def test_docs_need_no_key(engine, tmp_path):
    c, _ = client_for(engine, tmp_path)
    assert c.get("/docs").status_code == 200 and c.get("/openapi.json").status_code == 200
    assert "/search" in c.get("/openapi.json").json()["paths"]
    assert c.post("/search", json={"query": "aspirin"}).status_code == 401


def test_failed_authentications_are_audited_and_limited(engine, tmp_path):
    c, clock = client_for(engine, tmp_path, auth_fail_rate=0.5, auth_fail_burst=3)
    bad = {"X-API-Key": "guess"}
    codes = [c.post("/search", json={"query": "aspirin"}, headers=bad).status_code for _ in range(3)]
    assert codes == [401] * 3
    r = c.post("/search", json={"query": "aspirin"}, headers=bad)
    assert r.status_code == 429 and r.headers["Retry-After"] == "2" and "failed authentications" in r.json()["error"]
    assert c.post("/search", json={"query": "aspirin"}, headers=A).status_code == 429   # not even checked
    clock.t = 2.0                                                  # one failure forgiven
    assert c.post("/search", json={"query": "aspirin"}, headers=A).status_code == 200
    lines = AuditLog(tmp_path / "audit.jsonl").read()
    assert [x["status"] for x in lines] == [401, 401, 401, 429, 429, 200]
    assert all(x["client"] == "unauthenticated" and x["address"] == "testclient" for x in lines[:5])
    assert lines[0]["reason"].startswith("unknown or expired") and "guess" not in (tmp_path / "audit.jsonl").read_text()


def test_key_store_keeps_salted_hashes_only(tmp_path):
    ks = KeyStore()
    key = ks.issue("alice")
    twin = ks.add(key, "alice-again")                              # same key, another salt
    ks.save(tmp_path / "keys.json")
    text = (tmp_path / "keys.json").read_text()
    assert key not in text and key[3:20] not in text
    rows = {r.key_id: r for r in ks.records()}
    assert rows[twin].sha256 != [r for r in rows.values() if r.key_id != twin][0].sha256
    again = KeyStore.load(tmp_path / "keys.json")
    assert again.verify(key).client in {"alice", "alice-again"} and again.verify(key + "x") is None
    with pytest.raises(ValueError, match="non-empty"):
        ks.add("  ", "bob")


def test_key_rotation_with_grace_window(engine, tmp_path):
    now = Clock()
    ks = KeyStore(clock=now)
    old = ks.issue("alice")
    app = create_app(engine, Settings(key_store=ks, clock=now))
    c = TestClient(app)
    new = ks.rotate("alice", grace=30)
    now.t = 29
    assert [c.post("/search", json={"query": "aspirin"}, headers={"X-API-Key": k}).status_code
            for k in (old, new)] == [200, 200]
    now.t = 31
    assert [c.post("/search", json={"query": "aspirin"}, headers={"X-API-Key": k}).status_code
            for k in (old, new)] == [401, 200]
    with pytest.raises(KeyError, match="no valid key"):
        ks.rotate("nobody")
    with pytest.raises(ValueError, match="not both"):
        create_app(engine, Settings(api_keys={"k": "a"}, key_store=ks))


ACCESS = {"d1": "public", "d2": "public", "d3": "clinical", "d4": "clinical"}


@pytest.fixture
def guarded(engine):
    store = VectorStore("toy-bow", len(VOCAB))
    ids = list(DOCS)
    store.add(ids, np.stack([toy_encode(DOCS[d]) for d in ids]), [{"access": ACCESS[d]} for d in ids])
    return SearchEngine(store, toy_encode, DOCS, bm25=BM25().fit([DOCS[d] for d in ids]), bm25_ids=ids,
                        reranker=engine.reranker, depth=4, rerank_depth=4)


@pytest.mark.parametrize("mode, rerank", [("dense", False), ("bm25", False), ("hybrid", False), ("hybrid", True)])
def test_access_groups_filter_before_ranking(guarded, mode, rerank):
    ks = KeyStore()
    everyone, public = ks.issue("staff"), ks.issue("guest", groups={"public"})
    c = TestClient(create_app(guarded, Settings(key_store=ks)))
    body = {"query": "aspirin stomach bleeding stroke", "k": 2, "mode": mode, "rerank": rerank}
    staff = [x["doc_id"] for x in c.post("/search", json=body, headers={"X-API-Key": everyone}).json()["results"]]
    guest = [x["doc_id"] for x in c.post("/search", json=body, headers={"X-API-Key": public}).json()["results"]]
    assert "d4" in staff                                      # the best answer is a clinical document...
    assert guest and all(ACCESS[d] == "public" for d in guest)   # ...never shown to a guest, not from the cache
    if mode != "bm25":                                        # filtered before ranking: k public results
        assert len(guest) == 2


def test_access_groups_in_recommend(guarded):
    ks = KeyStore()
    public = {"X-API-Key": ks.issue("guest", groups={"public"})}
    c = TestClient(create_app(guarded, Settings(key_store=ks)))
    assert c.get("/recommend/d3", headers=public).status_code == 404    # as if it did not exist
    ids = [x["doc_id"] for x in c.get("/recommend/d1?k=3", headers=public).json()["results"]]
    assert ids == ["d2"]
    assert guarded.search("aspirin", 4, groups={"clinical"})[0]["doc_id"] in {"d3", "d4"}
    with pytest.raises(ValueError, match="'owner' metadata column"):
        SearchEngine(guarded.store, toy_encode, DOCS, access_field="owner").search("aspirin", 2, groups={"x"})


def test_second_stage_interpolated_like_the_package(guarded):
    from course_utils.hybrid.fusion import convex_fusion
    from course_utils.rerank.stage import interpolate, rerank_with

    eng = SearchEngine(guarded.store, toy_encode, DOCS, bm25=guarded.bm25, bm25_ids=guarded.bm25_ids,
                       reranker=guarded.reranker, depth=4, rerank_depth=3, alpha=0.4, rerank_weight=0.3)
    q = "aspirin bleeding stomach"
    first = {"q": convex_fusion({"q": eng.dense(toy_encode(q), 4)}, {"q": eng.lexical(q, 4)}, 0.4)["q"]}
    expected = interpolate(first, rerank_with(first, {"q": q}, DOCS, guarded.reranker, 3), 0.3, 3)["q"]
    got = eng.search(q, 3, "hybrid", rerank=True)
    assert [x["doc_id"] for x in got] == trec_order(expected)[:3]
    assert [x["score"] for x in got] == pytest.approx([expected[d] for d in trec_order(expected)[:3]], abs=1e-6)
    plain = SearchEngine(guarded.store, toy_encode, DOCS, bm25=guarded.bm25, bm25_ids=guarded.bm25_ids,
                         reranker=guarded.reranker, depth=4, rerank_depth=3, alpha=0.4, rerank_weight=0.0)
    assert [x["doc_id"] for x in plain.search(q, 3, "hybrid", rerank=True)] == trec_order(first["q"])[:3]
    with pytest.raises(ValueError, match="rerank_weight"):
        SearchEngine(guarded.store, toy_encode, DOCS, rerank_weight=2)


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
