"""Named, persistent, incrementally updated collections of passages (what `course-utils` drives).

A root folder (`--root`, else $COURSE_COLLECTIONS, else ~/.course_utils/collections) holds one
folder per collection:

    <root>/<name>/store/    a `course_utils.search.store.VectorStore` of passages: index.faiss
                            (exact inner product), metadata.parquet (one row per passage: its id
                            "<document>#<n>", document, passage n, start/end character offsets in
                            the document, heading path, title, text, the document's sha256, your
                            fields), schema.json (model id, dim, count, ...), saved atomically
    <root>/<name>/ann/      optional ANN index: index.faiss + ann.json (factory, parameters,
                            the store fingerprint it was built from) + doc_ids.json (row → id)
    <root>/<name>/collection.json   model, chunking settings, window, last source

Documents are cut into passages that fit the model's window (`course_utils.tools.passages`).
Incremental and resumable per document: each document's `sha256` (of its title, text, fields
and the chunking settings) is its manifest entry. `embed` chunks and encodes only documents
whose id is new or whose hash changed (a changed document's old passages are replaced), in
batches of whole documents, and saves the store after every batch, so an interrupted run loses
at most the batch in flight and the next run carries on (vectors already computed are also in
the embedding cache). Any change to the store makes an ANN index stale; search then falls back
to exact search.

    >>> docs = [{"doc_id": "a", "title": "", "text": "cats purr"}]
    >>> embed_documents(tmp_root, "pets", docs, model)["passages"]          # doctest: +SKIP
    1
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
from tqdm import tqdm

from course_utils.paths import COLLECTIONS_ENV, atomic_write, collections_root
from course_utils.search.store import VectorStore
from course_utils.tools.passages import (
    ChunkConfig,
    chunk_document,
    heading_paths,
    is_markdown,
    model_window,
    passage_input,
    truncated_tokens,
)

__all__ = ["ROOT_ENV", "CollectionError", "default_root", "collection_path", "list_collections",
           "inspect_collection", "delete_collection", "load_store", "doc_hash", "plan_changes",
           "passages_of", "pq_documents", "stored_chunking", "embed_documents", "build_ann",
           "drop_ann", "ann_state", "dense_search"]

ROOT_ENV = COLLECTIONS_ENV
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class CollectionError(ValueError):
    """A collection is missing, malformed, or used with the wrong model."""


def default_root() -> Path:
    """$COURSE_COLLECTIONS, else ~/.course_utils/collections."""
    return collections_root()


def collection_path(root, name: str, must_exist: bool = True) -> Path:
    """Folder of collection `name` under `root`; checks the name (and that it exists)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise CollectionError(f"bad collection name {name!r}: use letters, digits, '_', '-', '.' "
                              "(starting with a letter or digit)")
    path = Path(root) / name
    if must_exist and not (path / "store" / "schema.json").is_file():
        known = [c["name"] for c in list_collections(root)]
        raise CollectionError(f"unknown collection {name!r} in {root}; existing: "
                              f"{', '.join(known) or 'none'} (create it with `course-utils embed`)")
    return path


def list_collections(root) -> list[dict]:
    """One summary dict per collection under `root` (name, model, dim, count, ann), by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [inspect_collection(root, p.name) for p in sorted(root.iterdir())
            if (p / "store" / "schema.json").is_file()]


def inspect_collection(root, name: str) -> dict:
    """Schema, size on disk, metadata columns and ANN state of one collection."""
    path = collection_path(root, name)
    schema = json.loads((path / "store" / "schema.json").read_text())
    info = json.loads((path / "collection.json").read_text()) if (path / "collection.json").is_file() else {}
    meta_cols = _parquet_columns(path / "store" / "metadata.parquet")
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    store_meta = pq_documents(path / "store" / "metadata.parquet")
    return {"name": name, "path": str(path), "model": schema["model_id"], "dim": schema["dim"],
            "count": schema["count"], "documents": store_meta, "bytes": size, "fields": meta_cols,
            "ann": ann_state(root, name, schema), **{k: v for k, v in info.items() if k != "name"}}


def pq_documents(path: Path) -> int:
    """Distinct documents in a store's metadata file (rows are passages)."""
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    column = "document" if "document" in names else "doc_id"
    return len(set(pq.read_table(path, columns=[column]).column(column).to_pylist()))


def _parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    skip = {"doc_id", "_label", "sha256", "text", "title", "document", "passage", "start", "end",
            "heading"}
    return [c for c in pq.read_schema(path).names if c not in skip and not c.startswith("__")]


def delete_collection(root, name: str) -> None:
    """Remove the collection's folder (vectors, metadata and ANN index)."""
    shutil.rmtree(collection_path(root, name))


def load_store(root, name: str, expect_model: str | None = None,
               expect_dim: int | None = None) -> VectorStore:
    """The collection's VectorStore; refuses another model id or dimension (CollectionError)."""
    path = collection_path(root, name)
    try:
        return VectorStore.load(path / "store", expect_model, expect_dim)
    except ValueError as err:
        raise CollectionError(f"collection {name!r}: {err}") from None


def doc_hash(doc: dict, salt: str = "") -> str:
    """sha256 of a document's title, text and fields (its id excluded), and of `salt` (the
    chunking settings: other settings give other passages).

    >>> doc_hash({"doc_id": "a", "text": "x"}) == doc_hash({"doc_id": "b", "text": "x"})
    True
    """
    body = {k: v for k, v in doc.items() if k != "doc_id"}
    return hashlib.sha256((json.dumps(body, sort_keys=True, default=str) + salt).encode()).hexdigest()


def _documents(meta: pd.DataFrame) -> pd.Series:
    """Document id of each stored passage (a collection from before passages: the row id)."""
    if "document" in meta.columns:
        return meta["document"].astype(str)
    return pd.Series(meta.index, index=meta.index, dtype=str)


def plan_changes(store: VectorStore | None, docs: list[dict], salt: str = "") -> dict[str, list]:
    """Split docs into new / changed / unchanged (by id and hash) and ids of the store not in docs.

    A document is stored as passages; all of them carry the document's hash ("sha256").
    >>> plan_changes(None, [{"doc_id": "a", "text": "x"}])["new"][0]["doc_id"]
    'a'
    """
    stored = {}
    if store is not None and len(store):
        meta = store.metadata
        stored = dict(zip(_documents(meta), meta["sha256"]))
    out = {"new": [], "changed": [], "unchanged": []}
    for doc in docs:
        old = stored.get(doc["doc_id"])
        key = "new" if old is None else "unchanged" if old == doc_hash(doc, salt) else "changed"
        out[key].append(doc)
    seen = {d["doc_id"] for d in docs}
    out["gone"] = [d for d in stored if d not in seen]
    return out


def passages_of(store: VectorStore, documents) -> list[str]:
    """Ids of the stored passages of `documents` (document ids)."""
    meta = store.metadata
    wanted = set(documents)
    return [pid for pid, doc in zip(meta.index, _documents(meta)) if doc in wanted]


def _write_info(path: Path, **updates) -> None:
    file = path / "collection.json"
    info = json.loads(file.read_text()) if file.is_file() else {"created": _now()}
    info.update(updates, updated=_now())
    atomic_write(file, json.dumps(info, indent=2))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def stored_chunking(root, name: str) -> tuple[ChunkConfig | None, int | None]:
    """(chunking, model window) a collection was embedded with; (None, None) for a new one."""
    file = Path(root) / name / "collection.json"
    info = json.loads(file.read_text()) if file.is_file() else {}
    if "chunking" not in info:
        return None, None
    return ChunkConfig(**info["chunking"]), info.get("window")


def _passage_rows(docs: list[dict], config: ChunkConfig, model, salt: str) -> tuple[list, list, list]:
    """(passage ids, texts to encode, metadata rows) of the documents' passages."""

    from course_utils.embeddings.encoding import encode

    embed = (lambda texts: encode(texts, model, show_progress=False)) if config.chunker == "semantic" else None
    ids, inputs, rows = [], [], []
    for doc in docs:
        chunks = chunk_document(doc["text"], doc["doc_id"], config, model, embed)
        md = is_markdown(doc["doc_id"]) and config.chunker != "none"
        headings = heading_paths(doc["text"], [(c.start, c.end) for c in chunks]) if md else [""] * len(chunks)
        fields = {k: v for k, v in doc.items() if k not in ("doc_id", "title", "text")}
        for chunk, heading in zip(chunks, headings):
            ids.append(chunk.id)
            inputs.append(passage_input(doc["title"], heading, chunk.text))
            rows.append({"document": doc["doc_id"], "passage": chunk.index, "start": chunk.start,
                         "end": chunk.end, "heading": heading, "title": doc["title"],
                         "text": chunk.text, **fields, "sha256": doc_hash(doc, salt)})
    return ids, inputs, rows


def _batches(work: list[dict], batch_size: int, config, model, salt):
    """Whole documents' passages, in batches of at least `batch_size` passages (the last smaller)."""
    batch = ([], [], [], [])
    for doc in work:
        ids, inputs, rows = _passage_rows([doc], config, model, salt)
        for part, new in zip(batch, (ids, inputs, rows, [doc["doc_id"]])):
            part.extend(new)
        if len(batch[0]) >= batch_size:
            yield batch
            batch = ([], [], [], [])
    if batch[3]:
        yield batch


def embed_documents(root, name: str, docs: list[dict], model, batch_size: int = 256,
                    prune: bool = False, source: str | None = None, show_progress: bool = True,
                    stop_after: int | None = None, chunking: ChunkConfig | None = None) -> dict:
    """Cut new/changed docs into passages and encode them into collection `name`; returns counts.

    docs: dicts with "doc_id", "title", "text" and optional scalar fields. chunking: how
    documents become passages (default: the collection's own, else `ChunkConfig()`); another
    chunking than the stored one re-embeds every document. A changed document's old passages
    are replaced by its new ones; others are not touched. The store is saved after each batch
    of about `batch_size` passages (whole documents), so an interrupted run loses at most the
    batch in flight. prune=True also removes stored documents that are not in `docs`.
    stop_after=N raises KeyboardInterrupt after N saved batches (testing hook).
    Returns {"new", "changed", "unchanged", "removed", "gone", "count" (documents),
    "passages", "truncated_passages", "truncated_tokens", "window"}.
    """
    from course_utils.embeddings.encoding import encode
    from course_utils.models.loading import model_id

    mid = model_id(model)
    path = collection_path(root, name, must_exist=False)
    exists = (path / "store" / "schema.json").is_file()
    dim = int(model.get_embedding_dimension())
    store = load_store(root, name, mid, dim) if exists else VectorStore(mid, dim)
    config, window = stored_chunking(root, name)
    if chunking is not None or config is None or window is None:  # (an unchanged re-run loads no model)
        window = model_window(model)
        config = (chunking or config or ChunkConfig()).resolved(window)
    salt = json.dumps(config.as_dict(), sort_keys=True)
    todo = plan_changes(store, docs, salt)
    work = todo["new"] + todo["changed"]
    removed = todo["gone"] if prune else []
    if removed:
        store.remove(passages_of(store, removed))
    if work or removed or not exists:
        drop_ann(path)
    if removed or not exists:
        store.save(path / "store")
    if work or not exists:  # before the first batch: a resumed run goes on with these settings
        _write_info(path, model=mid, chunking=config.as_dict(), window=window)
    bar = tqdm(total=len(work), desc=f"embedding into {name!r}", unit="doc", disable=not show_progress)
    cut, cut_passages, done = 0, 0, 0
    for i, (ids, inputs, rows, batch_docs) in enumerate(_batches(work, batch_size, config, model, salt)):
        old = passages_of(store, batch_docs)
        if old:
            store.remove(old)
        if ids:
            lost = truncated_tokens(inputs, model, window)
            cut, cut_passages = cut + sum(lost), cut_passages + sum(n > 0 for n in lost)
            store.add(ids, encode(inputs, model, show_progress=False), rows, upsert=True)
        store.save(path / "store")
        bar.update(len(batch_docs))
        done += len(batch_docs)
        if stop_after is not None and i + 1 >= stop_after and done < len(work):
            bar.close()
            raise KeyboardInterrupt(f"stopped after {i + 1} batches (stop_after)")
    bar.close()
    _write_info(path, model=mid, last_source=source, chunking=config.as_dict(), window=window)
    return {"new": len(todo["new"]), "changed": len(todo["changed"]),
            "unchanged": len(todo["unchanged"]), "removed": len(removed),
            "gone": len(todo["gone"]) - len(removed), "count": int(_documents(store.metadata).nunique()),
            "passages": len(store), "truncated_passages": cut_passages, "truncated_tokens": cut,
            "window": window}


# ---------------------------------------------------------------- ANN indexes
def _fingerprint(schema: dict) -> list[int]:
    return [int(schema["count"]), int(schema["next_label"])]


def ann_state(root, name: str, schema: dict | None = None) -> dict | None:
    """The ANN index's ann.json plus "fresh" (built from the current store), or None."""
    path = collection_path(root, name)
    if not (path / "ann" / "ann.json").is_file():
        return None
    schema = schema or json.loads((path / "store" / "schema.json").read_text())
    state = json.loads((path / "ann" / "ann.json").read_text())
    state["fresh"] = state["fingerprint"] == _fingerprint(schema)
    return state


def drop_ann(path: Path) -> None:
    shutil.rmtree(Path(path) / "ann", ignore_errors=True)


def build_ann(root, name: str, factory: str, **build_params) -> dict:
    """Build a FAISS index from `factory` (course_utils.ann.indexes) over the collection; returns ann.json.

    factory "Flat" (or "exact") removes the ANN index: search then uses the store's exact index.
    """
    from course_utils.ann.indexes import build_index

    path = collection_path(root, name)
    if factory.lower() in ("flat", "exact"):
        drop_ann(path)
        return {"factory": "exact"}
    store = load_store(root, name)
    ids = store.metadata.index.tolist()
    if not ids:
        raise CollectionError(f"collection {name!r} is empty: embed documents first")
    index = build_index(factory, store.get_vectors(ids), **build_params)
    state = {"factory": factory, "build_params": build_params, "count": len(ids),
             "bytes": int(faiss.serialize_index(index).nbytes),
             "fingerprint": _fingerprint(store.schema()), "built": _now()}
    tmp = Path(tempfile.mkdtemp(prefix=".ann.tmp-", dir=path))
    faiss.write_index(index, str(tmp / "index.faiss"))
    (tmp / "doc_ids.json").write_text(json.dumps(ids))
    (tmp / "ann.json").write_text(json.dumps(state, indent=2))
    drop_ann(path)
    os.replace(tmp, path / "ann")
    return state


def dense_search(root, name: str, store: VectorStore, queries: np.ndarray, k: int,
                 where: dict | None = None, exact: bool = False, **params):
    """Top-k doc ids and scores per query: the ANN index when fresh (and no filter), else exact.

    Returns (list of lists of doc ids, list of lists of scores, "ann: <factory>" or "exact").
    """
    from course_utils.ann import indexes as ann

    state = None if exact or where else ann_state(root, name)
    if state is not None and state["fresh"]:
        folder = collection_path(root, name) / "ann"
        index = faiss.read_index(str(folder / "index.faiss"))
        doc_ids = json.loads((folder / "doc_ids.json").read_text())
        hits = ann.search(index, queries, k, **params)
        rows = [[doc_ids[i] for i in row if i != -1] for row in hits.ids.tolist()]
        how = f"ann: {state['factory']}"
    else:
        if params:
            raise CollectionError(f"search parameters {sorted(params)} need a fresh ANN index; "
                                  f"build one with `course-utils index {name} --factory ...`")
        hits = store.search(queries, k, where=where)
        rows, how = store.doc_ids(hits), "exact"
    scores = [hits.scores[r, :len(row)].tolist() for r, row in enumerate(rows)]
    return rows, scores, how
