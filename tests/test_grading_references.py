"""Each exercise whose answer the package also implements: the package function, called the
way the learner's function is, passes that exercise's hidden tests — so the grader's reference
answers and the course's tested code cannot drift apart."""
from __future__ import annotations

import numpy as np
import pytest

from course_utils import ann, embeddings, evaluate, hybrid, recommend, runs, search
from course_utils.finetune import mnrl_numpy
from course_utils.grading import cases, check, checks
from course_utils.search import Hits
from course_utils.speed.embed_api import backoff_delay, token_budget_batches


def _top_k(queries, vectors, k):
    hits = search.exact_search_numpy(queries, vectors, k)
    return hits.scores, hits.ids


def _mmr(query_vec, cand_vectors, k, lam):
    return recommend.mmr(query_vec, cand_vectors, k, lambda_=lam).ids[0]


def _mrr(rankings, qrels, k):
    run = {q: {d: -float(r) for r, d in enumerate(docs)} for q, docs in rankings.items()}
    return evaluate.evaluate(qrels, run, [f"mrr@{k}"], missing="zero")[f"mrr@{k}"]


PACKAGE = {
    "01.cosine": embeddings.cosine_similarity,
    "02.topk": _top_k,
    "02.to_run": lambda scores, ids, query_ids, doc_ids: runs.to_run(Hits(scores, ids), query_ids, doc_ids),
    "02.mmr": _mmr,
    "03.recall": evaluate.recall_at_k,
    "03.ndcg": evaluate.ndcg_at_k,
    "03.mrr": _mrr,
    "04.recall": lambda approx_ids, exact_ids, k: ann.neighbour_recall(
        Hits(np.zeros(np.shape(approx_ids), np.float32), np.asarray(approx_ids)),
        Hits(np.zeros(np.shape(exact_ids), np.float32), np.asarray(exact_ids)), k),
    "06.rrf": lambda runs_, k=60: hybrid.rrf(runs_, rank_constant=k),
    "06.convex": hybrid.convex_fusion,
    "08.mnrl": lambda anchors, positives, negatives=None, scale=20.0: mnrl_numpy(anchors, positives, negatives, scale),
    "10.backoff": backoff_delay,
    "10.batches": token_budget_batches,
}


def _as_learner(fn):
    """check() refuses a library function handed in as is; a learner's wrapper is what it grades."""
    def learner(*args, **kwargs):
        return fn(*args, **kwargs)
    return learner


@pytest.mark.parametrize("exercise", sorted(PACKAGE))
def test_package_function_passes_the_exercise(exercise, capsys):
    result = check(exercise, _as_learner(PACKAGE[exercise]))            # the public cases
    assert result, f"{result}: {result.message}"
    result = checks._run(cases.get(exercise), _as_learner(PACKAGE[exercise]), 60, "hidden")   # the graded ones
    assert result, f"{result}: {result.message}"


def test_a_function_that_mutates_its_input_cannot_change_the_hidden_cases(capsys):
    """Mutate, then retry in the same kernel: the hidden inputs are the same for every attempt."""
    def vandal(a, b):
        a = np.asarray(a)
        a[...] = 0 if isinstance(a, np.ndarray) and a.flags.writeable else a
        return np.zeros((len(a), len(b)))
    check("01.cosine", vandal)
    assert check("01.cosine", _as_learner(embeddings.cosine_similarity))
    assert checks._run(cases.get("01.cosine"), vandal, 20, "all").status == "failed"     # as the grader runs
    assert checks._run(cases.get("01.cosine"), _as_learner(embeddings.cosine_similarity), 20, "all")
