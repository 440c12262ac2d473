"""Chapter 01's exercise checks: typical mistakes are named, the solutions pass (01.sts loads the model)."""
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


_MISTAKES = [
    ("01.ranks", lambda v: rankdata(v) - 1, "1 too small"),
    ("01.ranks", lambda v: rankdata(v, "ordinal").astype(float), "sharing the AVERAGE"),
    ("01.ranks", lambda v: rankdata(v, "min").astype(float), "lowest rank"),
    ("01.spearman", _pearson, "Pearson's correlation of the raw values"),
    ("01.spearman", lambda x, y: _pearson(rankdata(x, "ordinal"), rankdata(y, "ordinal")), "do not average ties"),
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


@pytest.mark.parametrize("ex", ["01.ranks", "01.spearman", pytest.param("01.sts", marks=pytest.mark.model)])
def test_the_solution_passes(ex, capsys):
    assert check(ex, _solution()[cases.get(ex).function], time_limit=180), capsys.readouterr().out
