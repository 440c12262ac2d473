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
    """What is encoded for a one-passage document: "title: text"."""
    return [f"{d['title']}: {d['text']}" for d in docs]


def _pids(docs):
    return [f"{d['doc_id']}#0" for d in docs]


def test_embed_creates_a_collection_with_schema_and_manifest(tmp_path, fake_model, FakeEncoder):
    summary = col.embed_documents(tmp_path, "c1", _docs(5), fake_model, show_progress=False)
    assert summary == {"new": 5, "changed": 0, "unchanged": 0, "removed": 0, "gone": 0, "count": 5,
                       "passages": 5, "truncated_passages": 0, "truncated_tokens": 0, "window": 16}
    schema = json.loads((tmp_path / "c1" / "store" / "schema.json").read_text())
    assert schema["model_id"] == "fake-encoder" and schema["dim"] == 8 and schema["count"] == 5
    store = col.load_store(tmp_path, "c1")
    meta = store.metadata
    assert list(meta.index) == _pids(_docs(5))
    row = meta.loc["d3#0"]
    assert (row["document"], row["passage"], row["start"], row["year"]) == ("d3", 0, 0, 2003)
    assert row["end"] == len(_docs(5)[3]["text"]) and row["text"] == _docs(5)[3]["text"]
    info = json.loads((tmp_path / "c1" / "collection.json").read_text())
    assert info["chunking"] == {"chunker": "sentences", "size": 12, "overlap": 0}
    want = encode(_texts(_docs(5)), FakeEncoder(), cache=False, show_progress=False)
    np.testing.assert_allclose(store.get_vectors(list(meta.index)), want, rtol=1e-6)


def test_long_documents_become_passages_and_a_change_re_embeds_only_that_document(tmp_path, FakeEncoder):
    """16-token window, 12-word passages: a 40-word document becomes 4 passages."""
    model = FakeEncoder()
    long = " ".join(f"Sentence {i} has five words." for i in range(8))  # 8 sentences of 6 tokens
    docs = [{"doc_id": "long", "title": "", "text": long}] + _docs(3)
    summary = col.embed_documents(tmp_path, "c", docs, model, show_progress=False)
    assert (summary["count"], summary["passages"], model.calls) == (4, 7, 7)
    meta = col.load_store(tmp_path, "c").metadata
    parts = meta[meta["document"] == "long"]
    assert list(parts.index) == ["long#0", "long#1", "long#2", "long#3"]
    assert all(long[r.start:r.end] == r.text for r in parts.itertuples())
    docs[0] = {**docs[0], "text": long + " One more sentence here."}
    again = col.embed_documents(tmp_path, "c", docs, model, show_progress=False)
    assert (again["changed"], again["unchanged"]) == (1, 3)
    # only the changed document's passages were re-embedded, and of those only the new one was
    # encoded: its four unchanged passages came from the embedding cache
    assert model.calls == 7 + 1
    meta = col.load_store(tmp_path, "c").metadata
    assert (meta["document"] == "long").sum() == 5 and meta.index.is_unique


def test_without_chunking_truncated_tokens_are_counted(tmp_path, fake_model):
    from course_utils.tools.passages import ChunkConfig

    docs = [{"doc_id": "a", "title": "", "text": " ".join(["word"] * 30)}]
    summary = col.embed_documents(tmp_path, "c", docs, fake_model, show_progress=False,
                                  chunking=ChunkConfig("none"))
    assert (summary["passages"], summary["truncated_passages"], summary["truncated_tokens"]) == (1, 1, 14)
    rechunked = col.embed_documents(tmp_path, "c", docs, fake_model, show_progress=False,
                                    chunking=ChunkConfig("fixed", size=10, overlap=0))
    assert (rechunked["changed"], rechunked["passages"], rechunked["truncated_tokens"]) == (1, 3, 0)


def test_a_full_disk_while_saving_leaves_the_previous_collection_intact(tmp_path, fake_model, monkeypatch):
    import errno

    import pandas as pd

    col.embed_documents(tmp_path, "c", _docs(4), fake_model, show_progress=False)
    before = col.load_store(tmp_path, "c").metadata

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    with pytest.raises(OSError, match="No space"):
        col.embed_documents(tmp_path, "c", _docs(6), fake_model, show_progress=False)
    monkeypatch.undo()
    after = col.load_store(tmp_path, "c").metadata
    pd.testing.assert_frame_equal(before, after)
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.startswith(".")]  # no temp left


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
    assert len(store) == 7 and store.metadata.loc["d2#0", "text"] == "rewritten"


def test_prune_removes_documents_missing_from_the_source(tmp_path, fake_model):
    col.embed_documents(tmp_path, "c", _docs(6), fake_model, show_progress=False)
    kept = col.embed_documents(tmp_path, "c", _docs(4), fake_model, show_progress=False)
    assert kept["gone"] == 2 and kept["count"] == 6
    pruned = col.embed_documents(tmp_path, "c", _docs(4), fake_model, prune=True, show_progress=False)
    assert pruned["removed"] == 2 and pruned["count"] == 4
    assert sorted(col.load_store(tmp_path, "c").metadata.index) == sorted(_pids(_docs(4)))


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
    assert sorted(ids) == sorted(_pids(docs)) and len(set(ids)) == len(ids)
    reference = encode(_texts(docs), FakeEncoder(), cache=False, show_progress=False)
    order = [int(i[1:].split("#")[0]) for i in ids]
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
    assert (info["count"], info["documents"], info["model"], info["fields"], info["ann"]) == \
        (3, 3, "fake-encoder", ["year"], None)
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
    q = store.get_vectors(["d5#0", "d17#0"])
    rows, scores, how = col.dense_search(tmp_path, "c", store, q, 5, efSearch=64)
    exact_rows, exact_scores, exact_how = col.dense_search(tmp_path, "c", store, q, 5, exact=True)
    assert how == "ann: HNSW8" and exact_how == "exact"
    assert [r[0] for r in rows] == ["d5#0", "d17#0"] == [r[0] for r in exact_rows]
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


def test_an_interrupted_re_chunking_resumes_with_the_new_settings(tmp_path, fake_model):
    from course_utils.tools.passages import ChunkConfig

    docs = _docs(4)
    col.embed_documents(tmp_path, "c", docs, fake_model, show_progress=False)
    fixed = ChunkConfig("fixed", size=4, overlap=0)
    with pytest.raises(KeyboardInterrupt):
        col.embed_documents(tmp_path, "c", docs, fake_model, batch_size=1, stop_after=1,
                            chunking=fixed, show_progress=False)
    resumed = col.embed_documents(tmp_path, "c", docs, fake_model, show_progress=False)
    assert (resumed["changed"], resumed["unchanged"]) == (3, 1)  # the first one was done
    meta = col.load_store(tmp_path, "c").metadata
    assert meta.groupby("document").size().tolist() == [2, 2, 2, 2]  # 6 words -> 2 windows of 4
    assert col.stored_chunking(tmp_path, "c")[0] == fixed
