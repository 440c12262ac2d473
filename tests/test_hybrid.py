"""course_utils.hybrid: normalisation, convex fusion and RRF on hand-checkable runs."""
import copy

import numpy as np
import pytest

from course_utils import hybrid
from course_utils.evaluate import trec_order

DENSE = {"q1": {"d1": 0.9, "d2": 0.7, "d3": 0.5}, "q2": {"d4": 0.8, "d5": 0.6}}
LEXICAL = {"q1": {"d3": 20.0, "d4": 10.0, "d1": 0.0}, "q2": {"d5": 3.0}}


def test_minmax_and_zscore_by_hand():
    np.testing.assert_allclose(hybrid.minmax(np.array([1.0, 3.0, 2.0])), [0, 1, 0.5])
    np.testing.assert_allclose(hybrid.minmax(np.array([5.0, 5.0])), [1, 1])
    z = hybrid.zscore(np.array([2.0, 4.0, 6.0, 8.0]))
    assert z.mean() == pytest.approx(0) and z.std() == pytest.approx(1)
    np.testing.assert_allclose(hybrid.zscore(np.array([3.0, 3.0])), [0, 0])


def test_normalize_run_per_query():
    out = hybrid.normalize_run(LEXICAL)
    assert out["q1"] == {"d3": 1.0, "d4": 0.5, "d1": 0.0}
    assert out["q2"] == {"d5": 1.0}
    assert hybrid.normalize_run({"q1": {}}) == {"q1": {}}
    with pytest.raises(ValueError, match="normalisation"):
        hybrid.normalize_run(LEXICAL, "softmax")


def test_convex_fusion_endpoints_follow_each_run():
    only_dense = hybrid.convex_fusion(DENSE, LEXICAL, alpha=1.0)
    only_lexical = hybrid.convex_fusion(DENSE, LEXICAL, alpha=0.0)
    assert trec_order(only_dense["q1"])[:2] == ["d1", "d2"]
    assert trec_order(only_lexical["q1"])[:2] == ["d3", "d4"]


def test_convex_fusion_by_hand_and_missing_documents_get_the_floor():
    fused = hybrid.convex_fusion(DENSE, LEXICAL, alpha=0.5)
    # q1: dense minmax d1 1, d2 0.5, d3 0 (d4 missing -> 0); lexical d3 1, d4 0.5, d1 0 (d2 -> 0)
    assert fused["q1"] == pytest.approx({"d1": 0.5, "d2": 0.25, "d3": 0.5, "d4": 0.25})
    assert fused["q2"] == pytest.approx({"d4": 0.5, "d5": 0.5})  # one lexical doc: it scores 1
    z = hybrid.convex_fusion(DENSE, LEXICAL, alpha=0.5, norm="zscore")
    assert z["q1"]["d4"] == pytest.approx(0.5 * min(hybrid.zscore(np.array([0.9, 0.7, 0.5])))
                                          + 0.5 * hybrid.zscore(np.array([20.0, 10, 0]))[1])
    assert z["q2"]["d4"] == pytest.approx(0.5 * 1.0 + 0.5 * -1.0)  # lexical scores all equal


def test_convex_fusion_keeps_top_k_and_queries_of_either_run():
    fused = hybrid.convex_fusion(DENSE, {"q3": {"d9": 1.0}}, alpha=0.3, k=2)
    assert set(fused) == {"q1", "q2", "q3"} and len(fused["q1"]) == 2
    assert fused["q3"] == {"d9": pytest.approx(0.7)}


def test_rrf_by_hand():
    fused = hybrid.rrf([DENSE, LEXICAL])
    assert fused["q1"]["d1"] == pytest.approx(1 / 61 + 1 / 63)
    assert fused["q1"]["d2"] == pytest.approx(1 / 62)
    assert fused["q1"]["d4"] == pytest.approx(1 / 62)
    weighted = hybrid.rrf([DENSE, LEXICAL], rank_constant=0, weights=[2.0, 1.0], depth=1)
    assert weighted["q1"] == pytest.approx({"d1": 2.0, "d3": 1.0})


def test_rrf_ties_follow_trec_order():
    tied = {"q1": {"a": 1.0, "b": 1.0}}          # trec_eval: ties by doc id descending -> b first
    assert hybrid.rrf([tied])["q1"]["b"] > hybrid.rrf([tied])["q1"]["a"]


def test_inputs_are_not_modified():
    before = copy.deepcopy((DENSE, LEXICAL))
    hybrid.convex_fusion(DENSE, LEXICAL, 0.4, norm="zscore")
    hybrid.rrf([DENSE, LEXICAL])
    assert (DENSE, LEXICAL) == before


def test_alpha_sweep_finds_the_better_system():
    qrels = {"q1": {"d3": 1}, "q2": {"d5": 1}}     # the lexical run ranks both first
    table = hybrid.alpha_sweep(qrels, DENSE, LEXICAL, alphas=[0.0, 0.5, 1.0], metrics="mrr@10")
    assert list(table.index) == [0.0, 0.5, 1.0]
    assert table["mrr@10"].idxmax() == 0.0 and table.loc[0.0, "mrr@10"] == 1.0


def test_clear_errors():
    with pytest.raises(ValueError, match="alpha"):
        hybrid.convex_fusion(DENSE, LEXICAL, alpha=1.5)
    with pytest.raises(ValueError, match="at least one"):
        hybrid.rrf([])
    with pytest.raises(ValueError, match="weights"):
        hybrid.rrf([DENSE], weights=[1, 2])
    with pytest.raises(TypeError):
        hybrid.rrf([{"q1": ["d1", "d2"]}])


def test_doctests():
    import doctest

    assert doctest.testmod(hybrid).failed == 0
