"""Chapter 06's exercise checks: typical mistakes are named, other correct versions pass."""
import functools
import math
from pathlib import Path

import nbformat
import numpy as np
import pytest

from course_utils import hybrid
from course_utils.grading import cases, check

ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def _solution():
    """The functions defined in solutions/06_..._exercises.ipynb (cells starting with `def `)."""
    nb = nbformat.read(ROOT / "solutions" / "06_hybrid_and_reranking_exercises.ipynb", as_version=4)
    namespace = {}
    exec("import math\nimport numpy as np\n" + "\n".join(c.source for c in nb.cells if c.source.startswith("def ")), namespace)
    return namespace


def _bm25(idf="robertson", k1_factor=True, unique=False):
    def fn(query, docs, k1=1.5, b=0.75):
        n, avgdl = len(docs), np.mean([len(d) for d in docs])
        out = np.zeros(n)
        for t in (set(query) if unique else query):
            df = sum(t in d for d in docs)
            if not df:
                continue
            r = (n - df + 0.5) / (df + 0.5)
            w = {"robertson": max(0.0, math.log(r)), "raw": math.log(r), "lucene": math.log1p(r)}[idf]
            for i, d in enumerate(docs):
                f = d.count(t)
                out[i] += w * f * ((k1 + 1) if k1_factor else 1) / (f + k1 * (1 - b + b * len(d) / avgdl))
        return out
    return fn


def _rrf(start=1, by_insertion=False):
    def fn(runs, k=60):
        fused = {}
        for run in runs:
            for q, docs in run.items():
                t = fused.setdefault(q, {})
                ranked = sorted(docs, key=docs.get, reverse=True) if by_insertion else \
                    sorted(docs, key=lambda d: (docs[d], d), reverse=True)
                for r, d in enumerate(ranked, start):
                    t[d] = t.get(d, 0.0) + 1 / (k + r)
        return fused
    return fn


def _convex(const=1.0, swap=False):
    def fn(run_a, run_b, alpha):
        if swap:
            alpha = 1 - alpha

        def norm(docs):
            if not docs:
                return {}
            lo, hi = min(docs.values()), max(docs.values())
            return {d: (s - lo) / (hi - lo) if hi > lo else const for d, s in docs.items()}
        return {q: {d: alpha * norm(run_a.get(q, {})).get(d, 0.0) + (1 - alpha) * norm(run_b.get(q, {})).get(d, 0.0)
                    for d in {**run_a.get(q, {}), **run_b.get(q, {})}} for q in {**run_a, **run_b}}
    return fn


def _sweep_mirrored(qrels, dense, lex, alphas):
    return hybrid.alpha_sweep(qrels, lex, dense, alphas, ["recall@10", "ndcg@5"])


def _rerank(mode):
    """rerank variants: dict order, (passage, query) pairs, every document scored, first-stage scores kept."""
    def fn(run, queries, doc_text, model, depth):
        out = {}
        for qid, docs in run.items():
            top = list(docs)[:depth] if mode == "dict order" else sorted(docs, key=docs.get, reverse=True)
            if mode != "all":
                top = top[:depth]
            pairs = [(doc_text[d], queries[qid]) if mode == "reversed" else (queries[qid], doc_text[d]) for d in top]
            scores = model.predict(pairs) if pairs else []
            out[qid] = {d: (docs[d] if mode == "first stage" else float(s)) for d, s in zip(top, scores)}
        return out
    return fn


_MISTAKES = [
    ("06.bm25", _bm25(idf="raw"), "clips it at 0"),
    ("06.bm25", _bm25(idf="lucene"), "Lucene's idf"),
    ("06.bm25", _bm25(k1_factor=False), "(k1 + 1) factor"),
    ("06.bm25", _bm25(unique=True), "counts once per repetition"),
    ("06.rrf", _rrf(start=0), "ranks start at 1"),
    ("06.rrf", _rrf(by_insertion=True), "larger doc id first"),
    ("06.convex", _convex(const=0.0), "give each 1.0"),
    ("06.convex", _convex(swap=True), "alpha weights run_a"),
    ("06.alpha_sweep", _sweep_mirrored, "mirrored"),
    ("06.alpha_sweep", lambda q, a, b, alphas: hybrid.alpha_sweep(q, a, b, alphas, ["ndcg@5", "recall@10"]), "in that order"),
    ("06.rerank", _rerank("dict order"), "not sorted"),
    ("06.rerank", _rerank("reversed"), "(passage, query)"),
    ("06.rerank", _rerank("all"), "keep only the top `depth`"),
    ("06.rerank", _rerank("first stage"), "still the first stage's"),
]


@pytest.mark.parametrize("ex, fn, words", _MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(_MISTAKES)])
def test_typical_mistakes_fail_with_a_message_that_names_them(ex, fn, words, capsys):
    result = check(ex, fn, time_limit=120)
    assert result.status == "failed" and words in result.message, result.message
    assert words in capsys.readouterr().out.replace("\n    ", " ")


def _bm25_course(query, docs, k1=1.5, b=0.75):
    """Another correct version: the course's sparse BM25 (robertson variant)."""
    from course_utils import bm25
    return bm25.BM25(k1=k1, b=b, variant="robertson", dtype=np.float64).fit(docs).scores([query])[0]


@pytest.mark.parametrize("ex, fn", [
    ("06.bm25", _bm25_course),
    ("06.rrf", lambda runs, k=60: hybrid.rrf(list(runs), rank_constant=k)),
    ("06.convex", lambda a, b, alpha: hybrid.convex_fusion(a, b, alpha)),
    ("06.alpha_sweep", lambda q, a, b, alphas: hybrid.alpha_sweep(q, a, b, alphas, ["recall@10", "ndcg@5"])),
], ids=["bm25-sparse", "rrf-course", "convex-course", "sweep-course"])
def test_other_correct_implementations_pass(ex, fn, capsys):
    assert check(ex, fn), capsys.readouterr().out


@pytest.mark.parametrize("ex", ["06.bm25", "06.rrf", "06.convex", "06.alpha_sweep"])
def test_the_solution_passes(ex):
    assert check(ex, _solution()[cases.get(ex).function])


def test_the_rerank_solution_passes(capsys):
    assert check("06.rerank", _solution()["rerank"]), capsys.readouterr().out
