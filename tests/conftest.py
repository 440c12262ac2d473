"""Shared fixtures: a tiny fake encoder (no model needed), an isolated cache, the real model."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest


class FakeEncoder:
    """Deterministic stand-in for a SentenceTransformer: a vector from the text's hash.

    Counts how many texts it was asked to encode, so cache tests can prove nothing is re-encoded.
    """

    course_model_id = "fake-encoder"
    max_seq_length = 16

    def __init__(self, dim: int = 8):
        self.dim = dim
        self.calls = 0

    def encode(self, texts, batch_size=32, show_progress_bar=False, convert_to_numpy=True, **_):
        self.calls += len(texts)
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[: self.dim], np.uint8) for t in texts]
        return np.stack(rows).astype(np.float32) - 127.5

    def get_embedding_dimension(self):
        return self.dim


@pytest.fixture
def fake_model():
    return FakeEncoder()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own embedding cache and data home (never the user's)."""
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "data-home"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def minilm():
    from course_utils.models import load_model

    return load_model(threads=1)
