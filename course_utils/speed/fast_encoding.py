"""Where encoding time goes and how to spend less of it: batching, length sorting, threads,
a process pool, text preprocessing and deduplication, and profiling (chapter 10).

Every function takes the encoder as an argument (a SentenceTransformer from `models.load_model`
or an `onnx_encoders.OnnxEncoder`: both have `encode(texts, batch_size=...)`). Timings on a
shared machine are noisy: compare ratios measured in the same run, never seconds across runs.

>>> normalize_text("  A   cat\\n sat. ")
'A cat sat.'
>>> dedupe(["a", "b", "a"])
(['a', 'b'], [0, 1, 0])
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import re
import time

import numpy as np
import pandas as pd

from course_utils.paths import THREADS_ENV
from course_utils.speed.timing import Timing, best_time, compare_times  # re-exported: chapter 10 times with them

__all__ = ["make_batches", "padding_share", "encode_in_batches", "best_time", "compare_times", "ORDERS", "batch_sweep",
           "thread_sweep", "pool_encode", "normalize_text", "dedupe", "stage_times",
           "profile_table", "scifact_sample", "retrieval_quality"]

_SPACE = re.compile(r"\s+")


# ------------------------------------------------------------------ batching and padding
def make_batches(texts: list[str], batch_size: int, sort_by_length: bool = False) -> list[list[int]]:
    """Positions of `texts` grouped into batches of `batch_size`, in input order or longest first.

    >>> make_batches(["aa", "a", "aaa"], 2, sort_by_length=True)
    [[2, 0], [1]]
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i])) if sort_by_length \
        else list(range(len(texts)))
    return [order[s:s + batch_size] for s in range(0, len(order), batch_size)]


def padding_share(lengths, batch_size: int, sort_by_length: bool = False) -> float:
    """Share of the token slots in padded batches that are padding, given token counts per text.

    Each batch is padded to its longest text, so mixing short and long texts wastes compute.

    >>> round(padding_share([1, 3, 1, 3], 2), 4)           # batches (1,3),(1,3): 4 of 12 slots
    0.3333
    >>> padding_share([1, 3, 1, 3], 2, sort_by_length=True)
    0.0
    """
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable") if sort_by_length else np.arange(len(lengths))
    slots = real = 0
    for s in range(0, len(order), batch_size):
        batch = lengths[order[s:s + batch_size]]
        slots += batch.max() * len(batch)
        real += batch.sum()
    return float(1 - real / slots) if slots else 0.0


def encode_in_batches(encoder, texts: list[str], batch_size: int = 32,
                      sort_by_length: bool = False) -> np.ndarray:
    """Encode with batches formed here (input order, or longest first), vectors in input order.

    SentenceTransformer.encode sorts by length itself; calling it once per batch lets us switch
    sorting off to measure what it buys.
    """
    out = np.zeros((len(texts), 0), np.float32)
    for batch in make_batches(texts, batch_size, sort_by_length):
        vecs = np.asarray(encoder.encode([texts[i] for i in batch], batch_size=len(batch),
                                         show_progress_bar=False, convert_to_numpy=True), np.float32)
        if out.shape[1] == 0:
            out = np.zeros((len(texts), vecs.shape[1]), np.float32)
        out[batch] = vecs
    return out


ORDERS = ("input order", "length-sorted", "model.encode")


def batch_sweep(encoder, texts: list[str], batch_sizes=(1, 8, 32, 128), repeats: int = 3,
                orders=ORDERS[:2]) -> pd.DataFrame:
    """texts/s for each (batch_size, order), timed round-robin (`timing.compare_times`): columns
    batch_size, order, seconds (best of `repeats`), spread, texts_per_s.

    Orders: "input order" and "length-sorted" form the batches here (`encode_in_batches`, one
    encode call per batch); "model.encode" passes the whole list to `encoder.encode`, which
    sorts by length itself. Batch size 1 is timed once, in the first order, and reported for
    every order: a batch of one text has no padding, so the order cannot change its work.
    """
    if not orders or any(o not in ORDERS for o in orders):
        raise ValueError(f"orders must be some of {ORDERS}, got {orders!r}")

    def run(bs, order):
        if order == "model.encode":
            return encoder.encode(texts, batch_size=bs, show_progress_bar=False)
        return encode_in_batches(encoder, texts, bs, order == "length-sorted")

    fns = {(bs, o): (lambda bs=bs, o=o: run(bs, o))
           for bs in batch_sizes for o in orders if bs > 1 or o == orders[0]}
    rows = dict(zip(fns, compare_times(fns, repeats).itertuples()))
    return pd.DataFrame([{"batch_size": bs, "order": o, "seconds": row.best_s,
                          "spread": row.spread, "texts_per_s": len(texts) / row.best_s}
                         for bs in batch_sizes for o in orders
                         for row in [rows[(bs, o) if bs > 1 else (bs, orders[0])]]])


def thread_sweep(encoder, texts: list[str], threads=(1, 2), batch_size: int = 32,
                 repeats: int = 3) -> pd.DataFrame:
    """texts/s at each torch thread count, timed round-robin (restores the previous setting):
    columns threads, seconds (best of `repeats`), spread, texts_per_s, vs_1st (speed-up over the
    first thread count, best against best) and vs_1st_min / vs_1st_max (its per-round range)."""
    import torch

    def run(n):
        torch.set_num_threads(n)
        encode_in_batches(encoder, texts, batch_size, True)

    before = torch.get_num_threads()
    try:
        table = compare_times({n: (lambda n=n: run(n)) for n in threads}, repeats)
    finally:
        torch.set_num_threads(before)
    return pd.DataFrame([{"threads": n, "seconds": row.best_s, "spread": row.spread,
                          "texts_per_s": len(texts) / row.best_s, "vs_1st": row.speedup,
                          "vs_1st_min": row.speedup_min, "vs_1st_max": row.speedup_max}
                         for n, row in zip(threads, table.itertuples())])


# ------------------------------------------------------------------ a process pool
_WORKER = {}


def _init_worker(model_name: str) -> None:
    os.environ[THREADS_ENV] = "1"  # one thread per process: processes x threads <= cores
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar from every worker on stderr
    if model_name in _onnx_names():
        from course_utils.models.onnx_encoders import load_onnx_encoder

        _WORKER["model"] = load_onnx_encoder(model_name, threads=1)
    else:
        from course_utils.models.loading import load_model

        _WORKER["model"] = load_model(model_name, threads=1)


def _onnx_names():
    from course_utils.models.onnx_encoders import ONNX_MODELS

    return ONNX_MODELS


def _encode_chunk(chunk: list[str]) -> np.ndarray:
    return encode_in_batches(_WORKER["model"], chunk, 32, sort_by_length=True)


def pool_encode(texts: list[str], workers: int = 2, model_name: str = "all-MiniLM-L6-v2",
                chunk_size: int = 64) -> tuple[np.ndarray, dict]:
    """Encode `texts` in a pool of `workers` processes (spawned, 1 thread each, each loading the
    model once). Returns (vectors in input order, {"startup_s", "encode_s", "total_s"})."""
    import multiprocessing as mp

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    chunks = [texts[s:s + chunk_size] for s in range(0, len(texts), chunk_size)]
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(workers, _init_worker, (model_name,)) as pool:
        seen: set[int] = set()  # wait until every worker has answered (its model is loaded)
        while len(seen) < workers:
            seen.update(pool.map(_pid, range(workers), chunksize=1))
        ready = time.perf_counter()
        parts = pool.map(_encode_chunk, chunks, chunksize=1)
        done = time.perf_counter()
    return np.concatenate(parts), {"startup_s": ready - start, "encode_s": done - ready,
                                   "total_s": done - start}


def _pid(_) -> int:
    time.sleep(0.05)  # so that the tasks spread over the workers
    return os.getpid()


# ------------------------------------------------------------------ preprocessing
def normalize_text(text: str, lowercase: bool = False) -> str:
    """Collapse runs of whitespace to one space and strip the ends (optionally lowercase)."""
    text = _SPACE.sub(" ", text).strip()
    return text.lower() if lowercase else text


def dedupe(texts: list[str]) -> tuple[list[str], list[int]]:
    """(unique texts in first-seen order, index into them for every input text)."""
    position: dict[str, int] = {}
    inverse = [position.setdefault(t, len(position)) for t in texts]
    return list(position), inverse


# ------------------------------------------------------------------ profiling
def stage_times(model, texts: list[str], batch_size: int = 32, repeats: int = 3) -> pd.DataFrame:
    """Seconds spent in tokenisation, the transformer forward pass and pooling + normalisation
    when a SentenceTransformer encodes `texts` (longest first, like `encode`), `repeats` times.

    Returns a DataFrame indexed by stage ("tokenize", "forward", "pool+normalize") with columns
    seconds (the best repeat of each stage), spread (see `timing.Timing`) and share (of the sum
    of the best seconds)."""
    import torch

    runs = {"tokenize": [], "forward": [], "pool+normalize": []}
    modules = list(model)
    tokenize = getattr(model, "preprocess", None) or model.tokenize  # renamed in s-t 6
    for _ in range(repeats):
        times = dict.fromkeys(runs, 0.0)
        with torch.inference_mode():
            for batch in make_batches(texts, batch_size, sort_by_length=True):
                t0 = time.perf_counter()
                features = tokenize([texts[i] for i in batch])
                t1 = time.perf_counter()
                features = modules[0](features)
                t2 = time.perf_counter()
                for module in modules[1:]:
                    features = module(features)
                t3 = time.perf_counter()
                times["tokenize"] += t1 - t0
                times["forward"] += t2 - t1
                times["pool+normalize"] += t3 - t2
        for stage, seconds in times.items():
            runs[stage].append(seconds)
    table = pd.DataFrame({stage: {"seconds": Timing(tuple(ts)).best, "spread": Timing(tuple(ts)).spread}
                          for stage, ts in runs.items()}).T
    table["share"] = table.seconds / table.seconds.sum()
    return table


def profile_table(fn, top: int = 12, sort: str = "tottime") -> pd.DataFrame:
    """Run fn() under cProfile; the `top` functions by `sort` ("tottime": own time, "cumtime":
    with callees) as a DataFrame: function, calls, tottime_s, cumtime_s."""
    profiler = cProfile.Profile()
    profiler.runcall(fn)
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = [{"function": f"{os.path.basename(file)}:{line}({name})", "calls": nc,
             "tottime_s": tt, "cumtime_s": ct}
            for (file, line, name), (_, nc, tt, ct, _) in stats.stats.items()]
    key = {"tottime": "tottime_s", "cumtime": "cumtime_s"}[sort]
    return pd.DataFrame(rows).sort_values(key, ascending=False).head(top).reset_index(drop=True)


# ------------------------------------------------------------------ quality next to speed
def scifact_sample(corpus: dict, qrels: dict, n_queries: int | None = None,
                   n_distractors: int = 0, seed: int = 0) -> tuple[dict, dict]:
    """A smaller retrieval test: (corpus subset, qrels subset) = the relevant documents of
    `n_queries` judged queries (None: all) + `n_distractors` other documents drawn at random.
    Scores on it are higher than on the whole corpus (fewer distractors): compare models on
    the same sample, never with published full-corpus numbers."""
    rng = np.random.default_rng(seed)
    qids = sorted(qrels)
    if n_queries is not None:
        qids = sorted(rng.choice(qids, size=min(n_queries, len(qids)), replace=False).tolist())
    keep = {d for q in qids for d in qrels[q] if d in corpus}
    others = sorted(set(corpus) - keep)
    extra = rng.choice(others, size=min(n_distractors, len(others)), replace=False).tolist()
    sub = {d: corpus[d] for d in corpus if d in keep or d in set(extra)}
    return sub, {q: qrels[q] for q in qids}


def retrieval_quality(encoder, corpus: dict, queries: dict, qrels: dict,
                      precomputed: str | None = None, **encode_kwargs) -> float:
    """nDCG@10 of exact search with `encoder` (cached `embeddings.encode`) on a BEIR-style set."""
    from course_utils.embeddings.encoding import encode, encode_corpus
    from course_utils.evaluate.metrics import evaluate
    from course_utils.search.exact import exact_search_numpy, to_run

    doc_ids, doc_vecs = encode_corpus(corpus, encoder, precomputed, **encode_kwargs)
    qids = [q for q in qrels if q in queries]
    q_vecs = encode([queries[q] for q in qids], encoder, **encode_kwargs)
    hits = exact_search_numpy(q_vecs, doc_vecs, 10)
    return evaluate(qrels, to_run(hits, qids, doc_ids), ["ndcg@10"])["ndcg@10"]
