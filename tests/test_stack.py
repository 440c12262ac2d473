"""The deployment stack: nginx + uvicorn replicas + Redis on loopback, faults under load, nothing left.

Unit tests for the parts (breaker, cache key, metrics, configs, the replica app in-process), then
one end-to-end test that starts the real stack (2 replicas, nginx, Redis), kills a replica and
stops Redis during a load, injects an encoder failure, and checks nothing is left running.
A hashing encoder stands in for the model: these tests are about the stack, not the embeddings.
"""
import shutil
import socket
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from course_utils.production.serving import free_port
from course_utils.production.stack import (
    DEGRADED_HEADER,
    CircuitBreaker,
    RedisCache,
    ServiceMetrics,
    Stack,
    create_replica_app,
    delta,
    hashing_encoder,
    histogram_quantile,
    load_during,
    load_engine,
    nginx_config,
    read_bundle_info,
    redis_config,
    search_cache_key,
    summarise,
    write_bundle,
)
from course_utils.production.stack.prom_metrics import parse_exposition

WORDS = ("aspirin stroke vitamin bone statin cholesterol insulin diabetes tumour gene protein cell "
         "virus vaccine sleep memory").split()
DOCS = {f"d{i}": " ".join(WORDS[(i * j) % len(WORDS)] for j in range(1, 6)) for i in range(60)}
QUERIES = [f"{a} {b}" for a in WORDS[:8] for b in WORDS[8:]]
needs_servers = pytest.mark.skipif(not (shutil.which("nginx") or shutil.which("/usr/sbin/nginx"))
                                   or not shutil.which("redis-server"),
                                   reason="needs Debian's nginx and redis-server (apt-get install nginx redis-server)")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    enc = hashing_encoder(64)
    ids = list(DOCS)
    write_bundle(folder, ids, [DOCS[d] for d in ids], np.stack([enc(DOCS[d]) for d in ids]), "hashing-64")
    return folder


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_breaker_state_machine():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=3, reset_timeout=5, slow_call_s=1.0, clock=clock)
    for _ in range(2):
        assert b.allow(); b.record(False)
    assert b.state == "closed"
    assert b.allow(); b.record(True, 2.0)            # slow = failure: 3 in a row
    assert b.state == "open" and not b.allow() and b.refused == 1
    clock.t = 5.0
    assert b.allow() and b.state == "half_open"
    assert not b.allow()                             # one trial at a time
    b.record(False)
    assert b.state == "open" and b.opened == 2
    clock.t = 10.0
    assert b.allow(); b.record(True, 0.1)
    assert b.state == "closed" and [s for _, s in b.transitions] == ["open", "half_open", "open", "half_open", "closed"]


def test_breaker_call_falls_back_and_errors_are_clear():
    b = CircuitBreaker(failure_threshold=1, reset_timeout=60)

    def boom():
        raise OSError("down")

    assert b.call(boom, fallback=lambda: "bm25") == "bm25" and b.state == "open"
    assert b.call(lambda: "dense", fallback=lambda: "bm25") == "bm25"
    with pytest.raises(RuntimeError, match="circuit open"):
        b.call(lambda: 1)
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0)


def test_cache_key_changes_with_collection_and_model_not_with_spaces():
    k = search_cache_key("aspirin", 10, "hybrid", collection="c1", model="m1")
    assert k == search_cache_key("  aspirin ", 10, "hybrid", collection="c1", model="m1")
    assert len({k, search_cache_key("aspirin", 10, "hybrid", collection="c2", model="m1"),
                search_cache_key("aspirin", 10, "hybrid", collection="c1", model="m2"),
                search_cache_key("aspirin", 5, "hybrid", collection="c1", model="m1"),
                search_cache_key("aspirin", 10, "bm25", collection="c1", model="m1")}) == 5


def test_redis_cache_down_is_a_miss_not_an_error():
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", ttl=10)
    assert cache.lookup("k") == (None, "error") and cache.put("k", [1]) is False
    assert cache.stats()["errors"] == 2
    with pytest.raises(ValueError, match="ttl"):
        RedisCache("redis://127.0.0.1:1/0", ttl=0)


def test_histogram_quantile_interpolates_like_prometheus():
    # 100 observations uniform in (0, 1]: buckets every 0.1 -> the quantiles are exact
    buckets = [(round(0.1 * i, 1), 10 * i) for i in range(1, 11)] + [(float("inf"), 100)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.5)
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.95)
    assert histogram_quantile(0.99, [(1.0, 90), (float("inf"), 100)]) == 1.0     # beyond the last bound
    assert np.isnan(histogram_quantile(0.5, [(float("inf"), 0)]))


def test_metrics_exposition_parses_and_summarises():
    m = ServiceMetrics()
    before = parse_exposition(m.exposition()[0].decode())
    for ms in (3, 7, 15, 30):
        m.observe("/search", 200, ms / 1000)
    m.observe("/search", 503, 0.001)
    m.cache.labels("hit").inc(3); m.cache.labels("miss").inc()
    after = parse_exposition(m.exposition()[0].decode())
    s = summarise([delta(before, after)], seconds=2.0)
    assert s["endpoints"]["/search"]["requests"] == 5 and s["endpoints"]["/search"]["errors"] == 1
    assert s["endpoints"]["/search"]["rate_per_s"] == 2.5 and s["cache_hit_rate"] == 0.75
    assert 2 <= s["endpoints"]["/search"]["p50_ms"] <= 10
    assert m.exposition()[1].startswith("text/plain")


def test_configs_are_loopback_only_and_say_what_they_promise(tmp_path):
    conf = nginx_config(["127.0.0.1:8001", "127.0.0.1:8002"], 8080, tmp_path, max_fails=2, tries=3)
    for words in ("listen 127.0.0.1:8080;", "server 127.0.0.1:8002 max_fails=2 fail_timeout=5s;",
                  "proxy_next_upstream error timeout http_502 http_503 http_504;",
                  "proxy_next_upstream_tries 3;", "daemon off;", "location /admin/ { return 404; }"):
        assert words in conf
    assert "non_idempotent" not in conf and "/etc/nginx" not in conf and "/var/" not in conf
    with pytest.raises(ValueError, match="loopback"):
        nginx_config(["0.0.0.0:8001"], 8080, tmp_path)
    with pytest.raises(ValueError, match="empty"):
        nginx_config([], 8080, tmp_path)
    rc = redis_config(6390, tmp_path, maxmemory_mb=16)
    assert "bind 127.0.0.1" in rc and 'save ""' in rc and "maxmemory 16mb" in rc and "allkeys-lru" in rc


def test_bundle_round_trip_and_clear_errors(bundle, tmp_path):
    info = read_bundle_info(bundle)
    assert info["documents"] == 60 and info["model_version"] == "hashing-64" and len(info["collection_version"]) == 12
    engine = load_engine(bundle)
    assert engine.search("aspirin stroke", 3, "hybrid")[0]["doc_id"] in DOCS
    with pytest.raises(FileNotFoundError, match="not a bundle"):
        read_bundle_info(tmp_path)
    with pytest.raises(ValueError, match="one text and one vector"):
        write_bundle(tmp_path / "b", ["a"], ["x", "y"], np.ones((1, 4), np.float32), "hashing-4")


def test_replica_health_ready_degrade_and_cache_down(bundle):
    info = read_bundle_info(bundle)
    down = RedisCache(f"redis://127.0.0.1:{free_port()}/0", ttl=10)
    app = create_replica_app(lambda: load_engine(bundle), info, name="t1", cache=down, faults=True,
                             breaker=CircuitBreaker(failure_threshold=2, reset_timeout=60), startup_delay_s=0.5)
    with TestClient(app) as c:
        assert c.get("/health").status_code == 200
        assert c.get("/ready").status_code == 503 and c.get("/search", params={"q": "aspirin"}).status_code == 503
        deadline = time.monotonic() + 30
        while c.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        r = c.get("/search", params={"q": "aspirin stroke", "k": 3})
        assert r.status_code == 200 and r.headers["x-cache"] == "error" and r.headers["x-search-mode"] == "hybrid"
        assert c.post("/search", json={"q": "aspirin", "k": 0}).status_code == 400
        c.post("/admin/faults", json={"encoder_fail": True})
        for _ in range(3):
            r = c.get("/search", params={"q": "vitamin bone", "k": 3})
            assert r.status_code == 200 and r.headers["x-degraded"] == DEGRADED_HEADER and r.json()["results"]
        assert app.state.breaker.state == "open"
        text = c.get("/metrics").text
        assert 'search_encoder_breaker{search_encoder_breaker="open"} 1.0' in text
        assert 'search_degraded_total{reason="encoder"} 3.0' in text


def _closed(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@needs_servers
def test_stack_survives_a_killed_replica_and_redis_stopped_under_load(bundle):
    queries = [QUERIES[i % 24] for i in range(400)]                 # a repeated-query mix
    with Stack(bundle, replicas=2, redis=True, faults=True) as stack:
        assert "max_fails=1" in stack.nginx_conf and len(stack.replica_urls) == 2
        import httpx
        assert httpx.get(f"{stack.url}/admin/faults").status_code == 404       # hidden by the balancer
        summary, records, fired = load_during(stack.url, queries, concurrency=4, timeout=10,
                                              events=[(130, "kill r1", lambda: stack.kill_replica(0)),
                                                      (260, "stop redis", stack.stop_redis)])
        failed = sum(r["status"] != 200 for r in records)
        budget = 4                                                   # at most the requests in flight at the kill
        assert [name for name, _ in fired] == ["kill r1", "stop redis"]
        assert summary["requests"] == 400 and failed <= budget, summary
        after_kill = [r for r in records if r["t"] > fired[0][1]]   # started once r1 was dead
        assert after_kill and all(r["replica"] == "r2" for r in after_kill if r["status"] == 200)
        assert any(r["cache"] == "hit" for r in records) and records[-1]["cache"] == "error"
        httpx.post(f"{stack.replica_urls[1]}/admin/faults", json={"encoder_fail": True})
        answers = [httpx.get(f"{stack.url}/search", params={"q": q}) for q in QUERIES[24:30]]
        assert all(a.status_code == 200 and a.headers.get("x-degraded") == DEGRADED_HEADER for a in answers)
        ports = dict(stack.ports)
    assert stack.leftovers() == [] and all(_closed(p) for p in ports.values())


def test_run_load_counts_requests_without_an_answer_and_bounds_time():
    from course_utils.production.service import run_load

    records = []
    out = run_load(f"http://127.0.0.1:{free_port()}", ["a"] * 5, concurrency=2, method="GET", records=records, timeout=1)
    assert out["status"] == {0: 5} and out["requests"] == 5 and len(records) == 5 and records[0]["replica"] is None
    with pytest.raises(ValueError, match="method"):
        run_load("http://127.0.0.1:1", ["a"], method="PUT")


ORPHAN_SCRIPT = """
import json, sys, time
import numpy as np
from course_utils.production.stack import Stack, hashing_encoder, write_bundle
enc = hashing_encoder(16)
docs = [f"doc {i} word{i % 7}" for i in range(20)]
write_bundle(sys.argv[1], [f"d{i}" for i in range(20)], docs, np.stack([enc(t) for t in docs]), "hashing-16")
stack = Stack(sys.argv[1], replicas=2, folder=sys.argv[1] + "-stack").start()   # under tmp_path: a killed parent cannot delete it
print(json.dumps({"sessions": sorted(stack._sessions), "ports": list(stack.ports.values())}), flush=True)
time.sleep(120)
"""


@needs_servers
def test_a_killed_parent_leaves_no_server_behind(tmp_path):
    import json
    import os
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", ORPHAN_SCRIPT, str(tmp_path / "b")], stdout=subprocess.PIPE, text=True)
    try:
        started = json.loads(proc.stdout.readline())
    finally:
        os.kill(proc.pid, signal.SIGKILL)              # no atexit, no finally: only the kernel can clean up
        proc.wait()

    def alive():
        return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                if _session_of(pid) in started["sessions"]]

    deadline = time.monotonic() + 20
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive() == [] and all(_closed(p) for p in started["ports"])


def _session_of(pid):
    try:
        text = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return None if fields[0] == "Z" else int(fields[3])
