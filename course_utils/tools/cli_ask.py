"""`course-utils ask COLLECTION "question"`: retrieval-augmented generation over a collection.

The steps of chapter 07 (`course_utils.rag`), over the collection's passages:
search (hybrid by default) -> `build_context` (numbered sources within a token budget,
duplicates dropped) -> `build_prompt` -> `generate` -> the answer and its citations, each
checked against the sources shown with their document and location.

Generators: "local" is SmolLM2-135M-Instruct on the CPU (`models.generators.load_smollm`; a
135M model is weak: read its answer beside the sources); "endpoint" is any OpenAI-compatible
chat API named by $COURSE_LLM_BASE_URL (base URL, e.g. http://127.0.0.1:8080/v1), with
$COURSE_LLM_MODEL and optionally $COURSE_LLM_API_KEY; "extractive" quotes the source sentences
closest to the question (no language model); "auto" (default) is the endpoint when
$COURSE_LLM_BASE_URL is set, else local.

SmolLM2 gets shorter instructions than chapter 07's (`LOCAL_INSTRUCTIONS`): with those, whose
last sentence offers "The sources do not say.", it answered exactly that to every question
tried here, even with the answer in source [1]; told to answer briefly and cite, it mostly
quotes the source that answers and cites it. Other generators get chapter 07's instructions.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import textwrap

from course_utils.models.generators import OpenAICompatible
from course_utils.rag.chunking import Chunk
from course_utils.tools.cli_io import location, quiet_transformers

__all__ = ["LLM_URL_ENV", "LLM_MODEL_ENV", "LLM_KEY_ENV", "GENERATORS", "LOCAL_INSTRUCTIONS",
           "make_generator", "answer", "format_answer", "add_ask_parser", "ask_collection"]

LLM_URL_ENV, LLM_MODEL_ENV, LLM_KEY_ENV = OpenAICompatible.ENV   # one spelling, shared with chapter 07
GENERATORS = ("auto", "local", "endpoint", "extractive")
LOCAL_INSTRUCTIONS = ("Using the sources above, answer the question briefly and cite the source "
                      "number in square brackets, e.g. [1].")


def make_generator(name: str, model=None):
    """The generator called `name` (see GENERATORS); `model` embeds for "extractive"."""
    from course_utils.tools.named_collections import CollectionError

    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}; choose one of {GENERATORS}")
    if name == "auto":
        name = "endpoint" if os.environ.get(LLM_URL_ENV) else "local"
    if name == "endpoint":
        url = os.environ.get(LLM_URL_ENV)
        if not url:
            raise CollectionError(f"--generator endpoint needs ${LLM_URL_ENV} (the base URL of an "
                                  "OpenAI-compatible API, e.g. http://127.0.0.1:8080/v1) and "
                                  f"${LLM_MODEL_ENV}")
        return OpenAICompatible.from_env()
    if name == "extractive":
        from course_utils.embeddings.encoding import encode
        from course_utils.models.generators import ExtractiveGenerator

        return ExtractiveGenerator(lambda texts: encode(texts, model, show_progress=False))
    from course_utils.models.generators import load_smollm

    quiet_transformers()
    return load_smollm()


def _search_args(args) -> argparse.Namespace:
    return argparse.Namespace(collection=args.collection, mode=args.mode, k=args.k, fusion="rrf",
                              alpha=0.5, rerank=None, rerank_depth=20, reranker_model=None,
                              group_by="passage", aggregate="max", where=[], param=[], exact=False,
                              model=None, quiet=True)


def answer(root, args, generator=None) -> dict:
    """Retrieve, pack, prompt, generate. Returns {"question", "answer", "generator", "sources"
    (numbered, with passage id, document, offsets, heading, text, cited), "citations",
    "invalid_citations", "dropped", "new_tokens", "seconds", "retrieval"}."""
    from course_utils.models.generators import LocalLM
    from course_utils.rag.pipeline import INSTRUCTIONS, build_context, build_prompt, generate
    from course_utils.tools.cli_search import run_search

    results, how = run_search(root, _search_args(args), {"q": args.question})
    hits = results["q"]
    if not hits:
        raise ValueError(f"nothing in {args.collection!r} matches the question; try other words "
                         "or --mode dense")
    if generator is None and args.generator == "extractive":
        from course_utils.tools.cli_io import load_model_named
        from course_utils.tools.named_collections import load_store

        generator = make_generator("extractive", load_model_named(load_store(root, args.collection).model_id))
    gen = generator or make_generator(args.generator)
    retrieved = [{"rank": r, "score": h["score"],
                  "chunk": Chunk(h["doc_id"], h["passage"], h["start"], h["end"], h["text"])}
                 for r, h in enumerate(hits, 1)]
    context = build_context(retrieved, budget=args.budget, count_tokens=gen.count_tokens)
    if not context["sources"]:
        raise ValueError(f"no passage fits a context of {args.budget} tokens; raise --budget")
    prompt = build_prompt(args.question, context)
    if isinstance(gen, LocalLM):
        prompt = dataclasses.replace(prompt, text=prompt.text.replace(INSTRUCTIONS["answer"],
                                                                      LOCAL_INSTRUCTIONS))
    out = generate(prompt, gen, max_new_tokens=args.max_new_tokens)
    by_id = {h["passage_id"]: h for h in hits}
    cited = set(out["citations"]["cited"])
    sources = [{"id": s["id"], "passage_id": s["chunk_id"], "doc_id": s["doc_id"],
                "start": s["start"], "end": s["end"], "heading": by_id[s["chunk_id"]]["heading"],
                "score": s["score"], "text": s["text"], "cited": s["id"] in cited}
               for s in context["sources"]]
    return {"question": args.question, "answer": out["text"],
            "generator": getattr(gen, "course_model_id", type(gen).__name__),
            "sources": sources, "citations": out["citations"]["cited"],
            "invalid_citations": out["citations"]["invalid"], "dropped": context["dropped"],
            "new_tokens": out["new_tokens"], "seconds": round(out["seconds"], 2), "retrieval": how}


def format_answer(result: dict) -> str:
    """The answer, then each source as [n] document § heading, chars a–b and its text."""
    lines = [f"Q: {result['question']}", f"A ({result['generator']}, {result['seconds']} s):"]
    lines += textwrap.wrap(result["answer"] or "(empty answer)", 96, initial_indent="   ",
                           subsequent_indent="   ")
    lines += ["", f"Sources ({result['retrieval']}):"]
    for s in result["sources"]:
        lines.append(f"  [{s['id']}] {location(s)}{'  (cited)' if s['cited'] else ''}")
        text = " ".join(s["text"].split())
        lines += textwrap.wrap(text[:400] + ("…" if len(text) > 400 else ""), 96,
                               initial_indent="      ", subsequent_indent="      ")
    if result["invalid_citations"]:
        lines.append(f"note: the answer cites {result['invalid_citations']}, which are not among "
                     "the sources above: do not trust those parts")
    elif not result["citations"]:
        lines.append("note: the answer cites no source; check it against the sources above")
    return "\n".join(lines) + "\n"


def add_ask_parser(sub, common) -> None:
    """The `ask` subcommand's arguments."""
    a = sub.add_parser("ask", parents=[common], help="answer a question from a collection, "
                       "citing its passages",
                       description=__doc__.split("\n\n")[1].replace("\n", " "))
    a.add_argument("collection")
    a.add_argument("question")
    a.add_argument("-k", type=int, default=5, help="passages retrieved (default 5)")
    a.add_argument("--mode", choices=["dense", "bm25", "hybrid"], default="hybrid")
    a.add_argument("--budget", type=int, default=400, help="context tokens for the sources "
                   "(default 400)")
    a.add_argument("--max-new-tokens", type=int, default=128, help="length limit of the answer")
    a.add_argument("--generator", choices=GENERATORS, default="auto",
                   help=f"auto: ${LLM_URL_ENV} if set, else local (SmolLM2-135M-Instruct); "
                        "extractive: quotes the closest source sentences")
    a.add_argument("--format", choices=["text", "json"], default="text")


def ask_collection(root, args) -> int:
    """Answer and print; returns the exit code."""
    if args.k < 1 or args.budget < 1 or args.max_new_tokens < 1:
        raise ValueError("-k, --budget and --max-new-tokens must be >= 1")
    if not args.question.strip():
        raise ValueError("the question is empty")
    result = answer(root, args)
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.format == "json"
          else format_answer(result), end="\n" if args.format == "json" else "")
    return 0
