import numpy as np
import pytest

from course_utils import embeddings
from course_utils.embeddings import encoding as encoding_module
from course_utils.embeddings.cache import EmbeddingCache


def _fill(root):
    cache = EmbeddingCache("m", root=root)
    cache.put(["a", "b"], np.arange(6, dtype=np.float32).reshape(2, 3))
    return next((root / "m").glob("shard-*.npz"))


def test_roundtrip(tmp_path):
    _fill(tmp_path)
    found, missing = EmbeddingCache("m", root=tmp_path).get(["b", "c", "a"])
    assert missing == [1] and np.array_equal(found[0], [3, 4, 5]) and np.array_equal(found[2], [0, 1, 2])


def test_truncated_shard_is_detected_and_rebuilt(tmp_path, fake_model, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    embeddings.encode(["alpha", "beta"], fake_model, show_progress=False)
    shard = next(tmp_path.rglob("shard-*.npz"))
    shard.write_bytes(shard.read_bytes()[:50])             # truncated write
    encoding_module._OPEN_CACHES.clear()                         # a new process reads the disk again
    fake_model.calls = 0
    with pytest.warns(UserWarning, match="corrupt"):
        v = embeddings.encode(["alpha", "beta"], fake_model, show_progress=False)
    assert fake_model.calls == 2                            # re-encoded, not silently used
    assert np.allclose(v, embeddings.encode(["alpha", "beta"], fake_model, cache=False, show_progress=False))


def test_edited_shard_fails_its_digest(tmp_path):
    shard = _fill(tmp_path)
    with np.load(shard) as npz:
        keys, vectors, digest = npz["keys"], npz["vectors"].copy(), npz["digest"]
    vectors[0, 0] = 99.0                                     # silently changed numbers
    np.savez(shard.with_suffix(""), keys=keys, vectors=vectors, digest=digest)
    with pytest.warns(UserWarning, match="corrupt"):
        assert len(EmbeddingCache("m", root=tmp_path)) == 0
    assert not shard.exists()


def test_put_length_mismatch(tmp_path):
    with pytest.raises(ValueError, match="2 texts but 1 vectors"):
        EmbeddingCache("m", root=tmp_path).put(["a", "b"], np.ones((1, 3)))


def test_no_temp_files_left(tmp_path):
    _fill(tmp_path)
    assert not list((tmp_path / "m").glob("*.tmp"))


@pytest.mark.parametrize("bad", ["", "../escape", "a b"])
def test_bad_namespace(bad, tmp_path):
    with pytest.raises(ValueError, match="namespace"):
        EmbeddingCache(bad, root=tmp_path)
