"""LanceDB vs FAISS exact search; a real Chroma server round-trip, including restart persistence."""
import numpy as np
import pandas as pd
import pytest

from course_utils import vectordb
from course_utils.search import exact_search_faiss, to_run


def _data(n=1500, d=32, nq=20, seed=0):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, d)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q = v[:nq] + 0.5 * rng.normal(size=(nq, d)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ids = [f"doc{i}" for i in range(n)]
    meta = pd.DataFrame({"year": 2000 + np.arange(n) % 20, "topic": np.where(np.arange(n) % 3, "bio", "med")})
    return ids, v, q, meta


def test_lance_exact_matches_faiss(tmp_path):
    ids, v, q, meta = _data()
    table = vectordb.lance_table(tmp_path / "lance", "docs", ids, v, meta)
    run = vectordb.lance_search(table, q, k=10)
    ref = to_run(exact_search_faiss(q, v, 10), [str(i) for i in range(len(q))], ids)
    agree = vectordb.topk_agreement(run, ref, k=10)
    assert agree["overlap"] == 1.0 and agree["max_score_diff"] < 1e-4


def test_lance_filter_and_fts(tmp_path):
    ids, v, q, meta = _data(n=300)
    texts = [f"{t} paper number {i}" for i, t in enumerate(meta["topic"])]
    table = vectordb.lance_table(tmp_path / "lance", "docs", ids, v, meta, text=texts, fts=True)
    run = vectordb.lance_search(table, q[:3], k=5, where="year >= 2015 AND topic = 'med'")
    keep = meta.index[(meta.year >= 2015) & (meta.topic == "med")]
    allowed = {ids[i] for i in keep}
    assert all(set(docs) <= allowed and len(docs) == 5 for docs in run.values())
    ref = to_run(exact_search_faiss(q[:3], v[keep], 5), ["0", "1", "2"], [ids[i] for i in keep])
    assert vectordb.topk_agreement(run, ref, k=5)["overlap"] == 1.0
    hits = vectordb.lance_text_search(table, "med", k=5)
    assert len(hits) == 5 and all(meta.topic[ids.index(d)] == "med" for d, _ in hits)


def test_lance_rejects_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match="one row per doc id"):
        vectordb.lance_table(tmp_path, "t", ["a", "b"], np.zeros((3, 4)))


@pytest.fixture(scope="module")
def chroma_story(tmp_path_factory):
    """One scenario against a real server: start, write, query, delete, stop; start again, read."""
    path = tmp_path_factory.mktemp("chroma") / "db"
    ids, v, q, meta = _data(n=400, d=16, nq=5)
    out = {"ids": ids, "v": v, "q": q, "meta": meta}
    with vectordb.chroma_server(path) as server:
        out["port1"] = server.port
        client = server.client()
        col = client.get_or_create_collection("course-test", embedding_function=None,
                                              metadata={"hnsw:space": "cosine"})
        out["count"] = vectordb.chroma_upsert(col, ids, v, meta.to_dict("records"), batch_size=150)
        out["run"] = vectordb.chroma_query(col, q, k=10)
        out["filtered"] = vectordb.chroma_query(col, q, k=5, where={"topic": "med"})
        vectordb.chroma_upsert(col, ids[:1], v[1:2], [{"year": 1999, "topic": "bio"}])  # update doc0
        col.delete(ids=ids[-10:])
        out["count_after_delete"] = col.count()
    out["stopped"] = server.process.poll() is not None
    with vectordb.chroma_server(path) as server2:      # a new process on the same folder
        col = server2.client().get_collection("course-test", embedding_function=None)
        out["count_after_restart"] = col.count()
        out["run_after_restart"] = vectordb.chroma_query(col, q, k=10)
        got = col.get(ids=[ids[0]], include=["metadatas", "embeddings"])
        out["doc0"] = (got["metadatas"][0], np.asarray(got["embeddings"][0]))
        out["deleted"] = col.get(ids=ids[-10:])["ids"]
    return out


def test_chroma_upsert_query_agrees_with_exact(chroma_story):
    s = chroma_story
    assert s["count"] == 400
    ref = to_run(exact_search_faiss(s["q"], s["v"], 10), [str(i) for i in range(5)], s["ids"])
    agree = vectordb.topk_agreement(s["run"], ref, k=10)
    assert agree["overlap"] >= 0.9 and agree["max_score_diff"] < 1e-4   # HNSW: approximate


def test_chroma_filter(chroma_story):
    meta, ids = chroma_story["meta"], chroma_story["ids"]
    med = {ids[i] for i in meta.index[meta.topic == "med"]}
    assert all(len(d) == 5 and set(d) <= med for d in chroma_story["filtered"].values())


def test_chroma_delete_update_and_restart_persistence(chroma_story):
    s = chroma_story
    assert s["stopped"]
    assert s["count_after_delete"] == 390 and s["count_after_restart"] == 390
    assert s["deleted"] == []
    meta0, vec0 = s["doc0"]
    assert meta0 == {"year": 1999, "topic": "bio"} and np.allclose(vec0, s["v"][1], atol=1e-6)
    before = {q: [d for d in docs if d not in s["ids"][-10:] and d != s["ids"][0]] for q, docs in s["run"].items()}
    after = {q: [d for d in docs if d != s["ids"][0]] for q, docs in s["run_after_restart"].items()}
    assert all(before[q] == after[q][:len(before[q])] for q in before)


def test_doctests():
    import doctest
    assert doctest.testmod(vectordb).failed == 0
