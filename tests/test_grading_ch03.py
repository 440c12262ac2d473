"""Chapter 03's library exercise (03.compare_runs) and the nDCG message for a division by zero.
(The numpy exercises' other mistakes are tested in tests/test_grading.py.)"""
import functools
import math
from pathlib import Path

import nbformat
import numpy as np
import pytest

from course_utils.grading import check

ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def _solution():
    nb = nbformat.read(ROOT / "solutions" / "03_evaluation_exercises.ipynb", as_version=4)
    namespace = {}
    exec("import math\nimport numpy as np\n" + "\n".join(c.source for c in nb.cells if c.source.startswith("def ")), namespace)
    return namespace


def _compare(answered_only=False, unpaired=False):
    def fn(qrels, run_a, run_b):
        import pytrec_eval
        from scipy.stats import ttest_ind, ttest_rel
        evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"})
        a, b = (np.array([evaluator.evaluate(r).get(q, {}).get("ndcg_cut_10", 0.0) for q in sorted(qrels)])
                for r in (run_a, run_b))
        p = (ttest_ind if unpaired else ttest_rel)(b, a).pvalue
        if answered_only:   # the mean of what pytrec_eval returned: unanswered queries left out
            a, b = (np.mean([v["ndcg_cut_10"] for v in evaluator.evaluate(r).values()]) for r in (run_a, run_b))
        return {"a": float(np.mean(a)), "b": float(np.mean(b)), "p_value": float(p)}
    return fn


def _ndcg_log_rank(ranking, qrel, k):
    """Discount log2(rank) with ranks from 1: rank 1 divides by zero."""
    dcg = lambda gains: sum(g / math.log2(i) for i, g in enumerate(gains, 1))   # noqa: E731
    gains = [qrel.get(d, 0) for d in ranking[:k]]
    ideal = sorted(qrel.values(), reverse=True)[:k]
    return dcg(gains) / dcg(ideal)


_MISTAKES = [
    ("03.compare_runs", _compare(answered_only=True), "averages only the queries run_b answered"),
    ("03.compare_runs", _compare(unpaired=True), "UNPAIRED"),
    ("03.ndcg", _ndcg_log_rank, "log2(rank + 1)"),
]


@pytest.mark.parametrize("ex, fn, words", _MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(_MISTAKES)])
def test_typical_mistakes_fail_with_a_message_that_names_them(ex, fn, words, capsys):
    result = check(ex, fn, time_limit=60)
    assert result.status == "failed" and words in result.message, result.message
    assert words in capsys.readouterr().out.replace("\n    ", " ")


def test_no_relevant_document_is_named_as_such_not_as_a_log_discount(capsys):
    """An nDCG that divides 0 by 0 on a query without relevant documents hears about that, not about log2(1)."""
    def no_guard(ranking, qrel, k):
        dcg = lambda gains: sum(g / math.log2(i + 1) for i, g in enumerate(gains, 1))   # noqa: E731
        return dcg([qrel.get(d, 0) for d in ranking[:k]]) / dcg(sorted(qrel.values(), reverse=True)[:k])
    result = check("03.ndcg", no_guard)
    messages = result.message
    assert result.status == "failed" and "no relevant document" in messages and "log2(1)" not in messages, messages


def test_the_solution_passes(capsys):
    assert check("03.compare_runs", _solution()["compare_runs"], time_limit=60), capsys.readouterr().out
