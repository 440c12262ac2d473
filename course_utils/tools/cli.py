"""`course-utils`: embed, search, serve and ask your own documents from the command line.

    course-utils embed notes/ --collection notes          # a folder of .txt/.md/.html/.pdf, or .jsonl/.csv
    course-utils search notes "how do I reset my password" --mode hybrid --rerank maxsim
    course-utils search notes --queries q.jsonl --group-by document --format trec --output run.txt
    course-utils ask notes "how do I reset my password"   # an answer citing the passages it used
    course-utils serve notes --api-keys keys.txt           # the search service on 127.0.0.1:8000
    course-utils index notes --factory HNSW32              # or IVF64,Flat ... ; "exact" drops it
    course-utils evaluate qrels.tsv run.txt --metrics ndcg@10 recall@100
    course-utils collections list | inspect notes | delete notes --yes

Documents are cut into passages that fit the model's window, each with its document, character
offsets and (Markdown) heading path; search finds passages. From a notebook cell call
`main([...])` (or `main("search notes 'a query'")`): it returns the exit code and never exits the
kernel; `main()` without arguments inside a kernel prints the usage instead of parsing the
kernel's own `-f` argument. Exit codes: 0 ok, 1 bad data (missing file, unknown collection,
model/dimension mismatch, port in use, disk full), 2 bad usage, 130 interrupted.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import shlex
import sys
from pathlib import Path

from course_utils.paths import atomic_write
from course_utils.tools import named_collections as col
from course_utils.tools.cli_io import (
    LazyModel,
    check_collection_model,
    parse_pairs,
    read_documents,
    read_qrels_any,
    read_queries,
    read_run,
    warn,
    write_results,
)
from course_utils.tools.passages import CHUNKERS, ChunkConfig

__all__ = ["STOP_ENV", "UsageError", "main"]

STOP_ENV = "COURSE_STOP_AFTER_BATCHES"  # testing hook: interrupt `embed` after N batches


class UsageError(Exception):
    """argparse wanted to exit (bad arguments): carries the exit code."""

    def __init__(self, code: int, message: str = ""):
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        raise UsageError(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)")

    def exit(self, status=0, message=None):
        if message:
            sys.stderr.write(message)
        raise UsageError(status)


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--root", type=Path, default=None,
                        help=f"folder of collections (default: ${col.ROOT_ENV} or "
                             "~/.course_utils/collections)")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    p = _Parser(prog="course-utils", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    e = sub.add_parser("embed", parents=[common], help="embed a folder or a JSONL/CSV file",
                       description="Cut documents into passages (with their document, character "
                       "offsets and Markdown heading path) and embed them. A re-run embeds only "
                       "new and changed documents; an interrupted run resumes.")
    e.add_argument("source", type=Path, help="folder of .txt/.md/.rst/.html/.pdf files (others "
                   "are listed and ignored; unreadable or binary files are skipped with a "
                   "warning), or a .jsonl / .csv file")
    e.add_argument("--collection", "-c", required=True, help="collection name (created if new)")
    e.add_argument("--model", default=None, help="offline model name (default: the "
                   "collection's model, else all-MiniLM-L6-v2)")
    e.add_argument("--id-field", default=None, help="id field (default: _id, id or doc_id)")
    e.add_argument("--text-field", default="text")
    e.add_argument("--title-field", default="title")
    e.add_argument("--chunker", choices=CHUNKERS, default=None,
                   help="how documents become passages: sentences packed up to --size tokens "
                        "(default), fixed windows of --size tokens, one paragraph each, semantic "
                        "(a topic shift starts a passage), or none (one passage per document: "
                        "the model reads only its window). Default: the collection's own")
    e.add_argument("--size", type=int, default=None,
                   help="max tokens per passage (default: 3/4 of the model's window, 192 for "
                        "all-MiniLM-L6-v2); longer passages are cut")
    e.add_argument("--overlap", type=int, default=None,
                   help="shared by neighbouring passages: tokens for --chunker fixed (default "
                        "size/8), sentences for --chunker sentences (default 0)")
    e.add_argument("--batch-size", type=int, default=256,
                   help="passages per saved batch (whole documents)")
    e.add_argument("--prune", action="store_true",
                   help="also delete stored documents that are not in SOURCE")
    e.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="encode on the Ray cluster at ADDRESS (host:port); without ADDRESS, on "
                        "a Ray started for this run (same result as without --ray)")

    i = sub.add_parser("index", parents=[common], help="build an ANN index (or go back to exact)")
    i.add_argument("collection")
    i.add_argument("--factory", required=True, help='FAISS factory string: "exact", "HNSW32", '
                   '"IVF64,Flat", "IVF64,PQ16np", "SQ8", ... (see course_utils.ann.indexes)')
    i.add_argument("--build-param", action="append", default=[], metavar="NAME=VALUE",
                   help="e.g. efConstruction=80 (repeatable)")

    s = sub.add_parser("search", parents=[common], help="search a collection")
    s.add_argument("collection")
    s.add_argument("query", nargs="*", help="query text(s); or use --queries FILE")
    s.add_argument("--queries", type=Path, help="queries file: JSONL (_id, text) or TSV (id, text)")
    s.add_argument("--mode", choices=["dense", "bm25", "hybrid"], default="dense")
    s.add_argument("-k", type=int, default=10, help="results per query")
    s.add_argument("--fusion", choices=["rrf", "convex"], default="rrf", help="for --mode hybrid")
    s.add_argument("--alpha", type=float, default=0.5, help="dense weight of convex fusion")
    s.add_argument("--rerank", choices=["maxsim", "cross-encoder"], default=None,
                   help="re-rank the top --rerank-depth passages: late interaction (MaxSim over "
                        "the model's token vectors, no training) or a cross-encoder trained "
                        "with course_utils.rerank.training (--reranker-model)")
    s.add_argument("--rerank-depth", type=int, default=20)
    s.add_argument("--rerank-weight", type=float, default=None, metavar="W",
                   help="mix the second stage's scores with the first stage's on the top "
                        "--rerank-depth: W * second + (1 - W) * first, each min-max normalised "
                        "(1 = the second stage alone). Default: 0.2 for maxsim (the weight chapter "
                        "06 chose on SciFact validation claims; MaxSim alone was worse than the "
                        "hybrid), 1 for a cross-encoder")
    s.add_argument("--reranker-model", type=Path, default=None, metavar="FOLDER",
                   help="folder of a trained cross-encoder, for --rerank cross-encoder")
    s.add_argument("--group-by", choices=["passage", "document"], default="passage",
                   help="passage: one result per passage (default); document: one per "
                        "document, scored by --aggregate over its retrieved passages")
    s.add_argument("--aggregate", choices=["max", "sum"], default="max",
                   help="with --group-by document: a document's score is the max (its best "
                        "passage) or the sum of its retrieved passages' scores (default max)")
    s.add_argument("--where", action="append", default=[], metavar="FIELD=VALUE",
                   help="metadata filter (repeatable; exact search)")
    s.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="ANN search parameter, e.g. nprobe=16 or efSearch=64")
    s.add_argument("--exact", action="store_true", help="ignore the ANN index")
    s.add_argument("--model", default=None, help="must match the collection's model")
    s.add_argument("--format", choices=["table", "json", "trec"], default="table",
                   help="table: passage text with query words marked; json: passage and "
                        "document ids, offsets, heading; trec: docno = passage id <doc>#<n> "
                        "(the document id with --group-by document)")
    s.add_argument("--output", "-o", type=Path, help="write results here instead of stdout")

    from course_utils.tools.cli_ask import add_ask_parser
    from course_utils.tools.cli_serve import add_serve_parser

    add_serve_parser(sub, common)
    add_ask_parser(sub, common)

    v = sub.add_parser("evaluate", help="score a run against qrels")
    v.add_argument("qrels", type=Path, help="qrels: BEIR TSV (query-id corpus-id score) or TREC")
    v.add_argument("run", type=Path, help="run: TREC run file or JSON {qid: {doc_id: score}}")
    v.add_argument("--metrics", nargs="+", default=["ndcg@10", "recall@100", "mrr@10"])
    v.add_argument("--per-query", action="store_true")
    v.add_argument("--format", choices=["table", "json"], default="table")

    c = sub.add_parser("collections", parents=[common], help="list, inspect or delete")
    c.add_argument("action", choices=["list", "inspect", "delete"])
    c.add_argument("name", nargs="?")
    c.add_argument("--yes", action="store_true", help="confirm delete")
    c.add_argument("--format", choices=["table", "json"], default="table")
    return p


def _in_kernel() -> bool:
    return "ipykernel" in sys.modules and any(a == "-f" or a.endswith(".json") for a in sys.argv)


def main(argv=None) -> int:
    """Run the CLI; returns the exit code (never calls sys.exit). argv: list or one string."""
    if argv is None:
        if _in_kernel():
            sys.stderr.write("in a notebook, pass the arguments: main(['search', 'notes', "
                             "'my query']) or main(\"search notes 'my query'\")\n")
            argv = ["--help"]
        else:
            argv = sys.argv[1:]
    elif isinstance(argv, str):
        argv = shlex.split(argv)
    try:
        args = _parser().parse_args([str(a) for a in argv])
        return _COMMANDS[args.command](args)
    except UsageError as err:
        msg = str(err)
        if msg:
            print(msg if msg.startswith("course-utils") else f"course-utils: error: {msg}",
                  file=sys.stderr)
        return err.code
    except KeyboardInterrupt as err:
        print(f"interrupted{': ' + str(err) if str(err) else ''}; run the same command again to "
              "resume (finished batches are saved)", file=sys.stderr)
        return 130
    except (col.CollectionError, FileNotFoundError, ValueError, KeyError, TypeError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"course-utils: error: {msg}", file=sys.stderr)
        return 1
    except OSError as err:
        if err.errno == errno.ENOSPC:
            print("course-utils: error: the disk is full; nothing was lost: the collection is "
                  "as it was after the last saved batch. Free some space and run the same "
                  "command again", file=sys.stderr)
        else:
            print(f"course-utils: error: {err}", file=sys.stderr)
        return 1


def _root(args) -> Path:
    return args.root if args.root is not None else col.default_root()


def _embed(args) -> int:
    if args.batch_size < 1:
        raise UsageError(2, "--batch-size must be >= 1")
    root = _root(args)
    docs = read_documents(args.source, args.id_field, args.text_field, args.title_field)
    name, dim = args.model, None
    path = col.collection_path(root, args.collection, must_exist=False)
    if (path / "store" / "schema.json").is_file():
        schema = json.loads((path / "store" / "schema.json").read_text())
        if name is not None and name != schema["model_id"]:
            raise col.CollectionError(
                f"collection {args.collection!r} was embedded with {schema['model_id']!r}, not "
                f"{name!r}; vectors of different models cannot be mixed — embed into a new "
                "collection or drop --model")
        name, dim = schema["model_id"], schema["dim"]
        check_collection_model(args.collection, name)
    chunking = _chunking(args, root)
    from course_utils.scale.embed import ray_encoder

    stop = os.environ.get(STOP_ENV)
    with ray_encoder(LazyModel(name, dim), args.ray) as model:
        summary = col.embed_documents(root, args.collection, docs, model, args.batch_size,
                                      prune=args.prune, source=str(args.source),
                                      show_progress=not args.quiet, chunking=chunking,
                                      stop_after=int(stop) if stop else None)
    print(f"{args.collection}: {summary['new']} new, {summary['changed']} changed, "
          f"{summary['unchanged']} unchanged, {summary['removed']} removed -> "
          f"{summary['count']} documents, {summary['passages']} passages")
    if summary["truncated_tokens"]:
        how = ("documents are embedded whole (--chunker none)" if (chunking or ChunkConfig()).chunker
               == "none" else "passages are longer than --size allows")
        warn(f"{summary['truncated_passages']} passages exceed the model's {summary['window']}-token "
             f"window: {summary['truncated_tokens']:,} tokens were truncated (never read by the "
             f"model) because {how}; re-embed with --chunker sentences or a smaller --size")
    if summary["gone"]:
        print(f"note: {summary['gone']} stored documents are not in {args.source}; "
              "pass --prune to delete them")
    return 0


def _chunking(args, root) -> ChunkConfig | None:
    """--chunker/--size/--overlap as a ChunkConfig (None: the collection's own or the default);
    --size/--overlap alone change the collection's chunker's settings."""
    if args.chunker is None and args.size is None and args.overlap is None:
        return None
    base = col.stored_chunking(root, args.collection)[0] or ChunkConfig()
    if args.chunker is not None and args.chunker != base.chunker:
        base = ChunkConfig(args.chunker)
    return ChunkConfig(base.chunker, args.size if args.size is not None else base.size,
                       args.overlap if args.overlap is not None else base.overlap)


def _index(args) -> int:
    params = {k: (int(v) if v.isdigit() else v) for k, v in parse_pairs(args.build_param).items()}
    state = col.build_ann(_root(args), args.collection, args.factory, **params)
    if state["factory"] == "exact":
        print(f"{args.collection}: ANN index removed; search is exact")
    else:
        print(f"{args.collection}: built {state['factory']} over {state['count']} vectors "
              f"({state['bytes'] / 1e6:.2f} MB)")
    return 0


def _search(args) -> int:
    from course_utils.tools.cli_search import run_search

    if args.rerank_weight is not None and not 0 <= args.rerank_weight <= 1:
        raise UsageError(2, "--rerank-weight must lie between 0 and 1")
    if args.k < 1 or args.rerank_depth < 1:
        raise UsageError(2, "-k and --rerank-depth must be >= 1")
    if bool(args.query) == bool(args.queries):
        raise UsageError(2, "give query text(s) or --queries FILE (exactly one of them)")
    queries = read_queries(args.queries) if args.queries else {
        str(n): q for n, q in enumerate(args.query, 1)}
    results, how = run_search(_root(args), args, queries)
    bold = args.output is None and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    text = write_results(results, queries, args.format, how, bold=bold)
    if args.output:
        atomic_write(args.output, text)
        print(f"wrote {len(results)} queries to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _evaluate(args) -> int:
    from course_utils.evaluate.metrics import evaluate

    qrels, run = read_qrels_any(args.qrels), read_run(args.run)
    judged = {d for docs in qrels.values() for d in docs}
    found = {d for docs in run.values() for d in docs}
    if found and not found & judged and {d.rsplit("#", 1)[0] for d in found} & judged:
        raise col.CollectionError(f"{args.run} ranks passages (<doc>#<n>) but {args.qrels} judges "
                                  "documents: search with --group-by document for a document run")
    if not set(qrels) & set(run):
        raise col.CollectionError(f"no query id is in both {args.qrels} and {args.run}: "
                                  "are they for the same queries?")
    result = evaluate(qrels, run, args.metrics, per_query=args.per_query)
    if args.format == "json":
        print(json.dumps(result, indent=2))
    elif args.per_query:
        for qid, row in result.items():
            print(qid, *(f"{m}={v:.4f}" for m, v in row.items()))
    else:
        n = len(set(qrels) & set(run))
        for metric, value in result.items():
            print(f"{metric:<14}{value:.4f}")
        print(f"({n} queries evaluated)")
    return 0


def _collections(args) -> int:
    root = _root(args)
    if args.action == "list":
        rows = col.list_collections(root)
        if args.format == "json":
            print(json.dumps(rows, indent=2))
        elif not rows:
            print(f"no collections in {root}")
        for r in rows if args.format == "table" else []:
            ann = "-" if r["ann"] is None else r["ann"]["factory"] + ("" if r["ann"]["fresh"] else " (stale)")
            print(f"{r['name']:<20} {r['documents']:>6} docs {r['count']:>8} passages  "
                  f"{r['model']:<20} dim {r['dim']:<5} ann {ann}")
        return 0
    if not args.name:
        raise UsageError(2, f"`collections {args.action}` needs a collection name")
    if args.action == "inspect":
        info = col.inspect_collection(root, args.name)
        print(json.dumps(info, indent=2) if args.format == "json" else
              "\n".join(f"{k:<12} {v}" for k, v in info.items()))
        return 0
    col.collection_path(root, args.name)  # unknown name -> error before asking
    if not args.yes:
        raise UsageError(2, f"deleting {args.name!r} cannot be undone: add --yes to confirm")
    col.delete_collection(root, args.name)
    print(f"deleted {args.name}")
    return 0


def _serve(args) -> int:
    from course_utils.tools.cli_serve import serve_collection

    return serve_collection(_root(args), args)


def _ask(args) -> int:
    from course_utils.tools.cli_ask import ask_collection

    return ask_collection(_root(args), args)


_COMMANDS = {"embed": _embed, "index": _index, "search": _search, "evaluate": _evaluate,
             "collections": _collections, "serve": _serve, "ask": _ask}

if __name__ == "__main__":
    sys.exit(main())
