"""Hidden test cases of chapter 06's exercises (solutions/06_hybrid_and_reranking_exercises.ipynb).

Exercises: BM25 scores of one query (`bm25_scores`: Robertson idf clipped at 0, Okapi tf part,
= `course_utils.lexical.bm25.BM25(variant="robertson")`), reciprocal rank fusion (`rrf`, =
`course_utils.hybrid.rrf`), convex fusion after per-query min-max normalisation
(`convex_fusion`, = `course_utils.hybrid.convex_fusion`), and the project's alpha sweep
(`alpha_sweep_table`: recall@10 and nDCG@5 per alpha, = `hybrid.alpha_sweep` +
`evaluate.evaluate`). References come from those tested modules at check time; messages name
the typical mistake, never the expected values.
"""
from __future__ import annotations

import math

import numpy as np

from .. import bm25 as _bm25
from .. import hybrid as _hybrid
from .cases import Case, Exercise, Fail, as_array, call, held_back


def _rng(n: int) -> np.random.Generator:
    return np.random.default_rng(6000 + n)


# --- 06.bm25: scores of every document for one tokenised query ---------------------------------
def _bm25_ref(query, docs, k1, b, idf="robertson", tf="okapi", unique=False, no_len=False):
    n, avgdl = len(docs), float(np.mean([len(d) for d in docs]))
    out = np.zeros(n)
    for t in (dict.fromkeys(query) if unique else query):
        df = sum(t in d for d in docs)
        if df == 0:
            continue
        ratio = (n - df + 0.5) / (df + 0.5)
        w = {"robertson": math.log(max(ratio, 1.0)), "raw": math.log(ratio),
             "lucene": math.log1p(ratio), "plain": math.log(n / df)}[idf]
        for i, d in enumerate(docs):
            f = d.count(t)
            norm = 1.0 if no_len else (1 - b + b * len(d) / avgdl)
            out[i] += w * f * ((k1 + 1) if tf == "okapi" else 1) / (f + k1 * norm)
    return out


_BM25_MISTAKES = (
    (dict(idf="raw"), "a word in more than half of the documents got a negative idf; this "
                      "variant clips it at 0: idf = max(0, ln((N - df + 0.5) / (df + 0.5)))"),
    (dict(idf="lucene"), "you used Lucene's idf ln(1 + ...); this exercise uses Robertson's "
                         "ln((N - df + 0.5) / (df + 0.5)), clipped at 0"),
    (dict(idf="plain"), "the idf needs the +0.5 smoothing: ln((N - df + 0.5) / (df + 0.5))"),
    (dict(tf="lucene"), "the tf part is f * (k1 + 1) / (f + k1 * (1 - b + b * |d| / avgdl)): "
                        "you left out the (k1 + 1) factor (Lucene drops it; Okapi keeps it)"),
    (dict(unique=True), "a word repeated in the query counts once per repetition (sum over the "
                        "query's tokens, repeats included, as rank-bm25 does)"),
    (dict(no_len=True), "the document length is missing: the tf part divides by "
                        "f + k1 * (1 - b + b * |d| / avgdl)"),
)


def _bm25_case(query, docs, k1=1.5, b=0.75):
    def run(fn):
        out = as_array(call(fn, query, docs, k1, b, names=("query", "docs", "k1", "b")), "the scores")
        index = _bm25.BM25(k1=k1, b=b, variant="robertson", dtype=np.float64).fit(docs)
        want = index.scores([query])[0] if any(t in index.vocab for t in query) else np.zeros(len(docs))
        if out.shape != want.shape:
            raise Fail(f"the scores have shape {out.shape}, expected one score per document: {want.shape}")
        if (~np.isfinite(out)).any():
            raise Fail("a score is nan/inf: a query word found in no document contributes 0 "
                       "(skip it before computing its idf)")
        if not np.allclose(out, want, atol=1e-9):
            for kw, message in _BM25_MISTAKES:
                other = _bm25_ref(query, docs, k1, b, **kw)
                if not np.allclose(other, want, atol=1e-9) and np.allclose(out, other, atol=1e-9):
                    raise Fail(message)
            raise Fail(f"{int((~np.isclose(out, want, atol=1e-9)).sum())} of {out.size} scores are wrong")
    return run


_TOY = [d.split() for d in ("aspirin lowers risk stroke", "aspirin causes stomach bleeding patients",
                            "statins lower cholesterol", "stroke risk rises age blood pressure",
                            "exercise improves sleep quality", "vitamin supplements prevent fractures")]
_VOCAB = [f"w{i}" for i in range(30)]
_big = [[_VOCAB[j] for j in _rng(1 + i).zipf(1.6, _rng(100 + i).integers(3, 40)) % 30] for i in range(60)]
BM25 = Exercise(
    "06.bm25", "BM25 scores of one query", "bm25_scores",
    ("For every query token t (repeats count), each document gets idf(t) times a saturated term "
     "frequency: f (k1 + 1) / (f + k1 (1 - b + b |d| / avgdl)), with f the count of t in the document, "
     "|d| its length in tokens and avgdl the mean length; idf(t) is the natural log of "
     "(N - df + 1/2) over (df + 1/2), floored at 0, with df the number of documents holding t. Words in no document add nothing.",
     "Precompute N, the mean document length and, per query token, df (`sum` over the documents of `t "
     "in d`); skip tokens with df 0. `math.log` is the natural logarithm; a list's `count` gives f. Add "
     "each token's contribution to a numpy array of scores, one per document."),
    (Case("the chapter's toy medical corpus, a two-word query", _bm25_case(["aspirin", "stroke"], _TOY)),
     Case("a word in more than half of the documents", _bm25_case(
         ["the", "cat"], [["the", "cat"], ["the", "dog"], ["the", "bird", "sat"], ["a", "cat"]])),
     Case("a word repeated in the query", _bm25_case(["risk", "risk", "age"], _TOY)),
     Case("query words that occur in no document", _bm25_case(["zebra", "cholesterol"], _TOY)),
     Case("k1 = 0.9, b = 0.4 (BEIR's Anserini settings)", _bm25_case(["w1", "w2", "w7"], _big, 0.9, 0.4)),
     Case("b = 1 (full length normalisation), k1 = 1.2", _bm25_case(["w3", "w11"], _big, 1.2, 1.0)),
     Case("60 documents of very different lengths", _bm25_case(["w0", "w4", "w9", "w4"], _big))),
    points=2,
)


# --- run comparison helpers ------------------------------------------------------------------
def _check_run(out, want, what: str, mistakes=()) -> None:
    if out is None:
        raise Fail(f"{what} is None: did you forget `return`?")
    if not isinstance(out, dict):
        raise Fail(f"return a run {{query_id: {{doc_id: score}}}}, got a {type(out).__name__}")
    if set(out) != set(want):
        missing, extra = set(want) - set(out), set(out) - set(want)
        raise Fail(f"the run has {len(out)} queries, expected {len(want)}"
                   + (" (a query that appears in only SOME of the runs must still be in the result)"
                      if missing else "") + (" (it has queries that are in none of the runs)" if extra else ""))
    for qid in want:
        docs = out[qid]
        if not isinstance(docs, dict):
            raise Fail(f"query {qid!r}: its value must be a dict {{doc_id: score}}, got {type(docs).__name__}")
        if set(docs) != set(want[qid]):
            raise Fail(f"query {qid!r}: {len(docs)} documents, expected {len(want[qid])} -- every "
                       "document returned by ANY run belongs in the fused list")
    bad = [(q, d) for q in want for d in want[q]
           if not (isinstance(out[q][d], (int, float, np.floating)) and abs(float(out[q][d]) - want[q][d]) <= 1e-9)]
    if bad:
        for wrong, message in mistakes:
            other = wrong()
            if other != want and all(abs(float(out[q][d]) - other.get(q, {}).get(d, math.nan)) <= 1e-9
                                     for q in want for d in want[q]):
                raise Fail(message)
        raise Fail(f"{len(bad)} of {sum(map(len, want.values()))} fused scores are wrong")


# --- 06.rrf: sum over runs of 1 / (k + rank), rank from 1, trec_eval order ---------------------
def _rrf_variant(runs, k, offset=1, order="trec", use_score=False):
    fused = {}
    for run in runs:
        for qid, docs in run.items():
            target = fused.setdefault(qid, {})
            ranked = (sorted(docs, key=lambda d: (docs[d], d), reverse=True) if order == "trec"
                      else sorted(docs, key=lambda d: docs[d], reverse=True))
            for r, doc in enumerate(ranked, offset):
                target[doc] = target.get(doc, 0.0) + (1 / (k + docs[doc]) if use_score else 1 / (k + r))
    return fused


def _rrf_case(runs, k=60):
    def run(fn):
        out = call(fn, runs, k, names=("runs", "k"))
        want = _hybrid.rrf(runs, rank_constant=k)
        _check_run(out, want, "the fused run", (
            (lambda: _rrf_variant(runs, k, offset=0), "ranks start at 1: the best document of a "
                                                      "run adds 1 / (k + 1), not 1 / k"),
            (lambda: _rrf_variant(runs, k, order="stable"), "equal scores: break ties as trec_eval "
             "does, the larger doc id first -- sorted(docs, key=lambda d: (docs[d], d), reverse=True)"),
            (lambda: _rrf_variant(runs, k, use_score=True), "RRF uses each document's RANK in a run, "
                                                            "not its score: 1 / (k + rank)"),
        ))
    return run


def _random_run(seed, queries, docs, depth, scale=1.0):
    rng, run = _rng(seed), {}
    for q in queries:
        picked = rng.choice(docs, size=depth, replace=False)
        run[q] = {str(d): float(s) for d, s in zip(picked, scale * rng.random(depth))}
    return run


_DOCS = [f"d{i}" for i in range(40)]
_dense = _random_run(10, ["q1", "q2", "q3"], _DOCS, 15)
_lex = _random_run(11, ["q1", "q2", "q3"], _DOCS, 15, scale=25.0)
RRF = Exercise(
    "06.rrf", "reciprocal rank fusion", "rrf",
    ("For every run and query, rank the documents by score, highest first (rank 1 = best); each "
     "document collects 1 / (k + rank) from every run that returned it. Queries and documents missing "
     "from a run simply get nothing from it. Ties in score: the larger doc id first (trec_eval's rule).",
     "Sort each query's documents by the key (score, doc id) with `reverse=True`, so ties put the "
     "larger id first, and number them with `enumerate` starting at 1. Accumulate into a dict of dicts "
     "(`setdefault` for the query, `get` with 0.0 for the document), adding 1 / (k + rank) per run."),
    (Case("two runs of one query (the chapter's example)", _rrf_case(
        [{"q1": {"d1": 0.9, "d2": 0.5}}, {"q1": {"d2": 12.0, "d3": 4.0}}])),
     Case("cosine scores and BM25 scores, 3 queries x 15 documents", _rrf_case([_dense, _lex])),
     Case("k = 0 and three runs", _rrf_case([_dense, _lex, _random_run(12, ["q1", "q2", "q3"], _DOCS, 5)], 0)),
     Case("a query that only one run answers", _rrf_case([{"q1": {"a": 2.0}, "q2": {"b": 1.0}}, {"q1": {"b": 3.0}}])),
     Case("tied scores (trec_eval order)", _rrf_case(
         [{"q1": {"a": 1.0, "b": 1.0, "c": 0.5}}, {"q1": {"c": 2.0, "a": 1.0}}], 1)),
     Case("a run with an empty query", _rrf_case([{"q1": {}, "q2": {"x": 1.0}}, {"q1": {"y": 0.3}}]))),
    points=1,
)


# --- 06.convex: alpha * minmax(a) + (1 - alpha) * minmax(b), missing -> 0 ---------------------
def _convex_variant(run_a, run_b, alpha, const=1.0, union=True, globally=False, swap=False):
    if swap:
        alpha = 1 - alpha

    def norm(run):
        if globally:
            allv = [s for docs in run.values() for s in docs.values()]
            lo, hi = min(allv), max(allv)
            return {q: {d: (s - lo) / (hi - lo) for d, s in docs.items()} for q, docs in run.items()}
        out = {}
        for q, docs in run.items():
            lo, hi = (min(docs.values()), max(docs.values())) if docs else (0, 0)
            out[q] = {d: (s - lo) / (hi - lo) if hi > lo else const for d, s in docs.items()}
        return out
    na, nb = norm(run_a), norm(run_b)
    fused = {}
    for q in dict.fromkeys([*na, *nb]):
        da, db = na.get(q, {}), nb.get(q, {})
        docs = dict.fromkeys([*da, *db]) if union else [d for d in da if d in db]
        fused[q] = {d: alpha * da.get(d, 0.0) + (1 - alpha) * db.get(d, 0.0) for d in docs}
    return fused


def _convex_case(run_a, run_b, alpha):
    def run(fn):
        out = call(fn, run_a, run_b, alpha, names=("run_a", "run_b", "alpha"))
        want = _hybrid.convex_fusion(run_a, run_b, alpha)
        _check_run(out, want, "the fused run", (
            (lambda: _convex_variant(run_a, run_b, alpha, swap=True),
             "alpha weights run_a (the first run): alpha * norm(a) + (1 - alpha) * norm(b)"),
            (lambda: _convex_variant(run_a, run_b, alpha, globally=True),
             "normalise each QUERY's scores on their own (min and max of that query's list), not "
             "over the whole run"),
            (lambda: _convex_variant(run_a, run_b, alpha, const=0.0),
             "a query whose scores are all equal: min-max would divide by zero; every document "
             "of that list is its best one, so give each 1.0"),
        ))
    return run


_CONVEX_HINTS = ("Per query and per run, rescale the scores to [0, 1]: (s - min) / (max - min), and 1.0 "
                 "for every document when all scores are equal. Fused score = alpha * a + (1 - alpha) * "
                 "b over the UNION of the two lists; a document missing from a run gets 0 from it (it "
                 "ranked below everything that run returned).",
                 "Write a helper that min-max normalises one query's dict (all-equal scores give 1.0). "
                 "For each query id of either run (the union of their keys), normalise both sides (a "
                 "missing query is an empty dict), then take the union of their documents and combine "
                 "with `dict.get` defaulting to 0.0 for a document one side did not return.")
CONVEX = Exercise(
    "06.convex", "convex fusion with min-max normalisation", "convex_fusion", _CONVEX_HINTS,
    (Case("the chapter's example, alpha = 0.5", _convex_case(
        {"q1": {"d1": 0.9, "d2": 0.5}}, {"q1": {"d2": 12.0, "d3": 4.0}}, 0.5)),
     Case("cosine and BM25 scores, 3 queries, alpha = 0.7", _convex_case(_dense, _lex, 0.7)),
     Case("alpha = 0 (only the second run counts)", _convex_case(_lex, _dense, 0.0)),
     Case("alpha = 1 (only the first run counts)", _convex_case(_lex, _dense, 1.0)),
     Case("scale differs between queries (normalise per query)", _convex_case(
         {"q1": {"a": 0.9, "b": 0.1}, "q2": {"a": 50.0, "c": 10.0}}, {"q1": {"a": 1.0}, "q2": {"c": 2.0, "b": 1.0}}, 0.4)),
     Case("all scores of a query equal (min == max)", _convex_case(
         {"q1": {"a": 0.5, "b": 0.5}}, {"q1": {"b": 3.0, "c": 1.0}}, 0.6)),
     Case("a query that only one run answers, and an empty query", _convex_case(
         {"q1": {"a": 1.0, "b": 0.0}, "q2": {}}, {"q3": {"z": 4.0, "y": 2.0}, "q1": {"b": 5.0, "c": 1.0}}, 0.3))),
    points=2,
)


# --- 06.alpha_sweep: DataFrame indexed by alpha, columns recall@10 and ndcg@5 ------------------
def _sweep_case(qrels, dense, lex, alphas):
    def run(fn):
        out = call(fn, qrels, dense, lex, alphas, names=("qrels", "dense_run", "bm25_run", "alphas"))
        if out is None:
            raise Fail("the result is None: did you forget `return`?")
        if not hasattr(out, "columns") or not hasattr(out, "index"):
            raise Fail(f"return a pandas DataFrame (one row per alpha), got a {type(out).__name__}")
        want = _hybrid.alpha_sweep(qrels, dense, lex, alphas, ["recall@10", "ndcg@5"])
        if list(out.columns) != ["recall@10", "ndcg@5"]:
            raise Fail(f"the columns are {list(out.columns)!r:.80}; expected exactly ['recall@10', 'ndcg@5'] "
                       "(the names `evaluate` uses), in that order")
        if len(out) != len(alphas) or not np.allclose(np.asarray(out.index, float), alphas):
            raise Fail(f"the table has {len(out)} rows indexed {list(out.index)[:4]}...; expected one row per "
                       "alpha, indexed by the alpha values, in the order given (`set_index('alpha')`)")
        got = out.to_numpy(dtype=float)
        if np.allclose(got, want.to_numpy(), atol=1e-9):
            return
        flipped = _hybrid.alpha_sweep(qrels, lex, dense, alphas, ["recall@10", "ndcg@5"])
        if np.allclose(got, flipped.to_numpy(), atol=1e-9):
            raise Fail("your table is mirrored: alpha weights the DENSE run (alpha = 1: dense "
                       "only, alpha = 0: BM25 only)")
        raise Fail(f"{int((~np.isclose(got, want.to_numpy(), atol=1e-9)).sum())} of {got.size} "
                   "metric values are wrong (fuse with your convex_fusion, evaluate each fused run)")
    return run


def _qrels(seed, queries, docs, per_query=3):
    rng = _rng(seed)
    return {q: {str(d): int(rng.integers(1, 3)) for d in rng.choice(docs, per_query, replace=False)}
            for q in queries}


_Q8 = [f"q{i}" for i in range(8)]
ALPHA_SWEEP = Exercise(
    "06.alpha_sweep", "alpha sweep of hybrid search", "alpha_sweep_table",
    ("For each alpha: fuse the two runs with your convex_fusion, score the fused run with "
     "course_utils.evaluate.evaluate for recall@10 and nDCG@5, and collect one row per alpha; return a "
     "DataFrame indexed by alpha.",
     "Build a list of dicts, one per alpha, each holding the alpha (as a float) and the metrics "
     "`evaluate` returns (dict unpacking merges them); `pd.DataFrame` of that list, then "
     "`set_index('alpha')`."),
    (Case("one query, two alphas", _sweep_case({"q1": {"d2": 1}}, {"q1": {"d1": 1.0, "d2": 0.0}},
                                               {"q1": {"d2": 1.0}}, [0.0, 1.0])),
     Case("8 queries, 11 alphas", _sweep_case(_qrels(30, _Q8, _DOCS), _random_run(31, _Q8, _DOCS, 20),
                                              _random_run(32, _Q8, _DOCS, 20, 30.0), list(np.linspace(0, 1, 11)))),
     Case("graded relevance and a query missing from the BM25 run", _sweep_case(
         _qrels(33, _Q8[:4], _DOCS, 5), _random_run(34, _Q8[:4], _DOCS, 12),
         _random_run(35, _Q8[:3], _DOCS, 12, 10.0), [0.2, 0.5, 0.8])),
     Case("alphas in descending order", _sweep_case(_qrels(36, _Q8, _DOCS), _random_run(37, _Q8, _DOCS, 20),
                                                    _random_run(38, _Q8, _DOCS, 20, 5.0), [1.0, 0.6, 0.3, 0.0])),
     Case("a numpy array of alphas", _sweep_case(_qrels(39, _Q8[:5], _DOCS), _random_run(40, _Q8[:5], _DOCS, 15),
                                                 _random_run(41, _Q8[:5], _DOCS, 15, 12.0), np.array([0.25, 0.75])))),
    points=1,
)



# --- 06.rerank: a second stage with a cross-encoder's `predict(pairs)` over each query's top depth ----
class _FakeCrossEncoder:
    """Stands in for `sentence_transformers.CrossEncoder`: `predict(pairs)` -> one score per
    (query, passage) pair, a fixed function of the two texts; records every pair it scored."""

    def __init__(self, queries):
        self.queries, self.pairs, self.reversed = set(queries), [], 0

    def predict(self, sentences, batch_size=32, show_progress_bar=None, convert_to_numpy=True, **kwargs):
        if isinstance(sentences, (tuple, list)) and len(sentences) == 2 and all(isinstance(t, str) for t in sentences):
            sentences = [sentences]                     # one pair, as CrossEncoder accepts it
        out = []
        for pair in sentences:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError("predict takes a list of (query, passage) pairs")
            q, p = str(pair[0]), str(pair[1])
            self.pairs.append((q, p))
            self.reversed += q not in self.queries and p in self.queries
            out.append(_pair_score(q, p))
        return np.asarray(out, np.float32)


def _pair_score(query: str, passage: str) -> float:
    """Word overlap plus a deterministic per-pair jitter: a re-ranker that disagrees with stage one."""
    q, p = set(query.lower().split()), set(passage.lower().split())
    jitter = (sum(map(ord, query + "|" + passage)) % 97) / 970.0
    return float(len(q & p) / (1 + len(q)) + jitter)


_WORDS = "protein cell gene cancer mouse dose risk trial brain virus blood liver heart drug".split()


def _rerank_data(seed: int, n_queries: int, n_docs: int, shuffle: bool):
    rng = _rng(seed)
    queries = {f"q{i}": " ".join(rng.choice(_WORDS, 4, replace=False)) for i in range(n_queries)}
    texts = {f"d{j}": " ".join(rng.choice(_WORDS, 6)) for j in range(n_docs * 2)}
    run = {}
    for qid in queries:
        docs = rng.choice(sorted(texts), n_docs, replace=False)
        scores = rng.permutation(np.linspace(1.0, 20.0, n_docs))
        items = [(str(d), float(s)) for d, s in zip(docs, scores)]
        if not shuffle:
            items.sort(key=lambda kv: -kv[1])
        run[qid] = dict(items)
    return run, queries, texts


def _rerank_reference(run, queries, texts, depth):
    out = {}
    for qid, docs in run.items():
        top = sorted(docs, key=lambda d: (-docs[d], d))[:depth]
        out[qid] = {d: _pair_score(queries[qid], texts[d]) for d in top}
    return out


def _rerank_case(seed, n_queries, n_docs, depth, shuffle):
    def run(fn):
        data = _rerank_data(seed, n_queries, n_docs, shuffle)
        model = _FakeCrossEncoder(data[1].values())
        out = call(fn, *data, model, depth, names=("run", "queries", "doc_text", "model", "depth"), mutable=(3,))
        want = _rerank_reference(*data, depth)
        if not isinstance(out, dict):
            raise Fail(f"return a run {{qid: {{doc_id: score}}}}, got a {type(out).__name__}")
        if model.reversed:
            raise Fail(f"{model.reversed} pair(s) were (passage, query): a cross-encoder is trained on "
                       "(query, passage) pairs and scores the other order differently")
        if set(out) != set(want):
            raise Fail("the re-ranked run must hold every query of the input run, and only those")
        for qid, docs in want.items():
            got = out[qid]
            if not isinstance(got, dict):
                raise Fail(f"query {qid!r}: expected a dict {{doc_id: score}}, got a {type(got).__name__}")
            if set(got) != set(docs):
                first = set(list(data[0][qid])[:depth])
                if set(got) == first and first != set(docs):
                    raise Fail("you kept the first `depth` entries of each run dict, but a run is not "
                               "sorted: its top `depth` are the documents with the highest scores")
                if len(got) > len(docs):
                    raise Fail(f"query {qid!r} holds {len(got)} documents: keep only the top `depth` of "
                               "the first stage (a second stage scores a short list, that is its point)")
                raise Fail(f"query {qid!r}: not the top `depth` documents of the first-stage run")
            if not all(abs(float(got[d]) - s) < 1e-5 for d, s in docs.items()):
                if all(abs(float(got[d]) - data[0][qid][d]) < 1e-9 for d in docs):
                    raise Fail("the scores are still the first stage's: score each kept (query, passage) "
                               "pair with model.predict and store those scores")
                raise Fail(f"query {qid!r}: the scores are not model.predict's scores of (query, passage)")
        if len(model.pairs) > sum(map(len, want.values())):
            raise Fail(f"model.predict scored {len(model.pairs)} pairs for {sum(map(len, want.values()))} "
                       "kept documents: score only each query's top `depth` (the cross-encoder is the "
                       "slow stage)")
    return run


RERANK = Exercise(
    "06.rerank", "re-rank a run's top depth with a cross-encoder", "rerank",
    ("For each query, take the `depth` documents with the HIGHEST first-stage scores (a run is a dict, "
     "not a sorted list), build (query text, document text) pairs and score them with "
     "`model.predict(pairs)` -- one call per query, or one for all. The new run holds those documents "
     "with the model's scores.",
     "`sorted` with `key=docs.get` and `reverse=True` orders a query's documents by their first-stage "
     "score; cut to depth. `model.predict` takes a list of (query text, document text) pairs and "
     "returns one score per pair, in the same order; build the new run from those, converting with "
     "`float`."),
    (Case("3 queries, 10 documents each, best first in the dict, depth 4", _rerank_case(70, 3, 10, 4, False)),
     Case("5 queries whose run dicts are NOT in rank order, depth 5", _rerank_case(71, 5, 12, 5, True)),
     Case("depth larger than the number of documents of a query", _rerank_case(72, 2, 3, 10, True)),
     Case("depth 1: only the best document of each query", _rerank_case(73, 4, 8, 1, True)),
     Case("8 queries, 20 documents each, depth 10", _rerank_case(74, 8, 20, 10, True))),
    points=2,
)

# --- held-back cases: the public situations again, with other inputs (graded; `check` never runs them)
_big6 = [[_VOCAB[j] for j in _rng(60 + i).zipf(1.5, _rng(160 + i).integers(2, 50)) % 30] for i in range(50)]
BM25 = held_back(
    BM25,
    Case("the toy corpus, a three-word query", _bm25_case(["aspirin", "risk", "cholesterol"], _TOY)),
    Case("a word repeated in the query, one unknown word", _bm25_case(["stroke", "stroke", "zebra"], _TOY)),
    Case("k1 = 1.2, b = 0.3", _bm25_case(["w2", "w5", "w0"], _big6, 1.2, 0.3)),
    Case("50 documents of very different lengths", _bm25_case(["w1", "w6", "w1", "w13"], _big6)))
_Q5 = ["a1", "a2", "a3", "a4"]
_dense6, _lex6 = _random_run(60, _Q5, _DOCS, 12), _random_run(61, _Q5, _DOCS, 12, scale=40.0)
RRF = held_back(
    RRF,
    Case("cosine scores and BM25 scores, 4 queries x 12 documents", _rrf_case([_dense6, _lex6])),
    Case("k = 10 and three runs", _rrf_case([_dense6, _lex6, _random_run(62, _Q5, _DOCS, 6)], 10)),
    Case("a query that only one run answers, tied scores",
         _rrf_case([{"q1": {"x": 1.0, "y": 1.0}, "q7": {"z": 2.0}}, {"q1": {"y": 0.5, "w": 0.2}}], 5)),
    Case("a run with an empty query", _rrf_case([{"q2": {}, "q3": {"a": 0.1}}, {"q2": {"b": 9.0, "c": 8.0}}])))
CONVEX = held_back(
    CONVEX,
    Case("cosine and BM25 scores, 4 queries, alpha = 0.35", _convex_case(_dense6, _lex6, 0.35)),
    Case("alpha = 0 and alpha = 1 give one run", _convex_case(_dense6, _lex6, 0.0)),
    Case("scale differs between queries", _convex_case(
        {"q1": {"a": 3.0, "b": 1.0}, "q2": {"a": 0.02, "c": 0.01}}, {"q1": {"b": 0.9}, "q2": {"a": 7.0, "d": 2.0}}, 0.55)),
    Case("all scores of a query equal", _convex_case({"q1": {"a": 2.0, "b": 2.0, "c": 2.0}}, {"q1": {"c": 1.0, "d": 0.5}}, 0.8)),
    Case("a query that only one run answers, and an empty query", _convex_case(
        {"q1": {"a": 2.0, "b": 1.0}, "q4": {"m": 1.0}}, {"q1": {"a": 0.0, "c": 3.0}, "q5": {}}, 0.65)))
ALPHA_SWEEP = held_back(
    ALPHA_SWEEP,
    Case("8 queries, 6 alphas", _sweep_case(_qrels(60, _Q8, _DOCS), _random_run(61, _Q8, _DOCS, 20),
                                            _random_run(62, _Q8, _DOCS, 20, 20.0), list(np.linspace(0, 1, 6)))),
    Case("graded relevance, a query missing from the BM25 run, alphas descending", _sweep_case(
        _qrels(63, _Q8[:5], _DOCS, 4), _random_run(64, _Q8[:5], _DOCS, 14),
        _random_run(65, _Q8[:4], _DOCS, 14, 8.0), np.array([0.9, 0.4, 0.1]))))
RERANK = held_back(
    RERANK,
    Case("4 queries whose run dicts are not in rank order, depth 3", _rerank_case(80, 4, 9, 3, True)),
    Case("depth larger than the number of documents", _rerank_case(81, 3, 4, 8, True)),
    Case("6 queries, 15 documents each, depth 7", _rerank_case(82, 6, 15, 7, True)))

EXERCISES = (BM25, RRF, CONVEX, ALPHA_SWEEP, RERANK)
