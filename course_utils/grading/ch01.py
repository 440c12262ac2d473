"""Hidden test cases of chapter 01's exercises (solutions/01_embeddings_exercises.ipynb).

The reference answers are computed here, at check time, from seeded inputs; they are compared
with the learner's output and never printed.
"""
from __future__ import annotations

import functools
import hashlib

import numpy as np
from scipy.stats import rankdata, spearmanr

from .cases import Case, Exercise, Fail, call, expect_array, expect_number, held_back
from .minilm import model as _model


def _rng(n: int) -> np.random.Generator:
    return np.random.default_rng(1000 + n)


# --- 01.cosine: cosine similarity matrix (n, d) x (m, d) -> (n, m) ----------------------------
def _cosine(a, b) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    na, nb = (np.linalg.norm(x, axis=1, keepdims=True) for x in (a, b))
    return (a / np.where(na == 0, 1, na)) @ (b / np.where(nb == 0, 1, nb)).T


def _cosine_case(a, b):
    return lambda fn: expect_array(call(fn, a, b, names=("a", "b")), _cosine(a, b))


_scaled = _rng(3).normal(size=(4, 6)) * np.array([[10.0], [0.1], [3.0], [1.0]])
_with_zero = np.vstack([_rng(5).normal(size=(2, 3)), np.zeros((1, 3))])
COSINE = Exercise(
    "01.cosine", "cosine similarity matrix", "cosine_matrix",
    ("Cosine similarity is the dot product divided by the product of the two lengths. Scale every row "
     "of `a` and of `b` to length 1 first; one matrix product then gives all n x m cosines.",
     "`np.linalg.norm` with `axis=1, keepdims=True` gives each row's length as an (n, 1) column that "
     "divides the rows by broadcasting; replace zero lengths by 1 first (`np.where`) so a zero row "
     "stays zero instead of nan. After both inputs are unit rows, one matrix product with the transpose "
     "of the second gives the (n, m) result."),
    (Case("a (2, 2) and a (3, 2) matrix, small enough to check by hand",
          _cosine_case(np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[0.0, 2.0], [3.0, 0.0], [1.0, 1.0]]))),
     Case("n != m: a (5, 4) and a (3, 4) matrix", _cosine_case(_rng(1).normal(size=(5, 4)),
                                                               _rng(2).normal(size=(3, 4)))),
     Case("rows that are not of unit length", _cosine_case(_scaled, _rng(4).normal(size=(2, 6)) * 7)),
     Case("opposite vectors (similarity -1)", _cosine_case(np.array([[1.0, 2.0]]),
                                                           np.array([[-2.0, -4.0], [2.0, -1.0]]))),
     Case("a zero row (its similarities must be 0, not nan)", _cosine_case(_with_zero, _with_zero)),
     Case("Python lists of integers as input", _cosine_case([[1, 2, 3], [0, 1, 0]], [[3, 2, 1]])),
     Case("float32 embeddings, 384 dimensions", _cosine_case(
         _rng(6).normal(size=(3, 384)).astype(np.float32), _rng(7).normal(size=(8, 384)).astype(np.float32)))),
)


# --- 01.pooling: masked mean pooling (batch, tokens, d) + mask (batch, tokens) -> (batch, d) ----
def _pool(tokens, mask) -> np.ndarray:
    tokens, m = np.asarray(tokens, np.float64), np.asarray(mask, np.float64)[:, :, None]
    return (tokens * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)


def _pool_case(tokens, mask):
    return lambda fn: expect_array(call(fn, tokens, mask, names=("token_embeddings", "attention_mask")),
                                   _pool(tokens, mask))


def _padded(seed: int, lengths, tokens: int, d: int, dtype=np.int64):
    """Token vectors where padding is NOT zero (a transformer outputs vectors there too)."""
    x = _rng(seed).normal(size=(len(lengths), tokens, d)).astype(np.float32)
    mask = (np.arange(tokens)[None, :] < np.array(lengths)[:, None]).astype(dtype)
    return x, mask


POOLING = Exercise(
    "01.pooling", "masked mean pooling", "masked_mean_pool",
    ("Only positions where `attention_mask` is 1 are real tokens. The padded positions hold vectors too "
     "(not zeros!), so a plain `.mean(axis=1)` averages them in. Sum the real token vectors and divide "
     "by the number of real tokens of each text.",
     "Give the mask a trailing axis (`[:, :, None]`) so it broadcasts over the vector dimension; "
     "multiplying zeroes the padded vectors, a sum over the token axis adds the real ones, and the "
     "mask's own sum counts them. Divide with the count kept above a tiny floor (`np.maximum`), as "
     "sentence-transformers does, so an all-padding text stays at zero."),
    (Case("one text, no padding", _pool_case(*_padded(10, [5], 5, 4))),
     Case("a batch of 3 texts with padding (padded positions hold non-zero vectors)",
          _pool_case(*_padded(11, [6, 2, 4], 6, 8))),
     Case("a boolean attention mask", _pool_case(*_padded(12, [3, 1], 4, 5, dtype=bool))),
     Case("a text whose mask is all zeros (its vector must be zeros, not nan)",
          _pool_case(*_padded(13, [3, 0], 3, 2))),
     Case("d = 1 and a batch of 4", _pool_case(*_padded(14, [1, 2, 3, 4], 4, 1))),
     Case("real-model sizes: batch 2, 12 tokens, 384 dimensions, float32",
          _pool_case(*_padded(15, [12, 7], 12, 384)))),
)


# --- 01.truncation: which texts the model cuts -- model.tokenizer's word pieces vs model.max_seq_length --
_FILLER = " and"   # one word piece: pads a cut abstract to an exact length


@functools.lru_cache(maxsize=None)
def _abstract(doc_id: str) -> str:
    from course_utils.data import load_beir

    return load_beir("scifact", "test")[0][doc_id]["text"]


def _pieces(texts) -> np.ndarray:
    """Word pieces of each text as the model's tokenizer reads it, [CLS] and [SEP] included, uncut."""
    ids = _model().tokenizer(list(texts), verbose=False)["input_ids"]
    return np.array([len(x) for x in ids], dtype=np.int64)


@functools.lru_cache(maxsize=None)
def _exactly(doc_id: str, n: int) -> str:
    """The start of a SciFact abstract cut after whole words, padded with " and" to exactly n word
    pieces ([CLS] and [SEP] included)."""
    tok, text = _model().tokenizer, _abstract(doc_id)
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    pieces, offsets = tok.convert_ids_to_tokens(enc["input_ids"]), enc["offset_mapping"]
    k = n - 2
    while 0 < k < len(pieces) and pieces[k].startswith("##"):   # not inside a word
        k -= 1
    out = text[:offsets[k - 1][1]] + _FILLER * (n - 2 - k)
    if _pieces([out])[0] != n:
        raise RuntimeError(f"could not cut abstract {doc_id} to {n} word pieces")
    return out


def _cut_by_model(texts, limit: int) -> np.ndarray:
    """What the model does: True where its own preprocessing (at max_seq_length = limit) keeps fewer
    word pieces than the text has."""
    kept = np.asarray(_model().preprocess(list(texts))["attention_mask"]).sum(axis=1)
    return kept < _pieces(texts)


_WORDS = ("you counted words; the model counts word pieces of model.tokenizer, and a rare or long word becomes "
          "several pieces")


def _truncation_mistake(got, texts, limit: int, want) -> str | None:
    """The usual mistake that gives exactly `got`, in words, or None."""
    n = _pieces(texts)
    words, chars = np.array([len(t.split()) for t in texts]), np.array([len(t) for t in texts])
    guesses = [
        (limit != 256 and ((n > 256) | (n - 2 > 256)), "your function ignores model.max_seq_length: this model "
         f"was set to read {limit} word pieces, so compare with model.max_seq_length instead of a number"),
        ((n > 512) | (n - 2 > 512), "512 is the limit of the BERT backbone's position embeddings, not what this "
         "model reads: a sentence-transformers model cuts every text at model.max_seq_length"),
        (n - 2 > limit, "off by 2 at the boundary: the tokenizer adds [CLS] and [SEP] to every text and the model "
         "counts them in max_seq_length; count them too (model.tokenizer's default), or compare a count without "
         "them with max_seq_length - 2 as chapter 01 does"),
        (n >= limit, "a text of exactly max_seq_length word pieces still fits: the model cuts only what is longer "
         "(>, not >=)"),
        (words > limit, _WORDS),
        (words + 2 > limit, _WORDS),
        (chars > limit, "you counted characters; the model counts word pieces of model.tokenizer"),
        (np.zeros_like(want), "no text is reported as cut: count the word pieces of the whole text (a count taken "
         "after truncation, with truncation=True or from model.preprocess, never exceeds the limit)"),
        (np.ones_like(want), "every text is reported as cut: count each text's own word pieces (with padding=True "
         "every text is as long as the longest one in the batch)"),
        (~want, "True and False are swapped: True means the model cuts the text"),
    ]
    for guess, message in guesses:
        if guess is not False and not np.array_equal(guess, want) and np.array_equal(got, guess):
            return message
    return None


def _truncation_case(texts, limit: int = 256):
    def run(fn):
        model = _model()
        before = model.max_seq_length
        model.max_seq_length = limit
        try:
            out = call(fn, list(texts), model, names=("texts", "model"), mutable=(1,))
            changed = model.max_seq_length != limit
            want = _cut_by_model(texts, limit)
        finally:
            model.max_seq_length = before
        if changed:
            raise Fail("your function changed model.max_seq_length: read it, do not set it")
        if out is None:
            raise Fail("the result is None: did you forget `return`?")
        got = np.asarray(out)
        if got.shape != want.shape:
            raise Fail(f"the result has shape {got.shape}: return one True/False per text ({len(want)} here)")
        if len(got) and (got.dtype.kind not in "biu" or not np.isin(got, (0, 1)).all()):
            raise Fail("return True or False per text (whether the model cuts it), not a count")
        got = got.astype(bool)
        if not np.array_equal(got, want):
            mistake = _truncation_mistake(got, texts, limit, want)
            raise Fail(mistake or f"the answer is wrong for {int((got != want).sum())} of {len(want)} texts")
    return run


def _boundary(doc_id, limit, offsets):
    return lambda fn: _truncation_case([_exactly(doc_id, limit + k) for k in offsets], limit)(fn)


def _sample(seed: int, n: int):
    def run(fn):
        from course_utils.data import load_beir

        ids = sorted(load_beir("scifact", "test")[0])
        picked = _rng(seed).choice(len(ids), n, replace=False)
        return _truncation_case([_abstract(ids[i]) for i in picked])(fn)
    return run


TRUNCATION = Exercise(
    "01.truncation", "which texts the model cuts (model.tokenizer, model.max_seq_length)", "truncated",
    ("The model reads at most `model.max_seq_length` word pieces of a text and silently drops the rest. "
     "Count each text's word pieces with the model's own tokenizer, `model.tokenizer`, the way the model "
     "reads it: [CLS] and [SEP] included. A text is cut when it has more pieces than the limit.",
     "Chapter 01's long-documents section measures exactly this over SciFact. Calling the tokenizer on a "
     "list gives one list of ids per text under 'input_ids'; their lengths are the counts (leave padding "
     "and truncation off, or every count is capped or equalised). Compare them with the model's "
     "attribute, not a number typed in: the same function must work for any model and any limit."),
    (Case("SciFact abstracts and a sentence: some fit, some are longer than the model reads",
          lambda fn: _truncation_case(["Vitamin D deficiency is linked to bone loss."] + [_abstract(d) for d in (
              "45276789", "19979816", "7150238", "15472716", "2721426", "7852582", "14407673")])(fn)),
     Case("texts of max_seq_length - 1 up to max_seq_length + 3 word pieces, [CLS] and [SEP] included",
          _boundary("12994780", 256, (-1, 0, 1, 2, 3))),
     Case("a model whose max_seq_length was set to 128 (the length it was trained on)",
          lambda fn: _truncation_case([_abstract(d) for d in ("23393712", "10326242", "41293601", "1933281")]
                                      + [_exactly("20610557", n) for n in (128, 129)], 128)(fn)),
     Case("an empty text and a one-word text", lambda fn: _truncation_case(["", "Hello"])(fn)),
     Case("12 random SciFact abstracts", _sample(60, 12))),
)

# --- 01.spearman: Spearman correlation = Pearson correlation of the average ranks --------------
def _pearson(a, b) -> float:
    da, db = np.asarray(a, float) - np.mean(a), np.asarray(b, float) - np.mean(b)
    return float((da * db).sum() / np.sqrt((da ** 2).sum() * (db ** 2).sum()))


# ties in the cases are squares of integers: dense ranks are then not a shift of the raw values
_TIES = (("ordinal", "numbered one after another"), ("min", "given the lowest of the ranks they span"),
         ("max", "given the highest of the ranks they span"), ("dense", "ranked densely (1, 2, 2, 3)"))


def _spearman_mistake(value: float, x, y) -> str | None:
    """The usual mistake that gives `value`, in words, or None."""
    near = lambda v: abs(value - v) <= 1e-6
    if near(_pearson(x, y)):
        return ("that is Pearson's correlation of the raw values: Spearman's correlates the RANKS of x and y "
                "(scipy.stats.rankdata)")
    for method, what in _TIES:
        if near(_pearson(rankdata(x, method), rankdata(y, method))):
            return (f"tied values were {what} instead of sharing the average of the ranks they span: use "
                    "rankdata's average method (its default, method='average')")
    if near(_pearson(np.argsort(np.argsort(x)), np.argsort(np.argsort(y)))):
        return ("ranks from argsort(argsort(...)) break ties by position: use scipy.stats.rankdata, whose "
                "average method gives tied values the average of the ranks they span")
    if near(1 - 6 * ((rankdata(x) - rankdata(y)) ** 2).sum() / (len(x) * (len(x) ** 2 - 1))):
        return ("the shortcut 1 - 6 sum d^2 / (n (n^2 - 1)) is exact only without ties: compute Pearson's "
                "formula on the average ranks")
    return None


def _spearman_case(x, y):
    def run(fn):
        out = call(fn, x, y, names=("x", "y"))
        want = float(spearmanr(x, y)[0])
        value = float(np.asarray(out, dtype=np.float64).reshape(-1)[0]) if np.size(out) == 1 else None
        if value is not None and abs(value - want) > 1e-6:
            mistake = _spearman_mistake(value, x, y)
            if mistake:
                raise Fail(mistake)
        expect_number(out, want, "the correlation")
    return run


_x = _rng(30).normal(size=200)
SPEARMAN = Exercise(
    "01.spearman", "Spearman rank correlation", "spearman",
    ("Spearman's correlation is Pearson's correlation computed on ranks instead of raw values: rank x and "
     "rank y with `scipy.stats.rankdata` (its default, the average method, gives tied values the average of "
     "the ranks they span), then correlate the two rank arrays.",
     "Apply Pearson's formula to the two rank arrays: the covariance of the centred ranks divided by the "
     "product of their spreads (`np.corrcoef` gives the same number). Keep rankdata's average method: with "
     "ties, the ordinal, min, max and dense methods give other numbers, and so does the shortcut "
     "1 - 6 sum d^2 / (n (n^2 - 1))."),
    (Case("a monotonic but non-linear relation (y = x ** 3)", _spearman_case(_x, _x ** 3)),
     Case("reversed order", _spearman_case(np.arange(10.0), np.arange(10.0)[::-1] * 2)),
     Case("ties in both inputs", _spearman_case((_rng(31).integers(0, 4, 40) ** 2).astype(float),
                                               (_rng(32).integers(0, 6, 40) ** 2).astype(float))),
     Case("150 noisy pairs", _spearman_case(_x[:150], _x[:150] + _rng(33).normal(size=150))),
     Case("Python lists as input", _spearman_case([1, 2, 3, 4, 5], [5, 6, 8, 9, 8]))),
)


# --- 01.cache: encode through a dict cache keyed by the text's sha256 --------------------------
class _Encoder:
    """A fake model: a fixed vector per text; counts calls and texts."""

    def __init__(self):
        self.calls, self.texts = 0, []

    def __call__(self, texts):
        self.calls += 1
        self.texts += list(texts)
        return np.stack([_vector(t) for t in texts]) if texts else np.zeros((0, 4), np.float32)


def _vector(text: str) -> np.ndarray:
    return np.frombuffer(hashlib.md5(text.encode()).digest()[:4], np.uint8).astype(np.float32)


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _cache_run(fn, texts, cache, encoder):
    out = call(fn, texts, encoder, cache, names=("texts", "encoder", "cache"), mutable=(1, 2))
    expect_array(out, np.stack([_vector(t) for t in texts]), "the returned vectors")


def _first_call(fn, texts):
    enc, cache = _Encoder(), {}
    _cache_run(fn, texts, cache, enc)
    unique = list(dict.fromkeys(texts))
    if enc.calls != 1:
        raise Fail(f"the encoder was called {enc.calls} times for one batch of new texts; call it "
                   "once, with every missing text")
    if sorted(enc.texts) != sorted(unique):
        raise Fail(f"the encoder received {len(enc.texts)} texts; it should get each new "
                   f"distinct text exactly once ({len(unique)} here)")
    if set(cache) != {_key(t) for t in unique}:
        raise Fail("the cache keys are not the sha256 hex digests of the texts (UTF-8): "
                   "use hashlib.sha256(text.encode('utf-8')).hexdigest()")
    return enc, cache


def _second_call(fn, texts=("The cat sat.", "A dog ran.")):
    texts = list(texts)
    _, cache = _first_call(fn, texts)
    enc = _Encoder()
    _cache_run(fn, texts[::-1], cache, enc)
    if enc.calls:
        raise Fail(f"a second call with cached texts still called the encoder ({enc.calls} time(s), "
                   f"{len(enc.texts)} texts); cached texts must not be encoded again")


def _mixed(fn, cached=("alpha", "beta"), texts=("gamma", "alpha", "delta", "beta", "gamma")):
    _, cache = _first_call(fn, list(cached))
    enc = _Encoder()
    _cache_run(fn, list(texts), cache, enc)
    new = sorted(set(texts) - set(cached))
    if sorted(enc.texts) != new or enc.calls != 1:
        raise Fail(f"with {len(set(texts)) - len(new)} of {len(set(texts))} distinct texts cached, the encoder "
                   f"got {enc.texts!r:.80} in {enc.calls} call(s); it should get only the {len(new)} new "
                   "ones, in one call")


CACHE = Exercise(
    "01.cache", "an embedding cache keyed by text hash", "cached_encode",
    ("The key of a text is the hex digest of SHA-256 over its UTF-8 bytes (`hashlib.sha256`, then "
     "`.hexdigest()`). Collect the distinct texts whose key is not in `cache`, encode them with ONE "
     "call to `encoder`, store each new vector under its key, then build the result in the order of "
     "`texts` from the cache.",
     "`dict.fromkeys` removes duplicates from a list while keeping its order -- a good way to list the "
     "missing texts. Call the encoder only when that list is not empty, pair its rows with the missing "
     "texts to fill the cache, and finish with `np.stack` over the cached vectors, one per input text."),
    (Case("an empty cache and three distinct texts", lambda fn: _first_call(fn, ["a", "b", "c"])),
     Case("the same text twice in one call", lambda fn: _first_call(fn, ["x", "y", "x"])),
     Case("a second call with texts already cached", _second_call),
     Case("some texts cached, some new, some repeated", _mixed),
     Case("non-ASCII texts and texts that differ only in case",
          lambda fn: _first_call(fn, ["café", "CAFÉ", "日本語", "cafe"]))),
)



# --- 01.sts: model.encode on STS-B pairs, cosine per pair, Spearman against the human scores -------
from .minilm import model_folder as _model_path  # noqa: E402
from .minilm import vectors as _vectors  # noqa: E402


@functools.lru_cache(maxsize=None)
def _sts_sample(split: str, start: int, n: int):
    from course_utils.data import load_sts

    frame = load_sts(split).iloc[start:start + n]
    return list(frame.sentence1), list(frame.sentence2), [float(x) for x in frame.score]


@functools.lru_cache(maxsize=None)
def _sts_cosines(split: str, start: int, n: int) -> np.ndarray:
    s1, s2, _ = _sts_sample(split, start, n)
    v = _vectors(s1 + s2)
    return (v[:n] * v[n:]).sum(axis=1)


def _sts_case(split, start, n):
    def run(fn):
        s1, s2, gold = _sts_sample(split, start, n)
        out = call(fn, _model_path(), s1, s2, gold, names=("model_path", "sentences1", "sentences2", "gold"))
        cos = _sts_cosines(split, start, n)
        want = float(spearmanr(cos, gold)[0])
        value = float(np.asarray(out, dtype=np.float64).reshape(-1)[0]) if np.size(out) == 1 else None
        if value is not None and abs(value - want) > 1e-3:
            if abs(value + want) <= 1e-3:
                raise Fail("the sign is flipped: you correlated a DISTANCE (small for similar pairs) with "
                           "similarity scores; use the cosine similarity of each pair")
            if abs(value - _pearson(cos, gold)) <= 1e-3:
                raise Fail("that is Pearson's correlation; STS is scored with Spearman's (ranks): "
                           "scipy.stats.spearmanr, or EmbeddingSimilarityEvaluator's spearman_cosine")
        expect_number(out, want, "the Spearman correlation", atol=1e-3)
    return run


STS = Exercise(
    "01.sts", "STS-B Spearman with model.encode (or EmbeddingSimilarityEvaluator)", "sts_spearman",
    ("Load the model from its folder with `SentenceTransformer(model_path)`, encode both sides of the "
     "pairs, take the cosine of each pair (sentences1[i] with sentences2[i]) and correlate these "
     "similarities with the human scores by rank.",
     "With `normalize_embeddings=True` a dot product is the cosine; pair i is row i of one side with "
     "row i of the other (a row-wise product summed over the dimensions, not a full matrix). "
     "`scipy.stats.spearmanr` returns (correlation, p-value). Or let sentence_transformers."
     "sentence_transformer.evaluation.EmbeddingSimilarityEvaluator do it: called on the model, it "
     "returns a dict whose 'spearman_cosine' entry is the number."),
    (Case("20 pairs of the STS-B test set", _sts_case("test", 0, 20)),
     Case("15 pairs of the STS-B dev set", _sts_case("dev", 0, 15)),
     Case("15 pairs with many tied human scores", _sts_case("test", 200, 15)),
     Case("10 pairs of the STS-B train set", _sts_case("train", 500, 10)),
     Case("8 pairs (a small sample)", _sts_case("test", 1000, 8))),
    points=2,
)

# --- held-back cases: the public situations again, with other inputs (graded; `check` never runs them)
_zero_b = np.vstack([np.zeros((1, 5)), _rng(41).normal(size=(3, 5))])
COSINE = held_back(
    COSINE,
    Case("n != m: a (6, 5) and a (2, 5) matrix", _cosine_case(_rng(40).normal(size=(6, 5)), _rng(42).normal(size=(2, 5)))),
    Case("rows of very different lengths", _cosine_case(_rng(43).normal(size=(3, 4)) * np.array([[50.0], [0.02], [1.0]]),
                                                        _rng(44).normal(size=(4, 4)) * 3)),
    Case("a zero row in the second matrix", _cosine_case(_rng(45).normal(size=(2, 5)), _zero_b)),
    Case("Python lists of integers, 1 x 1", _cosine_case([[4, -3]], [[-8, 6]])),
    Case("float32, 384 dimensions, n != m", _cosine_case(_rng(46).normal(size=(5, 384)).astype(np.float32),
                                                         _rng(47).normal(size=(2, 384)).astype(np.float32))))
POOLING = held_back(
    POOLING,
    Case("a batch of 4 texts with padding", _pool_case(*_padded(50, [2, 5, 1, 3], 5, 6))),
    Case("a boolean mask with padding", _pool_case(*_padded(51, [4, 2, 3], 4, 3, dtype=bool))),
    Case("an all-padding text first in the batch", _pool_case(*_padded(52, [0, 2, 4], 4, 3))),
    Case("batch 3, 9 tokens, 384 dimensions, float32", _pool_case(*_padded(53, [9, 3, 6], 9, 384))))
TRUNCATION = held_back(
    TRUNCATION,
    Case("other SciFact abstracts and a sentence: some fit, some are longer than the model reads",
         lambda fn: _truncation_case(["The central bank raised interest rates again."] + [_abstract(d) for d in (
             "22937815", "10423989", "121001457", "7734150", "51865482", "22889972", "39892135")])(fn)),
    Case("texts of max_seq_length - 2 up to max_seq_length + 2 word pieces, [CLS] and [SEP] included",
         _boundary("13123189", 256, (-2, 0, 1, 2))),
    Case("a model whose max_seq_length was set to 128, other texts",
         lambda fn: _truncation_case([_abstract(d) for d in ("39462488", "21790313", "44366096", "10012166")]
                                     + [_exactly("13123189", n) for n in (127, 129, 130)], 128)(fn)),
    Case("20 random SciFact abstracts", _sample(61, 20)))
_y = _rng(55).normal(size=120)
SPEARMAN = held_back(
    SPEARMAN,
    Case("a monotonic relation (y = exp(x))", _spearman_case(_y, np.exp(_y))),
    Case("ties in both inputs, 60 pairs", _spearman_case((_rng(56).integers(0, 3, 60) ** 2).astype(float),
                                                         (_rng(57).integers(0, 5, 60) ** 2).astype(float))),
    Case("100 noisy pairs, negatively related", _spearman_case(_y[:100], -_y[:100] + _rng(58).normal(size=100))),
    Case("Python lists with a tie", _spearman_case([3, 1, 4, 1, 5, 9], [2, 7, 1, 8, 2, 8])))
CACHE = held_back(
    CACHE,
    Case("an empty cache and four distinct texts", lambda fn: _first_call(fn, ["one", "two", "three", "four"])),
    Case("a text three times in one call", lambda fn: _first_call(fn, ["z", "z", "w", "z"])),
    Case("texts differing only by an accent or a space", lambda fn: _first_call(fn, ["resume", "résumé", "resume "])),
    Case("a second call with three texts already cached", lambda fn: _second_call(fn, ("p", "q", "r"))),
    Case("one text cached, three new, one repeated",
         lambda fn: _mixed(fn, ("kiwi",), ("fig", "kiwi", "plum", "fig", "lime"))))
STS = held_back(
    STS,
    Case("12 other pairs of the STS-B test set", _sts_case("test", 600, 12)),
    Case("10 other pairs of the STS-B dev set", _sts_case("dev", 400, 10)))

EXERCISES = (COSINE, POOLING, TRUNCATION, SPEARMAN, STS, CACHE)
