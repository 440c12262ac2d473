"""Chapter 02's library exercise (02.faiss_filter): typical mistakes are named, the solution passes.
(The numpy exercises' mistakes are tested in tests/test_grading.py.)"""
import functools
from pathlib import Path

import nbformat
import numpy as np
import pytest

from course_utils.grading import check

ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def _solution():
    nb = nbformat.read(ROOT / "solutions" / "02_semantic_search_exercises.ipynb", as_version=4)
    namespace = {}
    exec("import numpy as np\n" + "\n".join(c.source for c in nb.cells if c.source.startswith("def ")), namespace)
    return namespace


def _index(docs, metric="ip"):
    import faiss
    docs = np.ascontiguousarray(docs, dtype=np.float32)
    index = faiss.IndexFlatIP(docs.shape[1]) if metric == "ip" else faiss.IndexFlatL2(docs.shape[1])
    index.add(docs)
    return index


def _post_filter(docs, queries, allowed, k):
    """Searches top-k, then drops what is not allowed (rows come back short)."""
    scores, ids = _index(docs).search(np.ascontiguousarray(queries, dtype=np.float32), k)
    keep = np.isin(ids, np.asarray(allowed))
    return np.where(keep, scores, -np.inf), np.where(keep, ids, -1)


def _no_filter(docs, queries, allowed, k):
    return _index(docs).search(np.ascontiguousarray(queries, dtype=np.float32), k)


def _subset_positions(docs, queries, allowed, k):
    """Indexes only the allowed rows and returns positions in that subset."""
    index = _index(np.asarray(docs)[np.asarray(allowed)])
    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return scores, ids


def _l2(docs, queries, allowed, k):
    import faiss
    sel = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
    return _index(docs, "l2").search(np.ascontiguousarray(queries, dtype=np.float32), k,
                                     params=faiss.SearchParameters(sel=sel))


_MISTAKES = [
    ("02.faiss_filter", _post_filter, "post-filtering"),
    ("02.faiss_filter", _no_filter, "not in `allowed_ids`"),
    ("02.faiss_filter", _subset_positions, "positions in the filtered subset"),
    ("02.faiss_filter", _l2, "squared L2 distances"),
]


@pytest.mark.parametrize("ex, fn, words", _MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(_MISTAKES)])
def test_typical_mistakes_fail_with_a_message_that_names_them(ex, fn, words, capsys):
    result = check(ex, fn, time_limit=120)
    assert result.status == "failed" and words in result.message, result.message
    assert words in capsys.readouterr().out.replace("\n    ", " ")


def _numpy_prefilter(docs, queries, allowed, k):
    """Another correct version: numpy over the allowed rows, ids mapped back, padded with -1."""
    allowed = np.asarray(allowed)
    scores = np.asarray(queries, np.float64) @ np.asarray(docs, np.float64)[allowed].T
    order = np.argsort(-scores, axis=1)[:, :k]
    n = order.shape[1]
    ids = np.full((len(queries), k), -1)
    out = np.full((len(queries), k), -np.inf)
    ids[:, :n] = allowed[order]
    out[:, :n] = np.take_along_axis(scores, order, 1)
    return out, ids


def test_other_correct_implementations_pass(capsys):
    assert check("02.faiss_filter", _numpy_prefilter, time_limit=120), capsys.readouterr().out


def test_the_solution_passes(capsys):
    assert check("02.faiss_filter", _solution()["filtered_search"], time_limit=120), capsys.readouterr().out
