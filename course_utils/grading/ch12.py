"""Hidden test cases of chapter 12's exercises (solutions/12_scaling_out_exercises.ipynb).

Exercises: the scatter-gather merge of per-shard top-k lists (`merge_topk`), the plan of a
resumed embedding job from the shards already written (`resume_plan`: which documents are still
to do, which shard files to delete), the nodes a deadline needs (`nodes_needed`), and FAISS's own
scatter-gather (`sharded_search` with `faiss.IndexShards`, checked against exact search). Reference
answers are computed here at check time from seeded inputs; a wrong answer that matches a known
mistake (shards concatenated without a sort, worst first, FAISS's -1 padding kept, ties broken
by position, a cut-off shard trusted, documents done twice, floor instead of ceiling, hours not
turned into seconds...) gets a message that names it.
"""
from __future__ import annotations

import math

import numpy as np

from .cases import Case, Exercise, Fail, call, expect_hits, held_back
from .vectors import scifact_vectors


def _rng(n: int) -> np.random.Generator:
    return np.random.default_rng(12_000 + n)


# --- 12.merge: the k best of all shards' candidates, best first, ties by smaller id ----------
def _merge(scores, ids, k, key="sorted", drop_pad=True):
    S = np.concatenate([np.atleast_2d(np.asarray(s, np.float64)) for s in scores], axis=1)
    I = np.concatenate([np.atleast_2d(np.asarray(i, np.int64)) for i in ids], axis=1)
    if drop_pad:
        S = np.where(I < 0, -np.inf, S)
    if key == "sorted":
        order = np.lexsort((I, -S), axis=1)[:, :k]
    elif key == "ascending":
        order = np.lexsort((I, S), axis=1)[:, :k]
    elif key == "position":
        order = np.argsort(-S, axis=1, kind="stable")[:, :k]
    else:                                   # "concat": no sort at all
        order = np.tile(np.arange(S.shape[1]), (S.shape[0], 1))[:, :k]
    S, I = np.take_along_axis(S, order, 1), np.take_along_axis(I, order, 1)
    if S.shape[1] < k:
        pad = k - S.shape[1]
        S = np.pad(S, ((0, 0), (0, pad)), constant_values=-np.inf)
        I = np.pad(I, ((0, 0), (0, pad)), constant_values=-1)
    return S, np.where(np.isfinite(S), I, -1)


_MERGE_MISTAKES = (
    (dict(key="concat"), "the candidates of all shards must be sorted by score: putting the shards' "
                         "lists one after the other keeps shard 0's worst above shard 1's best"),
    (dict(key="ascending"), "the lists are worst first: sort by score DESCENDING (best first), as FAISS does"),
    (dict(drop_pad=False), "id -1 is FAISS's padding (a shard with fewer than k vectors), not a document: "
                           "give it score -inf so that every real candidate comes first"),
    (dict(key="position"), "tied scores must be ordered by the smaller id (e.g. np.lexsort((ids, -scores))), "
                           "not by the shard they came from, so the answer does not depend on the sharding"),
)


def _shard_lists(seed, n_queries, n_docs, n_shards, k, d=8, ties=False):
    rng = _rng(seed)
    X, Q = rng.normal(size=(n_docs, d)), rng.normal(size=(n_queries, d))
    if ties:
        X = np.round(X)
        Q = np.round(Q)
    scores, ids = [], []
    for rows in np.array_split(rng.permutation(n_docs), n_shards):
        s = Q @ X[rows].T
        order = np.lexsort((rows[None, :].repeat(n_queries, 0), -s), axis=1)[:, :k]
        S, I = np.take_along_axis(s, order, 1), rows[order]
        if S.shape[1] < k:                  # FAISS's padding: id -1 with a score that means nothing
            pad = k - S.shape[1]
            S = np.pad(S, ((0, 0), (0, pad)), constant_values=0.0)
            I = np.pad(I, ((0, 0), (0, pad)), constant_values=-1)
        scores.append(S.astype(np.float32))
        ids.append(I.astype(np.int64))
    return scores, ids


def _merge_case(scores, ids, k):
    def run(fn):
        out = call(fn, scores, ids, k, names=("shard_scores", "shard_ids", "k"))
        if out is None:
            raise Fail("the result is None: did you forget `return`?")
        if not isinstance(out, tuple) or len(out) != 2:
            raise Fail("return a pair (scores, ids), like FAISS's D, I")
        want_s, want_i = _merge(scores, ids, k)
        got_s, got_i = (np.asarray(a) for a in out)
        if got_i.shape != want_i.shape:
            raise Fail(f"ids have shape {got_i.shape}; expected (n_queries, k) = {want_i.shape}: keep "
                       "k results per query in total, not k per shard")
        if got_s.shape != want_s.shape:
            raise Fail(f"scores have shape {got_s.shape}; expected {want_s.shape}")
        same_s = np.allclose(np.nan_to_num(got_s.astype(np.float64), neginf=-1e30),
                             np.nan_to_num(want_s, neginf=-1e30), atol=1e-5)
        if same_s and np.array_equal(got_i.astype(np.int64), want_i):
            return
        for kwargs, message in _MERGE_MISTAKES:
            s, i = _merge(scores, ids, k, **kwargs)
            if not np.array_equal(i, want_i) and np.array_equal(got_i.astype(np.int64), i):
                raise Fail(message)
        if same_s:
            raise Fail("the scores are right but some ids are not: move the ids with their scores "
                       "(np.take_along_axis with the same order)")
        raise Fail(f"{int(np.sum(got_i != want_i))} of {want_i.size} ids are wrong")
    return run


_a = ([np.array([[0.9, 0.1]], np.float32), np.array([[0.5, 0.4]], np.float32)],
      [np.array([[3, 0]]), np.array([[7, 8]])])
MERGE = Exercise(
    "12.merge", "scatter-gather merge of shard top-k lists", "merge_topk",
    ("Put the shards' lists side by side (np.concatenate along axis 1), give the padding id -1 a score "
     "of -inf, then sort each row by score, best first, with ties going to the smaller id, and keep the "
     "first k columns (pad with -inf / -1 if there are fewer than k candidates).",
     "`np.concatenate` along axis 1 puts the shards side by side; `np.where` sets the padding's scores "
     "to -inf. `np.lexsort` sorts by several keys at once (the LAST key is the primary one): negated "
     "scores first, then ids for ties. Reorder both arrays with `np.take_along_axis`, then pad to k "
     "columns."),
    (Case("two shards, one query, easy to check by hand", _merge_case(*_a, 3)),
     Case("two shards of 50 documents, 6 queries, k = 5", _merge_case(*_shard_lists(1, 6, 100, 2, 5), 5)),
     Case("five shards, 20 queries, k = 10", _merge_case(*_shard_lists(2, 20, 400, 5, 10), 10)),
     Case("a shard with fewer than k documents (FAISS pads with -1)", _merge_case(*_shard_lists(3, 4, 13, 3, 6), 6)),
     Case("fewer documents in all shards together than k", _merge_case(*_shard_lists(4, 2, 5, 2, 8), 8)),
     Case("many tied scores across shards", _merge_case(*_shard_lists(5, 8, 60, 3, 7, d=3, ties=True), 7))),
    points=2,
)


# --- 12.resume: which documents to embed again, which shard files to delete -----------------
def _resume(all_ids, shards):
    done = {i for ids in shards.values() if ids is not None for i in ids}
    return [i for i in all_ids if i not in done], sorted(n for n, ids in shards.items() if ids is None)


def _resume_case(all_ids, shards):
    def run(fn):
        out = call(fn, all_ids, shards, names=("all_ids", "shards"))
        if out is None:
            raise Fail("the result is None: did you forget `return`?")
        if not isinstance(out, tuple) or len(out) != 2:
            raise Fail("return a pair (todo, delete): the ids still to embed and the shard names to delete")
        todo, delete = out
        want_todo, want_delete = _resume(all_ids, shards)
        todo, delete = list(todo), sorted(delete)
        if todo == want_todo and delete == want_delete:
            return
        if delete != want_delete:
            if not delete and want_delete:
                raise Fail("a shard that could not be read (None) was cut off by a crash: list it for "
                           "deletion, and embed its documents again")
            raise Fail("the shards to delete are exactly those that could not be read (None)")
        if len(todo) != len(set(todo)):
            raise Fail("an id appears twice in `todo`: each document must be embedded once")
        if set(todo) == set(want_todo) and todo != want_todo:
            raise Fail("keep the documents in the order of `all_ids` (the job's input order)")
        if set(todo) - set(want_todo):
            raise Fail(f"{len(set(todo) - set(want_todo))} ids in `todo` are already in a readable shard: "
                       "embedding them again would put them twice in the output")
        if set(want_todo) - set(todo):
            raise Fail(f"{len(set(want_todo) - set(todo))} ids are in no readable shard but missing from "
                       "`todo`: they would never be embedded")
        raise Fail("the result is wrong")
    return run


def _many_shards(seed):
    rng = _rng(seed)
    ids = [f"doc{i:04d}" for i in range(300)]
    perm = rng.permutation(300)
    shards = {}
    for n, part in enumerate(np.array_split(perm[:220], 11)):
        shards[f"shard-{n:03d}.parquet"] = None if n in (3, 7) else [ids[i] for i in sorted(part)]
    return ids, shards


RESUME = Exercise(
    "12.resume", "resuming an interrupted embedding job", "resume_plan",
    ("A shard that reads fine holds finished documents; a shard that cannot be read (None) was cut off "
     "by a crash and must be deleted, so its documents count as not done. `todo` = the ids of "
     "`all_ids`, in their order, that are in no readable shard.",
     "A set comprehension over the readable shards' ids gives what is done; a list comprehension over "
     "all_ids keeps their order for `todo`; the unreadable shards' names, `sorted`, are the ones to "
     "delete."),
    (Case("nothing written yet", _resume_case(["a", "b", "c"], {})),
     Case("everything written", _resume_case(["a", "b"], {"s0": ["b"], "s1": ["a"]})),
     Case("one shard cut off by a crash", _resume_case(["a", "b", "c", "d"], {"s0": ["a", "b"], "s1": None})),
     Case("ids given in a different order than the shards hold them",
          _resume_case(["z", "y", "x", "w"], {"s0": ["w", "y"]})),
     Case("300 documents, 11 shards, two of them cut off", _resume_case(*_many_shards(1)))),
    points=2,
)


# --- 12.nodes: nodes to embed n documents before a deadline --------------------------------
def _nodes(n_docs, docs_per_second, hours, actors_per_node, rounding=math.ceil, seconds=3600):
    actors = rounding(n_docs / (docs_per_second * hours * seconds))
    return rounding(actors / actors_per_node)


def _nodes_case(n_docs, docs_per_second, hours, actors_per_node):
    def run(fn):
        out = call(fn, n_docs, docs_per_second, hours, actors_per_node,
                   names=("n_docs", "docs_per_second", "hours", "actors_per_node"))
        want = _nodes(n_docs, docs_per_second, hours, actors_per_node)
        if out is None:
            raise Fail("the result is None: did you forget `return`?")
        if isinstance(out, float) and not float(out).is_integer():
            raise Fail(f"{out} nodes: you cannot rent a fraction of a machine; round UP (math.ceil)")
        if not isinstance(out, (int, np.integer, float)):
            raise Fail(f"return a whole number of nodes, got a {type(out).__name__}")
        if int(out) == want:
            return
        if int(out) == _nodes(n_docs, docs_per_second, hours, actors_per_node, rounding=math.floor):
            raise Fail("rounded down: with fewer nodes the job misses the deadline; round UP (math.ceil)")
        if int(out) == _nodes(n_docs, docs_per_second, hours, actors_per_node, seconds=1) or \
                int(out) == _nodes(n_docs, docs_per_second, hours, actors_per_node, seconds=60):
            raise Fail("the rate is per SECOND and the deadline in HOURS: multiply hours by 3600")
        if int(out) == math.ceil(n_docs / (docs_per_second * hours * 3600)):
            raise Fail("that is the number of actors; each node runs `actors_per_node` of them")
        raise Fail("the number of nodes is wrong")
    return run


NODES = Exercise(
    "12.nodes", "nodes for a deadline", "nodes_needed",
    ("One actor embeds docs_per_second documents per second, so it does docs_per_second * hours * 3600 "
     "before the deadline. Count the actors needed (round up), then the nodes that hold them (round "
     "up).",
     "Two roundings up with `math.ceil`: the actors (documents over what one actor embeds before the "
     "deadline, with hours in seconds), then the nodes (actors over actors per node)."),
    (Case("3,600 documents, 1 per second, 1 hour, 1 actor per node", _nodes_case(3600, 1.0, 1.0, 1)),
     Case("10 million documents at 50 per second in a day, 16 actors per node", _nodes_case(10_000_000, 50.0, 24.0, 16)),
     Case("1 billion documents at 50 per second in a day, 16 actors per node", _nodes_case(1_000_000_000, 50.0, 24.0, 16)),
     Case("a rate that does not divide evenly", _nodes_case(1_000_003, 7.3, 2.5, 3)),
     Case("a tiny job: still one node", _nodes_case(10, 100.0, 1.0, 8))),
    points=1,
)

# --- 12.faiss_shards: faiss.IndexShards over per-shard IndexFlatIP = exact search ---------------------
def _shards_case(n_docs, n_queries, n_shards, k, offset=0):
    def run(fn):
        vectors = scifact_vectors(2040)         # the precomputed SciFact vectors: 2000 documents, then queries
        docs, queries = vectors[offset:offset + n_docs], vectors[2000:2000 + n_queries]
        out = call(fn, docs, queries, n_shards, k, names=("doc_vectors", "query_vectors", "n_shards", "k"))
        scores, ids = expect_hits(out, n_queries, k)
        full = queries.astype(np.float64) @ docs.astype(np.float64).T
        exact = np.argsort(-full, axis=1, kind="stable")[:, :k]
        if np.array_equal(ids, exact):
            if not np.allclose(scores, np.take_along_axis(full, exact, 1), atol=1e-4):
                raise Fail("the ids are right but the scores are not the inner products (IndexFlatIP per shard)")
            return
        starts = np.cumsum([0] + [len(part) for part in np.array_split(np.arange(n_docs), n_shards)])
        local = exact - starts[np.searchsorted(starts, exact, side="right") - 1]
        if n_shards > 1 and np.array_equal(ids, local):
            raise Fail("the ids are positions inside a shard, not rows of doc_vectors: build the IndexShards "
                       "with successive_ids=True (each shard's ids then continue where the previous ended)")
        if n_shards > 1 and (ids < starts[1]).all():
            raise Fail("every result comes from the first shard: add every shard to the IndexShards")
        raise Fail(f"{int((ids != exact).sum())} of {ids.size} ids differ from the exact top-k over all "
                   "documents: every shard searched, each result's id its row in doc_vectors, best first")
    return run


FAISS_SHARDS = Exercise(
    "12.faiss_shards", "scatter-gather with faiss.IndexShards (= exact search)", "sharded_search",
    ("Split the document vectors into n_shards contiguous parts; give each part its own exact index "
     "(`faiss.IndexFlatIP`) and put them into one `faiss.IndexShards`, which sends a search to every "
     "shard and merges their top-k lists -- the scatter-gather of the chapter, in one process. The "
     "result must equal exact search over all documents.",
     "`faiss.IndexShards(d, threaded, successive_ids)`: with successive_ids the ids of shard 2 "
     "continue after those of shard 1, so they are rows of doc_vectors. `add_shard` takes each "
     "filled sub-index; keep the sub-indexes referenced in a Python list while you search (the "
     "IndexShards does not own them). `np.array_split` cuts the rows into parts."),
    (Case("1,000 SciFact abstracts in 4 shards, 10 other abstracts as queries, k = 5", _shards_case(1000, 10, 4, 5)),
     Case("2 shards of unequal size, k = 10", _shards_case(999, 8, 2, 10)),
     Case("one shard (the plain exact search)", _shards_case(500, 6, 1, 3)),
     Case("7 shards, k = 1", _shards_case(1400, 12, 7, 1)),
     Case("k larger than a shard: 5 shards of 20 documents, k = 30", _shards_case(100, 5, 5, 30))),
    points=2,
)
FAISS_SHARDS = held_back(
    FAISS_SHARDS,
    Case("1,200 other abstracts in 3 shards, k = 6", _shards_case(1200, 9, 3, 6, offset=500)),
    Case("6 shards of 25 documents, k = 40", _shards_case(150, 4, 6, 40, offset=1000)))


# --- held-back cases: the public situations again, with other inputs (graded; `check` never runs them)
MERGE = held_back(
    MERGE,
    Case("three shards, 5 queries, k = 4", _merge_case(*_shard_lists(60, 5, 90, 3, 4), 4)),
    Case("four shards, 15 queries, k = 8", _merge_case(*_shard_lists(61, 15, 320, 4, 8), 8)),
    Case("a shard with fewer than k documents", _merge_case(*_shard_lists(62, 3, 10, 2, 7), 7)),
    Case("fewer documents in all shards together than k", _merge_case(*_shard_lists(63, 2, 4, 2, 6), 6)),
    Case("many tied scores across shards", _merge_case(*_shard_lists(64, 6, 40, 4, 5, d=3, ties=True), 5)))
RESUME = held_back(
    RESUME,
    Case("nothing written yet", _resume_case(["x", "y"], {})),
    Case("two shards cut off, one fine", _resume_case(["p", "q", "r", "s", "t"],
                                                      {"a": None, "b": ["s", "q"], "c": None})),
    Case("ids in another order than the shards hold them", _resume_case(["e", "d", "c", "b", "a"],
                                                                      {"s1": ["a", "c"], "s0": ["e"]})),
    Case("300 documents, 11 shards, two cut off", _resume_case(*_many_shards(60))))
NODES = held_back(
    NODES,
    Case("7,200 documents, 1 per second, 1 hour, 1 actor per node", _nodes_case(7200, 1.0, 1.0, 1)),
    Case("50 million documents at 40 per second in 12 hours, 8 actors per node", _nodes_case(50_000_000, 40.0, 12.0, 8)),
    Case("a rate that does not divide evenly", _nodes_case(2_345_678, 9.7, 3.5, 5)),
    Case("a tiny job", _nodes_case(3, 10.0, 0.5, 4)))

EXERCISES = (MERGE, RESUME, NODES, FAISS_SHARDS)
