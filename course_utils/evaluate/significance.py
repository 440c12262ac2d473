"""Is run B really better than run A? Paired significance tests over per-query metric values.

Both runs are scored on the same queries with `course_utils.evaluate.metrics`; the tests look at the
per-query differences d = metric(run_b) - metric(run_a), so diff > 0 means run B is better.
Further reading: Smucker, Allan & Carterette, "A comparison of statistical significance tests
for information retrieval evaluation", CIKM 2007.
"""
from dataclasses import dataclass

import numpy as np
from scipy import stats

from course_utils.evaluate.metrics import evaluate

__all__ = ["Comparison", "compare", "holm"]

_TESTS = ("t", "randomization", "bootstrap")
_CHUNK = 1_000_000  # resampled values held in memory at once
_TOL = 1e-12  # |null mean| >= |observed mean| up to float rounding


@dataclass(frozen=True)
class Comparison:
    """Result of `compare`: means of each run, diff = mean_b - mean_a, two-sided p-value and the
    95% confidence interval (ci_low, ci_high) of the mean difference, over n_queries queries."""

    metric: str
    test: str
    n_queries: int
    mean_a: float
    mean_b: float
    diff: float
    p_value: float
    ci_low: float
    ci_high: float


def compare(qrels, run_a, run_b, metric="ndcg@10", test="t", n_resamples=10_000, seed=0,
            missing="skip"):
    """Paired test of run_b against run_a on one metric.

    qrels, run_a, run_b: TREC dicts as in `evaluate`; metric: one name such as "ndcg@10".
    test: "t" (paired t-test, CI from the t distribution), "randomization" (sign-flip test) or
    "bootstrap" (bootstrap test); the last two report a bootstrap percentile CI, draw
    n_resamples resamples from numpy's default_rng(seed) and never give p < 1 / (n_resamples + 1).
    missing: as in `evaluate`; with "skip" both runs must cover the same judged queries.
    Returns a Comparison; diff = mean_b - mean_a, so diff > 0 means run_b is better.
    >>> qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1}}
    >>> run_a = {q: {"d1": 1.0, "d2": 0.5, "d3": 0.1} for q in qrels}
    >>> compare(qrels, run_a, run_a, "mrr@10").p_value
    1.0
    """
    if test not in _TESTS:
        raise ValueError(f"test must be one of {_TESTS}, got {test!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) \
            or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive int, got {n_resamples!r}")
    a, b = _paired_scores(qrels, run_a, run_b, metric, missing)
    if len(a) < 2:
        raise ValueError(f"a paired test needs at least 2 queries, got {len(a)}")
    if test == "t":
        p_value, ci_low, ci_high = _t_test(a, b)
    else:
        p_value, ci_low, ci_high = _resampling_test(b - a, test, n_resamples, seed)
    return Comparison(metric, test, len(a), float(a.mean()), float(b.mean()),
                      float((b - a).mean()), float(p_value), float(ci_low), float(ci_high))


def holm(p_values, alpha=0.05):
    """Holm's step-down correction for m tests at once (Holm 1979): family-wise error <= alpha.

    Sort the p-values, p_(1) <= ... <= p_(m); the adjusted p_(i) is
    max over j <= i of min(1, (m - j + 1) * p_(j)); a test is rejected when its adjusted p <= alpha.
    Less conservative than Bonferroni (m * p) and valid under any dependence between the tests.
    p_values: a sequence of m p-values in [0, 1] (a dict keeps its keys).
    Returns (adjusted p-values in the input order, rejected flags) -- lists, or dicts for a dict.
    >>> holm([0.01, 0.04, 0.03])
    ([0.03, 0.06, 0.06], [True, False, False])
    """
    keys = list(p_values) if isinstance(p_values, dict) else None
    p = np.asarray(list(p_values.values()) if keys is not None else list(p_values), dtype=float)
    if p.ndim != 1 or len(p) == 0 or np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"p_values must be a non-empty sequence of numbers in [0, 1], got {p_values!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    order = np.argsort(p, kind="stable")
    steps = (len(p) - np.arange(len(p))) * p[order]          # (m - j + 1) * p_(j), j = 1..m
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    adjusted_list = [round(float(a), 15) for a in adjusted]
    rejected = [a <= alpha for a in adjusted_list]
    if keys is not None:
        return dict(zip(keys, adjusted_list)), dict(zip(keys, rejected))
    return adjusted_list, rejected


def _paired_scores(qrels, run_a, run_b, metric, missing):
    """Per-query values of `metric` for both runs: two float arrays of shape (n_queries,)."""
    if not isinstance(metric, str):
        raise TypeError(f"compare takes one metric name such as 'ndcg@10', got {metric!r}")
    table_a = evaluate(qrels, run_a, metric, per_query=True, missing=missing)
    table_b = evaluate(qrels, run_b, metric, per_query=True, missing=missing)
    if table_a.keys() != table_b.keys():
        only_a, only_b = table_a.keys() - table_b.keys(), table_b.keys() - table_a.keys()
        raise ValueError(
            f"run_a and run_b cover different judged queries ({len(only_a)} only in run_a, e.g. "
            f"{sorted(only_a)[:3]}; {len(only_b)} only in run_b, e.g. {sorted(only_b)[:3]}): a "
            "paired test needs the same queries; restrict both runs or pass missing='zero'")
    a = np.array([row[metric] for row in table_a.values()])
    b = np.array([table_b[qid][metric] for qid in table_a])
    return a, b


def _t_test(a, b):
    """Paired t-test (Student 1908): t = mean(d) / (sd(d) / sqrt(n)), n - 1 degrees of freedom,
    via scipy.stats.ttest_rel; CI = mean(d) +- t_0.975 * sd(d) / sqrt(n)."""
    d = b - a
    if np.all(d == d[0]):  # no spread: t is undefined (scipy returns NaN); take its limit
        return (1.0 if d[0] == 0 else 0.0), d[0], d[0]
    result = stats.ttest_rel(b, a)
    ci = result.confidence_interval(0.95)
    return result.pvalue, ci.low, ci.high


def _resampling_test(d, test, n_resamples, seed):
    """Two-sided p-value p = (1 + #{|null mean| >= |mean(d)|}) / (1 + n_resamples)
    (Phipson & Smyth 2010, so p is never 0) and the bootstrap percentile 95% CI of mean(d)."""
    rng = np.random.default_rng(seed)
    boot = _bootstrap_means(d, n_resamples, rng)
    if test == "randomization":
        null = _sign_flip_means(d, n_resamples, rng)
    else:
        null = boot - d.mean()  # bootstrap of d shifted to mean 0, i.e. under H0
    extreme = np.count_nonzero(np.abs(null) >= abs(d.mean()) - _TOL)
    ci_low, ci_high = np.percentile(boot, [2.5, 97.5])
    return (1 + extreme) / (1 + n_resamples), ci_low, ci_high


def _sign_flip_means(d, n_resamples, rng):
    """Randomization test (Fisher 1935): under H0 the labels A/B of each query are exchangeable,
    so each difference keeps or flips its sign with probability 1/2.
    Returns the (n_resamples,) means of the sign-flipped differences."""
    rows = max(1, _CHUNK // len(d))
    means = [rng.choice([-1.0, 1.0], size=(min(rows, n_resamples - start), len(d))) @ d / len(d)
             for start in range(0, n_resamples, rows)]
    return np.concatenate(means)


def _bootstrap_means(d, n_resamples, rng):
    """Bootstrap (Efron & Tibshirani 1993, ch. 16): means of d resampled with replacement over
    queries. Returns (n_resamples,) means."""
    rows = max(1, _CHUNK // len(d))
    means = [d[rng.integers(0, len(d), size=(min(rows, n_resamples - start), len(d)))].mean(axis=1)
             for start in range(0, n_resamples, rows)]
    return np.concatenate(means)
