"""Unit tests of course_utils.search and course_utils.search.filtering on hand-checkable fixtures."""
import faiss
import numpy as np
import pytest

from course_utils.search import (
    Hits,
    build_flat_index,
    exact_search_faiss,
    exact_search_numpy,
    filter_loss,
    normalize,
    search,
    search_postfiltered,
    search_prefiltered,
    to_run,
)

# 4 unit vectors in 2-D, no exact ties (FAISS orders exact ties its own way).
# Query [1, 0] scores 1, 0, -1, 0.6 → order 0, 3, 1, 2; query [0.6, 0.8] → 0.6, 0.8, -0.6, 1.
V = np.array([[1, 0], [0, 1], [-1, 0], [0.6, 0.8]], dtype=np.float32)
Q = np.array([[1, 0], [0.6, 0.8]], dtype=np.float32)
EXACT = [exact_search_numpy, exact_search_faiss]


@pytest.mark.parametrize("fn", EXACT)
def test_exact_search_hand_checked(fn):
    hits = fn(Q, V, k=3)
    assert isinstance(hits, Hits) and hits.k == 3
    assert hits.ids.dtype == np.int64 and hits.scores.dtype == np.float32
    assert hits.ids.tolist() == [[0, 3, 1], [3, 1, 0]]
    np.testing.assert_allclose(hits.scores, [[1, 0.6, 0], [1, 0.8, 0.6]], atol=1e-6)


@pytest.mark.parametrize("fn", EXACT)
def test_one_d_query_is_one_row(fn):
    hits = fn(np.array([1.0, 0.0]), V, k=2)
    assert hits.ids.shape == (1, 2) and hits.ids.tolist() == [[0, 3]]


@pytest.mark.parametrize("fn", EXACT)
def test_k_larger_than_n_pads_with_minus_one_and_minus_inf(fn):
    hits = fn(Q[:1], V, k=6)
    assert hits.ids.tolist() == [[0, 3, 1, 2, -1, -1]]
    assert np.isneginf(hits.scores[0, 4:]).all() and np.isfinite(hits.scores[0, :4]).all()


def test_search_on_faiss_index_normalises_padding():
    hits = search(build_flat_index(V[:2]), Q, k=3)
    assert hits.ids[:, 2].tolist() == [-1, -1]
    assert np.isneginf(hits.scores[:, 2]).all()  # FAISS itself gives -3.4e38


def test_ties_go_to_the_smaller_id_even_at_the_kth_place():
    v = np.tile(np.array([[0, 1]], dtype=np.float32), (10, 1))
    v[7] = [1, 0]  # the single best; the other nine tie
    hits = exact_search_numpy(np.array([0.6, 0.8]), v, k=4)
    assert hits.ids.tolist() == [[0, 1, 2, 3]]
    hits = exact_search_numpy(np.array([1.0, 0.0]), v, k=3)
    assert hits.ids.tolist() == [[7, 0, 1]]


def test_float64_input_gives_same_result():
    a = exact_search_numpy(Q.astype(np.float64), V.astype(np.float64), k=2)
    b = exact_search_numpy(Q, V, k=2)
    assert a.ids.tolist() == b.ids.tolist() and a.scores.dtype == np.float32


@pytest.mark.parametrize("fn", EXACT)
def test_bad_inputs_raise_clear_errors(fn):
    with pytest.raises(ValueError, match="queries have dimension 3 but vectors have dimension 2"):
        fn(np.ones((1, 3), np.float32), V, k=1)
    with pytest.raises(ValueError, match="k must be at least 1"):
        fn(Q, V, k=0)
    with pytest.raises(TypeError, match="k must be an integer"):
        fn(Q, V, k=2.5)
    with pytest.raises(TypeError, match="k must be an integer"):
        fn(Q, V, k=True)
    with pytest.raises(ValueError, match="non-finite"):
        fn(np.array([[np.nan, 1.0]]), V, k=1)
    with pytest.raises(TypeError, match="numeric array"):
        fn(np.array([["a", "b"]]), V, k=1)
    with pytest.raises(ValueError, match="shape"):
        fn(Q, V[None], k=1)


def test_search_needs_a_faiss_index():
    with pytest.raises(TypeError, match="faiss.Index"):
        search(V, Q, k=1)
    with pytest.raises(ValueError, match="dimension 3"):
        search(build_flat_index(V), np.ones(3, np.float32), k=1)


def test_unnormalised_vectors_warn_and_normalize_fixes_them():
    raw = V * 2
    with pytest.warns(UserWarning, match="not L2-normalised"):
        exact_search_numpy(Q, raw, k=1)
    fixed = normalize(raw)
    np.testing.assert_allclose(np.linalg.norm(fixed, axis=1), 1, atol=1e-6)
    np.testing.assert_array_equal(raw, V * 2)  # input untouched
    assert normalize(np.array([3.0, 4.0])).shape == (2,)
    with pytest.raises(ValueError, match="zero norm"):
        normalize(np.zeros((2, 2)), zero_rows="raise")


def test_inputs_are_not_modified():
    q, v = Q.copy(), V.copy()
    allowed = np.array([3, 1])
    exact_search_numpy(q, v, k=2)
    exact_search_faiss(q, v, k=2)
    search_prefiltered(v, q, 2, allowed)
    search_postfiltered(v, q, 2, allowed)
    np.testing.assert_array_equal(q, Q)
    np.testing.assert_array_equal(v, V)
    assert allowed.tolist() == [3, 1]


def test_to_run_hand_checked():
    hits = Hits(np.array([[0.75, 0.5, -np.inf]], np.float32), np.array([[2, 0, -1]]))
    assert to_run(hits, ["q1"], ["d0", "d1", "d2"]) == {"q1": {"d2": 0.75, "d0": 0.5}}
    assert to_run(hits, ["q1"], {2: "x", 0: "y"}) == {"q1": {"x": 0.75, "y": 0.5}}
    assert to_run(hits, [7]) == {"7": {"2": 0.75, "0": 0.5}}
    assert to_run(hits, ["q1"], ["a", "b", "c"], rank_scores=True) == {"q1": {"c": 1.0, "a": 0.5}}


def test_to_run_errors():
    hits = exact_search_numpy(Q, V, k=2)
    with pytest.raises(ValueError, match="2 rows of hits"):
        to_run(hits, ["q1"], list("abcd"))
    with pytest.raises(ValueError, match="duplicates"):
        to_run(hits, ["q1", "q1"], list("abcd"))
    with pytest.raises(IndexError, match="doc_ids has 2 entries"):
        to_run(hits, ["q1", "q2"], ["a", "b"])
    with pytest.raises(KeyError, match="not in doc_ids"):
        to_run(hits, ["q1", "q2"], {0: "a"})


def test_prefilter_hand_checked():
    hits = search_prefiltered(V, Q, k=2, allowed_ids=[1, 2])
    assert hits.ids.tolist() == [[1, 2], [1, 2]]
    hits = search_prefiltered(build_flat_index(V), Q[0], k=2, allowed_ids=[2])
    assert hits.ids.tolist() == [[2, -1]] and np.isneginf(hits.scores[0, 1])
    assert search_prefiltered(V, Q, k=2, allowed_ids=[]).ids.tolist() == [[-1, -1]] * 2


def test_prefilter_bad_allowed_ids():
    with pytest.raises(TypeError, match="boolean mask"):
        search_prefiltered(V, Q, 1, np.array([True, False, True, False]))
    with pytest.raises(ValueError, match=r"must lie in \[0, 4\)"):
        search_prefiltered(V, Q, 1, [0, 4])
    with pytest.raises(TypeError, match="must be integers"):
        search_prefiltered(V, Q, 1, [0.5])


def test_postfilter_hand_checked():
    # query [1, 0]: order 0, 3, 1, 2. Only 1 and 2 allowed; fetching 2 finds neither.
    short = search_postfiltered(V, Q[0], k=1, allowed_ids=[1, 2], overfetch=2)
    assert short.ids.tolist() == [[-1]]
    full = search_postfiltered(V, Q[0], k=2, allowed_ids=[1, 2], overfetch=2)
    assert full.ids.tolist() == [[1, 2]]
    with pytest.raises(ValueError, match="overfetch must be a number >= 1"):
        search_postfiltered(V, Q, 1, [1], overfetch=0.5)


def test_filter_loss_hand_checked():
    pre = Hits(np.zeros((2, 2), np.float32), np.array([[1, 2], [3, 4]]))
    post = Hits(np.zeros((2, 2), np.float32), np.array([[1, 2], [3, -1]]))
    loss = filter_loss(pre, post)
    assert loss == {"short_fraction": 0.5, "mean_returned_pre": 2.0,
                    "mean_returned_post": 1.5, "recall": 0.75}
    with pytest.raises(ValueError, match="same shape"):
        filter_loss(pre, Hits(post.scores[:, :1], post.ids[:, :1]))


def test_prefilter_on_idmap_uses_labels():
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(2))
    index.add_with_ids(V, np.array([10, 20, 30, 40], dtype=np.int64))
    assert search_prefiltered(index, Q[0], 2, [20, 30]).ids.tolist() == [[20, 30]]
