"""Show search results the way a user sees them: a ranked list of titles with snippets.

`result_table` turns one row of `Hits` into a DataFrame (rank, score, relevant mark, title,
snippet); `format_results` prints such a table as plain text, which reads the same in Jupyter,
in a terminal and in a saved notebook. Relevance marks come from qrels when they are given
(the `MARK` for a judged relevant doc, blank otherwise: unjudged is not the same as irrelevant).
"""
from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["MARK", "snippet", "result_table", "format_results"]

MARK = "✓"  # shown next to a document that qrels judge relevant


def snippet(text: str, max_chars: int = 160) -> str:
    """The start of `text` on one line, cut at a word boundary to at most `max_chars` (with "…").

    >>> snippet("Vitamin D is made in the skin   when sunlight hits it.", 30)
    'Vitamin D is made in the skin…'
    >>> snippet("Short.", 30)
    'Short.'
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 2:
        raise ValueError(f"max_chars must be an integer >= 2, got {max_chars!r}")
    flat = " ".join(text.split())
    if len(flat) <= max_chars:
        return flat
    cut = flat[: max_chars - 1]
    at_boundary = flat[max_chars - 1] == " "
    head = cut if at_boundary or " " not in cut else cut.rsplit(" ", 1)[0]
    return head.rstrip(" ,;:.") + "…"


def result_table(hits, row: int, doc_ids: Sequence, corpus: Mapping, qrel: Mapping | None = None,
                 k: int | None = None, snippet_chars: int = 160) -> pd.DataFrame:
    """One query's results as a DataFrame: rank, score, rel (MARK or ""), doc_id, title, snippet.

    hits: Hits (or (scores, ids)) of shape (n_queries, k); row: which query; doc_ids: row
    position → doc id (a list, or a mapping for FAISS labels); corpus: {doc_id: {"title",
    "text"}}; qrel: {doc_id: relevance} of this query (None: no marks); k: show the first k
    (default all). Padding (id -1) is dropped.

    >>> h = (np.array([[0.9, 0.4]]), np.array([[1, 0]]))
    >>> corpus = {"a": {"title": "A", "text": "x"}, "b": {"title": "B", "text": "y"}}
    >>> result_table(h, 0, ["a", "b"], corpus, {"b": 1})[["rank", "rel", "doc_id"]].values.tolist()
    [[1, '✓', 'b'], [2, '', 'a']]
    """
    scores, ids = np.asarray(hits[0]), np.asarray(hits[1])
    if ids.ndim != 2 or scores.shape != ids.shape:
        raise ValueError(f"hits must be 2-D (scores, ids) of the same shape, got {scores.shape} "
                         f"and {ids.shape}")
    if not 0 <= row < len(ids):
        raise IndexError(f"row {row} is out of range for hits with {len(ids)} queries")
    qrel = qrel or {}
    rows = []
    for score, label in zip(scores[row][:k], ids[row][:k]):
        if label == -1:
            continue
        doc_id = str(doc_ids[int(label)])
        if doc_id not in corpus:
            raise KeyError(f"doc id {doc_id!r} is not in the corpus; pass the doc_ids the index "
                           "was built from")
        doc = corpus[doc_id]
        rows.append({"rank": len(rows) + 1, "score": float(score),
                     "rel": MARK if qrel.get(doc_id, 0) > 0 else "", "doc_id": doc_id,
                     "title": doc.get("title", ""), "snippet": snippet(doc["text"], snippet_chars)})
    return pd.DataFrame(rows, columns=["rank", "score", "rel", "doc_id", "title", "snippet"])


def format_results(table: pd.DataFrame, query: str | None = None, width: int = 110) -> str:
    """Plain-text ranked list of a `result_table`: one line per result, its snippet below.

    >>> t = pd.DataFrame([{"rank": 1, "score": 0.52, "rel": "✓", "doc_id": "d1",
    ...                    "title": "Aire in skin", "snippet": "We report that Aire..."}])
    >>> print(format_results(t, query="AIRE is expressed in skin tumors."))
    Query: AIRE is expressed in skin tumors.
     1. 0.520 ✓ Aire in skin  [d1]
                 We report that Aire...
    """
    missing = {"rank", "score", "rel", "doc_id", "title", "snippet"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks columns {sorted(missing)}; build it with result_table()")
    lines = [] if query is None else [textwrap.shorten(f"Query: {query}", width)]
    indent = " " * 13
    for r in table.itertuples(index=False):
        mark = r.rel if r.rel else " "
        head = f"{r.rank:2d}. {r.score:.3f} {mark} "
        room = max(20, width - len(head) - len(r.doc_id) - 4)
        title = textwrap.shorten(r.title or "(no title)", room, placeholder="…")
        lines.append(f"{head}{title}  [{r.doc_id}]")
        if r.snippet:
            lines.append(indent + textwrap.shorten(r.snippet, max(20, width - len(indent)),
                                                   placeholder="…"))
    return "\n".join(lines)
