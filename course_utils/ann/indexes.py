"""Approximate nearest-neighbour (ANN) indexes built from FAISS factory strings.

One way to build any index the course teaches, with the checks FAISS leaves to the user:

    index = build_index("IVF256,PQ48np", vectors)        # trains on a seeded sample, then adds
    hits = search(index, queries, k=10, nprobe=16)       # Hits, best first (course_utils.search.exact)
    neighbour_recall(hits, exact_hits, k=10)                   # share of the true top-10 found

Decisions:
- Metric: inner product on L2-normalised vectors (= cosine) for every family FAISS 1.15 supports
  it for (Flat, IVF-*, PQ, OPQ, SQ, HNSW-Flat/SQ). FAISS builds LSH only with METRIC_L2 and
  searches its binary codes by Hamming distance; on unit vectors ‖a−b‖² = 2 − 2·cos, so the L2
  order is the cosine order and recall stays comparable. For such indexes `search` returns
  scores = −distance, so Hits stay "higher is better".
- A factory whose built index ignores the metric (FAISS's "HNSW32_PQ16" silently uses L2) raises.
- Training: on `train` or a seeded sample of the vectors (at most `max_train`). Too few training
  vectors raise instead of FAISS's warning: k-means wants >= 39 points per centroid (FAISS's own
  `min_points_per_centroid`), for the IVF coarse quantiser (nlist centroids) and for each PQ
  sub-quantiser (2^nbits centroids) alike.
- Threads: FAISS defaults to every core; on a shared 2-core machine that is slower, so
  `build_index` uses `models.default_threads()` (COURSE_THREADS) via `faiss_threads`, and
  `ann_sweep.sweep` measures with one thread (as ann-benchmarks does). `search` uses FAISS's
  current setting: wrap it in `faiss_threads(n)` or call `faiss.omp_set_num_threads`.
- PQ codes are written 'PQ48np': without 'np' FAISS also runs polysemous training, which the
  course never uses and which makes building ~25x slower.
"""
from __future__ import annotations

import contextlib
import math

import faiss
import numpy as np

from course_utils.ann.sizing import FAMILIES, MIN_POINTS_PER_CENTROID, family, min_train, parse_factory
from course_utils.search.exact import search  # re-exported: one search for every index
from course_utils.search.hits import Hits, as_matrix, check_dims, warn_if_unnormalized

__all__ = ["FAMILIES", "parse_factory", "family", "min_train", "nlist_range", "build_index",
           "set_search_params", "search", "neighbour_recall", "index_bytes", "faiss_threads",
           "clustered_data"]


def nlist_range(n: int) -> tuple[int, int]:
    """FAISS guidelines: nlist between 4·√n and 16·√n inverted lists for n vectors.

    >>> nlist_range(1_000_000)
    (4000, 16000)
    """
    return int(4 * math.sqrt(n)), int(16 * math.sqrt(n))


@contextlib.contextmanager
def faiss_threads(n: int | None = None):
    """Run the block with FAISS using `n` OpenMP threads (None: COURSE_THREADS / core count)."""
    from course_utils.models.loading import default_threads

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(default_threads() if n is None else int(n))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def build_index(factory: str, vectors, train=None, *, max_train: int = 100_000, seed: int = 0,
                threads: int | None = None, **build_params) -> faiss.Index:
    """Create, train (if needed) and fill a FAISS index; vectors float32 (n, d), L2-normalised.

    train: training vectors (m, d); None trains on a seeded sample of `vectors` (<= max_train).
    build_params: efConstruction (HNSW graph quality, default 40), opq_niter (OPQ rotation
    iterations, default 50: slow) and opq_max_train (OPQ training sample, default 65,536).
    Write PQ codes as 'PQ48np': without 'np' FAISS also runs polysemous training (a code
    re-ordering for Hamming pre-filtering the course never uses), ~25x slower to build.
    Labels are row positions in `vectors`.

    >>> x = clustered_data(4000, 10, d=16)[0]
    >>> build_index("IVF16,Flat", x).ntotal, build_index("HNSW8", x, efConstruction=80).hnsw.efConstruction
    (4000, 80)
    """
    v = as_matrix(vectors, "vectors", allow_1d=False)
    warn_if_unnormalized(v, "vectors")
    p = parse_factory(factory)
    index = _create(factory, v.shape[1], p)
    _set_build_params(index, factory, build_params)
    with faiss_threads(threads):
        if not index.is_trained:
            index.train(_training_set(factory, v, train, max_train, seed))
        index.add(v)
    return index


def _set_build_params(index: faiss.Index, factory: str, params: dict) -> None:
    inner = faiss.downcast_index(index)
    while isinstance(inner, faiss.IndexRefine):  # ',RFlat' wraps the index being built
        inner = faiss.downcast_index(inner.base_index)
    for name, value in params.items():
        if name == "efConstruction" and hasattr(inner, "hnsw"):
            inner.hnsw.efConstruction = int(value)
        elif name in ("opq_niter", "opq_max_train") and isinstance(inner, faiss.IndexPreTransform):
            opq = faiss.downcast_VectorTransform(inner.chain.at(0))
            if name == "opq_niter":  # also caps the first codebook k-means (FAISS: 40 iterations)
                opq.niter, opq.niter_pq_0 = int(value), min(opq.niter_pq_0, int(value))
            elif int(value) < MIN_POINTS_PER_CENTROID * 256:  # OPQ trains 8-bit codebooks
                raise ValueError(f"opq_max_train={value} is below {MIN_POINTS_PER_CENTROID * 256} "
                                 "(39 per centroid of OPQ's 256-centroid codebooks)")
            else:
                opq.max_train_points = int(value)
        else:
            raise ValueError(f"build parameter {name!r} does not apply to {factory!r}; known: "
                             "efConstruction (HNSW), opq_niter and opq_max_train (OPQ)")


def _create(factory: str, d: int, p: dict) -> faiss.Index:
    if p["pq_m"] and (p["opq_dout"] or d) % p["pq_m"]:
        raise ValueError(f"{factory!r}: PQ{p['pq_m']} needs the dimension "
                         f"({p['opq_dout'] or d}) to be a multiple of {p['pq_m']}; pick m among "
                         f"{[m for m in (8, 16, 24, 32, 48, 64, 96) if d % m == 0]}")
    if p["lsh_bits"] and p["lsh_bits"] > d and not p["lsh_rotate"]:
        raise ValueError(f"{factory!r}: {p['lsh_bits']} bits > dimension {d} needs the random "
                         f"rotation: write 'LSH{p['lsh_bits']}r'")
    metric = faiss.METRIC_L2 if p["family"].startswith("LSH") else faiss.METRIC_INNER_PRODUCT
    try:
        index = faiss.index_factory(d, factory, metric)
    except RuntimeError as err:
        raise ValueError(f"FAISS cannot build {factory!r} for dimension {d}: "
                         f"{str(err).splitlines()[-1][-200:]}") from None
    if index.metric_type != metric:
        raise ValueError(f"{factory!r} ignores the inner-product metric in FAISS "
                         f"{faiss.__version__} (it built an L2 index); use another family, "
                         "e.g. 'HNSW32' or 'HNSW32,SQ8'")
    return index


def _training_set(factory, v, train, max_train, seed) -> np.ndarray:
    if train is None:
        rng = np.random.default_rng(seed)
        t = v if len(v) <= max_train else v[np.sort(rng.choice(len(v), max_train, replace=False))]
    else:
        t = as_matrix(train, "train", allow_1d=False)
        check_dims(t, v.shape[1], what="the indexed vectors")
    need = min_train(factory)
    if len(t) < max(need, 1):
        raise ValueError(f"{factory!r} needs training and got {len(t)} training vectors; it "
                         f"needs >= {need} (39 per k-means centroid). Pass more vectors "
                         "(train=...), or a smaller nlist / fewer PQ bits (e.g. 'PQ48x4fs')")
    return t


def set_search_params(index: faiss.Index, **params) -> None:
    """Set search-time parameters (nprobe, efSearch, k_factor_rf, ...) on `index` in place.

    FAISS's ParameterSpace reaches into wrappers (OPQ transform, re-ranking), so the same call
    works for 'IVF256,PQ48' and 'OPQ48,IVF256,PQ48,RFlat'.

    >>> index = build_index("HNSW8", clustered_data(200, 1, d=8)[0])
    >>> set_search_params(index, efSearch=64); index.hnsw.efSearch
    64
    """
    if not params:
        return
    space = faiss.ParameterSpace()
    space.initialize(index)
    known = {space.parameter_ranges.at(i).name for i in range(space.parameter_ranges.size())}
    for name, value in params.items():
        if name not in known - {"ht"}:
            raise ValueError(f"{type(faiss.downcast_index(index)).__name__} has no search "
                             f"parameter {name!r}; it has {sorted(known - {'ht'}) or 'none'}")
        space.set_index_parameter(index, name, float(value))


def neighbour_recall(approx: Hits, exact: Hits, k: int = 10) -> float:
    """Mean over queries of |approximate top-k ∩ exact top-k| / k (the ANN benchmarks' recall).

    >>> e = Hits(np.zeros((1, 2), np.float32), np.array([[4, 7]]))
    >>> neighbour_recall(Hits(e.scores, np.array([[7, 1]])), e, k=2)
    0.5
    """
    a, e = np.asarray(approx[1])[:, :k], np.asarray(exact[1])[:, :k]
    if a.shape[0] != e.shape[0] or e.shape[1] < k:
        raise ValueError(f"approx {a.shape} and exact {e.shape} must have the same queries and "
                         f"at least k={k} columns")
    found = ((a[:, :, None] == e[:, None, :]) & (e[:, None, :] != -1)).any(axis=2).sum(axis=1)
    return float(np.mean(found / np.maximum((e != -1).sum(axis=1), 1)))


def index_bytes(index: faiss.Index) -> int:
    """Size of the index serialised by FAISS (what write_index would store), in bytes.

    >>> index_bytes(build_index("Flat", np.eye(4, dtype=np.float32))) >= 4 * 4 * 4
    True
    """
    return int(faiss.serialize_index(index).nbytes)


def clustered_data(n: int, n_queries: int, d: int = 384, n_clusters: int = 50,
                   latent_dim: int = 24, separation: float = 1.0, noise: float = 0.5,
                   seed: int = 0):
    """Seeded synthetic (vectors (n, d), queries (n_queries, d)), unit norm, clustered like text.

    A Gaussian mixture (n_clusters blobs of random widths, centres `separation` apart in units
    of the blob width) in a `latent_dim`-dimensional space, mapped into d dimensions by a random
    orthonormal map, plus isotropic noise (norm ≈ `noise`), then normalised. The defaults give
    recall curves close to those on the SciFact abstract vectors (chapter 04). Uniform Gaussian
    noise would make every ANN index look broken: there is no structure to exploit.

    >>> x, q = clustered_data(100, 5, d=8, latent_dim=4); x.shape, q.shape
    ((100, 8), (5, 8))
    """
    latent_dim = min(latent_dim, d)
    rng = np.random.default_rng(seed)
    centres = separation * rng.standard_normal((n_clusters, latent_dim))
    widths = rng.uniform(0.5, 1.5, size=(n_clusters, 1))
    label = rng.choice(n_clusters, size=n + n_queries, p=rng.dirichlet(np.full(n_clusters, 2.0)))
    z = centres[label] + widths[label] * rng.standard_normal((n + n_queries, latent_dim))
    basis = np.linalg.qr(rng.standard_normal((d, latent_dim)))[0].T  # (latent_dim, d), orthonormal
    x = z @ basis
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x += noise * rng.standard_normal(x.shape) / math.sqrt(d)
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return x[:n], x[n:]
