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


def test_many_small_puts_are_merged_and_nothing_is_lost(tmp_path, monkeypatch):
    from course_utils.embeddings import cache as cache_mod
    monkeypatch.setattr(cache_mod, "MAX_SHARDS", 8)
    cache = EmbeddingCache("per-query", root=tmp_path)
    texts = [f"query {i}" for i in range(30)]
    for i, t in enumerate(texts):                    # one put per call, as a per-query scorer does
        cache.put([t], np.full((1, 1), i, np.float32))
    shards = list((tmp_path / "per-query").glob("shard-*.npz"))
    assert 1 <= len(shards) <= 8
    fresh = EmbeddingCache("per-query", root=tmp_path)       # another process reads it all back
    found, missing = fresh.get(texts)
    assert not missing and [float(found[i][0]) for i in range(30)] == list(range(30))


def test_compact_skips_a_shard_merged_away_meanwhile(tmp_path, recwarn):
    cache = EmbeddingCache("race", root=tmp_path)
    for t in "abc":
        cache.put([t], np.ones((1, 2), np.float32))
    other = EmbeddingCache("race", root=tmp_path)
    other.compact()                                  # the first cache's shard files are gone now
    assert not cache._read_shard(tmp_path / "race" / "shard-0000000000000000.npz")
    assert len(EmbeddingCache("race", root=tmp_path)) == 3 and not recwarn.list
