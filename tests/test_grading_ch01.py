"""Chapter 01's exercise checks: typical mistakes are named, the solutions pass (01.truncation and
01.sts load the model)."""
import functools
from pathlib import Path

import nbformat
import numpy as np
import pytest
from scipy.stats import rankdata

from course_utils.grading import cases, check

ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def _solution():
    """The functions defined in solutions/01_embeddings_exercises.ipynb (cells starting with `def `)."""
    nb = nbformat.read(ROOT / "solutions" / "01_embeddings_exercises.ipynb", as_version=4)
    namespace = {}
    exec("import hashlib\nimport numpy as np\n" + "\n".join(c.source for c in nb.cells if c.source.startswith("def ")), namespace)
    return namespace


def _pearson(a, b):
    a, b = np.asarray(a, float) - np.mean(a), np.asarray(b, float) - np.mean(b)
    return float((a * b).sum() / np.sqrt((a ** 2).sum() * (b ** 2).sum()))


def _pieces(model, texts, **kwargs):
    return [len(ids) for ids in model.tokenizer(list(texts), verbose=False, **kwargs)["input_ids"]]


def _truncated(mistake):
    """A learner's `truncated` with one typical mistake."""
    def fn(texts, model):
        limit = {"hardcoded 256": 256, "backbone 512": 512}.get(mistake, model.max_seq_length)
        if mistake == "words":
            return [len(t.split()) > limit for t in texts]
        if mistake == "characters":
            return [len(t) > limit for t in texts]
        if mistake == "padding":
            return [len(ids) > limit for ids in model.tokenizer(list(texts), padding=True, verbose=False)["input_ids"]]
        kwargs = {"no special tokens": {"add_special_tokens": False}, "truncation": {"truncation": True}}
        counts = _pieces(model, texts, **kwargs.get(mistake, {}))
        if mistake == ">=":
            return [n >= limit for n in counts]
        if mistake == "counts":
            return counts
        return [n > limit for n in counts]
    return fn


def _sts(measure):
    def fn(model_path, sentences1, sentences2, gold):
        from sentence_transformers import SentenceTransformer
        model = SentenceTransformer(model_path, device="cpu")
        a = model.encode(sentences1, show_progress_bar=False)
        b = model.encode(sentences2, show_progress_bar=False)
        if measure == "pearson":
            return _pearson((a * b).sum(1), gold)
        from scipy.stats import spearmanr
        return float(spearmanr(np.linalg.norm(a - b, axis=1), gold)[0])
    return fn


_TRUNCATION_MISTAKES = [   # (mistake, words its message must contain)
    ("no special tokens", "off by 2 at the boundary"),
    (">=", "(>, not >=)"),
    ("words", "you counted words"),
    ("characters", "you counted characters"),
    ("backbone 512", "512 is the limit of the BERT backbone"),
    ("hardcoded 256", "ignores model.max_seq_length"),
    ("truncation", "no text is reported as cut"),
    ("padding", "every text is reported as cut"),
    ("counts", "not a count"),
]
_MISTAKES = [
    *(pytest.param("01.truncation", _truncated(m), words, marks=pytest.mark.model) for m, words in _TRUNCATION_MISTAKES),
    ("01.spearman", _pearson, "Pearson's correlation of the raw values"),
    ("01.spearman", lambda x, y: _pearson(rankdata(x, "ordinal"), rankdata(y, "ordinal")), "rankdata's average method"),
    ("01.spearman", lambda x, y: _pearson(rankdata(x, "min"), rankdata(y, "min")), "given the lowest of the ranks"),
    ("01.spearman", lambda x, y: _pearson(rankdata(x, "dense"), rankdata(y, "dense")), "ranked densely"),
    ("01.spearman", lambda x, y: _pearson(np.argsort(np.argsort(x)), np.argsort(np.argsort(y))), "break ties by position"),
    ("01.spearman", lambda x, y: 1 - 6 * ((rankdata(x) - rankdata(y)) ** 2).sum() / (len(x) * (len(x) ** 2 - 1)),
     "only without ties"),
    pytest.param("01.sts", _sts("pearson"), "Pearson's correlation", marks=pytest.mark.model),
    pytest.param("01.sts", _sts("distance"), "sign is flipped", marks=pytest.mark.model),
]


@pytest.mark.parametrize("ex, fn, words", _MISTAKES, ids=[f"mistake-{i}" for i in range(len(_MISTAKES))])
def test_typical_mistakes_fail_with_a_message_that_names_them(ex, fn, words, capsys):
    result = check(ex, fn, time_limit=180)
    assert result.status == "failed" and words in result.message, result.message
    assert words in capsys.readouterr().out.replace("\n    ", " ")


def _sts_evaluator(model_path, sentences1, sentences2, gold):
    """Another correct version: sentence-transformers' EmbeddingSimilarityEvaluator."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
    evaluator = EmbeddingSimilarityEvaluator(sentences1, sentences2, gold, show_progress_bar=False)
    return evaluator(SentenceTransformer(model_path, device="cpu"))["spearman_cosine"]


@pytest.mark.model
def test_the_evaluator_passes_the_sts_exercise(capsys):
    assert check("01.sts", _sts_evaluator, time_limit=180), capsys.readouterr().out


@pytest.mark.model
def test_the_chapters_way_passes_the_truncation_exercise(capsys):
    """Chapter 01 counts without the special tokens and compares with max_seq_length - 2: also right."""
    def chapter(texts, model):
        lengths = np.array(_pieces(model, texts, add_special_tokens=False))
        return lengths > model.max_seq_length - 2
    assert check("01.truncation", chapter, time_limit=180), capsys.readouterr().out


@pytest.mark.model
def test_truncation_cases_are_what_they_say_and_what_the_model_does():
    """The boundary texts have exactly the word pieces their case names, and the reference is the
    model's own cutting; a function that sets model.max_seq_length is caught and the model restored."""
    from course_utils.grading import ch01
    from course_utils.grading.minilm import model

    texts = [ch01._exactly("12994780", n) for n in (127, 128, 129, 255, 256, 257, 258)]
    assert ch01._pieces(texts).tolist() == [127, 128, 129, 255, 256, 257, 258]
    assert ch01._cut_by_model(texts, 256).tolist() == [False] * 5 + [True] * 2
    def setter(texts, m):
        m.max_seq_length = 512
        return [False] * len(texts)
    result = check("01.truncation", setter, time_limit=180)
    assert not result and "changed model.max_seq_length" in result.message
    assert model().max_seq_length == 256 and model().tokenizer.model_max_length == 256


@pytest.mark.parametrize("ex", [pytest.param("01.truncation", marks=pytest.mark.model), "01.spearman",
                                pytest.param("01.sts", marks=pytest.mark.model)])
def test_the_solution_passes(ex, capsys):
    assert check(ex, _solution()[cases.get(ex).function], time_limit=180), capsys.readouterr().out
