"""Every ANN family against exact search (the reference), on seeded clustered data.

Recall@10 is computed against `exact_search_numpy` (itself tested against FAISS flat), never
assumed. Floors are for generous settings: IVF probing every list is exact; HNSW with a large
efSearch, PQ with exact re-ranking and SQ8 are near exact. The memory formulas of `ann_scale`
are checked against FAISS's own serialised sizes, and write/read_index against the original.
ANN on uniform Gaussian noise looks broken for every index (ASSETS.md), hence clustered data.
"""
import faiss
import numpy as np
import pytest

from course_utils import ann, ann_scale, data
from course_utils.search import exact_search_numpy

N, D, NQ, K = 10_000, 64, 100, 10


@pytest.fixture(scope="module")
def vq():
    return ann.clustered_data(N, NQ, d=D, seed=0)


@pytest.fixture(scope="module")
def exact(vq):
    return exact_search_numpy(vq[1], vq[0], K)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with ann.faiss_threads(1):
        yield


def recall(vq, exact, factory, build=None, **params):
    index = ann.build_index(factory, vq[0], **(build or {}))
    return ann.neighbour_recall(ann.search(index, vq[1], K, **params), exact, K)


def test_flat_is_exact(vq, exact):
    hits = ann.search(ann.build_index("Flat", vq[0]), vq[1], K)
    assert ann.neighbour_recall(hits, exact) == 1.0
    np.testing.assert_allclose(hits.scores, exact.scores, atol=1e-5)


def test_ivf_probing_every_list_is_exact_and_recall_grows_with_nprobe(vq, exact):
    index = ann.build_index("IVF64,Flat", vq[0])
    curve = [ann.neighbour_recall(ann.search(index, vq[1], K, nprobe=p), exact) for p in (1, 4, 16, 64)]
    assert curve[-1] == 1.0
    assert curve == sorted(curve) and curve[0] < 0.95  # probing one list misses neighbours


@pytest.mark.parametrize("factory, params, floor", [
    ("HNSW32", {"efSearch": 256}, 0.95),
    ("HNSW16,SQ8", {"efSearch": 256}, 0.9),
    ("IVF64,SQ8", {"nprobe": 64}, 0.9),
    ("SQ8", {}, 0.9),
    ("SQfp16", {}, 0.99),
    ("IVF64,PQ16x4np,RFlat", {"nprobe": 64, "k_factor_rf": 16}, 0.95),
    ("LSH512r,RFlat", {"k_factor_rf": 50}, 0.9),
])
def test_generous_settings_reach_the_floor(vq, exact, factory, params, floor):
    assert recall(vq, exact, factory, **params) >= floor


def test_pq_alone_plateaus_and_reranking_fixes_it(vq, exact):
    plain = recall(vq, exact, "IVF64,PQ8np", nprobe=64)
    refined = recall(vq, exact, "IVF64,PQ8np,RFlat", nprobe=64, k_factor_rf=32)
    assert 0.1 < plain < 0.9 and refined >= 0.95 and refined > plain


def test_opq_ivf_pq(vq, exact):
    build = {"opq_niter": 5, "opq_max_train": 10_000}
    plain = recall(vq, exact, "OPQ8,IVF64,PQ8np", build, nprobe=64)
    refined = recall(vq, exact, "OPQ8,IVF64,PQ8np,RFlat", build, nprobe=64, k_factor_rf=32)
    assert plain > 0.1 and refined >= 0.95


def test_lsh_more_bits_more_recall(vq, exact):
    curve = [recall(vq, exact, f"LSH{b}r") for b in (64, 256, 1024)]
    assert curve == sorted(curve) and 0.05 < curve[0] < curve[-1] < 1.0


@pytest.mark.parametrize("factory", ["Flat", "SQ8", "SQfp16", "PQ16np", "IVF32,Flat",
                                     "IVF32,PQ16x4np", "OPQ8,IVF32,PQ8np", "HNSW16", "HNSW32,SQ8",
                                     "LSH256r", "LSH128rt", "IVF32,PQ8np,RFlat"])
def test_memory_formula_matches_serialised_size(vq, factory):
    index = ann.build_index(factory, vq[0], opq_niter=2) if factory.startswith("OPQ") else \
        ann.build_index(factory, vq[0])
    real = ann.index_bytes(index)
    assert ann_scale.estimate_bytes(factory, D, N) == pytest.approx(real, rel=0.02)


@pytest.mark.parametrize("factory, params", [("IVF32,PQ16x4np", {"nprobe": 8}),
                                             ("HNSW16", {"efSearch": 32}), ("LSH128r", {})])
def test_write_read_index_gives_identical_results(vq, tmp_path, factory, params):
    index = ann.build_index(factory, vq[0])
    before = ann.search(index, vq[1], K, **params)
    faiss.write_index(index, str(tmp_path / "x.faiss"))
    loaded = faiss.read_index(str(tmp_path / "x.faiss"))
    after = ann.search(loaded, vq[1], K, **params)
    assert np.array_equal(before.ids, after.ids) and np.array_equal(before.scores, after.scores)
    assert (tmp_path / "x.faiss").stat().st_size == ann.index_bytes(index)


def test_real_vectors_scifact_abstracts():
    """Held-out SciFact abstract vectors (precomputed, no model) as queries against the rest."""
    try:
        _, vectors = data.load_precomputed("scifact")
    except FileNotFoundError:
        pytest.skip("precomputed SciFact vectors not available")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(vectors))
    q, x = vectors[order[:200]], vectors[order[200:]]
    exact = exact_search_numpy(q, x, K)
    ivf = ann.build_index("IVF64,Flat", x)
    assert ann.neighbour_recall(ann.search(ivf, q, K, nprobe=64), exact) == 1.0
    assert ann.neighbour_recall(ann.search(ivf, q, K, nprobe=1), exact) < 0.9
    hnsw = ann.build_index("HNSW32", x)
    assert ann.neighbour_recall(ann.search(hnsw, q, K, efSearch=128), exact) >= 0.95
