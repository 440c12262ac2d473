"""Chunkers: properties checked on seeded random texts (offsets slice back to the chunk text,
chunks cover every non-whitespace character, overlaps are exactly as asked), plus small
hand-checkable cases."""
import bisect
import random

import numpy as np
import pytest

from course_utils import chunking
from course_utils.rag.chunking import (
    Chunk,
    chunk_corpus,
    fixed_size_chunks,
    hierarchical_chunks,
    join_sentences,
    paragraph_chunks,
    semantic_chunks,
    sentence_chunks,
    split_sentences,
    word_spans,
)

WORDS = ["cell", "Mice", "p53", "IL-6", "(n", "=", "12)", "rate", "was", "lower", "e.g.", "TNF",
         "α-syn", "3.5", "%", "and", "the", "Vitamin", "D", "\"high\""]


def random_text(rng: random.Random) -> str:
    """Sentences of random words, random end marks, spaces, newlines and blank lines."""
    parts = []
    for _ in range(rng.randint(0, 12)):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 15))]
        words[0] = words[0].capitalize()
        parts.append(" ".join(words) + rng.choice([".", "!", "?", "", "."]))
        parts.append(rng.choice([" ", "  ", "\n", "\n\n", " \n \n ", "\t"]))
    return rng.choice(["", " ", "\n"]) + "".join(parts)


def random_cases(n=300, seed=0):
    rng = random.Random(seed)
    return [(random_text(rng), rng) for _ in range(n)]


def check_provenance(text, chunks, doc_id="d"):
    for i, c in enumerate(chunks):
        assert c.doc_id == doc_id and c.index == i
        assert text[c.start:c.end] == c.text, "offsets must slice back to the chunk text"
        assert c.text and c.text == c.text.strip(), "no empty chunks, no outer whitespace"
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)


def check_cover(text, chunks):
    covered = np.zeros(len(text), bool)
    for c in chunks:
        covered[c.start:c.end] = True
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missing, f"characters not in any chunk: {[text[i] for i in missing][:10]}"


def tokens_in(chunk, starts, ends):
    """Positions of the tokens lying inside the chunk (token spans sorted, not overlapping)."""
    return set(range(bisect.bisect_left(starts, chunk.start), bisect.bisect_right(ends, chunk.end)))


@pytest.mark.parametrize("size,overlap", [(1, 0), (3, 1), (5, 0), (8, 7), (16, 4)])
def test_fixed_size_properties(size, overlap):
    for text, _ in random_cases():
        chunks = fixed_size_chunks(text, "d", size=size, overlap=overlap)
        check_provenance(text, chunks)
        check_cover(text, chunks)
        starts, ends = zip(*word_spans(text)) if text.strip() else ((), ())
        inside = [tokens_in(c, starts, ends) for c in chunks]
        assert all(1 <= len(tokens) <= size for tokens in inside)
        for a, b in zip(inside, inside[1:]):
            assert len(a & b) == overlap, "consecutive chunks share exactly `overlap` tokens"
        assert len(chunks) <= 1 or len(inside[0]) == size


@pytest.mark.parametrize("per_chunk,overlap", [(1, 0), (2, 1), (3, 0), (3, 2)])
def test_sentence_chunks_properties(per_chunk, overlap):
    for text, _ in random_cases():
        sentences = split_sentences(text)
        chunks = sentence_chunks(text, "d", per_chunk=per_chunk, overlap=overlap)
        check_provenance(text, chunks)
        check_cover(text, chunks)
        for a, b in zip(chunks, chunks[1:]):
            shared = [s for s in sentences if a.start <= s[0] and s[1] <= a.end
                      and b.start <= s[0] and s[1] <= b.end]
            assert len(shared) == overlap


def test_paragraph_semantic_hierarchical_properties():
    for text, rng in random_cases(seed=1):
        check_provenance(text, paragraph_chunks(text, "d"))
        check_cover(text, paragraph_chunks(text, "d"))
        n = len(split_sentences(text))
        vecs = np.array([[np.cos(t), np.sin(t)] for t in np.cumsum([rng.random() for _ in range(n)])])
        cap = rng.choice([None, 2])
        sem = semantic_chunks(text, "d", vectors=vecs.reshape(n, 2), percentile=rng.choice([0, 30, 100]),
                              max_sentences=cap)
        check_provenance(text, sem)
        check_cover(text, sem)
        per_chunk = [len(split_sentences(c.text)) for c in sem]
        assert sum(per_chunk) == n and (cap is None or max(per_chunk, default=0) <= cap)
        tree = hierarchical_chunks(text, "d")
        check_provenance(text, tree)
        check_cover(text, tree[1:])
        assert [c.level for c in tree[:1]] == (["document"] if text.strip() else [])
        assert all(c.level == "passage" and c.parent == "d#0" for c in tree[1:])


def test_sentence_splitter_and_join():
    text = "Mice were fed (n = 12). IL-6 rose by 3.5%! Was it TNF? \"Yes.\" 12 died."
    assert [text[a:b] for a, b in split_sentences(text)] == [
        "Mice were fed (n = 12).", "IL-6 rose by 3.5%!", "Was it TNF?", "\"Yes.\"", "12 died."]
    joined, spans = join_sentences(["First one.", "  Second\n", "", "Third."])
    assert [joined[a:b] for a, b in spans] == ["First one.", "Second", "", "Third."]
    assert [c.text for c in sentence_chunks(joined, "d", sentences=spans)] == [
        "First one.", "Second", "Third."]


def test_semantic_chunks_cut_where_similarity_drops():
    text = "Cats purr. Cats meow. Stocks fell. Bonds fell."
    vecs = np.array([[1, 0], [0.95, 0.31], [0, 1], [0.1, 0.99]], np.float32)
    assert [c.text for c in semantic_chunks(text, "d", vectors=vecs, threshold=0.5)] == [
        "Cats purr. Cats meow.", "Stocks fell. Bonds fell."]
    calls = []
    def embed(texts):
        calls.append(list(texts))
        return vecs
    assert len(semantic_chunks(text, "d", embed=embed, threshold=0.5)) == 2 and len(calls[0]) == 4
    with pytest.raises(ValueError, match="vectors"):
        semantic_chunks(text, "d")


def test_hf_token_spans_with_a_fake_tokenizer():
    def tokenizer(text, add_special_tokens, return_offsets_mapping, **kwargs):
        return {"offset_mapping": [(0, 0)] + [m for m in word_spans(text)]}
    chunks = fixed_size_chunks("a b c d", "x", size=2, overlap=0,
                               tokenize=chunking.hf_token_spans(tokenizer))
    assert [c.text for c in chunks] == ["a b", "c d"]


def test_chunk_corpus_passes_per_document_arguments():
    texts = {"a": "One. Two.", "b": "Three."}
    chunks = chunk_corpus(texts, sentence_chunks, per_doc={"a": {"sentences": [(0, 9)]}})
    assert [(c.doc_id, c.text) for c in chunks] == [("a", "One. Two."), ("b", "Three.")]
    assert chunks[0] == Chunk("a", 0, 0, 9, "One. Two.") and chunks[0].id == "a#0"


@pytest.mark.parametrize("kwargs", [{"size": 0}, {"size": 4, "overlap": 4}, {"size": 4, "overlap": -1},
                                    {"size": 2.5}])
def test_bad_window_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        fixed_size_chunks("a b c", "d", **kwargs)


def test_not_a_string_raises():
    with pytest.raises(TypeError):
        fixed_size_chunks(["a list"], "d")


def test_doctests():
    import doctest

    assert doctest.testmod(chunking).failed == 0
