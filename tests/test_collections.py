"""Named collections: incremental embedding by content hash, resuming, ANN indexes, model checks.

In-process with the fake encoder of conftest.py (no model needed); the CLI tests run the same
code as a subprocess with the real model.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from course_utils import collections as col
from course_utils.embeddings import encode


@pytest.fixture
def FakeEncoder(fake_model):
    """The class of conftest's fake encoder, to make fresh or differently shaped ones."""
    return type(fake_model)


def _docs(n: int, start: int = 0) -> list[dict]:
    return [{"doc_id": f"d{i}", "title": f"T{i}", "text": f"document number {i} about topic {i % 5}",
             "year": 2000 + i % 7} for i in range(start, start + n)]


def _texts(docs):
    return [(d["title"] + " " + d["text"]).strip() for d in docs]


def test_embed_creates_a_collection_with_schema_and_manifest(tmp_path, fake_model, FakeEncoder):
    summary = col.embed_documents(tmp_path, "c1", _docs(5), fake_model, show_progress=False)
    assert summary == {"new": 5, "changed": 0, "unchanged": 0, "removed": 0, "gone": 0, "count": 5}
    schema = json.loads((tmp_path / "c1" / "store" / "schema.json").read_text())
    assert schema["model_id"] == "fake-encoder" and schema["dim"] == 8 and schema["count"] == 5
    store = col.load_store(tmp_path, "c1")
    meta = store.metadata
    assert list(meta.index) == [f"d{i}" for i in range(5)]
    assert meta.loc["d3", "sha256"] == col.doc_hash(_docs(5)[3]) and meta.loc["d3", "year"] == 2003
    want = encode(_texts(_docs(5)), FakeEncoder(), cache=False, show_progress=False)
    np.testing.assert_allclose(store.get_vectors(list(meta.index)), want, rtol=1e-6)


def test_second_embed_encodes_only_new_and_changed_documents(tmp_path, FakeEncoder):
    model = FakeEncoder()
    col.embed_documents(tmp_path, "c", _docs(6), model, show_progress=False)
    assert model.calls == 6
    docs = _docs(7)
    docs[2] = {**docs[2], "text": "rewritten"}
    summary = col.embed_documents(tmp_path, "c", docs, model, show_progress=False)
    assert (summary["new"], summary["changed"], summary["unchanged"]) == (1, 1, 5)
    assert model.calls == 6 + 2  # only the new and the changed text reached the encoder
    store = col.load_store(tmp_path, "c")
    assert len(store) == 7 and store.metadata.loc["d2", "text"] == "rewritten"


def test_prune_removes_documents_missing_from_the_source(tmp_path, fake_model):
    col.embed_documents(tmp_path, "c", _docs(6), fake_model, show_progress=False)
    kept = col.embed_documents(tmp_path, "c", _docs(4), fake_model, show_progress=False)
    assert kept["gone"] == 2 and kept["count"] == 6
    pruned = col.embed_documents(tmp_path, "c", _docs(4), fake_model, prune=True, show_progress=False)
    assert pruned["removed"] == 2 and pruned["count"] == 4
    assert sorted(col.load_store(tmp_path, "c").metadata.index) == sorted(d["doc_id"] for d in _docs(4))


def test_interrupted_embed_resumes_without_losing_or_duplicating(tmp_path, FakeEncoder):
    docs, model = _docs(10), FakeEncoder()
    with pytest.raises(KeyboardInterrupt):
        col.embed_documents(tmp_path, "c", docs, model, batch_size=3, stop_after=2, show_progress=False)
    assert len(col.load_store(tmp_path, "c")) == 6  # two saved batches
    model.calls = 0
    summary = col.embed_documents(tmp_path, "c", docs, model, batch_size=3, show_progress=False)
    assert (summary["new"], summary["unchanged"], summary["count"]) == (4, 6, 10)
    assert model.calls == 4
    store = col.load_store(tmp_path, "c")
    ids = store.metadata.index.tolist()
    assert sorted(ids) == sorted(d["doc_id"] for d in docs) and len(set(ids)) == len(ids)
    reference = encode(_texts(docs), FakeEncoder(), cache=False, show_progress=False)
    order = [int(i[1:]) for i in ids]
    np.testing.assert_allclose(store.get_vectors(ids), reference[order], rtol=1e-6)


def test_another_model_or_dimension_is_refused(tmp_path, fake_model, FakeEncoder):
    col.embed_documents(tmp_path, "c", _docs(3), fake_model, show_progress=False)
    other = FakeEncoder()
    other.course_model_id = "another-model"
    with pytest.raises(col.CollectionError, match="another-model"):
        col.embed_documents(tmp_path, "c", _docs(3), other, show_progress=False)
    with pytest.raises(col.CollectionError, match="dimension 4"):
        col.embed_documents(tmp_path, "c", _docs(3), FakeEncoder(dim=4), show_progress=False)
    with pytest.raises(col.CollectionError, match="dimension"):
        col.load_store(tmp_path, "c", expect_dim=384)


def test_list_inspect_delete_and_clear_errors(tmp_path, fake_model):
    assert col.list_collections(tmp_path / "nothing-here") == []
    col.embed_documents(tmp_path, "b", _docs(2), fake_model, show_progress=False)
    col.embed_documents(tmp_path, "a", _docs(3), fake_model, show_progress=False)
    assert [c["name"] for c in col.list_collections(tmp_path)] == ["a", "b"]
    info = col.inspect_collection(tmp_path, "a")
    assert (info["count"], info["model"], info["fields"], info["ann"]) == (3, "fake-encoder", ["year"], None)
    with pytest.raises(col.CollectionError, match="unknown collection 'zz'.*existing: a, b"):
        col.inspect_collection(tmp_path, "zz")
    with pytest.raises(col.CollectionError, match="bad collection name"):
        col.collection_path(tmp_path, "../escape")
    col.delete_collection(tmp_path, "a")
    assert [c["name"] for c in col.list_collections(tmp_path)] == ["b"]


def test_ann_index_matches_exact_search_and_goes_stale_on_change(tmp_path, fake_model):
    docs = _docs(60)
    col.embed_documents(tmp_path, "c", docs, fake_model, show_progress=False)
    state = col.build_ann(tmp_path, "c", "HNSW8", efConstruction=64)
    assert state["factory"] == "HNSW8" and state["count"] == 60
    assert col.ann_state(tmp_path, "c")["fresh"]
    store = col.load_store(tmp_path, "c")
    q = store.get_vectors(["d5", "d17"])
    rows, scores, how = col.dense_search(tmp_path, "c", store, q, 5, efSearch=64)
    exact_rows, exact_scores, exact_how = col.dense_search(tmp_path, "c", store, q, 5, exact=True)
    assert how == "ann: HNSW8" and exact_how == "exact"
    assert [r[0] for r in rows] == ["d5", "d17"] == [r[0] for r in exact_rows]
    np.testing.assert_allclose(scores[0][0], exact_scores[0][0], rtol=1e-5)
    col.embed_documents(tmp_path, "c", _docs(61), fake_model, show_progress=False)
    assert col.ann_state(tmp_path, "c") is None  # a change drops the index: exact search again
    assert col.dense_search(tmp_path, "c", col.load_store(tmp_path, "c"), q, 3)[2] == "exact"
    col.build_ann(tmp_path, "c", "HNSW8")
    assert col.build_ann(tmp_path, "c", "exact") == {"factory": "exact"}
    assert col.ann_state(tmp_path, "c") is None


def test_plan_and_hash():
    assert col.doc_hash({"doc_id": "a", "text": "x"}) != col.doc_hash({"doc_id": "a", "text": "y"})
    parts = col.plan_changes(None, _docs(2))
    assert [d["doc_id"] for d in parts["new"]] == ["d0", "d1"] and parts["gone"] == []
