"""What a replica serves, as one folder: the vector store, the documents' texts and their versions.

    bundle/
      bundle.json     {"encoder", "collection_version", "model_version", "documents"}
      store/          a `VectorStore` (FAISS + Parquet + schema.json)
      docs.jsonl      {"doc_id", "text"} per line (BM25 is fitted from them when a replica starts)

`collection_version` is a fingerprint of the ids and vectors: re-indexing changes it, and with it
every cache key (`result_cache.search_cache_key`). `model_version` is the query encoder's id.
`encoder` names how queries are encoded: a course model (`all-MiniLM-L6-v2`, loaded offline with
one thread), or `hashing-<dim>` -- a bag of hashed words, for tests that exercise the stack and
not the model.

>>> enc = hashing_encoder(8)
>>> v = enc("aspirin and stroke"); v.shape, round(float(v @ v), 6)
((8,), 1.0)
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from course_utils.paths import atomic_write

__all__ = ["write_bundle", "read_bundle_info", "hashing_encoder", "load_encoder", "load_engine"]


def hashing_encoder(dim: int) -> Callable[[str], np.ndarray]:
    """A deterministic text -> unit vector of shape (dim,): hashed word counts (no model)."""
    def encode(text: str) -> np.ndarray:
        v = np.zeros(dim, np.float32)
        for word in text.lower().split():
            v[int(hashlib.md5(word.encode("utf-8")).hexdigest(), 16) % dim] += 1.0
        norm = np.linalg.norm(v)
        return v / norm if norm else np.full(dim, dim ** -0.5, np.float32)
    return encode


def write_bundle(folder: str | Path, doc_ids: Sequence[str], texts: Sequence[str], vectors: np.ndarray,
                 encoder: str) -> dict:
    """Save a bundle; vectors: float32 (n, d), L2-normalised, row i = doc_ids[i]. Returns its info."""
    from course_utils.search.store import VectorStore

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if not (len(doc_ids) == len(texts) == len(vectors)):
        raise ValueError(f"{len(doc_ids)} ids, {len(texts)} texts and {len(vectors)} vectors: "
                         "give one text and one vector per doc id")
    folder = Path(folder)
    store = VectorStore(encoder, vectors.shape[1])
    store.add(list(doc_ids), vectors)
    store.save(folder / "store")
    atomic_write(folder / "docs.jsonl", "".join(json.dumps({"doc_id": d, "text": t}) + "\n"
                                                for d, t in zip(doc_ids, texts)))
    fingerprint = hashlib.sha256("\n".join(doc_ids).encode("utf-8") + vectors.tobytes()).hexdigest()
    info = {"encoder": encoder, "collection_version": fingerprint[:12], "model_version": encoder,
            "documents": len(doc_ids)}
    atomic_write(folder / "bundle.json", json.dumps(info, indent=2))
    return info


def read_bundle_info(folder: str | Path) -> dict:
    """bundle.json of a bundle folder, with a clear error if it is not one."""
    path = Path(folder) / "bundle.json"
    if not path.exists():
        raise FileNotFoundError(f"{folder} is not a bundle (no bundle.json); write one with write_bundle()")
    return json.loads(path.read_text(encoding="utf-8"))


def load_encoder(name: str, threads: int = 1) -> Callable[[str], np.ndarray]:
    """The query encoder a bundle names: `hashing-<dim>` or a course model id."""
    if name.startswith("hashing-"):
        return hashing_encoder(int(name.split("-", 1)[1]))
    from course_utils.embeddings.encoding import encode
    from course_utils.models.loading import load_model

    model = load_model(name, threads=threads)
    return lambda text: encode([text], model, cache=False, show_progress=False)[0]


def load_engine(folder: str | Path, threads: int = 1):
    """A `SearchEngine` (dense + BM25 + hybrid) over the bundle in `folder`."""
    from course_utils.lexical.bm25 import BM25
    from course_utils.production.service.engine import SearchEngine
    from course_utils.search.store import VectorStore

    folder = Path(folder)
    info = read_bundle_info(folder)
    store = VectorStore.load(folder / "store", expect_model=info["encoder"])
    docs = [json.loads(line) for line in (folder / "docs.jsonl").read_text(encoding="utf-8").splitlines()]
    ids, texts = [d["doc_id"] for d in docs], [d["text"] for d in docs]
    encode_query = load_encoder(info["encoder"], threads)
    return SearchEngine(store, encode_query, dict(zip(ids, texts)), bm25=BM25().fit(texts), bm25_ids=ids)
