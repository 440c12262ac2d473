"""Unit tests of course_utils.ann.indexes, ann_scale and ann_sweep: parsing, checks and clear errors,
the sweep's table, pareto / tune on hand-made frames, the memory formulas. No timing asserts."""
import doctest

import faiss
import numpy as np
import pandas as pd
import pytest

from course_utils import ann, ann_scale, ann_sweep
from course_utils.search import Hits, exact_search_numpy


@pytest.fixture(scope="module")
def small():
    return ann.clustered_data(3000, 40, d=32, seed=1)


@pytest.mark.parametrize("module", [ann, ann_scale, ann_sweep])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


@pytest.mark.parametrize("factory, fam", [
    ("Flat", "Flat"), ("IVF256,Flat", "IVF-Flat"), ("IVF256,SQ8", "IVF-SQ"),
    ("IVF256,PQ48", "IVF-PQ"), ("OPQ48,IVF256,PQ48", "OPQ+IVF-PQ"), ("OPQ16_64,IVF64,PQ16x4fs", "OPQ+IVF-PQ"),
    ("PQ48", "PQ"), ("HNSW32", "HNSW"), ("HNSW32,SQ8", "HNSW"), ("SQ8", "SQ"), ("SQfp16", "SQ"),
    ("LSH", "LSH"), ("LSH1024rt", "LSH"), ("IVF256,PQ48,RFlat", "IVF-PQ + re-rank")])
def test_family(factory, fam):
    assert ann.family(factory) == fam


def test_parse_details():
    p = ann.parse_factory("OPQ16_64,IVF100,PQ16x4fs,RFlat")
    assert (p["opq"], p["opq_dout"], p["nlist"], p["pq_m"], p["pq_nbits"], p["refine"]) == \
        (16, 64, 100, 16, 4, True)
    assert ann.parse_factory("LSH256rt")["lsh_bits"] == 256


@pytest.mark.parametrize("bad", ["IVF-256,Flat", "Flatt", "HNSW", "PQ48x", "IVF256,Foo"])
def test_unknown_factory_raises_clearly(bad):
    with pytest.raises(ValueError, match="unknown part"):
        ann.parse_factory(bad)


def test_factory_not_a_string():
    with pytest.raises(TypeError, match="factory string"):
        ann.parse_factory(None)


def test_min_train_and_nlist_range():
    assert ann.min_train("IVF100,PQ8x4") == 39 * 100
    assert ann.min_train("OPQ8,IVF10,PQ8") == 39 * 256
    assert ann.min_train("LSH64rt") == 1 and ann.min_train("LSH64r") == 0
    assert ann.min_train("SQfp16") == 0
    assert ann.nlist_range(10_000) == (400, 1600)


def test_too_few_training_vectors_raises(small):
    x, _ = small
    with pytest.raises(ValueError, match=r"needs >= 3900 \(39 per k-means centroid\)"):
        ann.build_index("IVF100,Flat", x)
    with pytest.raises(ValueError, match="got 0 training vectors"):
        ann.build_index("IVF8,Flat", x, train=np.zeros((0, 32), np.float32))
    # an explicit larger training set is accepted
    assert ann.build_index("IVF8,Flat", x[:500], train=x).ntotal == 500


def test_train_dim_mismatch(small):
    x, _ = small
    with pytest.raises(ValueError, match="dimension"):
        ann.build_index("IVF8,Flat", x, train=x[:, :16])


def test_pq_dimension_must_divide(small):
    x, _ = small
    with pytest.raises(ValueError, match="multiple of 7"):
        ann.build_index("PQ7x4", x)


def test_lsh_needs_rotation_for_more_bits_than_dims(small):
    with pytest.raises(ValueError, match="LSH64r"):
        ann.build_index("LSH64", small[0])


def test_factory_that_ignores_metric_raises(small):
    with pytest.raises(ValueError, match="ignores the inner-product metric"):
        ann.build_index("HNSW8_PQ8x4", small[0])


def test_faiss_parse_error_is_wrapped(small):
    with pytest.raises(ValueError, match="FAISS cannot build"):
        ann.build_index("IVF8,HNSW8", small[0])


def test_untrained_index_search_raises(small):
    x, q = small
    index = faiss.index_factory(32, "IVF8,Flat", faiss.METRIC_INNER_PRODUCT)
    with pytest.raises(ValueError, match="not trained"):
        ann.search(index, q, 5)


def test_query_dim_mismatch(small):
    x, q = small
    with pytest.raises(ValueError, match="dimension 16 but the index vectors have dimension 32"):
        ann.search(ann.build_index("Flat", x), q[:, :16], 5)


def test_unknown_search_parameter(small):
    index = ann.build_index("HNSW8", small[0])
    with pytest.raises(ValueError, match=r"no search parameter 'nprobe'.*efSearch"):
        ann.set_search_params(index, nprobe=4)
    with pytest.raises(ValueError, match="none"):
        ann.set_search_params(ann.build_index("Flat", small[0]), nprobe=4)


def test_flat_equals_exact_and_lsh_scores_are_best_first(small):
    x, q = small
    exact = exact_search_numpy(q, x, 10)
    flat = ann.search(ann.build_index("Flat", x), q, 10)
    assert ann.neighbour_recall(flat, exact) == 1.0
    lsh = ann.search(ann.build_index("LSH128r", x), q, 10)
    assert (np.diff(lsh.scores, axis=1) <= 0).all()  # -Hamming distance, non-increasing


def test_search_is_padded_like_search_module(small):
    x, q = small
    hits = ann.search(ann.build_index("Flat", x[:3]), q[:2], 5)
    assert hits.ids[:, 3:].tolist() == [[-1, -1], [-1, -1]] and np.isneginf(hits.scores[:, 3:]).all()


def test_recall_at_k_by_hand():
    exact = Hits(np.zeros((2, 3), np.float32), np.array([[1, 2, 3], [4, 5, -1]]))
    approx = Hits(np.zeros((2, 3), np.float32), np.array([[3, 9, 1], [5, -1, -1]]))
    assert ann.neighbour_recall(approx, exact, k=3) == pytest.approx((2 / 3 + 1 / 2) / 2)
    with pytest.raises(ValueError, match="same queries"):
        ann.neighbour_recall(approx, Hits(exact.scores[:1], exact.ids[:1]), k=3)


def test_build_does_not_modify_inputs(small):
    x, _ = small
    before = x.copy()
    ann.build_index("IVF8,SQ8", x)
    assert np.array_equal(x, before)


def test_clustered_data_is_seeded_and_unit_norm():
    a, qa = ann.clustered_data(500, 10, d=24, seed=3)
    b, qb = ann.clustered_data(500, 10, d=24, seed=3)
    assert np.array_equal(a, b) and np.array_equal(qa, qb)
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    assert not np.array_equal(a, ann.clustered_data(500, 10, d=24, seed=4)[0])


def test_faiss_threads_restores():
    before = faiss.omp_get_max_threads()
    with ann.faiss_threads(1):
        assert faiss.omp_get_max_threads() == 1
    assert faiss.omp_get_max_threads() == before


# ---------------------------------------------------------------- sweep, pareto, tune
def test_sweep_table(small):
    x, q = small
    df = ann_sweep.sweep(x, q, {"Flat": {}, "IVF16,Flat": {"nprobe": [1, 16]},
                                "HNSW8": {"efSearch": [8, 64]}}, n_single=5, repeats=1,
                         show_progress=False)
    assert len(df) == 5 and list(df.columns[:3]) == ["index", "family", "setting"]
    assert {"nprobe", "efSearch", "recall@10", "qps_batch", "qps_single", "build_s",
            "bytes_per_vector"} <= set(df.columns)
    ivf = df[df["index"] == "IVF16,Flat"].set_index("nprobe")["recall@10"]
    assert ivf[16] == 1.0 and ivf[1] < 1.0
    assert df.loc[df["index"] == "Flat", "recall@10"].item() == 1.0
    assert (df["qps_batch"] > 0).all() and (df["bytes_per_vector"] > 0).all()
    assert df.loc[df["index"] == "Flat", "bytes_per_vector"].item() == pytest.approx(4 * 32, rel=0.01)


def test_sweep_crosses_parameters_and_checks_grid(small):
    x, q = small
    df = ann_sweep.sweep(x, q[:5], {"IVF16,PQ8x4,RFlat": {"nprobe": [2, 4], "k_factor_rf": [1, 8]}},
                         n_single=2, repeats=1, show_progress=False)
    assert df["setting"].tolist() == ["nprobe=2, k_factor_rf=1", "nprobe=2, k_factor_rf=8",
                                      "nprobe=4, k_factor_rf=1", "nprobe=4, k_factor_rf=8"]
    with pytest.raises(ValueError, match="non-empty dict"):
        ann_sweep.sweep(x, q, {})
    with pytest.raises(TypeError, match="must be a dict"):
        ann_sweep.sweep(x, q, {"HNSW8": [16]})


def frame():
    return pd.DataFrame({
        "index": ["A", "A", "A", "B", "B", "C"], "family": ["x"] * 6,
        "setting": ["p=1", "p=2", "p=4", "e=8", "e=32", "-"],
        "p": [1, 2, 4, np.nan, np.nan, np.nan], "e": [np.nan, np.nan, np.nan, 8, 32, np.nan],
        "recall@10": [0.6, 0.96, 0.99, 0.9, 0.97, 1.0], "qps_batch": [900, 500, 300, 800, 600, 50],
        "ms_per_query": [0.5, 1, 2, 0.4, 0.9, 20.0], "bytes_per_vector": [100] * 3 + [300] * 2 + [90]})


def test_pareto_by_hand():
    assert ann_sweep.pareto(frame()).index.tolist() == [0, 3, 4, 2, 5]


def test_tune_smallest_setting_per_index():
    best = ann_sweep.tune(frame(), 0.95)
    assert best["setting"].tolist() == ["e=32", "p=2", "-"]  # by QPS: 600, 500, 50
    assert ann_sweep.tune(frame(), 0.95, max_ms=1.0)["setting"].tolist() == ["e=32", "p=2"]
    assert ann_sweep.tune(frame(), 0.95, prefer="bytes_per_vector")["index"].tolist() == ["C", "A", "B"]


def test_tune_unreachable_target_says_what_to_do():
    with pytest.raises(ValueError, match=r"best was 1.000 \(C -\).*re-ranking"):
        ann_sweep.tune(frame(), 1.01)
    with pytest.raises(ValueError, match="within 0.1 ms per query"):
        ann_sweep.tune(frame(), 0.5, max_ms=0.1)


# ---------------------------------------------------------------- memory arithmetic
def test_memory_model_formulas():
    assert ann_scale.memory_model("SQ8", 384) == (2 * 384 * 4, 384)
    assert ann_scale.memory_model("SQfp16", 384)[1] == 768
    assert ann_scale.memory_model("PQ48x4", 384)[1] == 24
    fixed, per = ann_scale.memory_model("HNSW32", 384)
    assert per == pytest.approx(1536 + 4 * (64 + 32 / 31) + 12)
    assert ann_scale.memory_model("LSH1024r", 384) == (1024 * 384 * 4, 128)
    assert ann_scale.memory_model("IVF256,PQ48,RFlat", 384)[1] == 48 + 8 + 1536


def test_scale_table_machines():
    t = ann_scale.scale_table(["Flat", "IVF4096,PQ48"], d=384, ram_gb=(24, 64), usable=0.5)
    assert t.loc["Flat", "GB @ 1B"] == pytest.approx(1536, rel=1e-9)
    assert t.loc["Flat", "max n @ 64 GB"] == 32 * 10**9 // 1536
    assert t.loc["Flat", "machines @ 1B"] == 48           # 1536 GB / 32 GB usable
    assert t.loc["IVF4096,PQ48", "machines @ 1B"] == 2     # 56 GB + centroids > 32 GB
    with pytest.raises(ValueError, match="usable"):
        ann_scale.scale_table(["Flat"], usable=1.5)


def test_build_params(small):
    x, _ = small
    assert ann.build_index("HNSW8,SQ8", x, efConstruction=64).hnsw.efConstruction == 64
    with pytest.raises(ValueError, match="does not apply to 'IVF8,Flat'"):
        ann.build_index("IVF8,Flat", x, efConstruction=64)
    with pytest.raises(ValueError, match="opq_max_train=5000 is below 9984"):
        ann.build_index("OPQ4,IVF8,PQ4x4np", x, opq_max_train=5000)
    index = ann.build_index("OPQ4,IVF8,PQ4x4np,RFlat", x, opq_niter=2, opq_max_train=10_000)
    assert index.ntotal == len(x)


def test_recall_qps_panels_and_memory_chart():
    import matplotlib.pyplot as plt

    x, q = ann.clustered_data(3000, 20, d=16, seed=0)
    df = ann_sweep.sweep(x, q, {"Flat": {}, "IVF16,Flat": {"nprobe": [1, 4]}, "HNSW8": {"efSearch": [8, 32]},
                                "LSH64r": {}}, show_progress=False)
    axes = ann_sweep.plot_recall_qps_panels(df)
    assert [ax.get_title() for ax in axes] == ["IVF and SQ", "HNSW", "LSH"]
    labels = [t.get_text() for t in axes[1].get_legend().get_texts()]
    assert labels == ["HNSW8", "Pareto front (all indexes)", "exact search (Flat)"]
    ax = ann_sweep.plot_memory_recall(df)
    listed = [t.get_text() for t in ax.texts if t.get_text().startswith("memory-recall front")]
    assert len(listed) == 1 and "1. " in listed[0]
    with pytest.raises(ValueError, match="PANELS"):
        ann_sweep.plot_recall_qps_panels(df[df["family"] == "Flat"])
    plt.close("all")
