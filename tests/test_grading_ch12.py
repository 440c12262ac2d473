"""Chapter 12's exercise checks: typical mistakes fail with a message that names them, and other
correct implementations pass (the generic tests -- solutions pass, notebooks grade -- are in
test_grading.py)."""
import heapq
import math

import numpy as np
import pytest
from test_grading import _reference

from course_utils.grading import check


def _merge(sort="desc", pad_aware=True, tie="id", per_shard=False):
    def merge_topk(shard_scores, shard_ids, k):
        S = np.concatenate([np.atleast_2d(np.asarray(s, float)) for s in shard_scores], axis=1)
        I = np.concatenate([np.atleast_2d(np.asarray(i)) for i in shard_ids], axis=1)
        if pad_aware:
            S = np.where(I < 0, -np.inf, S)
        if sort == "none":
            order = np.tile(np.arange(S.shape[1]), (len(S), 1))
        elif sort == "asc":
            order = np.lexsort((I, S), axis=1)
        elif tie == "position":
            order = np.argsort(-S, axis=1, kind="stable")
        else:
            order = np.lexsort((I, -S), axis=1)
        order = order if per_shard else order[:, :k]
        S, I = np.take_along_axis(S, order, 1), np.take_along_axis(I, order, 1)
        if S.shape[1] < k:
            S = np.pad(S, ((0, 0), (0, k - S.shape[1])), constant_values=-np.inf)
            I = np.pad(I, ((0, 0), (0, k - I.shape[1])), constant_values=-1)
        return S, np.where(np.isfinite(S), I, -1)
    return merge_topk


def _merge_heapq(shard_scores, shard_ids, k):          # another correct way: a heap per query
    S = [np.atleast_2d(np.asarray(s, float)) for s in shard_scores]
    I = [np.atleast_2d(np.asarray(i)) for i in shard_ids]
    out_s, out_i = [], []
    for q in range(len(S[0])):
        cand = [(-s, int(i)) for ss, ii in zip(S, I) for s, i in zip(ss[q], ii[q]) if i >= 0]
        best = heapq.nsmallest(k, cand)
        out_s.append([-s for s, _ in best] + [-np.inf] * (k - len(best)))
        out_i.append([i for _, i in best] + [-1] * (k - len(best)))
    return np.array(out_s), np.array(out_i)


def _resume_sets(all_ids, shards):                     # order lost
    done = {i for ids in shards.values() if ids for i in ids}
    return sorted(set(all_ids) - done), sorted(n for n, ids in shards.items() if ids is None)


def _resume_trusting(all_ids, shards):                 # a cut-off shard counted as done (and kept)
    return [i for i in all_ids if not any(ids and i in ids for ids in shards.values())], []


def _resume_redo_all(all_ids, shards):                 # re-embeds everything
    return list(all_ids), sorted(n for n, ids in shards.items() if ids is None)


def _nodes_floordiv(n, r, h, a):                      # ceiling by negated floor division
    actors = -(n // -(r * h * 3600))
    return int(-(actors // -a))


_MISTAKES = [
    ("12.merge", _merge(sort="none"), "sorted by score"),
    ("12.merge", _merge(sort="asc"), "worst first"),
    ("12.merge", _merge(pad_aware=False), "id -1 is FAISS's padding"),
    ("12.merge", _merge(tie="position"), "smaller id"),
    ("12.merge", _merge(per_shard=True), "k results per query in total"),
    ("12.resume", _resume_sets, "order of `all_ids`"),
    ("12.resume", _resume_trusting, "could not be read"),
    ("12.resume", _resume_redo_all, "already in a readable shard"),
    ("12.nodes", lambda n, r, h, a: math.floor(math.floor(n / (r * h * 3600)) / a), "round UP"),
    ("12.nodes", lambda n, r, h, a: math.ceil(math.ceil(n / (r * h)) / a), "multiply hours by 3600"),
    ("12.nodes", lambda n, r, h, a: math.ceil(n / (r * h * 3600)), "number of actors"),
    ("12.nodes", lambda n, r, h, a: n / (r * h * 3600) / a, "fraction of a machine"),
]


@pytest.mark.parametrize("ex, fn, words", _MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(_MISTAKES)])
def test_typical_mistakes_fail_with_a_message_that_names_them(ex, fn, words, capsys):
    result = check(ex, fn)
    assert result.status == "failed" and words in result.message, result.message


@pytest.mark.parametrize("ex, fn", [
    ("12.merge", _merge_heapq),
    ("12.resume", lambda a, s: ([i for i in a if i not in set().union(*[set(v) for v in s.values() if v is not None])],
                                sorted(k for k, v in s.items() if v is None))),
    ("12.nodes", _nodes_floordiv),
], ids=["merge-heapq", "resume-set-union", "nodes-floor-division"])
def test_other_correct_implementations_pass(ex, fn, capsys):
    assert check(ex, fn), capsys.readouterr().out


def test_the_solutions_are_the_ones_the_notebook_uses():
    scores, ids = _reference("12.merge")([np.array([[0.9, 0.1]]), np.array([[0.5, 0.4]])],
                                         [np.array([[3, 0]]), np.array([[7, 8]])], 3)
    assert ids.tolist() == [[3, 7, 8]]
    assert _reference("12.resume")(["a", "b", "c"], {"s0": ["b"], "s1": None}) == (["a", "c"], ["s1"])
    assert _reference("12.nodes")(7200, 1.0, 1.0, 1) == 2


# ------------------------------------------------------------------- 12.faiss_shards: FAISS's own scatter-gather
def _index_shards(successive_ids=True, first_only=False):
    def fn(doc_vectors, query_vectors, n_shards, k):
        import faiss

        docs = np.ascontiguousarray(doc_vectors, dtype=np.float32)
        sharded, parts = faiss.IndexShards(docs.shape[1], False, successive_ids), []
        for rows in np.array_split(docs, n_shards)[:1 if first_only else None]:
            part = faiss.IndexFlatIP(docs.shape[1])
            part.add(rows)
            sharded.add_shard(part)
            parts.append(part)
        return sharded.search(np.ascontiguousarray(query_vectors, dtype=np.float32), k)
    return fn


@pytest.mark.parametrize("fn, words", [(_index_shards(successive_ids=False), "successive_ids=True"),
                                       (_index_shards(first_only=True), "add every shard")],
                         ids=["local-ids", "first-shard-only"])
def test_faiss_shards_mistakes_are_named(fn, words, capsys):
    result = check("12.faiss_shards", fn)
    assert result.status == "failed" and words in result.message, result.message


def test_faiss_shards_solution_equals_exact_search():
    rng = np.random.default_rng(3)
    docs, queries = rng.normal(size=(50, 6)).astype(np.float32), rng.normal(size=(4, 6)).astype(np.float32)
    scores, ids = _reference("12.faiss_shards")(docs, queries, 3, 7)
    assert np.array_equal(ids, np.argsort(-(queries @ docs.T), axis=1, kind="stable")[:, :7])
