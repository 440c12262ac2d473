"""speed helpers: batching/padding against naive counts, ordering guarantees, preprocessing;
no timed assertions (speed lives in benchmarks/bench_fast_embeddings.py)."""

import numpy as np
import pytest

from course_utils import speed


def test_make_batches_cover_every_position_once():
    texts = ["x" * n for n in [5, 1, 9, 3, 7, 2, 8]]
    for sort in (False, True):
        batches = speed.make_batches(texts, 3, sort)
        assert sorted(i for b in batches for i in b) == list(range(7))
        assert all(len(b) <= 3 for b in batches)
    assert speed.make_batches(texts, 3, True)[0] == [2, 6, 4]


def test_padding_share_matches_a_naive_count():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 50, 37)
    for bs in (1, 4, 8):
        for sort in (False, True):
            slots = real = 0
            for batch in speed.make_batches(["x" * int(n) for n in lengths], bs, sort):
                slots += max(lengths[batch]) * len(batch)
                real += lengths[batch].sum()
            assert speed.padding_share(lengths, bs, sort) == pytest.approx(1 - real / slots)
    assert speed.padding_share(lengths, 1) == 0.0
    assert speed.padding_share(lengths, 8, True) < speed.padding_share(lengths, 8, False)


def test_encode_in_batches_keeps_input_order(fake_model):
    texts = [f"text {'long ' * (i % 5)}{i}" for i in range(20)]
    expected = fake_model.encode(texts)
    for sort in (False, True):
        assert np.array_equal(speed.encode_in_batches(fake_model, texts, 6, sort), expected)


def test_normalize_and_dedupe():
    texts = ["A  cat\tsat.", "A cat sat.", " a cat sat. ", "dog"]
    normed = [speed.normalize_text(t) for t in texts]
    assert normed[:2] == ["A cat sat.", "A cat sat."]
    unique, inverse = speed.dedupe(normed)
    assert unique == ["A cat sat.", "a cat sat.", "dog"] and inverse == [0, 0, 1, 2]
    assert [unique[i] for i in inverse] == normed
    assert speed.normalize_text("A B", lowercase=True) == "a b"


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        speed.make_batches(["a"], 0)


def test_stage_times_and_profile(minilm):
    texts = ["A short one.", "A somewhat longer sentence about vitamin D and bone loss."] * 4
    times = speed.stage_times(minilm, texts, batch_size=4, repeats=2)
    assert list(times.index) == ["tokenize", "forward", "pool+normalize"] and (times.seconds > 0).all()
    assert times.share.sum() == pytest.approx(1.0) and (times.spread >= 0).all()
    table = speed.profile_table(lambda: minilm.encode(texts), top=5)
    assert len(table) == 5 and (table.tottime_s.diff().dropna() <= 0).all()


def test_pool_encode_matches_single_process(minilm):
    texts = [f"sentence number {i} about something" for i in range(10)]
    vectors, info = speed.pool_encode(texts, workers=2, chunk_size=3)
    ref = minilm.encode(texts)
    cos = np.sum(vectors * ref, axis=1) / np.linalg.norm(vectors, axis=1) / np.linalg.norm(ref, axis=1)
    assert vectors.shape == (10, 384) and cos.min() > 0.9999
    assert set(info) == {"startup_s", "encode_s", "total_s"}


def test_timing_spread_and_round_robin_ratios():
    from course_utils.speed import timing

    t = timing.Timing((3.0, 2.0, 4.0))
    assert (t.best, t.worst, t.spread) == (2.0, 4.0, 1.0)
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    table = timing.compare_times(fns, repeats=3, baseline="b")
    assert calls == ["a", "b"] * 3  # round-robin: each round calls every contender once
    assert table.loc["b", "speedup"] == 1.0 and table.loc["b", "speedup_min"] == 1.0
    assert (table.speedup_min <= table.speedup_max).all() and len(table) == 2
    with pytest.raises(ValueError, match="baseline"):
        timing.compare_times(fns, baseline="c")
    with pytest.raises(ValueError, match="repeats"):
        timing.time_repeats(lambda: None, 0)


def test_sweeps_report_best_and_spread(fake_model):
    texts = [f"text {'long ' * (i % 5)}{i}" for i in range(12)]
    sweep = speed.batch_sweep(fake_model, texts, batch_sizes=(1, 4), repeats=2, orders=speed.ORDERS)
    assert list(sweep.columns) == ["batch_size", "order", "seconds", "spread", "texts_per_s"]
    assert len(sweep) == 6 and (sweep.spread >= 0).all()
    one = sweep[sweep.batch_size == 1]
    assert one.seconds.nunique() == 1  # batch 1: timed once, shown for every order
    with pytest.raises(ValueError, match="orders"):
        speed.batch_sweep(fake_model, texts, orders=("random",))
