"""Unit tests of course_utils.search.store.VectorStore on hand-checkable fixtures."""
import json

import numpy as np
import pandas as pd
import pytest

from course_utils.search.store import VectorStore

IDS = ["a", "b", "c", "d"]
V = np.array([[1, 0], [0.8, 0.6], [0, 1], [-1, 0]], dtype=np.float32)
META = [{"year": 2020, "lang": "en"}, {"year": 2021, "lang": "fr"},
        {"year": 2022, "lang": "en"}, {"year": 2023, "lang": "de"}]
Q = np.array([1.0, 0.0], dtype=np.float32)  # scores: a 1, b 0.8, c 0, d -1


def make_store():
    store = VectorStore("toy-model", dim=2)
    store.add(IDS, V, META)
    return store


def test_add_search_and_map_back_to_doc_ids():
    store = make_store()
    hits = store.search(Q, k=3)
    assert len(store) == 4 and "a" in store and "z" not in store
    assert store.doc_ids(hits) == [["a", "b", "c"]]
    run = store.to_run(hits, ["q1"])
    assert list(run["q1"]) == ["a", "b", "c"]
    assert run["q1"]["b"] == pytest.approx(0.8)
    assert store.metadata.loc["c", "year"] == 2022


@pytest.mark.parametrize("where, expected", [
    ({"lang": "en"}, ["a", "c"]),
    ({"lang": ["fr", "de"]}, ["b", "d"]),
    ({"year": lambda s: s >= 2022}, ["c", "d"]),
    ({"lang": "en", "year": 2022}, ["c"]),
    ({"lang": "xx"}, []),
])
def test_where_prefilter(where, expected):
    hits = make_store().search(Q, k=4, where=where)
    assert make_store().doc_ids(hits) == [expected]
    assert (hits.ids[0, len(expected):] == -1).all()


def test_where_errors():
    store = make_store()
    with pytest.raises(KeyError, match="metadata columns are"):
        store.search(Q, 2, where={"colour": "red"})
    with pytest.raises(TypeError, match="one bool per row"):
        store.search(Q, 2, where={"year": lambda s: 1})
    with pytest.raises(TypeError, match="dict of column"):
        store.search(Q, 2, where=["lang"])


def test_add_errors():
    store = make_store()
    with pytest.raises(ValueError, match=r"already in the store.*upsert=True"):
        store.add(["a"], V[:1])
    with pytest.raises(ValueError, match="repeat"):
        store.add(["x", "x"], V[:2])
    with pytest.raises(TypeError, match="must be strings"):
        store.add([1], V[:1])
    with pytest.raises(ValueError, match="2 vectors for 1 doc_ids"):
        store.add(["x"], V[:2])
    with pytest.raises(ValueError, match="dimension 3"):
        store.add(["x"], np.ones((1, 3), np.float32) / np.sqrt(3))
    with pytest.raises(ValueError, match="1 rows for 2 doc_ids"):
        store.add(["x", "y"], V[:2], [{"year": 1}])
    with pytest.raises(ValueError, match="reserved"):
        store.add(["x"], V[:1], [{"doc_id": "x"}])
    assert len(store) == 4  # nothing half-added


def test_upsert_replaces_vector_and_metadata():
    store = make_store()
    store.add(["d"], np.array([[0.96, 0.28]], np.float32), [{"year": 1999, "lang": "la"}],
              upsert=True)
    assert len(store) == 4
    assert store.doc_ids(store.search(Q, k=2)) == [["a", "d"]]
    assert store.metadata.loc["d", "lang"] == "la"


def test_remove_and_labels_are_never_reused():
    store = make_store()
    store.remove(["a", "c"])
    assert store.doc_ids(store.search(Q, k=4)) == [["b", "d"]]
    store.add(["e"], V[:1])
    hits = store.search(Q, k=1)
    assert store.doc_ids(hits) == [["e"]] and hits.ids[0, 0] == 4  # labels 0..3 were used
    with pytest.raises(KeyError, match="not in the store"):
        store.remove(["b", "zzz"])
    assert "b" in store  # an unknown id removes nothing


def test_get_vectors():
    store = make_store()
    np.testing.assert_allclose(store.get_vectors(["c", "a"]), V[[2, 0]])
    with pytest.raises(KeyError, match="not in the store"):
        store.get_vectors(["nope"])


def test_save_load_round_trip(tmp_path):
    store = make_store()
    store.remove(["b"])
    store.save(tmp_path / "s")
    schema = json.loads((tmp_path / "s" / "schema.json").read_text())
    assert schema["model_id"] == "toy-model" and schema["dim"] == 2 and schema["count"] == 3
    assert schema["metric"] == "inner_product" and schema["normalized"] is True
    loaded = VectorStore.load(tmp_path / "s", expect_model="toy-model", expect_dim=2)
    a, b = store.search(Q, k=3, where={"lang": "en"}), loaded.search(Q, k=3, where={"lang": "en"})
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.scores, b.scores)
    pd.testing.assert_frame_equal(store.metadata, loaded.metadata, check_dtype=False)
    z = np.array([-0.6, 0.8], np.float32)
    loaded.add(["z"], z)  # the label counter survived: labels 0..3 were used before saving
    assert loaded.search(z, k=1).ids[0, 0] == 4


def test_save_is_atomic_replace_and_refuses_foreign_folders(tmp_path):
    store = make_store()
    store.save(tmp_path / "s")
    store.remove(["a"])
    store.save(tmp_path / "s")  # replaces the earlier save
    assert len(VectorStore.load(tmp_path / "s")) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no temp folders left
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a saved VectorStore"):
        store.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_load_refuses_other_model_or_dim(tmp_path):
    make_store().save(tmp_path / "s")
    with pytest.raises(ValueError, match=r"model 'toy-model', but 'other-model' was asked for"):
        VectorStore.load(tmp_path / "s", expect_model="other-model")
    with pytest.raises(ValueError, match="holds 2-d vectors, but dimension 384"):
        VectorStore.load(tmp_path / "s", expect_dim=384)
    with pytest.raises(FileNotFoundError, match="not a saved VectorStore"):
        VectorStore.load(tmp_path / "missing")


def test_inputs_are_not_modified_and_bad_constructor_args():
    vectors, meta = V.copy(), pd.DataFrame(META, index=[10, 11, 12, 13])
    ids = list(IDS)
    VectorStore("m", 2).add(ids, vectors, meta)
    np.testing.assert_array_equal(vectors, V)
    assert meta.index.tolist() == [10, 11, 12, 13] and ids == IDS
    with pytest.raises(TypeError, match="model_id"):
        VectorStore("", 2)
    with pytest.raises(ValueError, match="dim must be a positive integer"):
        VectorStore("m", 0)


def test_empty_store_search_returns_padding():
    hits = VectorStore("m", 2).search(Q, k=2)
    assert hits.ids.tolist() == [[-1, -1]] and np.isneginf(hits.scores).all()
