"""Sharded exact search: FAISS shards as Ray actors, queried in parallel, top-k lists merged.

Scatter-gather: every shard returns its own top-k (scores and *global* row ids); the merge keeps
the k best of the n_shards * k candidates per query. Because each shard's top-k contains every
one of its vectors that can be in the global top-k, the merged list equals exact search over the
whole corpus (ties aside).

    >>> merge_topk([np.array([[0.9, 0.1]]), np.array([[0.5, 0.4]])],
    ...            [np.array([[3, 0]]), np.array([[7, 8]])], k=3)
    Hits(scores=array([[0.9, 0.5, 0.4]], dtype=float32), ids=array([[3, 7, 8]]))
"""
from __future__ import annotations

import numpy as np

from course_utils.search import Hits

__all__ = ["merge_topk", "split_rows", "ShardIndex", "ShardedSearch", "same_topk"]


def merge_topk(scores: list, ids: list, k: int) -> Hits:
    """Merge per-shard top-k lists into the global top-k, best first.

    scores, ids: one array per shard, each of shape (n_queries, k_shard) (FAISS's D and I, with
    global ids; id -1 = no result). Ties are broken by the smaller id. Returns Hits (n_queries, k);
    rows with fewer than k candidates are padded with score -inf and id -1, as FAISS pads.
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a whole number >= 1, got {k!r}")
    if len(scores) != len(ids) or not len(scores):
        raise ValueError(f"give one scores and one ids array per shard (got {len(scores)} and {len(ids)})")
    S = np.concatenate([np.atleast_2d(np.asarray(s, np.float32)) for s in scores], axis=1)
    I = np.concatenate([np.atleast_2d(np.asarray(i, np.int64)) for i in ids], axis=1)
    if S.shape != I.shape:
        raise ValueError(f"scores {S.shape} and ids {I.shape} do not match")
    S = np.where(I < 0, -np.inf, S)
    order = np.lexsort((I, -S), axis=1)[:, :k]          # by score desc, then id asc
    S, I = np.take_along_axis(S, order, 1), np.take_along_axis(I, order, 1)
    if S.shape[1] < k:
        pad = k - S.shape[1]
        S = np.pad(S, ((0, 0), (0, pad)), constant_values=-np.inf)
        I = np.pad(I, ((0, 0), (0, pad)), constant_values=-1)
    return Hits(S.astype(np.float32), np.where(np.isfinite(S), I, -1))


def split_rows(n: int, n_shards: int) -> list[np.ndarray]:
    """Row numbers 0..n-1 cut into `n_shards` contiguous, nearly equal parts.

    >>> [s.tolist() for s in split_rows(5, 2)]
    [[0, 1, 2], [3, 4]]
    """
    if not isinstance(n_shards, int) or not 1 <= n_shards <= max(n, 1):
        raise ValueError(f"n_shards must be a whole number 1..{n}, got {n_shards!r}")
    return np.array_split(np.arange(n), n_shards)


class ShardIndex:
    """One shard: an exact FAISS inner-product index over some rows, answering in global ids.

    Used as a Ray actor (`ray.remote(ShardIndex)`), or directly in this process.

    >>> shard = ShardIndex(np.eye(3, dtype=np.float32), np.array([10, 11, 12]))
    >>> shard.search(np.array([[0, 1, 0]], np.float32), 1)
    (array([[1.]], dtype=float32), array([[11]]))
    """

    def __init__(self, vectors, ids, threads: int = 1):
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.ids = np.asarray(ids, dtype=np.int64)
        if vectors.ndim != 2 or len(vectors) != len(self.ids):
            raise ValueError(f"vectors {vectors.shape} and ids {self.ids.shape} do not match")
        faiss.omp_set_num_threads(threads)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)

    def search(self, queries, k: int):
        """(scores, global ids), each (n_queries, min(k, shard size)), best first."""
        D, I = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, len(self.ids)))
        return D, np.where(I >= 0, self.ids[np.maximum(I, 0)], -1)

    def info(self) -> dict:
        import ray

        return {"node": ray.util.get_node_ip_address(), "size": int(len(self.ids))}


class ShardedSearch:
    """`n_shards` ShardIndex actors, spread over the cluster's nodes (one per node if pinned).

    nodes: list of node IPs to pin shard i to nodes[i % len(nodes)], or None to let Ray place them.
    `search(queries, k)` scatters the queries to every shard and merges the answers (`merge_topk`).
    """

    def __init__(self, vectors, n_shards: int = 2, nodes: list[str] | None = None):
        import ray

        vectors = np.asarray(vectors, dtype=np.float32)
        remote = ray.remote(num_cpus=0.5)(ShardIndex)  # a little CPU: they also fit beside a job
        self.parts = split_rows(len(vectors), n_shards)
        self.actors = []
        for i, rows in enumerate(self.parts):
            opts = {}
            if nodes:
                opts["resources"] = {f"node:{nodes[i % len(nodes)]}": 0.001}
            self.actors.append(remote.options(**opts).remote(vectors[rows], rows))

    def search(self, queries, k: int) -> Hits:
        import ray

        q = ray.put(np.ascontiguousarray(queries, dtype=np.float32))
        answers = ray.get([a.search.remote(q, k) for a in self.actors])
        return merge_topk([s for s, _ in answers], [i for _, i in answers], k)

    def info(self) -> list[dict]:
        import ray

        return ray.get([a.info.remote() for a in self.actors])

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors = []


def same_topk(a: Hits, b: Hits, atol: float = 1e-5) -> bool:
    """True if two top-k results agree: scores within atol, and ids equal wherever the score is
    not tied with a neighbour (tied vectors may come in either order).

    >>> h = Hits(np.array([[0.9, 0.5]], np.float32), np.array([[1, 2]]))
    >>> same_topk(h, h)
    True
    """
    sa, sb = np.asarray(a.scores, np.float64), np.asarray(b.scores, np.float64)
    if sa.shape != sb.shape or not np.allclose(sa, sb, atol=atol):
        return False
    tied = np.zeros(sa.shape, bool)
    close = np.abs(np.diff(sa, axis=1)) <= atol
    tied[:, 1:] |= close
    tied[:, :-1] |= close
    return bool(np.all((np.asarray(a.ids) == np.asarray(b.ids)) | tied))
