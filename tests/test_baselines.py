"""course_utils.lexical.baselines: tokenisation, top-k runs, and BM25 against a naive implementation."""
import math

import numpy as np
import pytest

from course_utils import baselines
from course_utils.evaluate import evaluate

CORPUS = {
    "d1": {"title": "Vitamin D", "text": "Vitamin D deficiency is linked to bone loss."},
    "d2": {"title": "Aspirin", "text": "Aspirin inhibits the production of prostaglandins."},
    "d3": {"title": "", "text": "Bone density falls with age in women and in men."},
    "d4": {"title": "p53", "text": "PPM1D suppresses p53 and the p53 pathway."},
    "d5": {"title": "Statins", "text": "Statins lower LDL cholesterol in most patients."},
}
QUERIES = {"q1": "vitamin D and bone loss", "q2": "What suppresses p53?", "q3": "the of and"}


def test_tokenize_lowercases_keeps_digits_and_drops_stop_words():
    assert baselines.simple_tokenize("The p53 gene, NOT TP53!") == ["p53", "gene", "tp53"]
    assert baselines.simple_tokenize("The p53 gene", stop_words=False) == ["the", "p53", "gene"]
    assert baselines.simple_tokenize("") == []


def test_scores_to_run_orders_cuts_and_drops_non_positive():
    scores = np.array([[0.1, 0.0, 3.0, 2.0], [-1.0, 0.0, 0.0, 0.0]])
    run = baselines.scores_to_run(scores, ["a", "b"], ["d0", "d1", "d2", "d3"], k=3)
    assert list(run["a"].items()) == [("d2", 3.0), ("d3", 2.0), ("d0", 0.1)]
    assert run["b"] == {}  # key kept: evaluate scores such a query 0
    everything = baselines.scores_to_run(scores, ["a", "b"], ["d0", "d1", "d2", "d3"], k=10,
                                         positive_only=False)
    assert len(everything["a"]) == 4 and len(everything["b"]) == 4


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_scores_to_run_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k must be"):
        baselines.scores_to_run(np.ones((1, 2)), ["q"], ["a", "b"], k=k)


def test_scores_to_run_rejects_wrong_shape():
    with pytest.raises(ValueError, match="n_queries, n_docs"):
        baselines.scores_to_run(np.ones((2, 3)), ["q"], ["a", "b", "c"])


def test_random_run_is_seeded_and_full_depth():
    a = baselines.random_run(CORPUS, QUERIES, k=3, seed=1)
    assert a == baselines.random_run(CORPUS, QUERIES, k=3, seed=1)
    assert a != baselines.random_run(CORPUS, QUERIES, k=3, seed=2)
    assert all(len(docs) == 3 for docs in a.values()) and list(a) == list(QUERIES)


def test_tfidf_run_ranks_the_matching_document_first():
    run = baselines.tfidf_run(CORPUS, QUERIES, k=5)
    assert next(iter(run["q1"])) == "d1" and next(iter(run["q2"])) == "d4"
    assert "d2" not in run["q1"]  # shares no word with the query
    assert run["q3"] == {}  # only stop words
    assert all(0 < s <= 1 + 1e-9 for docs in run.values() for s in docs.values())


def naive_bm25(docs, query, k1=1.5, b=0.75, eps=0.25):
    """BM25Okapi written out from its formula (rank-bm25's idf floor included)."""
    n, avgdl = len(docs), sum(map(len, docs)) / len(docs)
    vocab = {w for d in docs for w in d}
    idf = {w: math.log((n - sum(w in d for d in docs) + 0.5) / (sum(w in d for d in docs) + 0.5))
           for w in vocab}
    floor = eps * sum(idf.values()) / len(idf)
    idf = {w: (v if v >= 0 else floor) for w, v in idf.items()}
    return [sum(idf.get(t, 0) * d.count(t) * (k1 + 1)
                / (d.count(t) + k1 * (1 - b + b * len(d) / avgdl)) for t in query) for d in docs]


@pytest.mark.parametrize("k1,b", [(1.5, 0.75), (1.2, 0.75), (0.9, 0.4)])
def test_bm25_scores_match_the_formula(k1, b):
    texts = [f"{v['title']} {v['text']}".strip() for v in CORPUS.values()]
    queries = list(QUERIES.values()) + ["bone bone loss in women"]
    got = baselines.bm25_scores(texts, queries, k1=k1, b=b, show_progress=False)
    tokens = [baselines.simple_tokenize(t) for t in texts]
    want = [naive_bm25(tokens, baselines.simple_tokenize(q), k1, b) for q in queries]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got.shape == (len(queries), len(texts))


def test_bm25_run_is_a_valid_trec_run():
    run = baselines.rank_bm25_run(CORPUS, QUERIES, k=2, show_progress=False)
    assert list(run["q1"])[0] == "d1" and list(run["q2"])[0] == "d4"
    assert all(len(docs) <= 2 for docs in run.values()) and run["q3"] == {}
    qrels = {"q1": {"d1": 1}, "q2": {"d4": 1}, "q3": {"d2": 1}}
    assert evaluate(qrels, run, ["mrr@10"]) == {"mrr@10": pytest.approx(2 / 3)}


def test_custom_tokenizer_is_used():
    stem = lambda text: [w.rstrip("s") for w in baselines.simple_tokenize(text)]  # noqa: E731
    run = baselines.rank_bm25_run(CORPUS, {"q": "statin"}, tokenizer=stem, show_progress=False)
    assert list(run["q"]) == ["d5"]
    assert baselines.rank_bm25_run(CORPUS, {"q": "statin"}, show_progress=False)["q"] == {}


@pytest.mark.parametrize("fn", [baselines.random_run, baselines.tfidf_run, baselines.rank_bm25_run])
def test_empty_inputs_raise(fn):
    with pytest.raises(ValueError, match="corpus"):
        fn({}, QUERIES)
    with pytest.raises(ValueError, match="queries"):
        fn(CORPUS, {})


def test_docstring_examples_run():
    import doctest

    assert doctest.testmod(baselines).failed == 0
