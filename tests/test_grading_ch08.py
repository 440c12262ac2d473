"""Chapter 08's exercise checks: typical mistakes fail with a message that names them, and other
correct implementations pass (the generic tests -- solutions pass, notebooks grade -- are in
test_grading.py)."""
import re

import numpy as np
import pytest
from test_grading import _reference

from course_utils.grading import check


# ------------------------------------------------------------------- 08.mnrl: mistakes
def _loss(normalise=True, axis=1, scale_used=True, use_neg=True, own_neg=False, reduce=np.mean, naive32=False,
          sign=1.0):
    def mnrl(anchors, positives, negatives=None, scale=20.0):
        dtype = np.float32 if naive32 else np.float64
        f = (lambda x: np.asarray(x, dtype) / np.linalg.norm(np.asarray(x, dtype), axis=1, keepdims=True)) \
            if normalise else (lambda x: np.asarray(x, dtype))
        a, p = f(anchors), f(positives)
        c = p if negatives is None or not use_neg or own_neg else np.vstack([p, f(negatives)])
        s = (scale if scale_used else 1.0) * a @ c.T
        if own_neg and negatives is not None:
            s = np.hstack([s, (scale * np.sum(a * f(negatives), axis=1))[:, None]])
        if naive32:
            probs = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
            return float(reduce(-np.log(np.diag(probs))))
        if axis == 0:
            s = s[:, :len(a)]
        m = s.max(axis=axis, keepdims=True)
        lse = np.squeeze(m, axis) + np.log(np.exp(s - m).sum(axis=axis))
        return sign * float(reduce(lse - np.diag(s)))
    return mnrl


# ------------------------------------------------------------------- 08.hard_negatives: mistakes
def _miner(keep_pos=False, keep_self=False, late=False, ascending=False, drop_judged=False):
    def mine(scores, query_ids, doc_ids, qrels, n):
        out = {}
        for i, q in enumerate(query_ids):
            row = np.asarray(scores)[i]
            order = np.argsort(row if ascending else -row, kind="stable")
            judged = qrels.get(q, {})
            bad = lambda d: ((not keep_pos and (judged.get(d, 0) > 0 or (drop_judged and d in judged)))  # noqa: E731
                             or (not keep_self and d == q))
            docs = [doc_ids[j] for j in order]
            out[q] = [d for d in docs[:n] if not bad(d)] if late else [d for d in docs if not bad(d)][:n]
        return out
    return mine


# ------------------------------------------------------------------- 08.leakage: mistakes
def _leaker(raw_text=False, raw_vecs=False, strict=False, near_first=False, last_exact=False):
    def leak(test_texts, train_texts, test_vecs, train_vecs, threshold):
        norm = (lambda t: t) if raw_text else (lambda t: " ".join(re.findall(r"\w+", t.lower())))
        exact = {}
        for j, t in enumerate(train_texts):
            exact[norm(t)] = j if last_exact else exact.get(norm(t), j)
        f = (lambda x: np.asarray(x, float)) if raw_vecs else \
            (lambda x: np.asarray(x, float) / np.linalg.norm(np.asarray(x, float), axis=1, keepdims=True))
        sims = f(test_vecs) @ f(train_vecs).T
        out = {}
        for i, t in enumerate(test_texts):
            near = sims[i].max() > threshold if strict else sims[i].max() >= threshold
            if norm(t) in exact and not (near_first and near):
                out[i] = ("exact", exact[norm(t)])
            elif near:
                out[i] = ("near", int(sims[i].argmax()))
        return out
    return leak


def _adapter(kind):
    def fit(Q, P, lam):
        Q, P = np.asarray(Q, float), np.asarray(P, float)
        d = Q.shape[1]
        if kind == "transposed":
            return np.linalg.solve(Q.T @ Q + lam * np.eye(d), Q.T @ P).T
        if kind == "no_lam":
            return np.linalg.lstsq(Q, P, rcond=None)[0]
        if kind == "every_entry":
            return np.linalg.solve(Q.T @ Q + lam, Q.T @ P)
        return np.linalg.solve(Q.T @ Q + lam * len(Q) * np.eye(d), Q.T @ P)
    return fit


def _mine_library(mode):
    """mine_triplets variants: range_min ignored; a numpy miner that lets a pair's positive be its negative."""
    def fn(model_path, anchors, positives, corpus, num_negatives, range_min):
        from sentence_transformers import SentenceTransformer
        model = SentenceTransformer(model_path, device="cpu")
        if mode == "no range_min":
            from datasets import Dataset
            from sentence_transformers.util import mine_hard_negatives
            mined = mine_hard_negatives(Dataset.from_dict({"anchor": anchors, "positive": positives}), model,
                                        corpus=corpus, num_negatives=num_negatives, sampling_strategy="top",
                                        output_format="triplet", verbose=False)
            return [(r["anchor"], r["positive"], r["negative"]) for r in mined]
        a = model.encode(anchors, normalize_embeddings=True, show_progress_bar=False)
        c = model.encode(corpus, normalize_embeddings=True, show_progress_bar=False)
        order = np.argsort(-(a @ c.T), axis=1)[:, range_min:range_min + num_negatives]
        return [(anchors[i], positives[i], corpus[j]) for i in range(len(anchors)) for j in order[i]]
    return fn


_MISTAKES = [
    ("08.mnrl", _loss(normalise=False), "not unit length"),
    ("08.mnrl", _loss(axis=0), "wrong axis"),
    ("08.mnrl", _loss(scale_used=False), "scale is missing"),
    ("08.mnrl", _loss(use_neg=False), "hard negatives are ignored"),
    ("08.mnrl", _loss(own_neg=True), "ALL rows' hard negatives"),
    ("08.mnrl", _loss(reduce=np.sum), "MEAN over the batch"),
    ("08.mnrl", _loss(naive32=True), "log-sum-exp"),
    ("08.mnrl", _loss(sign=-1.0), "minus sign"),
    ("08.hard_negatives", _miner(keep_pos=True), "known positive"),
    ("08.hard_negatives", _miner(keep_self=True), "own document"),
    ("08.hard_negatives", _miner(late=True), "remove the positives first"),
    ("08.hard_negatives", _miner(ascending=True), "EASIEST negatives"),
    ("08.hard_negatives", _miner(drop_judged=True), "judged NOT relevant"),
    ("08.leakage", _leaker(raw_text=True), "exact duplicate was missed"),
    ("08.leakage", _leaker(raw_vecs=True), "not unit length"),
    ("08.leakage", _leaker(strict=True), ">=, not >"),
    ("08.leakage", _leaker(near_first=True), "check the text first"),
    ("08.leakage", _leaker(last_exact=True), "a train index is not the right one"),
    ("08.adapter", _adapter("transposed"), "W is transposed"),
    ("08.adapter", _adapter("no_lam"), "lam is ignored"),
    ("08.adapter", _adapter("every_entry"), "diagonal only"),
    ("08.adapter", _adapter("scaled"), "scaled by the number of rows"),
    pytest.param("08.mine_library", _mine_library("no range_min"), "`range_min` skips", marks=pytest.mark.model),
    pytest.param("08.mine_library", _mine_library("positives kept"), "its own anchor's negative", marks=pytest.mark.model),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the naive float32 softmax overflows on purpose
@pytest.mark.parametrize("ex, fn, words", _MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(_MISTAKES)])
def test_typical_mistakes_fail_with_a_message_that_names_them(ex, fn, words, capsys):
    result = check(ex, fn, time_limit=120)
    assert result.status == "failed" and words in result.message, result.message
    assert words in capsys.readouterr().out.replace("\n    ", " ")


def _mnrl_cross_entropy(anchors, positives, negatives=None, scale=20.0):   # softmax probabilities in float64
    a = np.asarray(anchors, float)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    c = np.vstack([x / np.linalg.norm(x, axis=1, keepdims=True) for x in
                   [np.asarray(positives, float)] + ([] if negatives is None else [np.asarray(negatives, float)])])
    logits = scale * a @ c.T
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return -np.mean(np.log(p[np.arange(len(a)), np.arange(len(a))]))


def _mine_sets(scores, query_ids, doc_ids, qrels, n):                    # a set of positives, a heap-free loop
    out = {}
    for q, row in zip(query_ids, np.asarray(scores)):
        pos = {d for d, r in qrels.get(q, {}).items() if r > 0} | {q}
        ranked = sorted(range(len(doc_ids)), key=lambda j: (-row[j], j))
        out[q] = [doc_ids[j] for j in ranked if doc_ids[j] not in pos][:n]
    return out


def _adapter_inv(Q, P, lam):                                             # explicit inverse: same W
    Q, P = np.asarray(Q, float), np.asarray(P, float)
    return np.linalg.inv(Q.T @ Q + lam * np.eye(Q.shape[1])) @ Q.T @ P


@pytest.mark.parametrize("ex, fn", [("08.mnrl", _mnrl_cross_entropy), ("08.hard_negatives", _mine_sets),
                                    ("08.adapter", _adapter_inv), ("08.leakage", _leaker())],
                         ids=["mnrl-probabilities", "mine-sorted", "adapter-inverse", "leakage-dict"])
def test_other_correct_implementations_pass(ex, fn, capsys):
    assert check(ex, fn), capsys.readouterr().out


def test_the_solution_is_what_the_notebook_compares_with_sentence_transformers():
    # the notebook's after-check compares mnrl_loss with sentence-transformers' value; the hand value here
    assert _reference("08.mnrl")([[1, 0], [0, 1]], [[1, 0], [0, 1]], scale=1.0) == pytest.approx(np.log(1 + np.exp(-1)))


@pytest.mark.model
def test_the_mine_library_solution_passes(capsys):
    assert check("08.mine_library", _reference("08.mine_library"), time_limit=180), capsys.readouterr().out
