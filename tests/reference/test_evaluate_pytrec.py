"""course_utils.evaluate gives the numbers of pytrec_eval (trec_eval) on random qrels and runs."""
import math
import random

import numpy as np
import pytest
import pytrec_eval  # pinned in the test extra: a broken install must fail, not skip

from course_utils.evaluate import evaluate, trec_order

CUTOFFS = (1, 2, 3, 5, 10, 20)
# ours -> pytrec_eval measure family (output keys are "<family>_<k>")
FAMILIES = {"precision": "P", "recall": "recall", "ndcg": "ndcg_cut", "map": "map_cut",
            "hit_rate": "success"}
# ids that sort differently as strings and as numbers, in upper and lower case
DOC_IDS = ["d1", "d2", "d10", "d9", "D3", "a", "b", "10", "9", "100", "x_1", "x-1", "é", "Z"]


def random_case(rng):
    """Random qrels and run with ties, graded labels, and queries/docs missing on either side."""
    qids = [f"q{i}" for i in range(rng.randint(1, 8))]
    qrels = {}
    for qid in qids:
        judged = rng.sample(DOC_IDS, rng.randint(0, 6))  # 0 judged: pytrec_eval drops the query
        qrels[qid] = {doc: rng.choice([0, 0, 1, 1, 2, 3, -1]) for doc in judged}
    run = {}
    for qid in rng.sample(qids, rng.randint(0, len(qids))) + ["extra_q"] * rng.randint(0, 1):
        docs = rng.sample(DOC_IDS, rng.randint(0, len(DOC_IDS)))  # may be empty, may be unjudged
        run[qid] = {doc: random_score(rng) for doc in docs}
    return qrels, run


def random_score(rng):
    kind = rng.random()
    if kind < 0.4:
        return float(rng.randint(0, 3))  # exact ties
    if kind < 0.6:
        return 0.5 + rng.choice([0.0, 1e-9, 2e-7])  # 1e-9 ties only in float32 (trec_eval)
    return rng.uniform(-5, 5)


def pytrec_per_query(qrels, run):
    measures = {f"{family}.{','.join(map(str, CUTOFFS))}" for family in FAMILIES.values()}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, measures | {"Rprec", "recip_rank"})
    return evaluator.evaluate(run)


def expected_row(reference_row, metric):
    """The pytrec_eval value of one of our metric names."""
    name, _, k = metric.partition("@")
    if name == "r_precision":
        return reference_row["Rprec"]
    if name == "mrr":  # recip_rank has no cutoff: the first relevant rank is > k iff rr < 1/k
        rr = reference_row["recip_rank"]
        return rr if rr >= 1 / int(k) - 1e-12 else 0.0
    return reference_row[f"{FAMILIES[name]}_{k}"]


METRICS = [f"{name}@{k}" for name in [*FAMILIES, "mrr"] for k in CUTOFFS] + ["r_precision"]


def test_every_metric_matches_pytrec_eval_on_random_cases():
    rng = random.Random(0)
    n_checked = 0
    for _ in range(200):
        qrels, run = random_case(rng)
        reference = pytrec_per_query(qrels, run)
        if not reference:  # no judged query in the run: we refuse instead of returning nothing
            with pytest.raises(ValueError):
                evaluate(qrels, run, METRICS)
            continue
        ours = evaluate(qrels, run, METRICS, per_query=True)
        assert list(ours) == [qid for qid in qrels if qid in reference]  # same queries, qrels order
        for qid, row in ours.items():
            for metric in METRICS:
                expected = expected_row(reference[qid], metric)
                assert row[metric] == pytest.approx(expected, abs=1e-6), (qid, metric, qrels[qid])
        n_checked += len(ours)
        means = evaluate(qrels, run, METRICS)
        for metric in METRICS:  # missing="skip": the mean over the queries pytrec_eval returns
            values = [expected_row(row, metric) for row in reference.values()]
            assert means[metric] == pytest.approx(np.mean(values), abs=1e-9)
        zero = evaluate(qrels, run, METRICS, missing="zero")
        n_judged = sum(1 for docs in qrels.values() if docs)
        for metric in METRICS:  # missing="zero": judged queries absent from the run count 0
            values = [expected_row(row, metric) for row in reference.values()]
            assert zero[metric] == pytest.approx(sum(values) / n_judged, abs=1e-9)
    assert n_checked > 300  # the loop really compared many queries


def test_trec_order_matches_pytrec_eval_rank_of_every_doc():
    # the rank trec_eval gives each doc = 1 / recip_rank when that doc is the only relevant one
    rng = random.Random(1)
    for _ in range(20):
        scores = {doc: random_score(rng) for doc in rng.sample(DOC_IDS, 8)}
        ranking = trec_order(scores)
        for doc in scores:
            evaluator = pytrec_eval.RelevanceEvaluator({"q": {doc: 1}}, {"recip_rank"})
            rr = evaluator.evaluate({"q": scores})["q"]["recip_rank"]
            assert ranking.index(doc) + 1 == round(1 / rr), (doc, scores)


def test_float32_ties_and_descending_doc_id_order():
    # pytrec_eval: 0.3 and 0.30000000000000004 tie (float32), ties go doc id descending
    scores = {"a": 0.30000000000000004, "b": 0.3, "c": 0.3, "B": 1.0}
    assert trec_order(scores) == ["B", "c", "b", "a"]
    evaluator = pytrec_eval.RelevanceEvaluator({"q": {"a": 1}}, {"recip_rank"})
    assert math.isclose(evaluator.evaluate({"q": scores})["q"]["recip_rank"], 1 / 4)
