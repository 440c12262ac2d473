"""`course-utils serve COLLECTION`: chapter 09's search service over a collection's passages.

The FastAPI app is `course_utils.production.service.create_app` (API keys, per-key rate limits,
caches, `/metrics`, OpenAPI docs at `/docs` and `/openapi.json`); this module gives it an engine
whose results are passages with their document and location, and runs it with uvicorn on
127.0.0.1 (default port 8000) until Ctrl-C.

API keys: `--api-keys FILE` (one key per line, optionally followed by the client's name; `#`
starts a comment) or the environment variable COURSE_API_KEYS ("key1:alice,key2:bob"). Without
keys the service answers anyone who can reach it, so a non-loopback --host requires keys.

>>> parse_api_keys("s3cret alice\\n# a comment\\nt0ken")
{'s3cret': 'alice', 't0ken': 'client-2'}
"""
from __future__ import annotations

import errno
import ipaddress
import os
import socket
from pathlib import Path

from course_utils.tools import named_collections as col
from course_utils.tools.cli_io import check_collection_model, load_model_named, warn
from course_utils.tools.cli_search import MAXSIM_WEIGHT, bm25_index, passage_hit, passage_texts

__all__ = ["API_KEYS_ENV", "parse_api_keys", "read_api_keys", "PassageEngine", "build_app",
           "check_port", "add_serve_parser", "serve_collection"]

API_KEYS_ENV = "COURSE_API_KEYS"


def parse_api_keys(text: str) -> dict[str, str]:
    """{key: client name} from lines "KEY [NAME]" (or "KEY:NAME"; commas separate entries too)."""
    keys = {}
    for entry in text.replace(",", "\n").splitlines():
        entry = entry.split("#", 1)[0].strip()
        if entry:
            key, _, name = entry.replace(":", " ", 1).partition(" ")
            keys[key] = name.strip() or f"client-{len(keys) + 1}"
    return keys


def read_api_keys(path: Path | None) -> dict[str, str] | None:
    """Keys from `path`, else from $COURSE_API_KEYS, else None (no authentication)."""
    if path is not None:
        if not Path(path).is_file():
            raise FileNotFoundError(f"API keys file {path} not found")
        keys = parse_api_keys(Path(path).read_text(encoding="utf-8"))
        if not keys:
            raise ValueError(f"{path} holds no API keys: write one key per line (KEY [NAME])")
        return keys
    return parse_api_keys(os.environ[API_KEYS_ENV]) or None if os.environ.get(API_KEYS_ENV) else None


class PassageEngine:
    """A `production.service.SearchEngine` over passages whose results carry their document,
    location and text (everything else is the wrapped engine's)."""

    def __init__(self, engine, meta):
        self.engine, self.meta = engine, meta

    def __getattr__(self, attr):  # store, modes, reranker, encode_query, ...
        return getattr(self.engine, attr)

    def _passages(self, results: list[dict], query: str) -> list[dict]:
        return [passage_hit(self.meta, r["doc_id"], r["score"], query) for r in results]

    def search(self, query: str, k: int, mode: str = "dense", rerank: bool = False,
               query_vec=None) -> list[dict]:
        """Top-k passages: {passage_id, doc_id (the document), start, end, heading, text, ...}."""
        return self._passages(self.engine.search(query, k, mode, rerank, query_vec=query_vec), query)

    def recommend(self, doc_id: str, k: int) -> list[dict]:
        """The k passages closest to passage `doc_id` (a passage id, "<doc>#<n>")."""
        return self._passages(self.engine.recommend(doc_id, k), "")


def build_app(root, name: str, settings):
    """The FastAPI app serving collection `name` under `settings` (a production.service
    Settings); loads the collection's model and fits the tuned BM25 on its passages. Its
    second stage is that of `search --rerank maxsim`: MaxSim interpolated with the first-stage
    score at weight MAXSIM_WEIGHT (chapter 06's choice)."""
    from course_utils.embeddings.encoding import encode
    from course_utils.production.service import SearchEngine, create_app
    from course_utils.rerank import maxsim_scores

    store = col.load_store(root, name)
    if len(store) == 0:
        raise col.CollectionError(f"collection {name!r} is empty: embed documents first")
    check_collection_model(name, store.model_id)
    model = load_model_named(store.model_id)
    meta = store.metadata
    texts = passage_texts(meta)
    engine = PassageEngine(SearchEngine(
        store, lambda q: encode([q], model, cache=False, show_progress=False)[0], texts,
        bm25=bm25_index(list(texts.values())), bm25_ids=list(texts),
        reranker=lambda q, docs: maxsim_scores(model, q, docs), rerank_weight=MAXSIM_WEIGHT), meta)
    app = create_app(engine, settings)
    app.title = f"course-utils: {name}"
    app.state.engine = engine
    return app


def check_port(host: str, port: int) -> int:
    """Bind test: the port (a free one for 0) or a clear error if something listens there."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise col.CollectionError(
                    f"port {port} on {host} is already in use (another server?): choose another "
                    "with --port N, or --port 0 for any free port") from None
            raise col.CollectionError(f"cannot listen on {host}:{port}: {err.strerror}") from None
        return s.getsockname()[1]


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def add_serve_parser(sub, common) -> None:
    """The `serve` subcommand's arguments."""
    v = sub.add_parser("serve", parents=[common], help="serve a collection over HTTP (FastAPI)",
                       description="Chapter 09's search service over a collection: POST /search "
                       "{query, k, mode, rerank}, GET /recommend/{passage_id}, GET /health, "
                       "GET /metrics, OpenAPI docs at /docs. Ctrl-C stops it.")
    v.add_argument("collection")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; "
                   "another address needs API keys)")
    v.add_argument("--port", type=int, default=8000, help="default 8000; 0 = any free port")
    v.add_argument("--api-keys", type=Path, default=None, metavar="FILE",
                   help=f"file of API keys, one per line: KEY [CLIENT-NAME] (default: "
                        f"${API_KEYS_ENV}, 'key1:alice,key2:bob'; none: no authentication)")
    v.add_argument("--rate", type=float, default=10.0, help="requests per second per key")
    v.add_argument("--burst", type=int, default=20, help="requests a key may send at once")
    v.add_argument("--audit-log", type=Path, default=None, metavar="FILE",
                   help="append a JSON line per request (client, endpoint, status; the query "
                        "only as a keyed hash)")


def serve_collection(root, args) -> int:
    """Run the service until interrupted; returns the exit code."""
    import uvicorn

    from course_utils.production.service import Settings

    keys = read_api_keys(args.api_keys)
    if keys is None and not _loopback(args.host):
        raise col.CollectionError(f"--host {args.host} would let other machines query without a "
                                  "key: pass --api-keys FILE (or set $COURSE_API_KEYS)")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port {args.port} is not a port number (0-65535)")
    port = check_port(args.host, args.port)
    settings = Settings(api_keys=keys, rate=args.rate, burst=args.burst,
                        audit_path=str(args.audit_log) if args.audit_log else None,
                        audit_secret=os.urandom(32) if args.audit_log else None)
    app = build_app(root, args.collection, settings)
    if keys is None:
        warn("no API keys: anyone on this machine can query (pass --api-keys FILE or set "
             f"${API_KEYS_ENV})")
    url = f"http://{args.host}:{port}"
    print(f"serving {args.collection!r} ({len(app.state.engine.store)} passages) at {url}  "
          f"(docs {url}/docs, metrics {url}/metrics; Ctrl-C stops)", flush=True)
    config = uvicorn.Config(app, host=args.host, port=port, log_level="warning", access_log=False)
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown
        pass
    print("stopped", flush=True)
    return 0
