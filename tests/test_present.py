"""Unit tests of course_utils.display.tables on a tiny hand-made corpus."""
import numpy as np
import pandas as pd
import pytest

from course_utils.display.tables import MARK, format_results, result_table, snippet
from course_utils.search import Hits

CORPUS = {"d0": {"title": "Vitamin D and bone",
                 "text": "Low vitamin D levels are linked to bone loss."},
          "d1": {"title": "Guitar playing", "text": "A man is playing a guitar on stage tonight."},
          "d2": {"title": "", "text": "Untitled abstract."}}
DOC_IDS = ["d0", "d1", "d2"]
HITS = Hits(np.array([[0.9, 0.5, -np.inf], [0.7, 0.2, 0.1]], np.float32),
            np.array([[1, 0, -1], [2, 0, 1]]))


def test_snippet_cuts_at_word_boundary_and_flattens_whitespace():
    assert snippet("one  two\nthree four", 100) == "one two three four"
    assert snippet("alpha beta gamma delta", 12) == "alpha beta…"
    assert len(snippet("x" * 50, 10)) == 10  # one long word is cut inside the word
    with pytest.raises(ValueError, match="max_chars"):
        snippet("abc", 1)
    with pytest.raises(TypeError):
        snippet(None)


def test_result_table_ranks_marks_and_drops_padding():
    table = result_table(HITS, 0, DOC_IDS, CORPUS, qrel={"d0": 1, "d1": 0})
    assert table["doc_id"].tolist() == ["d1", "d0"]  # padding dropped
    assert table["rank"].tolist() == [1, 2]
    assert table["rel"].tolist() == ["", MARK]  # relevance 0 is not marked
    assert table["score"].tolist() == pytest.approx([0.9, 0.5])
    assert table.loc[1, "snippet"].startswith("Low vitamin D")


def test_result_table_k_and_no_qrel_and_mapping_ids():
    table = result_table(HITS, 1, {0: "d0", 1: "d1", 2: "d2"}, CORPUS, k=2)
    assert table["doc_id"].tolist() == ["d2", "d0"] and set(table["rel"]) == {""}


def test_result_table_errors():
    with pytest.raises(IndexError, match="out of range"):
        result_table(HITS, 5, DOC_IDS, CORPUS)
    with pytest.raises(KeyError, match="not in the corpus"):
        result_table(HITS, 0, ["x", "y", "z"], CORPUS)
    with pytest.raises(ValueError, match="2-D"):
        result_table((np.zeros(3), np.zeros(3)), 0, DOC_IDS, CORPUS)


def test_format_results_layout():
    table = result_table(HITS, 1, DOC_IDS, CORPUS, qrel={"d2": 1})
    text = format_results(table, query="q?", width=60)
    lines = text.splitlines()
    assert lines[0] == "Query: q?"
    assert lines[1].startswith(" 1. 0.700 ✓ (no title)") and lines[1].endswith("[d2]")
    assert lines[3].startswith(" 2. 0.200   Vitamin D and bone")
    assert all(len(line) <= 60 for line in lines)
    with pytest.raises(ValueError, match="result_table"):
        format_results(pd.DataFrame({"rank": [1]}))


def test_docstring_examples():
    import doctest

    from course_utils import present

    assert doctest.testmod(present).failed == 0
