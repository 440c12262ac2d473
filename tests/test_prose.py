"""The prose check (course_utils.tools.prose): its rules on tiny notebooks, and the course's notebooks against
the baseline ratchet (tests/prose_baseline.json: new findings fail, and so do entries that no longer occur)."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_utils.tools import prose
from course_utils.tools.prose import Finding, ProseError, main, unsupported_numbers

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "tests" / "prose_baseline.json"
NOTEBOOKS = sorted(ROOT.glob("notebooks/[0-9][0-9]*_*.ipynb")) + sorted(ROOT.glob("solutions/[0-9][0-9]_*.ipynb"))


def write_notebook(path: Path, markdown: str | list[str], outputs=(), code="") -> Path:
    """A notebook: one code cell (source `code`, outputs given as strings or output dicts), then markdown."""
    outs = [new_output("stream", name="stdout", text=o) if isinstance(o, str) else o for o in outputs]
    cells = [new_code_cell(code, outputs=outs, execution_count=1)]
    cells += [new_markdown_cell(md) for md in ([markdown] if isinstance(markdown, str) else markdown)]
    nbformat.write(new_notebook(cells=cells), path)
    return path


@pytest.fixture
def check(tmp_path):
    """check(markdown, outputs, code) -> the unsupported numbers as written."""

    def run(markdown, outputs=(), code=""):
        path = write_notebook(tmp_path / "nb.ipynb", markdown, outputs, code)
        return [f.number for f in unsupported_numbers(path)]

    return run


def html_table(*cells: str) -> dict:
    """A display_data output like a DataFrame's: an HTML table and a text/plain with one cell only."""
    rows = "".join(f"<tr><td>{c}</td></tr>" for c in cells)
    return new_output("display_data", {"text/html": f"<table>{rows}</table>", "text/plain": cells[0]})


def test_doctests_of_the_module_pass():
    result = doctest.testmod(prose)
    assert result.attempted > 30 and result.failed == 0


# --- matching -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "markdown, outputs, unsupported",
    [
        ("nDCG@10 is 0.6451.", ["ndcg 0.645100"], []),
        ("nDCG@10 is 0.6452.", ["ndcg 0.645100"], ["0.6452"]),
        ("About 0.65 on average.", ["0.6451"], []),  # rounded to the written precision
        ("About 0.66 on average.", ["0.6451"], ["0.66"]),
        ("It is 0.6451 exactly.", ["0.65"], ["0.6451"]),  # more decimals than shown
        ("Recall reaches 64.5 % here.", ["0.6451"], []),  # percent of a fraction
        ("Recall reaches 64.6 % here.", ["0.6451"], ["64.6 %"]),
        ("Recall reaches 64.5% here.", ["64.5"], []),
        ("A share of 0.39 queries.", ["(39%)"], []),  # fraction of a printed percent
        ("It took 1,898 s in total.", ["1898 s"], []),
        ("It took 1,899 s in total.", ["1898 s"], ["1,899"]),
        ("Sorting is 3× faster.", ["speed-up 3.04"], []),
        ("Sorting is 3x faster.", ["speed-up 3.04"], []),
        ("Sorting is 4× faster.", ["speed-up 3.04"], ["4×"]),
        ("The gap is −0.0251.", ["diff -0.0251"], []),
        ("The gap is -0.0251.", ["diff -0.0251"], []),
        ("The gap is 0.0251 in favour of BM25.", ["diff -0.0251"], []),  # magnitude of a signed output
        ("The gap is +0.0251.", ["diff -0.0251"], ["+0.0251"]),
        ("It finds 121 of 300.", ["121 found | 300 queries"], []),
        ("It finds 121 of 300.", ["300 queries"], ["121"]),
        ("It finds 121 of 300.", [], ["121", "300"]),
        ("About 1,100 queries would do.", ["1,081 queries"], []),  # approximate: trailing zeros not significant
        ("Exactly 1,100 queries would do.", ["1,081 queries"], ["1,100"]),
        ("A 10k sample.", ["9,987 documents"], []),
        ("A 20k sample.", ["9,987 documents"], ["20k"]),
    ],
)
def test_numbers_are_matched_in_any_rendering(check, markdown, outputs, unsupported):
    assert check(markdown, outputs) == unsupported


def test_every_kind_of_output_counts(check):
    table = html_table("BM25", "0.6702")
    error = new_output("error", ename="ValueError", evalue="none of the run's 777 query ids", traceback=[])
    plain = new_output("execute_result", {"text/plain": "shape (300, 5183)"}, execution_count=1)
    text = "BM25 scores 0.6702; 777 ids are refused; the matrix is 300 × 5,183; 0.1234 is nowhere."
    assert check(text, [table, error, plain]) == ["0.1234"]


def test_progress_bars_do_not_support_numbers(check):
    text = "rank-bm25: 100%|██████████| 300/300 [00:19<00:00, 15.30query/s]\n"
    bar = new_output("stream", name="stderr", text=text)
    assert check("BM25 runs 15.30 queries per second.", [bar]) == ["15.30"]


def test_numbers_in_code_cells_are_supported(check):
    assert check("We probe 16 lists and shuffle 10,000 times.", code="nprobe = 16\nn = 10_000") == []
    assert check("We probe 16 lists and shuffle 10,000 times.", code="nprobe = 8") == ["16", "10,000"]


@pytest.mark.parametrize(
    "markdown, unsupported",
    [
        ("BEIR reports 0.665 for BM25 (BEIR).", []),
        ("MTEB: 0.8203 (MTEB).", []),
        ("CLIP saw 400 million pairs (Radford et al. 2021).", []),
        ("It scores 0.812 ([source](https://example.org/paper)).", []),
        ("The published figure is 0.665.", []),
        ("It scores 0.812 (MTEB; asserted).", []),  # a ';' inside the parenthesis keeps the citation
        ("It scores 0.812 (the share above).", ["0.812"]),  # a parenthesis that names no source
        ("Ours is 0.61; BEIR's is 0.665 (BEIR).", ["0.61"]),  # the citation covers its clause only
        ("It scores 0.812 on paper.", ["0.812"]),
    ],
)
def test_citations_support_their_clause(check, markdown, unsupported):
    assert check(markdown) == unsupported


@pytest.mark.parametrize(
    "markdown",
    [
        "# 5. Results: 0.777\n\nNothing else.",
        "We compute $P@5 = 0.777$ and $$x = 0.777$$ by hand.",
        "Call `search(k=777)` first.",
        "```python\nrun = {'1': 0.777}\n```",
        "See [the table](http://example.org/777) and ![plot](fig777.png).",
        "<img src='a.png' width=777> and <!-- 777 -->",
    ],
)
def test_numbers_outside_prose_are_ignored(check, markdown):
    assert check(markdown) == []
    assert check("But 0.777 in a sentence is checked.") == ["0.777"]


@pytest.mark.parametrize(
    "markdown",
    [
        "all-MiniLM-L6-v2, e5-large, bm25, PGE2, nDCG@10, recall@100, the top-20, arXiv:2203.05794.",
        "The 2nd and the 11th row; faiss 1.15.1 and v1.5.",
        "See chapter 04, chapters 06 and 08, sections 6.1 and 6.2, step 12, cell 14 and exercise 11.",
        "As in 03 and 06.",
        "Cranfield in the 1960s, Robertson 2009, Burges et al. 2005, in 1994, May 2021, early 2017, (2019).",
        "Two threads, k = 10, rank 3, 0 hits, −1 to +1.",
        "The server answers HTTP 429 and 503; the client retries 408, 409 and 5xx.",
    ],
)
def test_identifiers_references_years_small_integers_and_status_codes_are_not_checked(check, markdown):
    assert check(markdown) == []


def test_what_is_checked_next_to_what_is_not(check):
    assert check("In 2017 we saw 2017 documents, 11 queries and 5% of 12.") == ["2017", "11", "5%", "12"]


def test_a_finding_names_cell_number_and_sentence(tmp_path):
    path = write_notebook(tmp_path / "nb.ipynb", ["Fine.", "First sentence. Then 0.91 appears here.\n\n- a 0.92 item"])
    found = unsupported_numbers(path)
    assert found == [
        Finding(2, "0.91", "Then 0.91 appears here.", found[0].digest),
        Finding(2, "0.92", "- a 0.92 item", found[1].digest),
    ]
    assert str(found[0]) == "cell 2: '0.91' in: Then 0.91 appears here."


def test_the_baseline_key_ignores_changes_in_inline_code(tmp_path):
    old = unsupported_numbers(write_notebook(tmp_path / "a.ipynb", "Use `course_utils.bm25` with 1.5 here."))
    new = unsupported_numbers(write_notebook(tmp_path / "b.ipynb", "Use `course_utils.lexical.bm25` with 1.5 here."))
    other = unsupported_numbers(write_notebook(tmp_path / "c.ipynb", "Use `course_utils.bm25` with 1.5 there."))
    assert old[0].key() == new[0].key() != other[0].key()


# --- errors ------------------------------------------------------------------------------------------------


def test_a_missing_notebook_is_a_clear_error(tmp_path):
    with pytest.raises(ProseError, match="no such notebook file"):
        unsupported_numbers(tmp_path / "missing.ipynb")


def test_an_invalid_notebook_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    with pytest.raises(ProseError, match=r"bad\.ipynb: not a valid notebook"):
        unsupported_numbers(bad)


def test_main_reports_a_missing_file(tmp_path, capsys):
    assert main([str(tmp_path / "missing.ipynb"), "--no-baseline"]) == 2
    assert "no such notebook file" in capsys.readouterr().err


# --- the baseline ratchet ----------------------------------------------------------------------------------


def test_baseline_update_then_new_and_stale_findings(tmp_path, capsys):
    nb, baseline = tmp_path / "ch.ipynb", tmp_path / "baseline.json"
    write_notebook(nb, "Ours is 0.61.")
    assert main([str(nb), "--baseline", str(baseline)]) == 1  # not in the (absent) baseline
    assert "NEW cell 1: '0.61'" in capsys.readouterr().out
    assert main([str(nb), "--baseline", str(baseline), "--update-baseline"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline.json", "ch.ipynb"]  # no temporary file left
    assert json.loads(baseline.read_text())["ch.ipynb"][0]["number"] == "0.61"
    assert main([str(nb), "--baseline", str(baseline)]) == 0
    write_notebook(nb, "Ours is 0.61. And 0.62.")
    assert main([str(nb), "--baseline", str(baseline)]) == 1
    assert "NEW cell 1: '0.62'" in capsys.readouterr().out
    write_notebook(nb, "Ours is now shown.")
    assert main([str(nb), "--baseline", str(baseline)]) == 1
    assert "STALE baseline entry, remove it: '0.61'" in capsys.readouterr().out


def test_update_keeps_other_notebooks_and_drops_clean_ones(tmp_path):
    a, b, baseline = tmp_path / "a.ipynb", tmp_path / "b.ipynb", tmp_path / "baseline.json"
    write_notebook(a, "A says 0.61.")
    write_notebook(b, "B says 0.62.")
    main([str(a), str(b), "--baseline", str(baseline), "--update-baseline"])
    write_notebook(a, "A is clean.")
    main([str(a), "--baseline", str(baseline), "--update-baseline"])
    assert set(json.loads(baseline.read_text())) == {"_comment", "b.ipynb"}


def test_compare_counts_repeated_findings():
    f = Finding(1, "0.7", "Ours is 0.7.")
    entries = prose.baseline_entries([f])
    assert prose.compare_with_baseline([f, f], entries) == ([f], [])
    assert prose.compare_with_baseline([], entries * 2) == ([], entries * 2)


# --- the course -------------------------------------------------------------------------------------------


def course_findings() -> dict[str, list[Finding]]:
    return {path.name: unsupported_numbers(path) for path in NOTEBOOKS}


def test_the_course_has_notebooks_to_check():
    assert len(NOTEBOOKS) >= 10


def test_prose_states_only_what_the_outputs_show():
    """Every number in the chapters' and solutions' markdown is shown, stated in code, or cited, except the
    findings recorded in tests/prose_baseline.json; fixed findings must leave the baseline."""
    baseline = prose.load_baseline(BASELINE)
    found = course_findings()
    problems = []
    for name in sorted(set(found) | set(baseline)):
        new, stale = prose.compare_with_baseline(found.get(name, []), baseline.get(name, []))
        problems += [f"{name}: {f}" for f in new]
        problems += [f"{name}: stale baseline entry, remove it: {e['number']!r} in: {e['sentence']}" for e in stale]
    fix = "show the number in an output, cite its source, or (stale) run: python -m course_utils.tools.prose "
    fix += "--update-baseline notebooks/*.ipynb solutions/*.ipynb"
    assert not problems, "\n".join([*problems, fix])
