"""Capacity arithmetic for embedding and serving a corpus, from measured rates.

Every function is one formula. The rates come from a measurement (docs per second per actor,
queries per second per shard replica); the sizes from the corpus.

    >>> encode_hours(10_000_000, docs_per_second=50, workers=100)
    0.5555555555555556
"""
from __future__ import annotations

import math

__all__ = ["encode_hours", "workers_for_deadline", "vector_bytes", "shards_for_memory",
           "replicas_for_qps", "plan"]


def _positive(**values) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")


def encode_hours(n_docs: int, docs_per_second: float, workers: int = 1) -> float:
    """Hours to embed n_docs with `workers` actors of docs_per_second each: n / (rate * workers) / 3600.

    >>> encode_hours(3600, 1.0)
    1.0
    """
    _positive(n_docs=n_docs, docs_per_second=docs_per_second, workers=workers)
    return n_docs / (docs_per_second * workers) / 3600


def workers_for_deadline(n_docs: int, docs_per_second: float, hours: float) -> int:
    """Actors needed to embed n_docs within `hours`: ceil(n / (rate * hours * 3600)).

    >>> workers_for_deadline(7200, 1.0, hours=1)
    2
    """
    _positive(n_docs=n_docs, docs_per_second=docs_per_second, hours=hours)
    return math.ceil(n_docs / (docs_per_second * hours * 3600))


def vector_bytes(n_docs: int, dim: int = 384, bytes_per_vector: float | None = None,
                 id_bytes: int = 8) -> float:
    """Bytes to hold n_docs vectors: float32 (4 * dim) or `bytes_per_vector` (e.g. PQ m=48 -> 48),
    plus an int64 id each.

    >>> vector_bytes(1_000_000, 384) / 1e9
    1.544
    """
    _positive(n_docs=n_docs, dim=dim)
    per = 4 * dim if bytes_per_vector is None else bytes_per_vector
    return float(n_docs * (per + id_bytes))


def shards_for_memory(total_bytes: float, ram_per_node: float, usable: float = 0.5) -> int:
    """Shards (one per node) so each holds at most usable * ram_per_node bytes.

    >>> shards_for_memory(100e9, 64e9)
    4
    """
    _positive(total_bytes=total_bytes, ram_per_node=ram_per_node, usable=usable)
    return max(1, math.ceil(total_bytes / (ram_per_node * usable)))


def replicas_for_qps(target_qps: float, qps_per_replica: float) -> int:
    """Copies of each shard needed to answer target_qps, if one copy answers qps_per_replica.

    >>> replicas_for_qps(1000, 300)
    4
    """
    _positive(target_qps=target_qps, qps_per_replica=qps_per_replica)
    return math.ceil(target_qps / qps_per_replica)


def plan(n_docs: int, docs_per_second: float, dim: int = 384, actors_per_node: int = 16,
         deadline_hours: float = 24.0, ram_per_node: float = 64e9, pq_bytes: int = 48) -> dict:
    """One row of a capacity plan: embedding time and nodes, memory with and without PQ, shards.

    >>> plan(10_000_000, 50.0)["nodes_for_deadline"]
    1
    """
    workers = workers_for_deadline(n_docs, docs_per_second, deadline_hours)
    flat, pq = vector_bytes(n_docs, dim), vector_bytes(n_docs, dim, pq_bytes)
    return {"documents": n_docs,
            "actor_hours": encode_hours(n_docs, docs_per_second),
            "actors_for_deadline": workers,
            "nodes_for_deadline": math.ceil(workers / actors_per_node),
            "float32_GB": flat / 1e9, "pq_GB": pq / 1e9,
            "shards_float32": shards_for_memory(flat, ram_per_node),
            "shards_pq": shards_for_memory(pq, ram_per_node)}
