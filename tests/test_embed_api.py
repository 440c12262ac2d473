"""The embedding API client against the fault-injecting local server (loopback only, a stand-in
hash encoder, bounded request counts, no real waiting: the client's sleep is injected)."""

import asyncio
import random

import httpx
import numpy as np
import pytest

from course_utils.production.serving import serve_app
from course_utils.speed.embed_api import (
    EmbeddingAPIError,
    EmbeddingClient,
    FaultConfig,
    RetriesExhausted,
    backoff_delay,
    count_tokens,
    create_app,
    hash_encoder,
    token_budget_batches,
)

MODEL = "test-model"
ENC = hash_encoder(8)


async def _no_wait(seconds):
    await asyncio.sleep(0)


def _client(url, **kw):
    kw.setdefault("sleep", _no_wait)
    return EmbeddingClient(url, MODEL, **kw)


def _server(faults=None, **kw):
    return serve_app(create_app(ENC, MODEL, faults=faults, **kw))


def test_every_input_once_and_in_order_under_faults():
    texts = [f"sentence number {i}" for i in range(60)] + ["sentence number 3"]  # one duplicate
    faults = FaultConfig(share_429=0.3, share_500=0.2, retry_after=0.0, seed=1)
    with _server(faults, max_items=8) as url:
        client = _client(url, max_items=8, concurrency=4, max_retries=20)
        vectors = client.embed(texts)
        server_stats = httpx.get(f"{url}/stats").json()
    assert vectors.shape == (61, 8)
    assert np.allclose(vectors, ENC(texts), atol=1e-6)           # right vector, right row
    assert server_stats["texts_embedded"] == 60                  # nothing duplicated, nothing lost
    assert client.stats["retries"] > 0                           # faults were really injected
    assert client.stats["requests"] == server_stats["requests"] <= 8 * 21
    assert client.stats["status"][200] == 8                      # ceil(60 / 8) batches


def test_retries_are_bounded_and_raise():
    with _server(FaultConfig(share_500=1.0)) as url:
        client = _client(url, max_retries=3)
        with pytest.raises(RetriesExhausted, match="failed 4 times"):
            client.embed(["a text"])
        assert httpx.get(f"{url}/stats").json()["requests"] == 4


def test_permanent_400_is_not_retried():
    with _server(max_items=2) as url:
        client = _client(url, max_items=5, max_retries=5)        # client limit above the server's
        with pytest.raises(EmbeddingAPIError, match="HTTP 400: too many inputs"):
            client.embed(["a", "b", "c"])
        assert client.stats["requests"] == 1
        with pytest.raises(EmbeddingAPIError, match="HTTP 404"):
            EmbeddingClient(url, "no-such-model", sleep=_no_wait).embed(["a"])


def test_cache_avoids_a_second_request():
    with _server() as url:
        client = _client(url)
        first = client.embed(["x one", "x two"])
        again = client.embed(["x two", "x one"])
        assert client.stats["requests"] == 1 and client.stats["cache_hits"] == 2
        assert np.array_equal(again, first[::-1])


def test_backoff_schedule_honours_retry_after_and_caps():
    rng = random.Random(0)
    delays = [backoff_delay(a, base=1.0, cap=8.0, rng=rng) for a in range(8)]
    assert all(0 <= d <= min(8.0, 2 ** a) for a, d in enumerate(delays))
    assert backoff_delay(0, base=0.01, rng=rng, retry_after=2.0) == 2.0
    slept = []

    async def record(seconds):
        slept.append(seconds)

    with _server(FaultConfig(share_429=1.0, retry_after=0.25)) as url:
        client = _client(url, max_retries=4, base_delay=0.01, max_delay=1.0, sleep=record)
        with pytest.raises(RetriesExhausted):
            client.embed(["t"])
    assert len(slept) == 4 and all(s >= 0.25 for s in slept)     # Retry-After (ms header) honoured


def test_full_jitter_is_uniform_below_the_cap():
    rng = random.Random(1)
    draws = np.array([backoff_delay(2, base=1.0, cap=10.0, rng=rng) for _ in range(4000)])
    assert draws.max() <= 4.0 and abs(draws.mean() - 2.0) < 0.1


@pytest.mark.parametrize("max_items,max_tokens", [(1, 50), (3, 7), (10, 12), (100, 1000)])
def test_batches_respect_limits_and_cover_everything(max_items, max_tokens):
    rng = np.random.default_rng(0)
    texts = [" ".join(["w"] * int(n)) for n in rng.integers(1, 7, size=40)]
    batches = token_budget_batches(texts, max_items, max_tokens)
    assert [i for b in batches for i in b] == list(range(40))
    assert all(len(b) <= max_items for b in batches)
    assert all(sum(count_tokens(texts[i]) for i in b) <= max_tokens for b in batches)


def test_batches_reject_a_text_over_the_token_limit():
    with pytest.raises(ValueError, match="chunk it first"):
        token_budget_batches(["one two three"], max_items=4, max_tokens=2)


def test_client_batches_never_exceed_server_limits():
    texts = [f"{'word ' * (i % 9)}end {i}" for i in range(50)]
    with _server(max_items=4, max_tokens=20) as url:
        client = _client(url, max_items=4, max_tokens=20)
        vectors = client.embed(texts)                             # a 400 would raise
    assert vectors.shape == (50, 8) and client.stats["status"].keys() == {200}


def test_rate_limit_spaces_requests():
    waits = []

    async def record(seconds):
        waits.append(seconds)

    with _server() as url:
        client = _client(url, max_items=1, concurrency=1, requests_per_second=5.0, sleep=record)
        client.embed(["a", "b", "c", "d"])
    # the sleep is fake, so the i-th request is scheduled (i * 0.2) s after the first
    assert len(waits) == 3
    assert all(abs(w - 0.2 * (i + 1)) < 0.1 for i, w in enumerate(waits))


def test_token_and_cost_counting():
    with _server() as url:
        client = _client(url, price_per_million_tokens=0.02)
        client.embed(["Hello, world!", "two words"])
    assert client.stats["tokens"] == 4 + 2
    assert client.cost == pytest.approx(6 * 0.02 / 1e6)


def test_openai_sdk_parses_base64_and_float():
    import openai
    with _server() as url:
        sdk = openai.OpenAI(base_url=f"{url}/v1", api_key="local-key", max_retries=0)
        result = sdk.embeddings.create(model=MODEL, input=["alpha", "beta"])  # base64 by default
        floats = sdk.embeddings.create(model=MODEL, input="alpha", encoding_format="float")
    assert np.allclose([d.embedding for d in result.data], ENC(["alpha", "beta"]), atol=1e-6)
    assert np.allclose(floats.data[0].embedding, result.data[0].embedding)
    assert result.usage.total_tokens == 2


def test_fault_config_validates():
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultConfig(share_429=1.5)
    with pytest.raises(ValueError, match="must not exceed 1"):
        FaultConfig(share_429=0.6, share_500=0.6)
