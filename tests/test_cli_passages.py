"""Passages for the command line: chunking with provenance, Markdown headings, reading a folder
(text, HTML, PDF, bad files), highlighting, grouping, query files. No model needed."""
from __future__ import annotations

import errno
import random

import numpy as np
import pytest

from course_utils.rag.chunking import word_spans
from course_utils.tools import extract
from course_utils.tools.cli_io import read_documents, read_queries
from course_utils.tools.cli_search import group_by_document, highlight_spans
from course_utils.tools.passages import (
    CHUNKERS,
    ChunkConfig,
    chunk_document,
    heading_paths,
    markdown_sections,
    truncated_tokens,
)

MD = """Intro line before any heading.

# Guide

Welcome. This guide explains things.

## Install

Run make setup. It takes two minutes.

```
# not a heading, inside code
```

## Use

### Search

Type a query. Results show passages.
"""


def _text(n_paragraphs=6, seed=0):
    rng = random.Random(seed)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
    paras = []
    for _ in range(n_paragraphs):
        sents = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 25))).capitalize() + "."
                 for _ in range(rng.randint(1, 6))]
        paras.append(" ".join(sents))
    return "\n\n".join(paras)


def test_markdown_sections_follow_headings_and_skip_fenced_code():
    sections = markdown_sections(MD)
    assert [path for _, _, path in sections] == [(), ("Guide",), ("Guide", "Install"),
                                                 ("Guide", "Use"), ("Guide", "Use", "Search")]
    start = MD.index("Type a query")
    assert heading_paths(MD, [(start, start + 5)]) == ["Guide > Use > Search"]
    assert heading_paths(MD, [(0, 5)]) == [""]


@pytest.mark.parametrize("chunker", CHUNKERS)
def test_every_chunker_keeps_offsets_and_fits_the_window(chunker):
    text = _text(8)
    config = ChunkConfig(chunker, size=20, overlap=5 if chunker == "fixed" else 0).resolved(window=32)
    embed = (lambda texts: np.random.default_rng(len(texts)).normal(size=(len(texts), 4)))
    chunks = chunk_document(text, "doc.txt", config, embed=embed)
    assert [c.index for c in chunks] == list(range(len(chunks))) and chunks
    for c in chunks:
        assert text[c.start:c.end] == c.text and c.id == f"doc.txt#{c.index}"
        if chunker != "none":
            assert len(word_spans(c.text)) <= 20, (chunker, c.text)
    if chunker != "fixed":  # no overlap: every non-space character in exactly one passage
        covered = np.zeros(len(text), int)
        for c in chunks:
            covered[c.start:c.end] += 1
        assert all(covered[i] == 1 for i, ch in enumerate(text) if not ch.isspace())


def test_markdown_passages_stay_inside_their_section():
    config = ChunkConfig("sentences", size=50).resolved(window=64)
    chunks = chunk_document(MD, "guide.md", config)
    paths = heading_paths(MD, [(c.start, c.end) for c in chunks])
    assert ("Type a query. Results show passages.", "Guide > Use > Search") in \
        list(zip([c.text for c in chunks], paths))
    assert not any(c.text.startswith("#") for c in chunks)  # heading lines are not passages
    assert [c.text for c in chunk_document(MD, "guide.txt", config)][0].startswith("Intro")


def test_chunk_config_defaults_and_clear_errors():
    assert ChunkConfig("fixed").resolved(256) == ChunkConfig("fixed", 192, 24)
    with pytest.raises(ValueError, match="more than the model reads"):
        ChunkConfig("sentences", size=400).resolved(256)
    with pytest.raises(ValueError, match="unknown chunker"):
        ChunkConfig("words").resolved(256)
    with pytest.raises(ValueError, match="overlap"):
        ChunkConfig("fixed", size=10, overlap=10).resolved(256)


def test_truncated_tokens_counts_what_the_window_drops():
    class Words:  # no tokenizer: words and punctuation count
        pass
    assert truncated_tokens(["a b c d e", "a b"], Words(), window=3) == [2, 0]


def _pdf(text: str) -> bytes:
    """A one-page PDF with `text` in its text layer (hand-made, valid xref)."""
    stream = f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET"
    objs = ["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 144] /Contents 4 0 R "
            "/Resources << /Font << /F1 5 0 R >> >> >>",
            f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{obj}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    return out + f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()


def test_folder_reading_skips_bad_files_with_reasons(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("# A\n\nalpha text")
    (tmp_path / "page.html").write_text("<html><head><title>Page</title><style>x{}</style></head>"
                                        "<body><h1>Hello</h1><p>World &amp; more</p></body></html>")
    (tmp_path / "paper.pdf").write_bytes(_pdf("Vectors in a PDF"))
    (tmp_path / "blob.txt").write_bytes(b"\x89PNG\x00\x00binary")
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "empty.md").write_text("  \n")
    (tmp_path / "locked.txt").write_text("secret")
    (tmp_path / "sub" / "photo.png").write_bytes(b"\x89PNG")
    (tmp_path / ".hidden.md").write_text("not read")
    real = extract.Path.read_bytes

    def read_bytes(self):  # root can read any file: simulate the permission error
        if self.name == "locked.txt":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)
    monkeypatch.setattr(extract.Path, "read_bytes", read_bytes)
    messages = []
    docs = read_documents(tmp_path, report=messages.append)
    by_id = {d["doc_id"]: d for d in docs}
    assert sorted(by_id) == ["a.md", "page.html", "paper.pdf"]
    assert by_id["page.html"]["title"] == "Page" and "Hello\n\nWorld & more" in by_id["page.html"]["text"]
    assert "Vectors in a PDF" in by_id["paper.pdf"]["text"]
    text = "\n".join(messages)
    for name, why in [("blob.txt", "binary"), ("latin.txt", "not UTF-8"), ("empty.md", "empty"),
                      ("locked.txt", "permission denied")]:
        assert f"skipped {name}: " in text and why in text, text
    assert "ignored 1 files of other types (1 .png)" in text


def test_empty_or_useless_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="holds no .*files: nothing to embed"):
        read_documents(tmp_path, report=lambda m: None)
    (tmp_path / "x.txt").write_bytes(b"\x00\x01")
    with pytest.raises(ValueError, match="no usable files"):
        read_documents(tmp_path, report=lambda m: None)


@pytest.mark.parametrize("name,content,words", [
    ("q.tsv", "q1 no tab here\n", "line 1: expected"),
    ("q.json", '["a list"]', "a JSON object"),
    ("q.json", "{not json", "not valid JSON"),
    ("q.tsv", "\n\n", "holds no queries"),
    ("q.tsv", b"\xff\xfe\x00binary", "not UTF-8"),
    ("q.jsonl", '{"_id": "1"}\n', "no text in field"),
])
def test_query_files_in_the_wrong_format_are_clear_errors(tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match=words):
        read_queries(path)


def test_query_files_in_each_format():
    import json
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp())
    (folder / "q.tsv").write_text("a\tfirst query\nb\tsecond\n")
    (folder / "q.json").write_text(json.dumps({"a": "first query"}))
    (folder / "q.jsonl").write_text(json.dumps({"_id": "a", "text": "first query"}) + "\n")
    assert read_queries(folder / "q.tsv") == {"a": "first query", "b": "second"}
    assert read_queries(folder / "q.json") == read_queries(folder / "q.jsonl") == {"a": "first query"}


def test_highlights_use_stems_and_grouping_sums_or_maxes():
    text = "Embedding generation is faster with batching; the batches are sorted."
    spans = highlight_spans(text, "speed up embeddings with batches")
    assert [text[a:b] for a, b in spans] == ["Embedding", "batching", "batches"]
    run = {"a#0": 0.5, "a#1": 0.4, "b#0": 0.6}
    doc_of = {"a#0": "a", "a#1": "a", "b#0": "b"}
    assert group_by_document(run, doc_of, "max")[0] == {"a": 0.5, "b": 0.6}
    assert group_by_document(run, doc_of, "sum")[0] == pytest.approx({"a": 0.9, "b": 0.6})
