"""Chunking: cut documents into passages that each remember where they came from.

Every chunker takes one document's `text` and `doc_id` and returns a list of `Chunk`s, in order,
with provenance: `doc_id`, `index` (0, 1, ... within the document), character offsets `start` /
`end` such that `text[start:end] == chunk.text`, and for hierarchical chunks the `level` and the
`parent` chunk's id. Chunks never start or end with whitespace, and together they cover every
non-whitespace character of the document (tests/test_chunking.py checks both on random texts).

- `fixed_size_chunks`: windows of `size` tokens, consecutive windows sharing exactly `overlap`
  tokens. A token is a span from `tokenize(text)`: words and punctuation (`word_spans`) by
  default, or a model's own tokens (`hf_token_spans(tokenizer)`).
- `sentence_chunks`: groups of `per_chunk` consecutive sentences, sharing `overlap` sentences.
- `paragraph_chunks`: the pieces between separators (default: a blank line).
- `semantic_chunks`: consecutive sentences stay together until the cosine similarity of two
  neighbouring sentences drops below a threshold (absolute, or a percentile of the document's
  own similarities) -- a topic shift starts a new chunk.
- `hierarchical_chunks`: the whole document (level "document", index 0) plus its passages
  (level "passage", parent = the document chunk's id), for documents-first-then-passages retrieval.

Sentences come from `split_sentences` (a simple rule: end mark + space + capital) unless the
caller passes them as spans, e.g. a data set's own segmentation (`join_sentences`).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Chunk", "word_spans", "hf_token_spans", "split_sentences", "join_sentences",
           "fixed_size_chunks", "sentence_chunks", "paragraph_chunks", "semantic_chunks",
           "consecutive_similarity", "hierarchical_chunks", "chunk_corpus"]

Span = tuple[int, int]
_WORD = re.compile(r"\w+|[^\w\s]")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(\s+)(?=[\"'(\[]?[A-Z0-9])")


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: `text == document[start:end]`; id = "<doc_id>#<index>".

    >>> Chunk("d1", 0, 0, 5, "Hello").id
    'd1#0'
    """

    doc_id: str
    index: int
    start: int
    end: int
    text: str
    level: str = "passage"
    parent: str | None = None

    @property
    def id(self) -> str:
        return f"{self.doc_id}#{self.index}"


def _strip(text: str, start: int, end: int) -> Span:
    """Shrink [start, end) so it neither starts nor ends with whitespace (may become empty)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _make(text: str, doc_id, spans: Sequence[Span], first_index: int = 0, **extra) -> list[Chunk]:
    chunks = []
    for start, end in spans:
        start, end = _strip(text, start, end)
        if end > start:
            chunks.append(Chunk(str(doc_id), first_index + len(chunks), start, end,
                                text[start:end], **extra))
    return chunks


def _check_text(text) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return text


def word_spans(text: str) -> list[Span]:
    """Spans of words and single punctuation marks: the default 'tokens'.

    >>> word_spans("Hi, you.")
    [(0, 2), (2, 3), (4, 7), (7, 8)]
    """
    return [m.span() for m in _WORD.finditer(_check_text(text))]


def hf_token_spans(tokenizer) -> Callable[[str], list[Span]]:
    """A `tokenize` function giving a Hugging Face fast tokenizer's tokens as character spans.

    Texts longer than the model's window are fine here (nothing is encoded). A window of word
    pieces may start inside a word ("##ing"); re-tokenising such a chunk can give a piece or two
    more than the window size.
    """
    def spans(text: str) -> list[Span]:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [(a, b) for a, b in enc["offset_mapping"] if b > a]
    return spans


def split_sentences(text: str) -> list[Span]:
    """Sentence spans: a break after . ! ? (and closing quotes/brackets) before a capital or digit.

    >>> t = "Cells grow. Mice (n = 3) died! Why?"
    >>> [t[a:b] for a, b in split_sentences(t)]
    ['Cells grow.', 'Mice (n = 3) died!', 'Why?']
    """
    text, spans, start = _check_text(text), [], 0
    for m in _SENTENCE_END.finditer(text):
        spans.append(_strip(text, start, m.start(1)))
        start = m.end(1)
    spans.append(_strip(text, start, len(text)))
    return [(a, b) for a, b in spans if b > a]


def join_sentences(sentences: Sequence[str], sep: str = " ") -> tuple[str, list[Span]]:
    """(text, spans): pre-split sentences joined with `sep`, and each one's stripped span in it.

    spans[i] belongs to sentences[i] (a blank sentence gets an empty span), so a data set's
    sentence numbers (e.g. SciFact's evidence) index `spans` directly.
    >>> join_sentences(["A b.", " C d.  "])
    ('A b.  C d.  ', [(0, 4), (6, 10)])
    """
    text, spans, pos = sep.join(sentences), [], 0
    for sentence in sentences:
        spans.append(_strip(text, pos, pos + len(sentence)))
        pos += len(sentence) + len(sep)
    return text, spans


def _windows(n: int, size: int, overlap: int) -> list[Span]:
    """[start, end) windows over n items: step size - overlap, the last one reaching n."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a whole number >= 1, got {size!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < size:
        raise ValueError(f"overlap must be a whole number with 0 <= overlap < size ({size}), got {overlap!r}")
    starts = range(0, max(n - overlap, 1), size - overlap)
    return [(s, min(s + size, n)) for s in starts if s < n]


def fixed_size_chunks(text: str, doc_id, size: int = 128, overlap: int = 32,
                      tokenize: Callable[[str], list[Span]] = word_spans) -> list[Chunk]:
    """Windows of `size` tokens; consecutive windows share exactly `overlap` tokens.

    >>> [c.text for c in fixed_size_chunks("a b c d e", "d1", size=3, overlap=1)]
    ['a b c', 'c d e']
    """
    tokens = tokenize(_check_text(text))
    return _make(text, doc_id, [(tokens[a][0], tokens[b - 1][1])
                                for a, b in _windows(len(tokens), size, overlap)])


def sentence_chunks(text: str, doc_id, per_chunk: int = 1, overlap: int = 0,
                    sentences: Sequence[Span] | None = None) -> list[Chunk]:
    """Groups of `per_chunk` consecutive sentences, consecutive groups sharing `overlap` sentences.

    >>> [c.text for c in sentence_chunks("A b. C d. E f.", "d1", per_chunk=2, overlap=1)]
    ['A b. C d.', 'C d. E f.']
    """
    spans = split_sentences(text) if sentences is None else list(sentences)
    return _make(text, doc_id, [(spans[a][0], spans[b - 1][1])
                                for a, b in _windows(len(spans), per_chunk, overlap)])


def paragraph_chunks(text: str, doc_id, separator: str = r"\n\s*\n") -> list[Chunk]:
    r"""The pieces of `text` between matches of the regular expression `separator`.

    >>> [c.text for c in paragraph_chunks("One.\n\nTwo.\nStill two.", "d1")]
    ['One.', 'Two.\nStill two.']
    """
    _check_text(text)
    cuts = [m.span() for m in re.finditer(separator, text)]
    bounds = [0] + [x for span in cuts for x in span] + [len(text)]
    return _make(text, doc_id, list(zip(bounds[::2], bounds[1::2])))


def consecutive_similarity(vectors) -> np.ndarray:
    """Cosine of each L2-normalised row with the next one: shape (n - 1,).

    >>> consecutive_similarity(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])).tolist()
    [1.0, 0.0]
    """
    v = np.asarray(vectors, np.float32)
    return np.sum(v[:-1] * v[1:], axis=1)


def semantic_chunks(text: str, doc_id, vectors=None, embed: Callable | None = None,
                    sentences: Sequence[Span] | None = None, threshold: float | None = None,
                    percentile: float = 25.0, max_sentences: int | None = None) -> list[Chunk]:
    """Sentences grouped until neighbouring sentences' cosine similarity drops.

    A chunk ends after sentence i when cos(sentence i, sentence i+1) < `threshold`, or, if no
    threshold is given, below the `percentile`-th percentile of this document's similarities;
    also when it holds `max_sentences`. vectors: the sentences' L2-normalised vectors (n, d),
    or `embed` (texts -> vectors) to compute them.
    >>> v = np.array([[1.0, 0.0], [0.9, 0.436], [0.0, 1.0]])
    >>> [c.text for c in semantic_chunks("A a. B b. C c.", "d", vectors=v, threshold=0.5)]
    ['A a. B b.', 'C c.']
    """
    spans = split_sentences(text) if sentences is None else list(sentences)
    if vectors is None:
        if embed is None:
            raise ValueError("pass the sentences' vectors, or `embed` to compute them")
        vectors = embed([text[a:b] for a, b in spans]) if spans else np.zeros((0, 1))
    if len(vectors) != len(spans):
        raise ValueError(f"{len(vectors)} vectors for {len(spans)} sentences")
    sims = consecutive_similarity(vectors)
    cut = threshold if threshold is not None else (np.percentile(sims, percentile) if len(sims) else 0)
    groups, first = [], 0
    for i in range(len(spans)):
        full = max_sentences is not None and i + 1 - first >= max_sentences
        if i == len(spans) - 1 or sims[i] < cut or full:
            groups.append((spans[first][0], spans[i][1]))
            first = i + 1
    return _make(text, doc_id, groups)


def hierarchical_chunks(text: str, doc_id, passages: Callable = sentence_chunks,
                        **passage_kwargs) -> list[Chunk]:
    """The document as one chunk (level "document", index 0) and its passages (level
    "passage", index 1, 2, ..., parent = the document chunk's id).

    >>> [(c.level, c.parent) for c in hierarchical_chunks("A b. C d.", "d1")]
    [('document', None), ('passage', 'd1#0'), ('passage', 'd1#0')]
    """
    top = _make(text, doc_id, [(0, len(_check_text(text)))], level="document")
    if not top:
        return []
    spans = [(c.start, c.end) for c in passages(text, doc_id, **passage_kwargs)]
    return top + _make(text, doc_id, spans, first_index=1, level="passage", parent=top[0].id)


def chunk_corpus(texts: Mapping[str, str], chunker: Callable, per_doc: Mapping | None = None,
                 **kwargs) -> list[Chunk]:
    """Chunks of every document: `chunker(text, doc_id, **per_doc[doc_id], **kwargs)`.

    texts: {doc_id: text}; per_doc: optional {doc_id: {argument: value}}, e.g. each document's
    sentence spans ({"sentences": [...]}) or sentence vectors.
    >>> len(chunk_corpus({"a": "X y. Z w.", "b": "Q."}, sentence_chunks))
    3
    """
    if not callable(chunker):
        raise TypeError(f"chunker must be a function like sentence_chunks, got {type(chunker).__name__}")
    out = []
    for doc_id, text in texts.items():
        out += chunker(text, doc_id, **(per_doc or {}).get(doc_id, {}), **kwargs)
    return out
