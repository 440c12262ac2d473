"""Tests of course_utils.evaluate and course_utils.evaluate.significance on hand-checkable fixtures."""
import copy
import doctest
import itertools
import math

import numpy as np
import pytest
from scipy import stats

from course_utils import significance
from course_utils.evaluate import (
    average_precision_at_k,
    evaluate,
    hit_rate_at_k,
    judged_at_k,
    mrr_at_k,
    ndcg_at_k,
    per_query_table,
    precision_at_k,
    r_precision,
    recall_at_k,
    trec_order,
)
from course_utils.evaluate import metrics as evaluate_module
from course_utils.evaluate.significance import compare

# ranking [relevant, not relevant, relevant], 2 relevant docs in qrel
RANKING = ["d1", "d2", "d3"]
QREL = {"d1": 1, "d3": 1}


def test_binary_fixture_by_hand():
    assert precision_at_k(RANKING, QREL, 3) == pytest.approx(2 / 3)
    assert precision_at_k(RANKING, QREL, 2) == pytest.approx(1 / 2)
    assert recall_at_k(RANKING, QREL, 3) == 1.0
    assert recall_at_k(RANKING, QREL, 1) == 0.5
    assert hit_rate_at_k(RANKING, QREL, 1) == 1.0
    assert mrr_at_k(RANKING, QREL, 3) == 1.0
    # DCG = 1/log2(2) + 0 + 1/log2(4) = 1.5; ideal = 1/log2(2) + 1/log2(3)
    assert ndcg_at_k(RANKING, QREL, 3) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    # AP@3 = (P@1 + P@3) / 2 relevant = (1 + 2/3) / 2
    assert average_precision_at_k(RANKING, QREL, 3) == pytest.approx(5 / 6)
    # AP@1 still divides by all 2 relevant docs (trec_eval map_cut)
    assert average_precision_at_k(RANKING, QREL, 1) == pytest.approx(1 / 2)
    assert r_precision(RANKING, QREL) == pytest.approx(1 / 2)  # P@R, R = 2


def test_graded_fixture_by_hand():
    ranking, qrel = ["a", "b", "c"], {"a": 1, "c": 3, "z": 2}  # z relevant but not retrieved
    # DCG@3 = 1/1 + 0 + 3/log2(4) = 2.5; ideal gains (3, 2, 1): 3 + 2/log2(3) + 1/2
    assert ndcg_at_k(ranking, qrel, 3) == pytest.approx(2.5 / (3.5 + 2 / math.log2(3)))
    # nDCG@1: DCG = 1, ideal = 3
    assert ndcg_at_k(ranking, qrel, 1) == pytest.approx(1 / 3)
    assert recall_at_k(ranking, qrel, 3) == pytest.approx(2 / 3)
    assert average_precision_at_k(ranking, qrel, 3) == pytest.approx((1 + 2 / 3) / 3)
    assert r_precision(ranking, qrel) == pytest.approx(2 / 3)  # R = 3


def test_edge_cases_by_hand():
    assert precision_at_k(["a"], {"a": 1}, 5) == pytest.approx(1 / 5)  # divides by k, not by 1
    assert mrr_at_k(["n1", "n2", "r"], {"r": 1}, 2) == 0.0  # first relevant at rank 3 > k
    assert mrr_at_k(["n1", "n2", "r"], {"r": 1}, 3) == pytest.approx(1 / 3)
    # negative relevance is not relevant and gains 0: nDCG@2 = (1/log2(3)) / 1
    assert ndcg_at_k(["a", "b"], {"a": -1, "b": 1}, 2) == pytest.approx(1 / math.log2(3))
    assert precision_at_k(["a", "b"], {"a": -1, "b": 1}, 2) == 0.5
    for metric in (precision_at_k, recall_at_k, hit_rate_at_k, mrr_at_k, ndcg_at_k,
                   average_precision_at_k):  # no relevant document: every metric is 0
        assert metric(["a", "b"], {"a": 0}, 2) == 0.0
        assert metric([], {"a": 1}, 2) == 0.0
    assert r_precision(["a"], {"a": 0}) == 0.0


def test_trec_order_ties_go_doc_id_descending_as_strings():
    assert trec_order({"d1": 0.5, "d2": 0.9, "d3": 0.5}) == ["d2", "d3", "d1"]
    assert trec_order({"9": 1.0, "10": 1.0}) == ["9", "10"]  # "9" > "10" as strings
    assert trec_order({"a": 1, "b": 2.0, "c": np.float32(3)}) == ["c", "b", "a"]
    assert trec_order({}) == []


QRELS = {"q1": {"d1": 1, "d3": 1}, "q2": {"d5": 2}, "q3": {"d7": 1}}
RUN = {"q1": {"d1": 0.9, "d2": 0.8, "d3": 0.7},  # rel, non, rel
       "q2": {"d4": 0.9, "d5": 0.8},  # first relevant at rank 2
       "q_extra": {"d1": 1.0}}  # not in qrels: ignored; q3 is missing from the run


def test_evaluate_means_by_hand():
    result = evaluate(QRELS, RUN, ["precision@2", "mrr@10", "recall@1", "r_precision"])
    # skip: mean over q1 and q2, the queries pytrec_eval returns
    assert result == pytest.approx({"precision@2": (1 / 2 + 1 / 2) / 2, "mrr@10": (1 + 1 / 2) / 2,
                                    "recall@1": (1 / 2 + 0) / 2, "r_precision": (1 / 2 + 0) / 2})
    zero = evaluate(QRELS, RUN, ["mrr@10"], missing="zero")
    assert zero == pytest.approx({"mrr@10": (1 + 1 / 2 + 0) / 3})  # q3 counts as 0


def test_evaluate_defaults_per_query_and_names():
    assert list(evaluate(QRELS, RUN)) == ["ndcg@10", "recall@100", "mrr@10"]
    assert evaluate(QRELS, RUN, "MRR@10") == pytest.approx({"MRR@10": 0.75})  # names as given
    assert evaluate(QRELS, RUN, "rprec") == {"rprec": (1 / 2 + 0) / 2}  # alias of r_precision
    per_query = evaluate(QRELS, RUN, ["mrr@10", "hit_rate@1"], per_query=True)
    assert per_query == {"q1": {"mrr@10": 1.0, "hit_rate@1": 1.0},
                         "q2": {"mrr@10": 0.5, "hit_rate@1": 0.0}}


def test_which_queries_count_as_pytrec_eval():
    qrels = {"q1": {"a": 1}, "q2": {"a": 0}, "q3": {}, "q4": {"a": 1}}
    run = {"q1": {"a": 1.0}, "q2": {"a": 1.0}, "q3": {"a": 1.0}, "q4": {}}
    # q2 (only non-relevant judgments) and q4 (empty results) score 0; q3 (no judgments) is dropped
    assert evaluate(qrels, run, "hit_rate@1", per_query=True) == {
        "q1": {"hit_rate@1": 1.0}, "q2": {"hit_rate@1": 0.0}, "q4": {"hit_rate@1": 0.0}}


def test_per_query_table():
    table = per_query_table(QRELS, RUN, ["mrr@10", "precision@1"], missing="zero")
    assert table.index.name == "qid"
    assert list(table.index) == ["q1", "q2", "q3"]
    assert list(table.columns) == ["mrr@10", "precision@1"]
    assert table["mrr@10"].tolist() == [1.0, 0.5, 0.0]


@pytest.mark.parametrize("metric, message", [
    ("foo@10", r"unknown metric 'foo@10'; valid metrics: precision@k"),
    ("ndcg", r"'ndcg' needs a cutoff k .* e\.g\. 'ndcg@10'"),
    ("ndcg@0", "positive integer"), ("ndcg@-1", "positive integer"),
    ("ndcg@1.5", "positive integer"), ("ndcg@ten", "positive integer"),
    ("r_precision@5", "takes no @k"),
])
def test_bad_metric_names(metric, message):
    with pytest.raises(ValueError, match=message):
        evaluate(QRELS, RUN, [metric])


@pytest.mark.parametrize("qrels, run, error, message", [
    (QRELS, [("q1", "d1", 1.0)], TypeError, r"run must be a dict \{qid: \{doc_id: score\}\}, got"),
    (QRELS, {"q1": ["d1", "d2"]}, TypeError, r"run\['q1'\] must be a dict .* enumerate"),
    (QRELS, {"q1": {"d1": "high"}}, TypeError, r"run\['q1'\]\['d1'\] = 'high' \(str\): scores"),
    (QRELS, {"q1": {"d1": float("nan")}}, ValueError, r"run\['q1'\]\['d1'\] is NaN"),
    (QRELS, {1: {"d1": 1.0}}, TypeError, r"ids must be str .* convert them with str\(\)"),
    (QRELS, {"q1": {7: 1.0}}, TypeError, r"ids must be str"),
    ({"q1": {"d1": 1.0}}, RUN, TypeError, r"qrels\['q1'\]\['d1'\] = 1.0 \(float\): relevance must"),
    ("qrels.tsv", RUN, TypeError, r"qrels must be a dict"),
    ({}, RUN, ValueError, r"qrels has no judged documents: load the qrels of the split"),
    ({"q1": {}}, RUN, ValueError, r"qrels has no judged documents"),
    (QRELS, {}, ValueError, r"run has no queries"),
    (QRELS, {"train_7": {"d1": 1.0}}, ValueError, r"none of the run's 1 query ids .* wrong split"),
])
def test_bad_inputs_raise_helpful_errors(qrels, run, error, message):
    with pytest.raises(error, match=message):
        evaluate(qrels, run, ["ndcg@10"])


def test_other_bad_arguments():
    with pytest.raises(ValueError, match="missing must be 'skip' or 'zero'"):
        evaluate(QRELS, RUN, missing="drop")
    with pytest.raises(ValueError, match="no metrics given"):
        evaluate(QRELS, RUN, [])
    with pytest.raises(TypeError, match="must be a str like 'ndcg@10'"):
        evaluate(QRELS, RUN, [10])
    for k in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            precision_at_k(RANKING, QREL, k)
    with pytest.raises(TypeError, match=r"use trec_order\(scores\)"):
        ndcg_at_k({"d1": 0.3}, QREL, 10)
    with pytest.raises(TypeError, match="ranking: ids must be str"):
        ndcg_at_k([3, 1], QREL, 10)  # row positions instead of doc ids
    assert ndcg_at_k(np.array(RANKING), QREL, 3) == ndcg_at_k(RANKING, QREL, 3)
    with pytest.raises(TypeError, match="scores must be int or float"):
        trec_order({"d1": None})


def test_inputs_are_not_modified():
    qrels, run, run_b = copy.deepcopy(QRELS), copy.deepcopy(RUN), copy.deepcopy(RUN)
    run_b["q2"] = {"d5": 2.0, "d4": 1.0}
    before = copy.deepcopy((qrels, run, run_b))
    evaluate(qrels, run, per_query=True, missing="zero")
    per_query_table(qrels, run)
    trec_order(run["q1"])
    ndcg_at_k(RANKING, qrels["q1"], 2)
    for test in ("t", "randomization", "bootstrap"):
        compare(qrels, run, run_b, "mrr@10", test=test, n_resamples=100)
    assert (qrels, run, run_b) == before
    assert list(run["q1"]) == ["d1", "d2", "d3"]  # not even re-ordered


@pytest.mark.parametrize("module", [evaluate_module, significance])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


# ---- significance: 30 queries, one relevant doc each, at a seeded random rank per run
def ranked_runs(n_queries=30, seed=0):
    rng = np.random.default_rng(seed)
    qrels = {f"q{i}": {"rel": 1} for i in range(n_queries)}

    def run_with_rank(ranks):
        return {qid: {("rel" if r == rank else f"n{r}"): 1.0 / r for r in range(1, 11)}
                for qid, rank in zip(qrels, ranks)}
    run_a = run_with_rank(rng.integers(2, 11, n_queries))  # relevant at rank 2..10
    run_b = run_with_rank(rng.integers(1, 3, n_queries))  # relevant at rank 1 or 2
    return qrels, run_a, run_b


@pytest.mark.parametrize("test", ["t", "randomization", "bootstrap"])
def test_identical_runs_give_p_one_and_zero_difference(test):
    qrels, run_a, _ = ranked_runs()
    result = compare(qrels, run_a, copy.deepcopy(run_a), "ndcg@10", test=test, n_resamples=1000)
    assert (result.diff, result.p_value, result.ci_low, result.ci_high) == (0.0, 1.0, 0.0, 0.0)
    assert result.mean_a == result.mean_b and result.n_queries == 30


@pytest.mark.parametrize("test", ["t", "randomization", "bootstrap"])
def test_clearly_better_run_has_small_p(test):
    qrels, run_a, run_b = ranked_runs()
    result = compare(qrels, run_a, run_b, "mrr@10", test=test)
    assert result.diff == pytest.approx(result.mean_b - result.mean_a) and result.diff > 0.3
    assert result.p_value < 0.001
    assert 0 < result.ci_low < result.diff < result.ci_high
    reverse = compare(qrels, run_b, run_a, "mrr@10", test=test)  # swapping runs flips the sign
    assert reverse.diff == pytest.approx(-result.diff)
    assert reverse.p_value == pytest.approx(result.p_value, abs=2e-3)


def test_t_test_equals_scipy():
    qrels, run_a, run_b = ranked_runs(seed=3)
    a = per_query_table(qrels, run_a, ["ndcg@10"])["ndcg@10"].to_numpy()
    b = per_query_table(qrels, run_b, ["ndcg@10"])["ndcg@10"].to_numpy()
    reference = stats.ttest_rel(b, a)
    ci = reference.confidence_interval(0.95)
    result = compare(qrels, run_a, run_b, "ndcg@10", test="t")
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    assert (result.ci_low, result.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert (result.mean_a, result.mean_b) == pytest.approx((a.mean(), b.mean()))


def test_randomization_test_matches_exact_enumeration():
    # 8 queries: all 2**8 sign flips give the exact p-value; 10000 resamples estimate it
    qrels, run_a, run_b = ranked_runs(n_queries=8, seed=5)
    a = per_query_table(qrels, run_a, ["mrr@10"])["mrr@10"].to_numpy()
    d = per_query_table(qrels, run_b, ["mrr@10"])["mrr@10"].to_numpy() - a
    flips = np.array(list(itertools.product([-1, 1], repeat=8)))
    exact = np.mean(np.abs(flips @ d) >= abs(d.sum()) - 1e-12)
    result = compare(qrels, run_a, run_b, "mrr@10", test="randomization", n_resamples=10_000)
    assert 0.0 < exact < 0.2 and result.p_value == pytest.approx(exact, abs=0.01)


def test_resampling_is_seeded():
    qrels, run_a, run_b = ranked_runs(n_queries=12, seed=7)
    first = compare(qrels, run_a, run_b, "ndcg@10", test="bootstrap", n_resamples=500, seed=1)
    again = compare(qrels, run_a, run_b, "ndcg@10", test="bootstrap", n_resamples=500, seed=1)
    assert again == first
    other = compare(qrels, run_a, run_b, "ndcg@10", test="bootstrap", n_resamples=500, seed=2)
    assert (other.ci_low, other.ci_high) != (first.ci_low, first.ci_high)


def test_compare_bad_arguments():
    qrels, run_a, run_b = ranked_runs()
    with pytest.raises(ValueError, match="test must be one of"):
        compare(qrels, run_a, run_b, test="wilcoxon")
    with pytest.raises(ValueError, match="n_resamples must be a positive int"):
        compare(qrels, run_a, run_b, test="bootstrap", n_resamples=0)
    with pytest.raises(TypeError, match="one metric name"):
        compare(qrels, run_a, run_b, metric=["ndcg@10", "mrr@10"])
    del run_b["q0"]
    with pytest.raises(ValueError, match=r"different judged queries \(1 only in run_a.*'zero'"):
        compare(qrels, run_a, run_b)
    assert compare(qrels, run_a, run_b, missing="zero").n_queries == 30
    with pytest.raises(ValueError, match="at least 2 queries"):
        compare({"q0": qrels["q0"]}, run_a, run_a)


# ---- Holm's correction for several comparisons
def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 (m = 3): 3 x 0.01 = 0.03; 2 x 0.03 = 0.06; 1 x 0.04 -> max(0.06, 0.04)
    adjusted, rejected = significance.holm([0.01, 0.04, 0.03])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06]) and rejected == [True, False, False]
    adj, rej = significance.holm({"a": 0.5, "b": 0.001}, alpha=0.01)
    assert adj == pytest.approx({"a": 0.5, "b": 0.002}) and rej == {"a": False, "b": True}
    assert significance.holm([0.9, 0.04])[0] == pytest.approx([0.9, 0.08])
    assert significance.holm([0.9, 0.8])[0] == [1.0, 1.0]       # 2 x 0.8 capped at 1, then monotone
    assert significance.holm([0.6, 0.7, 0.8])[0] == [1.0, 1.0, 1.0]


def test_holm_against_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    rng = np.random.default_rng(0)
    for m in (1, 2, 5, 20):
        p = rng.uniform(0, 0.2, m)
        p[rng.integers(m)] = p[0]                               # a tie
        reject, p_adj, _, _ = multitest.multipletests(p, alpha=0.05, method="holm")
        ours, ours_reject = significance.holm(p.tolist())
        assert np.allclose(ours, p_adj, atol=1e-12) and ours_reject == reject.tolist()


def test_holm_bad_input():
    for bad in ([], [0.1, 1.5], [-0.1], [float("nan")]):
        with pytest.raises(ValueError, match="p_values"):
            significance.holm(bad)
    with pytest.raises(ValueError, match="alpha"):
        significance.holm([0.1], alpha=1.0)


# ---- judged@k: the share of the top k that has a judgment (any label, 0 included)
def test_judged_at_k_by_hand():
    qrel = {"d1": 1, "d3": 0, "d9": 2}                          # d3 judged not relevant
    assert judged_at_k(["d1", "d2", "d3", "d4"], qrel, 4) == 0.5
    assert judged_at_k(["d1", "d2", "d3", "d4"], qrel, 1) == 1.0
    assert judged_at_k(["d2"], qrel, 10) == 0.0                 # divides by k, as precision
    # an unjudged doc still counts 0 in every other metric
    assert precision_at_k(["d2", "d1"], qrel, 2) == 0.5 and ndcg_at_k(["d3", "d2"], qrel, 2) == 0.0
    run = {"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0}, "q2": {"x": 1.0}}
    got = evaluate({"q1": qrel, "q2": {"y": 1}}, run, ["judged@2", "judged@3"])
    assert got == pytest.approx({"judged@2": (1 / 2 + 0) / 2, "judged@3": (2 / 3 + 0) / 2})
