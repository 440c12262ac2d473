"""Training data for fine-tuning a bi-encoder: (query, positive[, hard negative]) rows, mined
hard negatives, and the leakage check that keeps test queries out of training.

A training row is a dict {"anchor": query text, "positive": document text} plus "negative" (a
document text) when hard negatives are used -- the column layout sentence-transformers' trainer
and `MultipleNegativesRankingLoss` expect (columns are matched by position, not by name).

Leakage (chapter 03, section 6.1): SciFact's train and test claims share no ids, but many test
claims have a near-identical train claim (a negation, another number) citing the same abstract.
`leakage_report` finds exact and near-duplicate test queries among the training anchors
(difflib ratio >= `min_ratio` after lower-casing and collapsing spaces) and test positives that
are also training positives; `check_no_leakage` raises when a test query is in the training data.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence

import numpy as np

from course_utils.runs import trec_order

__all__ = ["split_queries", "training_rows", "mine_hard_negatives", "leakage_report",
           "check_no_leakage", "near_duplicate_queries", "LeakageError"]


class LeakageError(ValueError):
    """A test query (or a near-copy of one) is among the training anchors."""


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", str(text).lower()).strip()


def split_queries(qrels: Mapping, fraction: float = 0.1, seed: int = 0) -> tuple[list, list]:
    """Split query ids into (train, validation), keeping queries that share a relevant document
    on the same side (claims written from one abstract are near-copies of each other).

    >>> split_queries({"a": {"d1": 1}, "b": {"d1": 1}, "c": {"d2": 1}}, fraction=0.5, seed=0)
    (['c'], ['a', 'b'])
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
    group = {}                                   # query -> group id, by union-find over documents
    parent = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x
    for qid, docs in qrels.items():
        for d in docs:
            parent[find(("d", d))] = find(("q", qid))
    for qid in qrels:
        group[qid] = find(("q", qid))
    groups = sorted({str(g) for g in group.values()})
    rng = np.random.default_rng(seed)
    rng.shuffle(groups)
    val_groups = set(groups[:max(1, round(fraction * len(groups)))])
    train = [q for q in qrels if str(group[q]) not in val_groups]
    val = [q for q in qrels if str(group[q]) in val_groups]
    return train, val


def training_rows(queries: Mapping, qrels: Mapping, doc_text: Mapping,
                  negatives: Mapping | None = None, exclude=()) -> list[dict]:
    """One row per (query, relevant document): {"anchor", "positive"} (+ "negative").

    queries {qid: text}; qrels {qid: {doc_id: relevance}} (relevance > 0 counts); doc_text
    {doc_id: text}; negatives {qid: [doc_id, ...]} from `mine_hard_negatives` (row i of a query
    takes negatives[qid][i % len]); exclude: query ids to leave out (e.g. near-copies of test
    queries). Queries without a text or a negative are skipped.
    >>> training_rows({"q": "cats"}, {"q": {"d1": 1}}, {"d1": "cats purr", "d2": "dogs"}, {"q": ["d2"]})
    [{'anchor': 'cats', 'positive': 'cats purr', 'negative': 'dogs'}]
    """
    exclude = set(exclude)
    rows = []
    for qid, judged in qrels.items():
        if qid in exclude or qid not in queries:
            continue
        positives = [d for d, rel in judged.items() if rel > 0 and d in doc_text]
        negs = list((negatives or {}).get(qid, []))
        if negatives is not None and not negs:
            continue
        for i, d in enumerate(positives):
            row = {"anchor": queries[qid], "positive": doc_text[d]}
            if negatives is not None:
                row["negative"] = doc_text[negs[i % len(negs)]]
            rows.append(row)
    if not rows:
        raise ValueError("no training rows: do queries, qrels and doc_text share ids?")
    return rows


def mine_hard_negatives(run: Mapping, qrels: Mapping, n: int = 1, skip: int = 0,
                        depth: int = 10, seed: int = 0) -> dict[str, list[str]]:
    """Hard negatives per query: `n` documents drawn at random from ranks skip+1..skip+depth of
    `run` after removing every known positive -- the query's own judged documents and those of
    every query sharing a relevant document with it (claims of one family).

    run: {qid: {doc_id: score}} from BM25 or the base model; qrels: the training judgments.
    >>> mine_hard_negatives({"q": {"d1": 3.0, "d2": 2.0, "d3": 1.0}}, {"q": {"d1": 1}}, n=1, depth=1)
    {'q': ['d2']}
    """
    if n < 1 or depth < n:
        raise ValueError(f"need 1 <= n <= depth, got n={n}, depth={depth}")
    by_doc = {}
    for qid, docs in qrels.items():
        for d in docs:
            by_doc.setdefault(d, set()).add(qid)
    rng = np.random.default_rng(seed)
    out = {}
    for qid, judged in qrels.items():
        known = set(judged)
        for d in judged:
            for sibling in by_doc[d]:
                known |= set(qrels[sibling])
        pool = [d for d in trec_order(run.get(qid, {})) if d not in known][skip:skip + depth]
        if pool:
            picked = rng.choice(len(pool), size=min(n, len(pool)), replace=False)
            out[qid] = [pool[i] for i in sorted(picked)]
    return out


def near_duplicate_queries(test_queries: Mapping, train: Mapping | Sequence[str],
                    min_ratio: float = 0.8) -> list[tuple[str, object, float]]:
    """Every (test qid, training id, ratio) pair whose difflib ratio is >= min_ratio (an exact
    copy: 1.0), texts lower-cased with spaces collapsed; best pairs first.

    train: {id: text}, or a sequence of texts (ids = positions).
    >>> near_duplicate_queries({"t1": "Aspirin lowers risk.", "t2": "Sky is blue"},
    ...                 {"a": "aspirin lowers the risk.", "b": "cats"})
    [('t1', 'a', 0.9090909090909091)]
    """
    if not 0 < min_ratio <= 1:
        raise ValueError(f"min_ratio must lie in (0, 1], got {min_ratio}")
    items = list(train.items()) if isinstance(train, Mapping) else list(enumerate(train))
    by_text = {}
    for tid, text in items:
        by_text.setdefault(_norm(text), []).append(tid)
    found = []
    for qid, text in test_queries.items():
        sm = difflib.SequenceMatcher(None, b=_norm(text), autojunk=False)
        for t, ids in by_text.items():
            sm.set_seq1(t)
            if sm.real_quick_ratio() >= min_ratio and sm.quick_ratio() >= min_ratio:
                r = sm.ratio()
                if r >= min_ratio:
                    found += [(qid, tid, r) for tid in ids]
    return sorted(found, key=lambda x: -x[2])


def leakage_report(rows: Sequence[Mapping], test_queries: Mapping, test_qrels: Mapping,
                   doc_text: Mapping, min_ratio: float = 0.8) -> dict:
    """What of the test set is in the training rows.

    Returns {"exact": [test qids whose text is an anchor], "near": {test qid: (anchor, ratio)}
    (exact ones included), "positives": [test positive doc ids that are training positives],
    "n_test": len(test_queries)}.
    >>> rows = [{"anchor": "cats purr", "positive": "Cats. They purr."}]
    >>> r = leakage_report(rows, {"t": "Cats purr"}, {"t": {"d1": 1}}, {"d1": "Cats. They purr."})
    >>> r["exact"], r["positives"]
    (['t'], ['d1'])
    """
    anchors = [r["anchor"] for r in rows]
    near = {}
    for qid, i, ratio in near_duplicate_queries(test_queries, anchors, min_ratio):
        near.setdefault(qid, (anchors[i], ratio))        # best first
    exact = [q for q, (_, ratio) in near.items() if ratio == 1.0]
    train_pos = {_norm(r["positive"]) for r in rows}
    pos = sorted({d for q in test_qrels for d, rel in test_qrels[q].items()
                  if rel > 0 and d in doc_text and _norm(doc_text[d]) in train_pos})
    return {"exact": exact, "near": near, "positives": pos, "n_test": len(test_queries)}


def check_no_leakage(rows: Sequence[Mapping], test_queries: Mapping, min_ratio: float = 0.8) -> int:
    """Raise LeakageError if any test query (or a near-copy, ratio >= min_ratio) is a training
    anchor; return the number of rows checked.

    >>> check_no_leakage([{"anchor": "cats purr", "positive": "x"}], {"t": "dogs bark loudly"})
    1
    """
    anchors = [r["anchor"] for r in rows]
    near = near_duplicate_queries(test_queries, anchors, min_ratio)
    if near:
        qid, i, ratio = near[0]
        text = anchors[i]
        raise LeakageError(
            f"{len({q for q, _, _ in near})} test query(ies) in the training data (ratio >= {min_ratio}), e.g. test "
            f"query {qid!r} ~ training anchor {text!r} (ratio {ratio:.2f}). Remove those training "
            "queries (training_rows(..., exclude=...)) before training.")
    return len(rows)
