"""Retrieval-augmented generation as four plain steps, each one a function you can inspect:

    retrieve(query, chunks, chunk_vectors, embed, k)    -> [{"rank", "score", "chunk"}], best first
    build_context(retrieved, budget, count_tokens)      -> {"sources", "tokens", "dropped"}
    build_prompt(question, context, task)               -> Prompt(text, question, sources, task)
    generate(prompt, generator, max_new_tokens)         -> {"text", tokens, seconds, "citations"}

- `build_context` keeps the retrieved chunks in rank order, drops duplicates (the same text, or
  a chunk whose characters are mostly inside an already kept chunk of the same document) and
  skips chunks that no longer fit in `budget` tokens (a later, shorter one may still fit);
  each source keeps its provenance
  (chunk id, document id, character offsets, score) and gets a number 1, 2, ... .
- `build_prompt` lists the sources as "[n] text", then the question, then the instructions
  (cite the sources as [n]) -- last, where a small model follows them best;
  with `max_tokens` it refuses (ContextBudgetError) a prompt longer than the model can take.
- `parse_label` (from `course_utils.rag.labels`) reads a label out of an answer, skipping any
  label whose clause is negated ("not supported", "no evidence to support").
- `check_citations` finds the [n] in an answer: a number that is not a source is an invalid
  citation (`validate_citations` raises CitationError for it).
The generator is passed in (see `course_utils.models.generators`): nothing here loads a model.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from course_utils.rag.chunking import Chunk, word_spans
from course_utils.rag.labels import LABELS, parse_label
from course_utils.search.exact import exact_search_numpy

__all__ = ["Prompt", "ContextBudgetError", "CitationError", "retrieve", "build_context",
           "build_prompt", "generate", "parse_label", "citations", "check_citations", "validate_citations",
           "INSTRUCTIONS", "LABELS"]

# Instructions come *last*, after the sources and the question: SmolLM2-135M followed them
# better there (on SciFact train claims it stopped echoing the claim and separated SUPPORT from
# CONTRADICT better: AUC 0.70 against 0.61 with the instructions first, 40 claims).
INSTRUCTIONS = {
    "answer": ("Answer the question using only the sources above. Cite the sources you use in "
               "square brackets, like [1] or [2][3]. If they do not contain the answer, say: "
               "The sources do not say."),
    "verify": ("Do the sources SUPPORT or CONTRADICT the claim, or is there NOT ENOUGH INFO? "
               "Answer with the label, then cite the sources you used, like [1]."),
    "verify_closed_book": ("Is the claim true (SUPPORT), false (CONTRADICT), or do you not know "
                           "(NOT ENOUGH INFO)? Answer with the label."),
}
_CITATION = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


class ContextBudgetError(ValueError):
    """A context or prompt is longer than its token budget."""


class CitationError(ValueError):
    """An answer cites a source number that is not among the sources."""


@dataclass(frozen=True)
class Prompt:
    """The prompt text and what it was built from (the question and the numbered sources)."""

    text: str
    question: str
    sources: tuple
    task: str


def _count_words(text: str) -> int:
    return len(word_spans(text))


def retrieve(query: str, chunks: Sequence[Chunk], chunk_vectors, embed: Callable,
             k: int = 5) -> list[dict]:
    """Step 1: the k chunks whose vectors are closest to the query's (exact inner product).

    chunk_vectors: float32 (len(chunks), d), L2-normalised, row i = chunks[i];
    embed: list of texts -> vectors (1, d). Returns [{"rank", "score", "chunk"}], best first.
    >>> retrieve("cats", chunks, vecs, embed, k=3)[0]["chunk"].doc_id       # doctest: +SKIP
    '4983'
    """
    if not isinstance(query, str) or not query.strip():
        raise ValueError("query must be a non-empty string")
    if len(chunks) != len(chunk_vectors):
        raise ValueError(f"{len(chunks)} chunks but {len(chunk_vectors)} vectors; encode the "
                         "chunks' texts in the same order")
    hits = exact_search_numpy(np.asarray(embed([query]), np.float32), chunk_vectors, k)
    return [{"rank": r + 1, "score": float(s), "chunk": chunks[i]}
            for r, (s, i) in enumerate(zip(hits.scores[0], hits.ids[0])) if i != -1]


def _overlap_share(chunk: Chunk, kept: list[Chunk]) -> float:
    covered = np.zeros(chunk.end - chunk.start, bool)
    for other in kept:
        if other.doc_id == chunk.doc_id:
            a, b = max(other.start, chunk.start), min(other.end, chunk.end)
            covered[max(a - chunk.start, 0):max(b - chunk.start, 0)] = True
    return float(covered.mean()) if len(covered) else 1.0


def build_context(retrieved: Sequence[dict], budget: int = 300,
                  count_tokens: Callable[[str], int] | None = None, dedupe: bool = True,
                  max_overlap: float = 0.5) -> dict:
    """Step 2: numbered sources that fit `budget` tokens, duplicates dropped, provenance kept.

    Chunks are taken in rank order; one is dropped as a duplicate if its text equals a kept one
    or more than `max_overlap` of its characters lie in kept chunks of the same document, and
    skipped if it does not fit the tokens left. count_tokens: the generator's tokenizer
    (default: words and punctuation). Returns {"sources": [...], "tokens": n, "dropped": [...]}.
    >>> c = Chunk("d1", 0, 0, 9, "Cats purr"); r = [{"rank": 1, "score": 0.9, "chunk": c}] * 2
    >>> ctx = build_context(r, budget=10); len(ctx["sources"]), ctx["dropped"]
    (1, [('d1#0', 'duplicate')])
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be a whole number of tokens >= 1, got {budget!r}")
    count = count_tokens or _count_words
    kept, sources, dropped, used = [], [], [], 0
    for item in retrieved:
        chunk = item["chunk"]
        if dedupe and (any(chunk.text == k.text for k in kept)
                       or _overlap_share(chunk, kept) > max_overlap):
            dropped.append((chunk.id, "duplicate"))
            continue
        n = count(chunk.text)
        if used + n > budget:
            dropped.append((chunk.id, "over budget"))
            continue
        kept.append(chunk)
        used += n
        sources.append({"id": len(sources) + 1, "chunk_id": chunk.id, "doc_id": chunk.doc_id,
                        "start": chunk.start, "end": chunk.end, "score": item.get("score"),
                        "tokens": n, "text": chunk.text})
    return {"sources": sources, "tokens": used, "dropped": dropped}


def build_prompt(question: str, context: dict | None, task: str = "answer",
                 max_tokens: int | None = None, count_tokens: Callable[[str], int] | None = None,
                 show_provenance: bool = False) -> Prompt:
    """Step 3: numbered sources, the question (or claim), then the instructions, as one prompt.

    context: from `build_context`, or None for no retrieval (task "verify_closed_book").
    max_tokens: raise ContextBudgetError if the prompt is longer (count_tokens as above).
    >>> p = build_prompt("Why?", {"sources": [{"id": 1, "text": "Because."}]})
    >>> print(p.text.splitlines()[1])
    [1] Because.
    """
    if task not in INSTRUCTIONS:
        raise ValueError(f"unknown task {task!r}; choose one of {list(INSTRUCTIONS)}")
    sources = tuple((context or {}).get("sources", ()))
    if not sources and task != "verify_closed_book":
        raise ValueError("no sources to answer from: retrieve and build a context first, or use "
                         "task='verify_closed_book' for a prompt without retrieval")
    lines = []
    if sources:
        lines.append("Sources:")
        for s in sources:
            where = f" (doc {s['doc_id']}, chars {s['start']}-{s['end']})" if show_provenance else ""
            lines.append(f"[{s['id']}]{where} {' '.join(s['text'].split())}")
        lines.append("")
    lines += [("Question: " if task == "answer" else "Claim: ") + question.strip(), "", INSTRUCTIONS[task]]
    prompt = Prompt("\n".join(lines), question, sources, task)
    if max_tokens is not None:
        n = (count_tokens or _count_words)(prompt.text)
        if n > max_tokens:
            raise ContextBudgetError(f"the prompt has {n} tokens but the limit is {max_tokens}; "
                                     "lower the context budget or retrieve fewer chunks")
    return prompt


def citations(answer: str) -> list[int]:
    """Source numbers cited as [n] or [n, m] in an answer, in order of appearance.

    >>> citations("Yes [1]. Also [2, 3] and [1].")
    [1, 2, 3, 1]
    """
    return [int(n) for group in _CITATION.findall(answer) for n in re.split(r"[,;]", group)]


def check_citations(answer: str, n_sources: int) -> dict:
    """{"cited": sorted distinct numbers, "invalid": those not in 1..n_sources, "has_citation"}.

    >>> check_citations("True [1][4].", n_sources=3)
    {'cited': [1, 4], 'invalid': [4], 'has_citation': True}
    """
    cited = sorted(set(citations(answer)))
    return {"cited": cited, "invalid": [n for n in cited if not 1 <= n <= n_sources],
            "has_citation": bool(cited)}


def validate_citations(answer: str, sources: Sequence[dict]) -> list[dict]:
    """The sources an answer cites; CitationError if it cites a number that is not a source."""
    ids = {s["id"]: s for s in sources}
    bad = [n for n in sorted(set(citations(answer))) if n not in ids]
    if bad:
        raise CitationError(f"the answer cites {bad}, but the sources are numbered "
                            f"{sorted(ids) or 'none'}")
    return [ids[n] for n in sorted(set(citations(answer)))]


def generate(prompt: Prompt, generator: Callable, max_new_tokens: int = 64) -> dict:
    """Step 4: run the generator on the prompt; time it and check its citations.

    Returns {"text", "prompt_tokens", "new_tokens", "seconds", "tokens_per_s", "citations"}.
    """
    if not isinstance(prompt, Prompt):
        raise TypeError(f"generate needs a Prompt from build_prompt, got {type(prompt).__name__}")
    start = time.perf_counter()
    out = generator(prompt, max_new_tokens)
    seconds = time.perf_counter() - start
    return {"text": out.text, "prompt_tokens": out.prompt_tokens, "new_tokens": out.new_tokens,
            "seconds": seconds, "tokens_per_s": out.new_tokens / seconds if seconds > 0 else 0.0,
            "citations": check_citations(out.text, len(prompt.sources))}
