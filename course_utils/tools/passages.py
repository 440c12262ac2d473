"""Documents -> passages with provenance, for `course-utils embed` (the chunkers of `course_utils.rag`).

An embedding model reads a window of tokens (all-MiniLM-L6-v2: 256) and silently drops the rest,
so a long document is cut into passages that fit, each keeping where it came from:
`Chunk(doc_id, index, start, end, text)` with `document[start:end] == text`, plus, for Markdown,
the path of headings above it ("Install > From source"). A Markdown file is first split at its
headings (outside fenced code); the chunker then cuts each section:

- "sentences" (default): consecutive sentences (within paragraphs) packed up to `size` tokens,
  neighbours sharing `overlap` sentences;
- "fixed": windows of `size` model tokens sharing `overlap` tokens (`rag.fixed_size_chunks`);
- "paragraph": one passage per paragraph (`rag.paragraph_chunks`);
- "semantic": sentences grouped until the topic shifts (`rag.semantic_chunks`);
- "none": the whole document as one passage (then `truncated_tokens` counts what the model drops).

A passage longer than `size` tokens is cut again into fixed windows. Tokens are the model's own
(its tokenizer) when it has one, else words and punctuation.

>>> config = ChunkConfig("paragraph").resolved(window=16)
>>> [c.text for c in chunk_document("# A\\n\\nOne.\\n\\nTwo.", "x.md", config)]
['One.', 'Two.']
>>> heading_paths("# A\\ntext\\n## B\\nmore", [(4, 8), (14, 18)])
['A', 'A > B']
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

from course_utils.rag.chunking import (
    Chunk,
    fixed_size_chunks,
    hf_token_spans,
    paragraph_chunks,
    semantic_chunks,
    split_sentences,
    word_spans,
)

__all__ = ["CHUNKERS", "MARKDOWN_SUFFIXES", "ChunkConfig", "is_markdown", "model_window",
           "token_spans", "markdown_sections", "heading_paths", "chunk_document", "passage_input", "truncated_tokens"]

CHUNKERS = ("sentences", "fixed", "paragraph", "semantic", "none")
MARKDOWN_SUFFIXES = (".md", ".markdown")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
_FENCE = re.compile(r"^[ \t]*(```|~~~)", re.M)
Span = tuple[int, int]


@dataclass(frozen=True)
class ChunkConfig:
    """How documents are cut: chunker name, max passage `size` in tokens, `overlap` (tokens for
    "fixed", sentences for "sentences"). None = the default for the model's window.

    >>> ChunkConfig().resolved(window=256)
    ChunkConfig(chunker='sentences', size=192, overlap=0)
    """

    chunker: str = "sentences"
    size: int | None = None
    overlap: int | None = None

    def resolved(self, window: int) -> "ChunkConfig":
        """Defaults filled in for a model reading `window` tokens; checks the values."""
        if self.chunker not in CHUNKERS:
            raise ValueError(f"unknown chunker {self.chunker!r}; choose one of {', '.join(CHUNKERS)}")
        size = self.size if self.size is not None else max(window * 3 // 4, 1)
        overlap = self.overlap if self.overlap is not None else (size // 8 if self.chunker == "fixed" else 0)
        if size < 1 or overlap < 0 or (self.chunker == "fixed" and overlap >= size):
            raise ValueError(f"need --size >= 1 and 0 <= --overlap (< --size for fixed); got "
                             f"size={size}, overlap={overlap}")
        if size > window:
            raise ValueError(f"--size {size} is more than the model reads ({window} tokens): "
                             f"passages would be truncated; use --size {window * 3 // 4} or less")
        return replace(self, size=size, overlap=overlap)

    def as_dict(self) -> dict:
        return asdict(self)


def is_markdown(doc_id: str) -> bool:
    """Is this document Markdown (its id, a file path, ends in .md / .markdown)?

    >>> is_markdown("notes/README.md"), is_markdown("d1")
    (True, False)
    """
    return str(doc_id).lower().endswith(MARKDOWN_SUFFIXES)


def model_window(model) -> int:
    """Tokens the model reads (`max_seq_length`, 256 for all-MiniLM-L6-v2; 256 if unknown)."""
    return int(getattr(model, "max_seq_length", None) or 256)


def token_spans(model) -> Callable[[str], list[Span]]:
    """text -> token character spans: the model's tokenizer if it has one, else `word_spans`."""
    tokenizer = getattr(model, "tokenizer", None)
    return hf_token_spans(tokenizer) if tokenizer is not None else word_spans


def markdown_sections(text: str) -> list[tuple[int, int, tuple[str, ...]]]:
    """(start, end, heading path) of each section of a Markdown text: the part before the first
    heading, then the body under each heading (the heading line itself excluded).

    >>> markdown_sections("intro\\n# A\\nbody\\n## B\\nx")
    [(0, 6, ()), (10, 15, ('A',)), (20, 21, ('A', 'B'))]
    """
    fences = [m.start() for m in _FENCE.finditer(text)]
    fenced = list(zip(fences[::2], fences[1::2] + [len(text)] * (len(fences) % 2)))
    heads = [m for m in _HEADING.finditer(text) if not any(a < m.start() < b for a, b in fenced)]
    sections, stack, start = [], [], 0
    for m in heads:
        sections.append((start, m.start(), tuple(t for _, t in stack)))
        level = len(m.group(1))
        stack = [(lvl, t) for lvl, t in stack if lvl < level] + [(level, m.group(2))]
        start = min(m.end() + 1, len(text))
    sections.append((start, len(text), tuple(t for _, t in stack)))
    return sections


def heading_paths(text: str, spans: Sequence[Span]) -> list[str]:
    """The heading path ("A > B") of the section holding each span's start ('' before any heading)."""
    sections = markdown_sections(text)
    out = []
    for start, _ in spans:
        path = next((p for a, b, p in reversed(sections) if a <= start), ())
        out.append(" > ".join(path))
    return out


def _count(spans_of, text: str) -> int:
    return len(spans_of(text))


def _pack_sentences(text: str, size: int, overlap: int, spans_of) -> list[Span]:
    """Sentences (split inside paragraphs) packed greedily up to `size` tokens."""
    units = [(p.start + a, p.start + b) for p in paragraph_chunks(text, "_")
             for a, b in split_sentences(p.text)]
    counts = [_count(spans_of, text[a:b]) for a, b in units]
    groups, first = [], 0
    while first < len(units):
        last, used = first, counts[first]
        while last + 1 < len(units) and used + counts[last + 1] <= size:
            last += 1
            used += counts[last]
        groups.append((units[first][0], units[last][1]))
        first = max(last + 1 - overlap, first + 1)
    return groups


def _section_spans(body: str, config: ChunkConfig, spans_of, embed) -> list[Span]:
    name = config.chunker
    if name == "fixed":
        return [(c.start, c.end) for c in fixed_size_chunks(body, "_", config.size, config.overlap, spans_of)]
    if name == "sentences":
        return _pack_sentences(body, config.size, config.overlap, spans_of)
    if name == "paragraph":
        return [(c.start, c.end) for c in paragraph_chunks(body, "_")]
    if name == "semantic":
        sentences = split_sentences(body)
        if len(sentences) < 2:
            return sentences
        return [(c.start, c.end) for c in semantic_chunks(body, "_", embed=embed, sentences=sentences)]
    return [(0, len(body))]


def _split_long(text: str, span: Span, size: int, spans_of) -> list[Span]:
    """A span of more than `size` tokens cut into fixed windows of `size` (no overlap)."""
    a, b = span
    piece = text[a:b]
    if _count(spans_of, piece) <= size:
        return [span]
    return [(a + c.start, a + c.end) for c in fixed_size_chunks(piece, "_", size, 0, spans_of)]


def chunk_document(text: str, doc_id: str, config: ChunkConfig, model=None,
                   embed: Callable | None = None) -> list[Chunk]:
    """Passages of one document, numbered 0, 1, ... with offsets into `text`.

    config: a resolved ChunkConfig; model: gives the tokens (tokenizer) -- None: words;
    embed: texts -> vectors, needed by the "semantic" chunker. A Markdown document (doc_id ends
    in .md / .markdown) is cut inside its heading sections.
    """
    if config.size is None:
        raise ValueError("resolve the ChunkConfig first: config.resolved(window)")
    if config.chunker == "semantic" and embed is None:
        raise ValueError("the semantic chunker needs `embed` (texts -> vectors)")
    spans_of = token_spans(model) if model is not None else word_spans
    markdown = is_markdown(doc_id) and config.chunker != "none"
    sections = markdown_sections(text) if markdown else [(0, len(text), ())]
    spans = []
    for start, end, _ in sections:
        for a, b in _section_spans(text[start:end], config, spans_of, embed):
            spans.append((start + a, start + b))
    if config.chunker != "none":
        spans = [s for span in spans for s in _split_long(text, span, config.size, spans_of)]
    chunks = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            chunks.append(Chunk(str(doc_id), len(chunks), a, b, text[a:b]))
    return chunks


def passage_input(title: str, heading: str, text: str) -> str:
    """What is encoded for a passage: its context (title > headings) before its text.

    >>> passage_input("Guide", "Install", "Run make.")
    'Guide > Install: Run make.'
    """
    context = " > ".join(p for p in (title, heading) if p)
    return f"{context}: {text}" if context else text


def truncated_tokens(texts: Sequence[str], model, window: int) -> list[int]:
    """Per text, the tokens past the model's window (which the model never reads); 0 if it fits.

    Counts with the model's tokenizer (+2 for its [CLS]/[SEP]) when it has one, else words.
    """
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None:
        lengths = [len(ids) + 2 for ids in tokenizer(list(texts), add_special_tokens=False,
                                                      verbose=False)["input_ids"]]
    else:
        lengths = [len(word_spans(t)) for t in texts]
    return [max(n - window, 0) for n in lengths]
