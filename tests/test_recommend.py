"""Unit tests of course_utils.search.recommend on hand-checkable fixtures."""
import numpy as np
import pytest

from course_utils.search.recommend import mmr, recommend_from_liked, similar_items

# Item 0 = [1, 0]; item 1 is close to it, item 2 further, item 3 opposite.
V = np.array([[1, 0], [0.8, 0.6], [0, 1], [-1, 0]], dtype=np.float32)


def test_similar_items_excludes_the_item_itself():
    hits = similar_items(V, 0, k=2)
    assert hits.ids.tolist() == [[1, 2]]
    np.testing.assert_allclose(hits.scores, [[0.8, 0.0]], atol=1e-6)
    assert similar_items(V, [0, 2], k=1).ids.tolist() == [[1], [1]]


def test_similar_items_k_at_least_n_pads():
    hits = similar_items(V, 3, k=4)
    assert hits.ids.tolist() == [[2, 1, 0, -1]]  # 3 others, then padding
    assert np.isneginf(hits.scores[0, 3])


def test_similar_items_errors():
    with pytest.raises(ValueError, match=r"row positions in \[0, 4\)"):
        similar_items(V, 4, k=1)
    with pytest.raises(TypeError, match="integer row positions"):
        similar_items(V, [True], k=1)
    with pytest.raises(ValueError, match="k must be at least 1"):
        similar_items(V, 0, k=0)


def test_recommend_from_liked_hand_checked():
    # profile = normalise(mean([1,0], [0,1])) = [0.707, 0.707]: item 1 scores 0.99, item 3 -0.71
    hits = recommend_from_liked(V, [0, 2], k=3)
    assert hits.ids.tolist() == [[1, 3, -1]]
    np.testing.assert_allclose(hits.scores[0, :2], [1.4 / np.sqrt(2), -1 / np.sqrt(2)], atol=1e-6)


def test_recommend_from_liked_cancelling_likes_raise():
    with pytest.raises(ValueError, match="cancel out"):
        recommend_from_liked(V, [0, 3], k=1)


def test_mmr_hand_checked():
    q = np.array([0.96, 0.28], dtype=np.float32)
    c = np.array([[1, 0], [0.99, 0.141], [0.6, 0.8]], dtype=np.float32)
    assert mmr(q, c, k=2, lambda_=1.0).ids.tolist() == [[1, 0]]
    # λ = 0.5, second pick: c0 gains 0.48 - 0.495 < 0, c2 gains 0.4 - 0.353 > 0
    hits = mmr(q, c, k=2, lambda_=0.5)
    assert hits.ids.tolist() == [[1, 2]]
    np.testing.assert_allclose(hits.scores[0, 1], 0.5 * 0.8 - 0.5 * c[1] @ c[2], atol=1e-5)
    assert mmr(q, c, k=5).ids[0, 3:].tolist() == [-1, -1]


def test_mmr_errors_and_inputs_untouched():
    q, c = np.array([1.0, 0.0]), V.copy()
    with pytest.raises(ValueError, match=r"lambda_ must be a number in \[0, 1\]"):
        mmr(q, c, k=1, lambda_=1.5)
    with pytest.raises(ValueError, match="one query vector"):
        mmr(np.eye(2), c, k=1)
    with pytest.raises(ValueError, match="dimension 3"):
        mmr(np.ones(3) / np.sqrt(3), c, k=1)
    mmr(q, c, k=3)
    similar_items(c, [0, 1], k=2)
    recommend_from_liked(c, [0, 1], k=2)
    np.testing.assert_array_equal(c, V)
