"""Embed a corpus on a Ray cluster: Ray Data `map_batches` with an actor pool, Parquet shards.

    read (a DataFrame or Parquet file of doc_id, text)
      -> map_batches(Embedder, compute=ActorPoolStrategy(size=n))   each actor loads the model once
      -> write_parquet(folder)                                       shards: doc_id, vector, node, ...

`embed_to_shards` adds what a real job needs around that pipeline:

- **resume**: ids already in readable shards of the output folder are skipped, and a shard that
  cannot be read (cut off by a crash) is deleted first, so its documents are embedded again;
- **exactly once**: `read_shards` refuses an output with a duplicate id, and `check_exactly_once`
  says which ids are missing or extra;
- **the embedding cache** (`course_utils.embeddings.cache.EmbeddingCache`, keyed by a hash of the text):
  texts the cache knows are written to a shard without any encoding, and the vectors the cluster
  computed are added to the cache, so a re-run or a single-process `encode` later reuses them.

Vectors are `model.encode(...)` L2-normalised with `course_utils.embeddings.normalize`: the same
rows as `encode(texts, model)` in one process, up to float rounding of differently padded batches.

    >>> summary = embed_to_shards(docs, "out/", model, actors=2)      # doctest: +SKIP
    >>> ids, vectors = read_shards("out/")                             # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from course_utils.embeddings import normalize
from course_utils.embeddings.cache import EmbeddingCache
from course_utils.paths import atomic_path, atomic_write

__all__ = ["Embedder", "embedder_class", "embed_to_shards", "read_shards", "check_exactly_once",
           "docs_frame", "ray_encode", "RayEncoder", "ray_encoder", "read_shards_file"]


class Embedder:
    """A Ray Data actor: loads the model once (in `__init__`), then encodes batch after batch.

    Batches are dicts of numpy arrays with "doc_id" and "text"; the result adds "vector"
    (float32, L2-normalised, as a fixed-size list), the node's IP, the actor's pid and the seconds
    spent encoding (shared out over the batch's rows). Options are class attributes (use
    `embedder_class`) so that no constructor argument has to travel through the object store.
    """
    MODEL = "all-MiniLM-L6-v2"
    THREADS = 1
    BATCH = 32
    REPORT_DIR: str | None = None   # if set: each actor records its pid and batch count there

    def __init__(self):
        import ray

        from course_utils.models import load_model

        try:  # the "Loading weights" bar of transformers would only fill the worker's log
            from transformers.utils import logging as hf_logging
            hf_logging.disable_progress_bar()
        except ImportError:
            pass
        self.model = load_model(self.MODEL, threads=self.THREADS)
        self.node = ray.util.get_node_ip_address()
        self.pid = os.getpid()
        self.batches = 0
        self._report()

    def _report(self) -> None:
        if self.REPORT_DIR:
            path = Path(self.REPORT_DIR) / f"{self.node}-{self.pid}.txt"
            atomic_write(path, str(self.batches))

    def __call__(self, batch: dict):

        texts = [str(t) for t in batch["text"]]
        start = time.perf_counter()
        vectors = normalize(self.model.encode(texts, batch_size=self.BATCH, convert_to_numpy=True,
                                              show_progress_bar=False))
        seconds = time.perf_counter() - start
        self.batches += 1
        self._report()
        n, d = vectors.shape
        return pa.table({
            "doc_id": pa.array([str(x) for x in batch["doc_id"]], pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), pa.float32()), d),
            "node": pa.array([self.node] * n, pa.string()),
            "actor": pa.array([self.pid] * n, pa.int64()),
            "seconds": pa.array([seconds / n] * n, pa.float64()),
        })


def embedder_class(model: str = "all-MiniLM-L6-v2", threads: int = 1, batch_size: int = 32,
                   report_dir: str | Path | None = None) -> type:
    """An `Embedder` subclass with these options baked in (what `map_batches` is given).

    >>> embedder_class("all-MiniLM-L6-v2", threads=1).THREADS
    1
    """
    if not isinstance(threads, int) or threads < 1 or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"threads and batch_size must be whole numbers >= 1, got {threads!r}, {batch_size!r}")
    attrs = {"MODEL": str(model), "THREADS": threads, "BATCH": batch_size,
             "REPORT_DIR": None if report_dir is None else str(report_dir)}
    return type("Embedder", (Embedder,), attrs)


def docs_frame(docs) -> pd.DataFrame:
    """A DataFrame with string columns doc_id, text from a DataFrame, a BEIR corpus dict, or a
    list of (doc_id, text) pairs; ids must be unique and texts strings.

    >>> docs_frame([("a", "cats purr"), ("b", "dogs bark")]).shape
    (2, 2)
    """
    if isinstance(docs, (str, Path)):
        docs = pd.read_parquet(docs)
    if isinstance(docs, pd.DataFrame):
        missing = {"doc_id", "text"} - set(docs.columns)
        if missing:
            raise ValueError(f"docs need columns doc_id and text; missing {sorted(missing)}")
        frame = docs[["doc_id", "text"]].copy()
    elif isinstance(docs, dict):
        frame = pd.DataFrame({"doc_id": list(docs),
                              "text": [(d.get("title", "") + " " + d.get("text", "")).strip()
                                       if isinstance(d, dict) else d for d in docs.values()]})
    else:
        pairs = list(docs)
        if pairs and not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs):
            raise TypeError("docs must be a DataFrame (doc_id, text), a {doc_id: {title, text}} "
                            "corpus, or a list of (doc_id, text) pairs")
        frame = pd.DataFrame(pairs, columns=["doc_id", "text"])
    if frame.empty:
        raise ValueError("no documents to embed")
    bad = [i for i, t in enumerate(frame["text"]) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"text of document {frame['doc_id'].iloc[bad[0]]!r} is not a string")
    frame["doc_id"] = frame["doc_id"].astype(str)
    dup = frame["doc_id"][frame["doc_id"].duplicated()]
    if len(dup):
        raise ValueError(f"duplicate doc id {dup.iloc[0]!r}: ids must be unique")
    return frame.reset_index(drop=True)


def _vectors(column) -> np.ndarray:
    """A Parquet vector column (fixed-size list, list, or Ray's tensor type) as float32 (n, d)."""

    col = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    if isinstance(col.type, pa.ExtensionType):
        col = col.storage
    if len(col) == 0:
        return np.zeros((0, 0), np.float32)
    if pa.types.is_fixed_size_list(col.type):
        return col.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(col), -1)
    return np.asarray(col.to_pylist(), dtype=np.float32)


def _readable_shards(folder: Path, delete_bad: bool) -> list:
    import pyarrow.parquet as pq

    out = []
    for path in sorted(folder.glob("*.parquet")):
        try:
            out.append((path, pq.read_table(path)))
        except Exception:  # cut off by a crash: no footer, bad pages...
            if not delete_bad:
                raise
            path.unlink(missing_ok=True)
    return out


def read_shards(folder, with_info: bool = False, delete_bad: bool = False):
    """(doc_ids, vectors float32 (n, d)) of every Parquet shard in `folder`, in file order.

    with_info=True returns a third item: a DataFrame of doc_id, node, actor, seconds, file.
    Raises ValueError on a duplicate id (an output must hold each document exactly once).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of Parquet shards")
    ids, vecs, info = [], [], []
    for path, table in _readable_shards(folder, delete_bad):
        ids += table.column("doc_id").to_pylist()
        vecs.append(_vectors(table.column("vector")))
        if with_info:
            part = table.drop_columns(["vector"]).to_pandas()
            info.append(part.assign(file=path.name))
    seen, dups = set(), []
    for doc_id in ids:
        (dups.append(doc_id) if doc_id in seen else seen.add(doc_id))
    if dups:
        raise ValueError(f"{len(dups)} duplicate ids in {folder} (e.g. {dups[0]!r}): the output "
                         "holds some documents twice")
    vectors = np.concatenate([v for v in vecs if len(v)]) if any(len(v) for v in vecs) else np.zeros((0, 0), np.float32)
    if not with_info:
        return ids, vectors
    return ids, vectors, (pd.concat(info, ignore_index=True) if info else pd.DataFrame())


def check_exactly_once(expected_ids: Iterable, found_ids: Iterable) -> dict:
    """{"missing", "extra", "duplicates"}: sorted lists, all empty when each id is there once.

    >>> check_exactly_once(["a", "b", "c"], ["c", "a", "a", "z"])
    {'missing': ['b'], 'extra': ['z'], 'duplicates': ['a']}
    """
    expected, found = list(map(str, expected_ids)), list(map(str, found_ids))
    counts = pd.Series(found, dtype=object).value_counts() if found else pd.Series(dtype=int)
    return {"missing": sorted(set(expected) - set(found)), "extra": sorted(set(found) - set(expected)),
            "duplicates": sorted(counts[counts > 1].index.tolist())}


def _write_table(folder: Path, name: str, table) -> Path:
    """Write a Parquet file atomically (a temporary name, then rename)."""
    import pyarrow.parquet as pq

    with atomic_path(folder / name) as tmp:
        pq.write_table(table, tmp)
    return folder / name


def _cached_shard(folder: Path, ids: list[str], vectors: np.ndarray) -> None:

    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
    n, d = vectors.shape
    table = pa.table({"doc_id": pa.array(ids, pa.string()),
                      "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), pa.float32()), d),
                      "node": pa.array(["cache"] * n), "actor": pa.array([0] * n, pa.int64()),
                      "seconds": pa.array([0.0] * n)})
    _write_table(folder, f"cache-{digest}.parquet", table)


def embed_to_shards(docs, folder, model=None, actors: int = 2, batch_size: int = 64,
                    cache: EmbeddingCache | bool = True, threads: int = 1,
                    report_dir: str | Path | None = None, model_name: str | None = None,
                    resources: dict | None = None) -> dict:
    """Embed the documents not yet in `folder` on the connected Ray cluster; returns a summary.

    docs: DataFrame (doc_id, text), Parquet path, BEIR corpus dict or (doc_id, text) pairs.
    model: the loaded model (its id and cache namespace are used; the actors load their own copy
    by name). cache: True (the model's default cache), an EmbeddingCache, or False.
    resources: custom Ray resources each actor needs, e.g. {"embed_slot": 1} on a cluster whose
    nodes offer one slot each (`start_cluster(resources=...)`): then one actor runs per node.
    Needs `ray.init` (or `cluster.connect`) first. Summary: {"documents", "done_before",
    "from_cache", "embedded", "seconds", "shards"}.
    """
    import ray

    from course_utils.embeddings import cache_namespace
    from course_utils.models import model_id

    if not ray.is_initialized():
        raise RuntimeError("Ray is not connected: call course_utils.scale.connect(address) or "
                           "use `with local_cluster(...)` first")
    if not isinstance(actors, int) or actors < 1:
        raise ValueError(f"actors must be a whole number >= 1, got {actors!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    frame = docs_frame(docs)
    name = model_name or (model_id(model) if model is not None else "all-MiniLM-L6-v2")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if report_dir is not None:
        Path(report_dir).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    done = {doc_id for _, table in _readable_shards(folder, delete_bad=True)
            for doc_id in table.column("doc_id").to_pylist()}
    todo = frame[~frame["doc_id"].isin(done)].reset_index(drop=True)
    if cache is True:
        if model is None:
            raise ValueError("cache=True needs the model (for its cache namespace); pass model= or cache=False")
        cache = EmbeddingCache(cache_namespace(model, True))
    if cache is False or cache is None:   # (an empty EmbeddingCache is falsy: it has a __len__)
        cache = None
    from_cache = 0
    if cache is not None and len(todo):
        found, missing = cache.get(todo["text"].tolist())
        if found:
            rows = sorted(found)
            _cached_shard(folder, todo["doc_id"].iloc[rows].tolist(), np.stack([found[i] for i in rows]))
            from_cache = len(rows)
        todo = todo.iloc[missing].reset_index(drop=True)
    before = {p.name for p in folder.glob("*.parquet")}
    if len(todo):
        blocks = max(1, min(len(todo) // batch_size + (len(todo) % batch_size > 0), 4 * actors * 8))
        _spread_batches()
        ds = ray.data.from_items(todo.to_dict("records"), override_num_blocks=blocks)
        ds = ds.map_batches(embedder_class(name, threads, 32, report_dir), batch_size=batch_size,
                            batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors),
                            num_cpus=1, resources=resources)
        ds.write_parquet(str(folder))
        if resources:
            _wait_released(resources)
        if cache is not None:
            new = [p for p in folder.glob("*.parquet") if p.name not in before]
            text = dict(zip(todo["doc_id"], todo["text"]))
            for path in new:
                ids, vecs = read_shards_file(path)
                cache.put([text[i] for i in ids], vecs)
    return {"documents": len(frame), "done_before": len(done), "from_cache": from_cache,
            "embedded": len(todo), "seconds": time.perf_counter() - start,
            "shards": len(list(folder.glob("*.parquet")))}


def _spread_batches() -> None:
    """Hand out batches only once every actor of the pool has loaded its model (otherwise the
    first actor ready takes most of a short job)."""
    import ray

    ctx = ray.data.DataContext.get_current()
    ctx.wait_for_min_actors_s = max(ctx.wait_for_min_actors_s, 600)


def _wait_released(resources: dict, timeout: float = 30.0) -> None:
    """Wait until the finished job's actors have given their custom resources back."""
    import ray

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        total, free = ray.cluster_resources(), ray.available_resources()
        if all(free.get(k, 0) >= total.get(k, 0) for k in resources):
            return
        time.sleep(0.2)


def read_shards_file(path) -> tuple[list[str], np.ndarray]:
    """(doc_ids, vectors) of one Parquet shard."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["doc_id", "vector"])
    return table.column("doc_id").to_pylist(), _vectors(table.column("vector"))


def ray_encode(texts, model_name: str = "all-MiniLM-L6-v2", actors: int = 2,
               batch_size: int = 64, threads: int = 1) -> np.ndarray:
    """Vectors of `texts` (float32, (n, d), L2-normalised, in order) computed by a Ray actor pool."""
    import ray

    texts = list(texts)
    if not texts:
        raise ValueError("no texts to encode: the list is empty")
    frame = pd.DataFrame({"doc_id": [str(i) for i in range(len(texts))], "text": texts})
    blocks = max(1, min(-(-len(texts) // batch_size), 4 * actors * 8))
    _spread_batches()
    ds = ray.data.from_items(frame.to_dict("records"), override_num_blocks=blocks).map_batches(
        embedder_class(model_name, threads), batch_size=batch_size, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=1)
    out = ds.select_columns(["doc_id", "vector"]).to_arrow_refs()
    tables = ray.get(out)
    order = np.concatenate([np.asarray(t.column("doc_id").to_pylist(), dtype=int) for t in tables])
    vectors = np.concatenate([_vectors(t.column("vector")) for t in tables])
    result = np.empty_like(vectors)
    result[order] = vectors
    return result


class RayEncoder:
    """Stands in for a model inside `course_utils.embeddings.encode`: same id and settings (read
    from the wrapped model), but `.encode(texts)` runs `ray_encode` on the connected cluster.
    It returns L2-normalised vectors, so use it with encode's default normalize_vectors=True."""

    def __init__(self, model, actors: int = 2):
        from course_utils.models import model_id

        self._model, self.actors = model, actors
        self.course_model_id = model_id(model)

    def __getattr__(self, attr):          # max_seq_length, get_embedding_dimension, ...
        return getattr(self._model, attr)

    def encode(self, texts, batch_size: int = 32, **_) -> np.ndarray:
        return ray_encode(texts, self.course_model_id, actors=self.actors)


@contextlib.contextmanager
def ray_encoder(model, address: str | None, actors: int = 2):
    """Yield `model` unchanged when address is None; else a `RayEncoder` on the Ray cluster at
    `address` ("local": a Ray started in this process for the block). Disconnects at the end
    if it connected.

    >>> with ray_encoder("my model", None) as m:
    ...     m
    'my model'
    """
    if address is None:
        yield model
        return
    import ray

    from .cluster import connect

    connected_here = not ray.is_initialized()
    if connected_here:
        connect(None if address == "local" else address, num_cpus=actors + 1)
    try:
        yield RayEncoder(model, actors)
    finally:
        if connected_here:
            ray.shutdown()
