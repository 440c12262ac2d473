"""Real vector databases next to our FAISS store: LanceDB (embedded) and Chroma (a server).

- LanceDB is a library: `lancedb.connect(folder)` opens a database of Lance tables on disk in
  this process. `lance_table` writes doc ids, vectors and metadata; `lance_search` returns a
  run {qid: {doc_id: score}} with score = cosine (LanceDB reports distance = 1 - cosine).
  Without an ANN index LanceDB scans every row, so its top-k must equal FAISS exact search.
- Chroma runs as a separate process (`chroma run --path DIR --host 127.0.0.1 --port P`); the
  client speaks HTTP to it. `chroma_server` starts it, waits for its heartbeat and always stops
  it; data live in DIR, so a new server on the same DIR sees them again. Chroma indexes with
  HNSW (approximate), so its top-k is compared by overlap, not equality.

Embeddings are always passed in explicitly: no embedding function runs inside either database
(Chroma's default would download an ONNX model), and Chroma's telemetry is switched off.

>>> with chroma_server("/tmp/chroma") as server:              # doctest: +SKIP
...     col = server.client().get_or_create_collection("scifact", embedding_function=None)
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from course_utils.production.serving import HOST, free_port, run_process

__all__ = ["lance_table", "lance_search", "lance_text_search", "ChromaServer", "chroma_server",
           "chroma_upsert", "chroma_query", "topk_agreement", "chroma_executable"]

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("LANCEDB_LOG", "error")  # read once, when lancedb is first imported: no coloured warnings


def _as_vectors(vectors, n: int) -> np.ndarray:
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    if v.ndim != 2 or len(v) != n:
        raise ValueError(f"vectors must have shape ({n}, d) (one row per doc id), got {v.shape}")
    return v


# ------------------------------------------------------------------------------------- LanceDB
def lance_table(db_path, name: str, doc_ids: Sequence[str], vectors, metadata: pd.DataFrame | None = None,
                text: Sequence[str] | None = None, fts: bool = False):
    """Create (or overwrite) LanceDB table `name`: columns doc_id, vector, [text], metadata columns.

    fts=True also builds LanceDB's native full-text index on `text` (offline, no tantivy).
    >>> tbl = lance_table(tmp, "docs", ["a"], np.eye(1, 2), text=["cats"])   # doctest: +SKIP
    """
    import lancedb
    import pyarrow as pa

    ids = [str(d) for d in doc_ids]
    v = _as_vectors(vectors, len(ids))
    cols = {"doc_id": pa.array(ids),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), v.shape[1])}
    if text is not None:
        cols["text"] = pa.array(list(text))
    if metadata is not None:
        if len(metadata) != len(ids):
            raise ValueError(f"metadata has {len(metadata)} rows for {len(ids)} doc ids")
        for c in metadata.columns:
            cols[c] = pa.array(metadata[c].tolist())
    table = lancedb.connect(str(db_path)).create_table(name, pa.table(cols), mode="overwrite")
    if fts:
        if text is None:
            raise ValueError("fts=True needs `text`")
        from lancedb.index import FTS
        table.create_index("text", config=FTS())
    return table


def lance_search(table, queries: Mapping[str, np.ndarray] | np.ndarray, k: int = 10,
                 where: str | None = None, query_ids: Sequence[str] | None = None) -> dict:
    """Exact cosine top-k per query vector as a run {qid: {doc_id: cosine}}; where: SQL filter."""
    q = np.asarray(queries, dtype=np.float32)
    qids = list(query_ids) if query_ids is not None else [str(i) for i in range(len(q))]
    run = {}
    for qid, vec in zip(qids, q):
        search = table.search(vec).distance_type("cosine").limit(k)
        if where:
            search = search.where(where, prefilter=True)
        df = search.to_pandas()
        run[qid] = dict(zip(df["doc_id"], (1.0 - df["_distance"]).astype(float)))
    return run


def lance_text_search(table, query: str, k: int = 10) -> list[tuple[str, float]]:
    """LanceDB full-text (BM25) search on the `text` column: [(doc_id, score)], best first."""
    df = table.search(query, query_type="fts").limit(k).to_pandas()
    return list(zip(df["doc_id"], df["_score"].astype(float)))


# -------------------------------------------------------------------------------------- Chroma
def chroma_executable() -> str:
    """The `chroma` command next to this Python (the venv's bin), else the one on PATH."""
    here = Path(sys.executable).parent / "chroma"
    found = str(here) if here.exists() else shutil.which("chroma")
    if not found:
        raise FileNotFoundError("the `chroma` command was not found; install chromadb (pip install chromadb)")
    return found


@dataclass
class ChromaServer:
    """A running `chroma run` process: its data folder, port and a way to get an HTTP client."""
    path: Path
    port: int
    process: object

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def client(self):
        import chromadb
        from chromadb.config import Settings
        return chromadb.HttpClient(host=HOST, port=self.port, settings=Settings(anonymized_telemetry=False))


@contextlib.contextmanager
def chroma_server(path, port: int | None = None, log_path=None, timeout: float = 90.0) -> Iterator[ChromaServer]:
    """Start `chroma run --path <path> --host 127.0.0.1 --port <port>`; stop it on exit (even on error).

    Waits for GET /api/v2/heartbeat to answer. The log goes to `log_path` (default <path>.log).
    """
    path = Path(path)
    port = port or free_port()
    cmd = [chroma_executable(), "run", "--path", str(path), "--host", HOST, "--port", str(port)]
    log_path = Path(log_path) if log_path else path.with_name(path.name + ".log")
    with run_process(cmd, port=port, log_path=log_path, timeout=timeout,
                     health_url=f"http://{HOST}:{port}/api/v2/heartbeat",
                     env={"ANONYMIZED_TELEMETRY": "False"}) as proc:
        yield ChromaServer(path, port, proc)


def chroma_upsert(collection, doc_ids: Sequence[str], vectors, metadatas: Sequence[dict] | None = None,
                  documents: Sequence[str] | None = None, batch_size: int = 1000) -> int:
    """Upsert in batches (the server caps the batch size); returns the collection's count."""
    ids = [str(d) for d in doc_ids]
    v = _as_vectors(vectors, len(ids))
    for s in range(0, len(ids), batch_size):
        sl = slice(s, s + batch_size)
        collection.upsert(ids=ids[sl], embeddings=v[sl],
                          metadatas=list(metadatas[sl]) if metadatas is not None else None,
                          documents=list(documents[sl]) if documents is not None else None)
    return collection.count()


def chroma_query(collection, queries, k: int = 10, where: dict | None = None,
                 query_ids: Sequence[str] | None = None) -> dict:
    """Top-k per query vector as a run {qid: {doc_id: 1 - distance}} (= cosine in a cosine space)."""
    q = np.asarray(queries, dtype=np.float32)
    qids = list(query_ids) if query_ids is not None else [str(i) for i in range(len(q))]
    res = collection.query(query_embeddings=q, n_results=k, where=where, include=["distances"])
    return {qid: {d: 1.0 - float(dist) for d, dist in zip(ids, dists)}
            for qid, ids, dists in zip(qids, res["ids"], res["distances"])}


def topk_agreement(run: Mapping, reference: Mapping, k: int = 10) -> dict:
    """How closely `run` reproduces `reference` (e.g. FAISS exact) on the top-k of each query.

    Returns overlap (mean |top-k ∩ top-k ref| / k), identical (share of queries with the same
    ids in the same order) and max_score_diff over shared (query, doc) pairs.
    >>> topk_agreement({"q": {"a": 1.0, "b": 0.5}}, {"q": {"a": 1.0, "b": 0.5}}, k=2)["identical"]
    1.0
    """
    def top(docs):
        return [d for d, _ in sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]
    overlaps, same, diff = [], [], 0.0
    for qid, ref_docs in reference.items():
        a, b = top(run.get(qid, {})), top(ref_docs)
        overlaps.append(len(set(a) & set(b)) / max(len(b), 1))
        same.append(a == b)
        for d in set(a) & set(b):
            diff = max(diff, abs(run[qid][d] - ref_docs[d]))
    return {"overlap": float(np.mean(overlaps)), "identical": float(np.mean(same)),
            "max_score_diff": float(diff)}
