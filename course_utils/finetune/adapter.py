"""Parameter-efficient adaptation: a linear adapter on FROZEN embeddings.

Queries are mapped, documents are left as they are: q' = normalize(q @ W), W of shape (d, d)
starting at the identity (so the untrained adapter is the base model). Training uses the same
in-batch objective as full fine-tuning (MNRL / InfoNCE with cosine x scale, see
`course_utils.finetune.training`) on precomputed vectors, plus `reg * ||W - I||^2` to stay near the base
model. Because document vectors do not change, the index does not have to be rebuilt: only the
(cheap) query side changes -- d*d parameters, trained in seconds on the CPU.
"""
from __future__ import annotations

import time

import numpy as np

__all__ = ["train_adapter", "apply_adapter"]


def apply_adapter(query_vecs: np.ndarray, W: np.ndarray) -> np.ndarray:
    """normalize(query_vecs @ W): float32 (n, d); query_vecs (n, d) or (d,), W (d, d).

    >>> apply_adapter(np.array([[3.0, 4.0]]), np.eye(2)).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    q = np.atleast_2d(np.asarray(query_vecs, np.float32))
    W = np.asarray(W, np.float32)
    if W.ndim != 2 or W.shape[0] != q.shape[1]:
        raise ValueError(f"W must be ({q.shape[1]}, d'), got {W.shape}")
    out = q @ W
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def train_adapter(query_vecs: np.ndarray, pos_vecs: np.ndarray, neg_vecs: np.ndarray | None = None,
                  *, epochs: int = 20, batch_size: int = 32, learning_rate: float = 1e-3,
                  reg: float = 0.1, scale: float = 20.0, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Train W (d, d) so that normalize(q_i W) ranks p_i above the batch's other documents.

    query_vecs, pos_vecs (and neg_vecs, hard negatives): float arrays (n, d), row i one pair,
    all FROZEN (e.g. from the cache). Returns (W float32 (d, d), stats) with stats = {"seconds",
    "parameters", "loss_log" (mean loss per epoch)}.
    >>> rng = np.random.default_rng(0); q = rng.normal(size=(8, 4)); p = q + 0.1
    >>> W, stats = train_adapter(q, p, epochs=2, batch_size=4)
    >>> W.shape, stats["parameters"]
    ((4, 4), 16)
    """
    import torch

    q = np.asarray(query_vecs, np.float32)
    p = np.asarray(pos_vecs, np.float32)
    if q.ndim != 2 or q.shape != p.shape:
        raise ValueError(f"query_vecs and pos_vecs must both be (n, d), got {q.shape}, {p.shape}")
    if neg_vecs is not None and np.shape(neg_vecs) != q.shape:
        raise ValueError(f"neg_vecs must be {q.shape}, got {np.shape(neg_vecs)}")
    if len(q) < 2:
        raise ValueError("in-batch negatives need at least 2 pairs")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    d = q.shape[1]
    unit = torch.nn.functional.normalize
    Q, P = torch.from_numpy(q), unit(torch.from_numpy(p), dim=1)
    N = None if neg_vecs is None else unit(torch.from_numpy(np.asarray(neg_vecs, np.float32)), dim=1)
    eye = torch.eye(d)
    W = torch.nn.Parameter(eye.clone())
    opt = torch.optim.Adam([W], lr=learning_rate)
    log, start = [], time.perf_counter()
    for _ in range(epochs):
        order, total = rng.permutation(len(q)), 0.0
        for s in range(0, len(q) - 1, batch_size):
            b = torch.from_numpy(order[s:s + batch_size])
            if len(b) < 2:
                continue
            cands = P[b] if N is None else torch.cat([P[b], N[b]])
            logits = scale * unit(Q[b] @ W, dim=1) @ cands.T
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(b)))
            loss = loss + reg * ((W - eye) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        log.append(total / len(q))
    stats = {"seconds": time.perf_counter() - start, "parameters": d * d, "loss_log": log}
    return W.detach().numpy().astype(np.float32), stats
