"""course_utils.lexical.bm25: tokeniser, one formula per function, the sparse index against a naive loop."""
import math

import numpy as np
import pytest

from course_utils import bm25
from course_utils.search import Hits

DOCS = ["the cat sat on the mat", "a dog chased the cat", "dogs and cats and dogs",
        "a bird sang", "the mat was red and the cat was black"]


def naive_scores(token_docs, query, variant, k1=1.5, b=0.75, epsilon=0.25):
    """BM25 written out with loops and math.log, straight from the formulas."""
    n = len(token_docs)
    avgdl = sum(map(len, token_docs)) / n
    vocab = {w for d in token_docs for w in d}
    df = {w: sum(w in d for d in token_docs) for w in vocab}
    raw = {w: math.log((n - df[w] + 0.5) / (df[w] + 0.5)) for w in vocab}
    if variant == "okapi":
        mean = sum(raw.values()) / len(raw)
        idf = {w: (v if v >= 0 else epsilon * mean) for w, v in raw.items()}
    elif variant == "robertson":
        idf = {w: max(v, 0.0) for w, v in raw.items()}
    else:
        idf = {w: math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5)) for w in vocab}
    scale = 1.0 if variant == "lucene" else k1 + 1
    out = []
    for d in token_docs:
        s = 0.0
        for w in query:
            f = d.count(w)
            if w in idf:
                s += idf[w] * f * scale / (f + k1 * (1 - b + b * len(d) / avgdl))
        out.append(s)
    return np.array(out)


def test_tokenize_lowercases_drops_stop_words_and_keeps_numbers():
    assert bm25.tokenize("The TNF-α level of IL-6 was 2.5") == ["tnf", "α", "level", "il", "6", "2", "5"]
    assert bm25.tokenize("The cat", stop_words=None) == ["the", "cat"]


def test_tokenize_stems():
    assert bm25.tokenize("running runs mutations", stem=True) == ["run", "run", "mutat"]


def test_idf_formulas_by_hand():
    df, n = np.array([1, 2, 4]), 5
    assert bm25.idf_robertson(df, n)[0] == pytest.approx(math.log(4.5 / 1.5))
    assert bm25.idf_robertson(df, n)[2] == 0.0                     # ln(1.5 / 4.5) < 0 -> 0
    assert bm25.idf_lucene(df, n)[2] == pytest.approx(math.log(1 + 1.5 / 4.5))
    raw = np.log((n - df + 0.5) / (df + 0.5))
    assert bm25.idf_okapi(df, n)[2] == pytest.approx(0.25 * raw.mean())


def test_tf_parts_saturate_and_normalise_length():
    tf = np.array([1.0, 2.0, 100.0])
    okapi = bm25.tf_okapi(tf, np.full(3, 10.0), 10.0, k1=1.2, b=0.75)
    assert np.all(np.diff(okapi) > 0) and okapi[-1] < 1.2 + 1   # grows, bounded by k1 + 1
    longer = bm25.tf_okapi(np.array(1.0), np.array(20.0), 10.0, k1=1.2, b=0.75)
    assert longer < okapi[0]                                      # longer documents score less
    assert bm25.tf_lucene(tf, np.full(3, 10.0), 10.0, 1.2, 0.75) == pytest.approx(okapi / 2.2)


@pytest.mark.parametrize("variant", ["okapi", "robertson", "lucene"])
@pytest.mark.parametrize("k1,b", [(1.5, 0.75), (0.9, 0.4), (1.2, 0.0), (2.0, 1.0)])
def test_sparse_scores_equal_the_naive_formula(variant, k1, b):
    tokens = [bm25.tokenize(d, stop_words=None) for d in DOCS]
    index = bm25.BM25(k1=k1, b=b, variant=variant, dtype=np.float64).fit(tokens)
    for query in (["cat", "mat"], ["the", "dogs", "dogs"], ["unknown"], []):
        expected = naive_scores(tokens, query, variant, k1, b)
        np.testing.assert_allclose(index.scores([query])[0], expected, rtol=1e-12, atol=1e-12)


def test_search_matches_sorted_scores_and_pads():
    index = bm25.BM25().fit(DOCS)
    hits = index.search(["cat mat", "bird", "zebra"], k=4)
    assert isinstance(hits, Hits) and hits.ids.shape == (3, 4)
    scores = index.scores(["cat mat"])[0]
    positive = [i for i in np.argsort(-scores, kind="stable") if scores[i] > 0][:4]
    assert hits.ids[0].tolist()[:len(positive)] == positive
    assert hits.ids[1].tolist() == [3, -1, -1, -1]                  # only doc 3 has "bird"
    assert hits.ids[2].tolist() == [-1] * 4 and np.isneginf(hits.scores[2]).all()


def test_ties_go_to_the_smaller_row_even_at_the_kth_place():
    index = bm25.BM25().fit(["apple x", "pear y", "apple z", "apple w", "plum v"])
    hits = index.search(["apple"], k=2)
    assert hits.ids.tolist() == [[0, 2]]
    assert hits.scores[0, 0] == hits.scores[0, 1]


def test_top_k_on_a_large_corpus_equals_a_full_sort_of_the_scores():
    """The block-maximum shortcut (taken when n_docs > k * 128) against a stable sort of every
    score: many exact ties (a 30-word vocabulary), repeated query words, k up to 20."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    docs = [list(rng.choice(words, size=int(n))) for n in rng.integers(1, 6, 5000)]
    queries = [list(rng.choice(words, size=int(n))) for n in rng.integers(1, 4, 40)]
    index = bm25.BM25(variant="lucene").fit(docs)
    scores = index.scores(queries)
    for k in (1, 10, 20):
        hits = index.search(queries, k=k)
        for row, s in zip(hits.ids, scores):
            expected = [i for i in np.argsort(-s, kind="stable") if s[i] > 0][:k]
            assert row[:len(expected)].tolist() == expected


def test_search_batches_give_the_same_hits():
    index = bm25.BM25().fit(DOCS)
    queries = ["cat", "dog mat", "red bird", "cats dogs"]
    a, b = index.search(queries, k=3), index.search(queries, k=3, batch_size=1)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_custom_tokenizer_and_token_lists():
    stemmed = bm25.BM25(tokenizer=lambda t: bm25.tokenize(t, stem=True)).fit(DOCS)
    assert stemmed.search(["cat"], k=5).ids[0, :3].tolist() != [-1, -1, -1]
    tokens = [bm25.tokenize(d) for d in DOCS]
    copy = [list(t) for t in tokens]
    bm25.BM25().fit(tokens).search([["cat"]], k=2)
    assert tokens == copy                                           # inputs untouched


def test_bm25_run_uses_doc_ids():
    corpus = {f"d{i}": {"title": "", "text": t} for i, t in enumerate(DOCS)}
    run = bm25.bm25_run(corpus, {"q1": "bird song"}, k=3)
    assert list(run["q1"]) == ["d3"]


def test_clear_errors():
    with pytest.raises(ValueError, match="variant"):
        bm25.BM25(variant="bm42")
    with pytest.raises(ValueError, match="k1"):
        bm25.BM25(k1=-1)
    with pytest.raises(RuntimeError, match="fit"):
        bm25.BM25().scores(["cat"])
    with pytest.raises(TypeError, match="list of texts"):
        bm25.BM25().fit("one long string")
    with pytest.raises(ValueError, match="empty"):
        bm25.BM25().fit(["the a of", "and the"])
    with pytest.raises(ValueError, match="holds 5 documents"):
        bm25.bm25_run({"d": {"title": "", "text": "x"}}, {"q": "x"}, index=bm25.BM25().fit(DOCS))


def test_doctests():
    import doctest

    assert doctest.testmod(bm25).failed == 0
