"""Fast paths against naive references on seeded clustered data (DESIGN.md style rule 6).

numpy exact vs FAISS flat; FAISS pre-filter vs numpy on the allowed subset; post-filter vs
pre-filter; MMR(λ=1) vs plain top-k; a VectorStore after add/remove/upsert vs one rebuilt from
scratch; save → load round trip.
"""
import faiss
import numpy as np
import pytest

from course_utils.search import (
    exact_search_faiss,
    exact_search_numpy,
    filter_loss,
    search_postfiltered,
    search_prefiltered,
)
from course_utils.search.recommend import mmr
from course_utils.search.store import VectorStore

N, D, NQ, K, SEED = 2000, 32, 50, 10, 0


def clustered(n, d, rng, n_clusters=20, spread=0.35):
    """Unit vectors around `n_clusters` random centres (a crude stand-in for text embeddings)."""
    centres = rng.standard_normal((n_clusters, d))
    x = centres[rng.integers(n_clusters, size=n)] + spread * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(SEED)
    both = clustered(N + NQ, D, rng)
    return both[:N], both[N:]


def assert_same_ranking(a, b, exact, atol=1e-6):
    """Same scores to 1e-5; ids equal except where the true (float64) scores tie to `atol`."""
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    rows, cols = np.nonzero(a.ids != b.ids)
    gaps = np.abs(exact[rows, a.ids[rows, cols]] - exact[rows, b.ids[rows, cols]])
    assert (gaps <= atol).all(), f"{len(rows)} id mismatches, largest score gap {gaps.max()}"


def test_numpy_exact_equals_faiss_flat(data):
    v, q = data
    exact = q.astype(np.float64) @ v.astype(np.float64).T
    a, b = exact_search_numpy(q, v, K), exact_search_faiss(q, v, K)
    assert_same_ranking(a, b, exact)
    order = np.argsort(-exact, axis=1, kind="stable")[:, :K]  # float64 naive reference
    assert_same_ranking(a, type(a)(np.take_along_axis(exact, order, 1), order), exact)


@pytest.mark.parametrize("kind", ["flat", "idmap", "ivf", "vectors"])
def test_prefilter_equals_numpy_on_allowed_subset(data, kind):
    v, q = data
    rng = np.random.default_rng(SEED + 1)
    allowed = np.sort(rng.choice(N, size=N // 5, replace=False))
    ref = exact_search_numpy(q, v[allowed], K)
    ref_ids = allowed[ref.ids]
    offset = 0
    if kind == "flat":
        index = faiss.IndexFlatIP(D)
        index.add(v)
    elif kind == "idmap":  # labels are not row positions
        offset = 1_000_000
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(D))
        index.add_with_ids(v, np.arange(N, dtype=np.int64) + offset)
    elif kind == "ivf":  # nprobe = nlist visits every list, so the search is exact
        index = faiss.index_factory(D, "IVF8,Flat", faiss.METRIC_INNER_PRODUCT)
        index.train(v)
        index.add(v)
        index.nprobe = 8
    else:
        index = v
    got = search_prefiltered(index, q, K, allowed + offset)
    exact = q.astype(np.float64) @ v.astype(np.float64).T
    assert_same_ranking(type(got)(got.scores, got.ids - offset), type(ref)(ref.scores, ref_ids),
                        exact)


def test_postfilter_with_enough_overfetch_equals_prefilter_and_loss_is_measured(data):
    v, q = data
    rng = np.random.default_rng(SEED + 2)
    allowed = rng.choice(N, size=N // 50, replace=False)  # 2 % of the corpus: selective
    pre = search_prefiltered(v, q, K, allowed)
    full = search_postfiltered(v, q, K, allowed, overfetch=N / K)  # fetch everything
    exact = q.astype(np.float64) @ v.astype(np.float64).T
    assert_same_ranking(full, pre, exact)
    assert filter_loss(pre, full)["recall"] == 1.0
    loss = filter_loss(pre, search_postfiltered(v, q, K, allowed, overfetch=4))
    assert loss["short_fraction"] > 0.5 and loss["recall"] < 0.5  # 40 fetched, ~0.8 allowed
    assert loss["mean_returned_pre"] == K


def test_mmr_with_lambda_one_is_plain_top_k(data):
    v, q = data
    for i in range(5):
        cands = v[exact_search_numpy(q[i], v, 100).ids[0]]
        got, ref = mmr(q[i], cands, K, lambda_=1.0), exact_search_numpy(q[i], cands, K)
        np.testing.assert_array_equal(got.ids, ref.ids)
        np.testing.assert_allclose(got.scores, ref.scores, atol=1e-6)
        assert len(set(mmr(q[i], cands, K, lambda_=0.3).ids[0]) - set(ref.ids[0])) > 0


def _store_after_updates(v, rng):
    doc_ids = [f"d{i:04d}" for i in range(N)]
    meta = [{"cluster_half": i % 2} for i in range(N)]
    store = VectorStore("toy-model", D)
    store.add(doc_ids[:1500], v[:1500], meta[:1500])
    store.remove(list(rng.choice(doc_ids[:1500], size=300, replace=False)))
    store.add(doc_ids[1500:], v[1500:], meta[1500:])
    changed = list(rng.choice(store.metadata.index, size=50, replace=False))
    new_vecs = clustered(50, D, rng)
    store.add(changed, new_vecs, [{"cluster_half": 2}] * 50, upsert=True)
    return store


def test_store_updates_equal_a_rebuild_and_survive_save_load(data, tmp_path):
    v, q = data
    store = _store_after_updates(v, np.random.default_rng(SEED + 3))
    fresh = VectorStore("toy-model", D)
    kept = list(store.metadata.index)
    fresh.add(kept, store.get_vectors(kept), store.metadata)
    assert len(fresh) == len(store) == N - 300
    for where in (None, {"cluster_half": [0, 2]}):
        a, b = store.search(q, K, where=where), fresh.search(q, K, where=where)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
        assert store.doc_ids(a) == fresh.doc_ids(b)
    store.save(tmp_path / "store")
    loaded = VectorStore.load(tmp_path / "store", expect_model="toy-model", expect_dim=D)
    a, b = store.search(q, K, where={"cluster_half": 1}), loaded.search(q, K, where={"cluster_half": 1})
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert store.to_run(a, list(range(NQ))) == loaded.to_run(b, list(range(NQ)))
    with pytest.raises(ValueError, match="re-embed|Re-embed"):
        VectorStore.load(tmp_path / "store", expect_model="another-model")
    with pytest.raises(ValueError, match=f"holds {D}-d vectors"):
        VectorStore.load(tmp_path / "store", expect_dim=D + 1)


def test_prefilter_on_hnsw_keeps_its_ef_search_and_only_returns_allowed(data):
    v, q = data
    index = faiss.IndexHNSWFlat(D, 16, faiss.METRIC_INNER_PRODUCT)
    index.add(v)
    index.hnsw.efSearch = 256  # selector_params must carry this over, else recall drops
    allowed = np.arange(0, N, 4)
    got = search_prefiltered(index, q, K, allowed)
    ref = allowed[exact_search_numpy(q, v[allowed], K).ids]
    assert np.isin(got.ids, allowed).all()
    recall = np.mean([len(set(a) & set(b)) / K for a, b in zip(got.ids, ref)])
    assert recall >= 0.95
