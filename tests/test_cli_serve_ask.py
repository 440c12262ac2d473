"""`course-utils serve` answered with a real HTTP client and always stopped; `course-utils ask`
with the extractive baseline, SmolLM2 (a few dozen tokens) and an OpenAI-compatible endpoint."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils.tools.cli import main
from course_utils.tools.cli_serve import parse_api_keys

GUIDE = """# Speed guide

Some words before the real content, about nothing in particular.

## Batching

Embedding generation is faster when texts are encoded in batches: the model processes a batch
of 32 sentences in one forward pass, so the time per sentence drops. Sort texts by length so
that a batch holds texts of similar length and little padding is wasted.

## Caching

An embedding cache keyed by the text's hash means a text is encoded once per model, ever.
"""
PETS = "# Pets\n\nCats purr when they are content. Dogs bark at strangers.\n"


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """Collection 'guide' of two small Markdown files; returns (env, root)."""
    work = tmp_path_factory.mktemp("serve_ask")
    folder = work / "docs"
    folder.mkdir()
    (folder / "guide.md").write_text(GUIDE)
    (folder / "pets.md").write_text(PETS)
    env = {**os.environ, "COURSE_CACHE": str(work / "cache"), "COURSE_COLLECTIONS": str(work / "root"),
           "COURSE_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "course_utils.tools.cli", "embed", str(folder),
                          "-c", "guide", "--quiet"], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return env, work


def test_api_keys_from_a_file_or_the_environment(tmp_path, monkeypatch):
    from course_utils.tools.cli_serve import API_KEYS_ENV, read_api_keys

    assert parse_api_keys("k1:alice,k2") == {"k1": "alice", "k2": "client-2"}
    monkeypatch.setenv(API_KEYS_ENV, "k9:zoe")
    assert read_api_keys(None) == {"k9": "zoe"}
    (tmp_path / "keys.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="holds no API keys"):
        read_api_keys(tmp_path / "keys.txt")


def test_serve_refuses_a_port_in_use_and_an_open_host_without_keys(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("COURSE_API_KEYS", raising=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "anything", "--port", str(port), "--root", str(tmp_path)]) == 1
    assert f"port {port} on 127.0.0.1 is already in use" in capsys.readouterr().err
    assert main(["serve", "anything", "--host", "0.0.0.0", "--root", str(tmp_path)]) == 1
    assert "--api-keys" in capsys.readouterr().err


@pytest.mark.model
def test_serve_answers_real_http_requests_and_stops(collection, tmp_path):
    import httpx

    env, _ = collection
    (tmp_path / "keys.txt").write_text("test-key-1 alice\ntest-key-2 bob\n")
    proc = subprocess.Popen([sys.executable, "-m", "course_utils.tools.cli", "serve", "guide",
                             "--port", "0", "--api-keys", str(tmp_path / "keys.txt"), "--rate", "1",
                             "--burst", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        line = proc.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+)", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None else "")
        url, key = match.group(1), {"X-API-Key": "test-key-1"}
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(100):  # the server binds after the line is printed
                try:
                    health = client.get("/health")
                    break
                except httpx.ConnectError:
                    import time
                    time.sleep(0.1)
            assert health.status_code == 200 and health.json()["documents"] >= 3
            assert client.post("/search", json={"query": "batch"}).status_code == 401
            found = client.post("/search", headers=key, json={"query": "how do I speed up embedding "
                                "generation with batching", "k": 2, "mode": "hybrid"})
            assert found.status_code == 200, found.text
            top = found.json()["results"][0]
            assert top["doc_id"] == "guide.md" and top["heading"] == "Speed guide > Batching"
            assert GUIDE[top["start"]:top["end"]] == top["text"] and top["passage_id"].startswith("guide.md#")
            assert "/search" in client.get("/openapi.json", headers=key).json()["paths"]
            codes = [client.post("/search", headers=key, json={"query": "cats"}).status_code
                     for _ in range(4)]
            assert 429 in codes  # burst of 3, 1 request/s
            metrics = client.get("/metrics", headers={"X-API-Key": "test-key-2"}).json()
            assert "/search" in json.dumps(metrics)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 0


def _ask(collection, monkeypatch, capsys, *args) -> dict:
    """`course-utils ask guide ARGS --format json` in this process."""
    env, work = collection
    monkeypatch.setenv("COURSE_CACHE", env["COURSE_CACHE"])
    code = main(["ask", "guide", *args, "--format", "json", "--root", str(work / "root")])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.err == "", out.err  # no progress bars, no warnings
    return json.loads(out.out)


def _check_citations(result: dict) -> None:
    """Every cited number is a source shown with its document and location."""
    ids = {s["id"]: s for s in result["sources"]}
    assert result["invalid_citations"] == [] and set(result["citations"]) <= set(ids)
    for s in ids.values():
        text = (GUIDE if s["doc_id"] == "guide.md" else PETS)[s["start"]:s["end"]]
        assert text == s["text"] and s["passage_id"] == f"{s['doc_id']}#{s['passage_id'].split('#')[1]}"
        assert s["cited"] == (s["id"] in result["citations"])


QUESTION = "How do I speed up embedding generation?"


@pytest.mark.model
def test_ask_extractive_cites_the_passage_that_answers(collection, monkeypatch, capsys):
    result = _ask(collection, monkeypatch, capsys, QUESTION, "--generator", "extractive")
    _check_citations(result)
    assert result["citations"] and result["sources"][0]["heading"] == "Speed guide > Batching"
    cited = [s for s in result["sources"] if s["cited"]]
    assert any("batch" in s["text"] for s in cited)


@pytest.mark.model
def test_ask_with_the_local_smollm2_gives_valid_citations(collection, monkeypatch, capsys):
    result = _ask(collection, monkeypatch, capsys, QUESTION, "--max-new-tokens", "32",
                  "--generator", "local", "-k", "3")
    assert result["generator"] == "SmolLM2-135M-Instruct" and 0 < result["new_tokens"] <= 32
    # a 135M model does not always cite (its greedy output changes with the thread count): what it
    # cites must be a shown source; the extractive and endpoint tests below require a citation
    assert result["answer"].strip()
    shown = {s["id"] for s in result["sources"]}
    assert set(result["invalid_citations"]) == set(result["citations"]) - shown   # flagged, never shown as valid


def test_ask_through_an_openai_compatible_endpoint(collection, monkeypatch, capsys):
    """A stand-in chat server on loopback: the answer's [n] must point at a shown source."""
    from fastapi import FastAPI

    from course_utils.production.serving import serve_app

    env, work = collection
    app, seen = FastAPI(), {}

    @app.post("/v1/chat/completions")
    def chat(body: dict):
        seen.update(body)
        return {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "Encode in batches [1]."}}],
                "usage": {"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55}}

    with serve_app(app) as url:
        monkeypatch.setenv("COURSE_LLM_BASE_URL", f"{url}/v1")
        monkeypatch.setenv("COURSE_LLM_MODEL", "stand-in")
        monkeypatch.setenv("COURSE_CACHE", env["COURSE_CACHE"])
        code = main(["ask", "guide", QUESTION, "--mode", "bm25", "--root", str(work / "root")])
    out = capsys.readouterr().out
    assert code == 0 and seen["model"] == "stand-in" and seen["temperature"] == 0
    assert "Question: " + QUESTION in seen["messages"][0]["content"]
    assert "Encode in batches [1]." in out and "(cited)" in out
    first = out.split("Sources")[1].splitlines()[1]
    assert first.startswith("  [1] guide.md § Speed guide > Batching, chars ") and "(cited)" in first


def test_the_readme_shows_the_commands():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Your own documents")[1].split("\n## ")[0]
    for command in ("course-utils embed", "--chunker", "course-utils search", "--group-by document",
                    "course-utils serve", "course-utils ask", "COURSE_LLM_BASE_URL", "COURSE_API_KEYS"):
        assert command in section, command
