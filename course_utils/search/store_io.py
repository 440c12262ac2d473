"""Private helpers of `course_utils.search.store`: metadata tables, `where` filters, atomic save/load."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path

import faiss
import numpy as np
import pandas as pd

__all__ = ["FORMAT_VERSION", "RESERVED", "check_doc_ids", "metadata_frame", "where_mask",
           "write_atomically", "read_schema", "read_payload"]

FORMAT_VERSION = 1
RESERVED = ("doc_id", "_label")
INDEX_FILE, META_FILE, SCHEMA_FILE = "index.faiss", "metadata.parquet", "schema.json"


def check_doc_ids(doc_ids, name: str = "doc_ids") -> list[str]:
    ids = [doc_ids] if isinstance(doc_ids, str) else list(doc_ids)
    bad = [d for d in ids if not isinstance(d, str)]
    if bad:
        raise TypeError(f"{name} must be strings, got {bad[0]!r} ({type(bad[0]).__name__}); "
                        "convert with str()")
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].unique().tolist()
        raise ValueError(f"{name} repeat {dup[:5]}; each document needs a unique id")
    return ids


def metadata_frame(metadata, doc_ids: list[str]) -> pd.DataFrame:
    """Metadata (None, list of dicts, dict of columns or DataFrame) → DataFrame indexed by doc_id."""
    if metadata is None:
        frame = pd.DataFrame(index=range(len(doc_ids)))
    elif isinstance(metadata, pd.DataFrame):
        frame = metadata.reset_index(drop=True)  # a new frame: the caller's is untouched
    elif isinstance(metadata, Mapping):
        frame = pd.DataFrame(dict(metadata))
    else:
        frame = pd.DataFrame(list(metadata))
    if len(frame) != len(doc_ids):
        raise ValueError(f"metadata has {len(frame)} rows for {len(doc_ids)} doc_ids; "
                         "pass one metadata row per document, in the same order")
    clash = [c for c in frame.columns if c in RESERVED]
    if clash:
        raise ValueError(f"metadata columns {clash} are reserved by the store; rename them")
    frame.index = pd.Index(doc_ids, name="doc_id")
    return frame


def where_mask(meta: pd.DataFrame, where: Mapping) -> np.ndarray:
    """Rows of `meta` matching every condition: column → value | list/set/tuple | callable."""
    if not isinstance(where, Mapping):
        raise TypeError(f"where must be a dict of column -> condition, got {type(where).__name__}")
    mask = np.ones(len(meta), dtype=bool)
    for col, cond in where.items():
        if col not in meta.columns:
            raise KeyError(f"where uses column {col!r}, but the metadata columns are "
                           f"{list(meta.columns)}")
        mask &= _condition(meta[col], col, cond)
    return mask


def _condition(column: pd.Series, col: str, cond) -> np.ndarray:
    if callable(cond):
        out = np.asarray(cond(column))
        if out.dtype != bool or out.shape != (len(column),):
            raise TypeError(f"where[{col!r}] must return one bool per row, got dtype {out.dtype} "
                            f"and shape {out.shape}")
        return out
    if isinstance(cond, (list, tuple, set, frozenset)):
        return column.isin(list(cond)).to_numpy(dtype=bool)
    return (column == cond).fillna(False).to_numpy(dtype=bool)


def write_atomically(path: Path, index, meta: pd.DataFrame, labels: np.ndarray,
                     schema: dict) -> None:
    """Write the three files into a temporary sibling folder, then swap it into place."""
    if path.exists() and not (path / SCHEMA_FILE).is_file():
        raise FileExistsError(f"{path} exists and is not a saved VectorStore; refusing to "
                              "overwrite it — choose another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        faiss.write_index(index, str(tmp / INDEX_FILE))
        table = meta.reset_index()
        table.insert(1, "_label", labels)
        table.to_parquet(tmp / META_FILE, index=False)
        (tmp / SCHEMA_FILE).write_text(json.dumps(schema, indent=2))
        _swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, path: Path) -> None:
    # os.replace cannot replace a non-empty folder, so move the old one aside first.
    if path.exists():
        old = path.parent / f".{path.name}.old-{uuid.uuid4().hex}"
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


def read_schema(path: Path, expect_model, expect_dim) -> dict:
    file = path / SCHEMA_FILE
    if not file.is_file():
        raise FileNotFoundError(f"no {SCHEMA_FILE} in {path}: not a saved VectorStore "
                                "(create one with VectorStore(...).save(path))")
    schema = json.loads(file.read_text())
    if schema.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has store format {schema.get('format_version')}, this code "
                         f"reads format {FORMAT_VERSION}; rebuild the store with this version")
    stored = schema["model_id"]
    if expect_model is not None and stored != expect_model:
        raise ValueError(f"the store at {path} holds vectors from model {stored!r}, but "
                         f"{expect_model!r} was asked for; vectors of different models are not "
                         f"comparable. Re-embed the corpus with {expect_model!r} into a new "
                         f"store, or load with expect_model={stored!r} and encode queries "
                         "with that model")
    if expect_dim is not None and schema["dim"] != expect_dim:
        raise ValueError(f"the store at {path} holds {schema['dim']}-d vectors, but dimension "
                         f"{expect_dim} was asked for; re-embed the corpus with the model you "
                         "use for queries, or load with the model the store was built with")
    return schema


def read_payload(path: Path, schema: dict):
    """Read (index, meta indexed by doc_id, labels int64) and check they agree with the schema."""
    index = faiss.read_index(str(path / INDEX_FILE))
    table = pd.read_parquet(path / META_FILE)
    labels = table.pop("_label").to_numpy(dtype=np.int64)
    meta = table.set_index("doc_id")
    if not (index.ntotal == len(meta) == schema["count"]) or index.d != schema["dim"]:
        raise ValueError(f"{path} is inconsistent (index has {index.ntotal} vectors of dim "
                         f"{index.d}, metadata {len(meta)} rows, schema says {schema['count']} "
                         f"of dim {schema['dim']}); rebuild the store")
    return index, meta, labels
