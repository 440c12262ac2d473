"""Speed against quality for the chapter 10 encoders and storage formats, as ratios against the
torch fp32 baseline (all-MiniLM-L6-v2) measured in the same run.

    python benchmarks/bench_fast_embeddings.py [--pairs 200] [--threads N]

Encoders: texts/s on STS-B test sentences (length-sorted batches of 32, uncached; best of 3
round-robin rounds, with the spread and the per-round range of the ratio) and STS-B Spearman on
the same pairs. Storage: bytes per vector and recall@10 against float32 exact search on SciFact
(precomputed corpus vectors, 300 test queries), and the search time of float32 vs binary codes
in numpy and FAISS. The machine is shared and noisy:
read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse

import faiss
import numpy as np
import pandas as pd

from course_utils import data, embeddings, models, onnx_encoders, quantize, speed, sts
from course_utils.search import exact_search_numpy
from course_utils.speed import timing


def encoder_table(pairs: pd.DataFrame, threads: int | None) -> pd.DataFrame:
    sentences = list(pairs.sentence1) + list(pairs.sentence2)
    encoders = {"torch fp32 (baseline)": models.load_model(threads=threads)}
    for name in onnx_encoders.ONNX_MODELS:
        encoders[f"onnx {name}"] = onnx_encoders.load_onnx_encoder(name, threads=threads)
    for enc in encoders.values():
        speed.encode_in_batches(enc, sentences[:32], 32, True)  # warm-up
    times = timing.compare_times({label: (lambda enc=enc: speed.encode_in_batches(enc, sentences, 32, True))
                                  for label, enc in encoders.items()}, repeats=3)
    rows = []
    for (label, enc), t in zip(encoders.items(), times.itertuples()):
        vecs = embeddings.normalize(speed.encode_in_batches(enc, sentences, 32, True))
        n = len(pairs)
        rho = sts.correlation(sts.paired_similarity(vecs[:n], vecs[n:]), pairs.score.values)["spearman"]
        rows.append({"encoder": label, "texts_per_s": len(sentences) / t.best_s, "spread": t.spread,
                     "speed_x": t.speedup, "speed_x_min": t.speedup_min, "speed_x_max": t.speedup_max,
                     "sts_spearman": rho})
    table = pd.DataFrame(rows)
    table["quality_x"] = table.sts_spearman / table.sts_spearman[0]
    return table


def storage_table() -> pd.DataFrame:
    model = models.load_model()
    corpus, queries, qrels = data.load_beir("scifact", "test")
    _, docs = embeddings.encode_corpus(corpus, model, precomputed="scifact", show_progress=False)
    qv = embeddings.encode([queries[q] for q in qrels], model, show_progress=False)
    exact = exact_search_numpy(qv, docs, 10)
    bits = quantize.binarize(docs)
    runs = {"float32 exact": exact,
            "float16": exact_search_numpy(qv, quantize.to_float16(docs).astype(np.float32), 10),
            "int8": quantize.int8_search(qv, quantize.quantize_int8(docs, docs[:1000]), 10),
            "binary (Hamming)": quantize.hamming_search(quantize.binarize(qv), bits, 10),
            "binary + rescore top-100": quantize.rescore_search(qv, bits, docs, 10, 100)}
    size = quantize.bytes_per_vector(docs.shape[1])
    fmt = {"float32 exact": "float32", "float16": "float16", "int8": "int8"}
    rows = [{"format": name, "bytes_per_vector": size[fmt.get(name, "binary")],
             "recall@10_vs_exact": quantize.neighbour_recall(hits, exact)}
            for name, hits in runs.items()]
    table = pd.DataFrame(rows)
    table["memory_x"] = table.bytes_per_vector / size["float32"]
    flat, binary = faiss.IndexFlatIP(docs.shape[1]), faiss.IndexBinaryFlat(docs.shape[1])
    flat.add(docs), binary.add(bits)
    qbits = quantize.binarize(qv)
    search = timing.compare_times({
        "float32 numpy": lambda: exact_search_numpy(qv, docs, 10),
        "binary numpy (Hamming)": lambda: quantize.hamming_search(qbits, bits, 10),
        "float32 FAISS IndexFlatIP": lambda: flat.search(qv, 10),
        "binary FAISS IndexBinaryFlat": lambda: binary.search(qbits, 10)}, repeats=5)
    return table, search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=200, help="STS-B test pairs (2 sentences each)")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: COURSE_THREADS)")
    args = parser.parse_args()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar between the tables
    pairs = data.load_sts("test").iloc[: args.pairs]
    print(f"threads: {models.default_threads() if args.threads is None else args.threads}")
    print(f"\nEncoders on {2 * len(pairs)} STS-B sentences (ratios vs torch fp32, same run)")
    print(encoder_table(pairs, args.threads).round(3).to_string(index=False))
    print("\nStorage formats on SciFact (5,183 docs, 300 queries; ratios vs float32)")
    storage, search = storage_table()
    print(storage.round(3).to_string(index=False))
    print("\nExact top-10 search time, 300 queries (best of 5 round-robin rounds; speedup vs float32 numpy)")
    print(search.round(4).to_string())


if __name__ == "__main__":
    main()
