"""Embedding through an API: a local server in the shape of the hosted embedding APIs (with fault
injection) and a client that batches, retries, rate-limits, runs requests concurrently, counts
tokens and cost, and caches. Chapter 10; everything stays on 127.0.0.1.

>>> from course_utils.speed.embed_api import create_app, EmbeddingClient    # doctest: +SKIP
"""

from .client import (
                     EmbeddingAPIError,
                     EmbeddingClient,
                     MemoryCache,
                     RetriesExhausted,
                     backoff_delay,
                     count_tokens,
                     token_budget_batches,
)
from .server import FaultConfig, create_app, hash_encoder

__all__ = ["EmbeddingAPIError", "EmbeddingClient", "MemoryCache", "RetriesExhausted",
           "backoff_delay", "count_tokens", "token_budget_batches", "FaultConfig", "create_app",
           "hash_encoder"]
