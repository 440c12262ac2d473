"""course_utils.rerank (with a fake cross-encoder), crossencoder training pairs and caching,
and expansion (Rocchio, nearest terms)."""
import copy

import numpy as np
import pytest

from course_utils import crossencoder, expansion, rerank
from course_utils.embeddings.cache import EmbeddingCache
from course_utils.rerank import scorers, stage
from course_utils.search import Hits


class FakeCrossEncoder:
    """Scores a pair by the number of query words found in the document; counts pairs scored."""

    course_model_id = "fake-ce"
    max_seq_length = 32

    def __init__(self):
        self.scored = 0

    def predict(self, pairs, batch_size=32, show_progress_bar=False, activation_fn=None, **_):
        self.scored += len(pairs)
        return np.array([float(sum(w in d.split() for w in q.split())) for q, d in pairs])


QUERIES = {"q1": "red apple", "q2": "green pear"}
DOCS = {"a": "red apple pie", "b": "a green pear", "c": "red car", "d": "apple", "e": "pear"}
RUN = {"q1": {"c": 3.0, "d": 2.0, "a": 1.0, "e": 0.5}, "q2": {"a": 2.0, "b": 1.0}}


def test_rerank_reorders_the_top_depth_and_keeps_the_rest_below():
    out = rerank.rerank(RUN, QUERIES, DOCS, FakeCrossEncoder(), depth=3, show_progress=False)
    order = sorted(out["q1"], key=out["q1"].get, reverse=True)
    assert order == ["a", "c", "d", "e"]       # a: 2 words, c and d: 1 (c first: tie kept), e: beyond
    assert set(out["q1"]) == set(RUN["q1"]) and out["q1"]["e"] < min(out["q1"]["a"], out["q1"]["d"])
    assert sorted(out["q2"], key=out["q2"].get, reverse=True) == ["b", "a"]


def test_scores_are_cached_per_model_and_pair():
    ce = FakeCrossEncoder()
    first = rerank.rerank(RUN, QUERIES, DOCS, ce, depth=10, show_progress=False)
    assert ce.scored == 6
    again = rerank.rerank(RUN, QUERIES, DOCS, ce, depth=10, show_progress=False)
    assert ce.scored == 6 and again == first
    assert len(EmbeddingCache(rerank.score_namespace(ce))) == 6
    rerank.rerank(RUN, QUERIES, DOCS, ce, depth=10, cache=False, show_progress=False)
    assert ce.scored == 12


def test_pair_scores_handles_duplicates_and_order():
    ce = FakeCrossEncoder()
    pairs = [("red apple", "red apple pie"), ("x", "y"), ("red apple", "red apple pie")]
    np.testing.assert_array_equal(rerank.pair_scores(ce, pairs, show_progress=False), [2, 0, 2])
    assert ce.scored == 2


def test_rerank_validates_inputs_and_leaves_them_alone():
    before = copy.deepcopy(RUN)
    with pytest.raises(KeyError, match="no text"):
        rerank.rerank(RUN, {"q1": "x"}, DOCS, FakeCrossEncoder(), show_progress=False)
    with pytest.raises(KeyError, match="doc_text"):
        rerank.rerank(RUN, QUERIES, {"a": "x"}, FakeCrossEncoder(), show_progress=False)
    with pytest.raises(ValueError, match="depth"):
        rerank.rerank(RUN, QUERIES, DOCS, FakeCrossEncoder(), depth=0)
    assert RUN == before


def test_maxsim_by_hand():
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    d = np.array([[0.6, 0.8], [1.0, 0.0]])
    assert rerank.maxsim(q, d) == pytest.approx(1.0 + 0.8)


def test_the_model_key_covers_config_and_pairs():
    pairs = [("q", "d", 1.0)]
    key = crossencoder._config_key(pairs, {"lr": 1e-4})
    assert key != crossencoder._config_key(pairs, {"lr": 2e-4})
    assert key != crossencoder._config_key([("q", "d", 0.0)], {"lr": 1e-4})
    assert key == crossencoder._config_key(list(pairs), {"lr": 1e-4})


def test_training_pairs_positives_and_hard_negatives():
    qrels = {"q1": {"a": 1, "c": 0}, "q2": {"b": 1}, "q9": {"a": 1}}
    pairs = crossencoder.training_pairs(QUERIES, qrels, DOCS, RUN, negatives=2, seed=0)
    q1 = [(d, label) for q, d, label in pairs if q == "red apple"]
    assert ("red apple pie", 1.0) in q1
    negatives = {d for d, label in q1 if label == 0.0}
    assert len(negatives) == 2 and negatives <= {"apple", "pear"}   # judged "c" is never used
    assert not any(q == "q9" for q, _, _ in pairs)
    with pytest.raises(ValueError, match="no training pairs"):
        crossencoder.training_pairs({"x": "?"}, qrels, DOCS, RUN)


def test_mine_negatives_skips_judged_and_top_unjudged_and_adds_random():
    runs = {"bm25": {"q": {"a": 5, "b": 4, "c": 3, "d": 2, "e": 1}}, "dense": {"q": {"e": 5, "c": 4, "d": 3}}}
    qrels = {"q": {"a": 1}, "s": {"a": 1, "b": 1}}               # "s" shares "a": "b" is a sibling's positive
    negs = crossencoder.mine_negatives(runs, qrels, list("abcdefgh"), per_run=1, random=2, skip=1, depth=1, seed=0)
    assert negs["q"][:2] == ["d", "c"]        # bm25 without a, b: c d e -> skip c, take d; dense: e c d -> skip e, take c
    assert len(negs["q"]) == 4 and not {"a", "b"} & set(negs["q"]) and len(set(negs["q"])) == 4
    assert negs == crossencoder.mine_negatives(runs, qrels, list("abcdefgh"), per_run=1, random=2, skip=1, depth=1, seed=0)


def test_labelled_pairs_and_validation_samples():
    pairs = crossencoder.labelled_pairs(QUERIES, {"q1": {"a": 1}, "q2": {"b": 1}}, DOCS, {"q1": ["c"], "q2": ["e"]},
                                        exclude=["q2"])
    assert pairs == [("red apple", "red apple pie", 1.0), ("red apple", "red car", 0.0)]
    with pytest.raises(ValueError, match="no training pairs"):
        crossencoder.labelled_pairs(QUERIES, {"q1": {"a": 1}}, DOCS, {}, exclude=["q1"])
    samples = crossencoder.validation_samples(QUERIES, {"q1": {"a": 1}}, DOCS, RUN, depth=2)
    assert samples == [{"query": "red apple", "positive": ["red apple pie"], "documents": ["red car", "apple"]}]


def test_interpolate_endpoints_and_tail():
    first = {"q": {"a": 3.0, "b": 2.0, "c": 1.0, "d": 0.5}}
    second = {"q": {"a": 0.0, "b": 1.0, "c": 5.0}}
    order = lambda run: sorted(run["q"], key=run["q"].get, reverse=True)
    assert order(stage.interpolate(first, second, 0.0, depth=3)) == ["a", "b", "c", "d"]
    assert order(stage.interpolate(first, second, 1.0, depth=3)) == ["c", "b", "a", "d"]
    with pytest.raises(KeyError, match="depth"):
        stage.interpolate(first, {"q": {"a": 1.0}}, 0.5, depth=3)
    with pytest.raises(ValueError, match="weight"):
        stage.interpolate(first, second, 1.5, depth=3)


def test_cached_scorer_scores_each_pair_once():
    calls = []

    def count(query, docs):
        calls.append(list(docs))
        return [float(len(d)) for d in docs]
    scorer = scorers.cached_scorer(count, "test-count")
    assert scorer("q", ["ab", "c", "ab"]) == [2.0, 1.0, 2.0]
    assert scorer("q", ["c", "xyz"]) == [1.0, 3.0]
    assert calls == [["ab", "c"], ["xyz"]]


def test_random_scorer_is_seeded_and_rerank_with_equals_the_cross_encoder_rerank():
    control = scorers.random_scorer(1)
    assert control("q", ["a", "b"]) == control("q", ["a", "b"]) != scorers.random_scorer(2)("q", ["a", "b"])
    ce = FakeCrossEncoder()
    a = stage.rerank_with(RUN, QUERIES, DOCS, scorers.cross_encoder_scorer(ce), depth=3)
    b = rerank.rerank(RUN, QUERIES, DOCS, ce, depth=3, show_progress=False)
    assert all(sorted(a[q], key=a[q].get, reverse=True) == sorted(b[q], key=b[q].get, reverse=True) for q in RUN)


class FakeBiEncoder:
    """Vectors from letter counts: (a's, b's, 1); counts its encode calls."""
    course_model_id, max_seq_length = "fake-bi", 32

    def __init__(self):
        self.encoded = []

    def encode(self, texts, **kw):
        self.encoded += list(texts)
        return np.array([[t.count("a"), t.count("b"), 1.0] for t in texts])


def test_bi_encoder_scorer_is_the_cosine_and_encodes_each_text_once(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    model = FakeBiEncoder()
    scorer = scorers.bi_encoder_scorer(model)
    got = scorer("aa", ["ab", "bbb", "a"])
    unit = lambda v: np.asarray(v, float) / np.linalg.norm(v)
    q = unit([2, 0, 1])
    assert np.allclose(got, [unit(d) @ q for d in ([1, 1, 1], [0, 3, 1], [1, 0, 1])], atol=1e-6)
    assert scorer("aa", ["a", "ab"]) == pytest.approx([got[2], got[0]])
    assert sorted(model.encoded) == ["a", "aa", "ab", "bbb"]             # the second call: all cached
    assert scorers.bi_encoder_scorer(FakeBiEncoder(), cache=False)("aa", ["ab"]) == pytest.approx(got[:1])


@pytest.mark.model
def test_train_cross_encoder_is_cached_by_config(tmp_path):
    pairs = [("red apple", "red apple pie", 1.0), ("red apple", "a green pear", 0.0)] * 2
    kw = dict(max_steps=1, batch_size=2, max_length=16, root=tmp_path, show_progress=False)
    ce = crossencoder.train_cross_encoder(pairs, **kw)
    assert ce.trained_now and ce.course_model_id.startswith("minilm-ce-")
    again = crossencoder.train_cross_encoder(pairs, **kw)
    assert not again.trained_now and again.course_model_id == ce.course_model_id
    assert len(list(tmp_path.iterdir())) == 1                     # one model folder, no leftovers
    scores = rerank.pair_scores(again, [p[:2] for p in pairs], show_progress=False)
    assert scores.shape == (4,) and np.isfinite(scores).all()
    samples = crossencoder.validation_samples({"q": "red apple"}, {"q": {"a": 1}}, DOCS, {"q": {"a": 2.0, "c": 1.0}})
    logged = crossencoder.train_cross_encoder(pairs, validation=samples, evaluations=1, **kw)
    log = crossencoder.training_log(logged)
    assert logged.trained_now and log["loss"] and log["validation"][0][0] == 1 and log["first_stage"] == 1.0


def test_rocchio_moves_queries_towards_their_neighbours():
    q = np.array([[1.0, 0.0, 0.0]], np.float32)
    docs = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
    hits = Hits(np.array([[0.9, 0.5, -np.inf]]), np.array([[0, 1, -1]]))
    out = expansion.rocchio(q, docs, hits, m=3, beta=1.0)       # padding -1 is ignored
    np.testing.assert_allclose(out, [[1, 0.5, 0.5] / np.linalg.norm([1, 0.5, 0.5])], rtol=1e-6)
    np.testing.assert_allclose(expansion.rocchio(q, docs, hits, beta=0.0), q)


def test_vocabulary_nearest_terms_and_expand():
    tokens = [["gene", "p53", "12"], ["gene", "mice", "12"], ["gene", "mice"], ["rats"]]
    assert expansion.vocabulary(tokens, min_df=2, max_df=0.6) == ["mice"]
    terms = ["tumour", "cancer", "mouse"]
    vecs = np.array([[0.8, 0.6], [1.0, 0.0], [0.0, 1.0]])
    near = expansion.nearest_terms(np.array([[1.0, 0.0]]), vecs, terms, n=2, exclude=[["cancer"]])
    assert near == [["tumour", "mouse"]]
    assert expansion.expand_texts(["p53"], near) == ["p53 tumour mouse"]


@pytest.mark.parametrize("module", [rerank, crossencoder, expansion, scorers, stage])
def test_doctests(module):
    import doctest

    assert doctest.testmod(module).failed == 0
