"""Our BM25 against the reference libraries on the same tokens: rank-bm25's BM25Okapi (scores
equal within float tolerance) and bm25s (same top-10 where the variants match)."""
import bm25s  # pinned in the test extra: a broken install must fail, not skip
import numpy as np
import pytest
import rank_bm25

from course_utils import bm25  # noqa: E402


def zipf_corpus(n_docs, n_queries, vocab=2000, seed=0):
    """Seeded synthetic text: word ranks drawn from a Zipf law, so a few words are in most
    documents (negative Robertson idf: rank-bm25's epsilon floor is exercised) and most are rare."""
    rng = np.random.default_rng(seed)
    draw = lambda n: [f"w{min(int(r), vocab)}" for r in rng.zipf(1.3, size=n)]
    docs = [draw(int(rng.integers(5, 80))) for _ in range(n_docs)]
    queries = [draw(int(rng.integers(1, 6))) for _ in range(n_queries)]
    return docs, queries


@pytest.fixture(scope="module")
def corpus():
    return zipf_corpus(1500, 60)


@pytest.mark.parametrize("k1,b", [(1.5, 0.75), (1.2, 0.5)])
def test_okapi_scores_equal_rank_bm25(corpus, k1, b):
    docs, queries = corpus
    ours = bm25.BM25(k1=k1, b=b, variant="okapi", dtype=np.float64).fit(docs)
    ref = rank_bm25.BM25Okapi(docs, k1=k1, b=b)
    assert min(ref.idf.values()) > 0 > np.log((1500 - ours.df.max() + 0.5) / (ours.df.max() + 0.5))
    expected = np.array([ref.get_scores(q) for q in queries])
    np.testing.assert_allclose(ours.scores(queries), expected, rtol=1e-10, atol=1e-10)


def test_okapi_scores_equal_rank_bm25_on_scifact_text():
    from course_utils import data

    corpus, queries, _ = data.load_beir("scifact", "test")
    _, texts = data.doc_texts(corpus)
    docs = [bm25.tokenize(t) for t in texts[:800]]
    qs = [bm25.tokenize(q) for q in list(queries.values())[:40]]
    ours = bm25.BM25(variant="okapi").fit(docs)                   # float32, as used in practice
    expected = np.array([rank_bm25.BM25Okapi(docs).get_scores(q) for q in qs])
    np.testing.assert_allclose(ours.scores(qs), expected, rtol=1e-5, atol=1e-5)


def _bm25s_top(docs, queries, method, k):
    retriever = bm25s.BM25(method=method, k1=1.5, b=0.75)
    retriever.index(docs, show_progress=False)
    ids, scores = retriever.retrieve(queries, k=k, show_progress=False)
    return np.asarray(ids), np.asarray(scores)


@pytest.mark.parametrize("variant,scale", [("lucene", 1.0), ("robertson", 2.5)])
def test_top10_equals_bm25s(corpus, variant, scale):
    docs, queries = corpus
    ref_ids, ref_scores = _bm25s_top(docs, queries, variant, 10)
    index = bm25.BM25(variant=variant, dtype=np.float64).fit(docs)
    hits, full = index.search(queries, k=10), index.scores(queries)
    # bm25s' "robertson" leaves out the constant (k1 + 1) = 2.5: same ranking, scores / 2.5;
    # we return only documents scoring > 0 (padding -inf), bm25s fills up with zero scores
    found = hits.ids >= 0
    assert (ref_scores[~found] == 0).all()
    np.testing.assert_allclose(hits.scores[found], ref_scores[found] * scale, rtol=1e-5, atol=1e-5)
    same = 0
    for ours, theirs, row, ok in zip(hits.ids, ref_ids, full, found):
        ours, theirs = ours[ok], theirs[ok]
        same += set(ours) == set(theirs)
        # bm25s sums in float32: documents tied with the 10th may swap places
        for doc in set(ours) ^ set(theirs):
            assert row[doc] == pytest.approx(row[ours[-1]], rel=1e-5)
    assert same >= 0.9 * len(queries)
