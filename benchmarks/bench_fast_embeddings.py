"""Speed against quality for the chapter 10 encoders and storage formats, as ratios against the
torch fp32 baseline (all-MiniLM-L6-v2) measured in the same run.

    python benchmarks/bench_fast_embeddings.py [--pairs 200] [--threads N]

Encoders: texts/s on STS-B test sentences (length-sorted batches of 32, uncached) and STS-B
Spearman on the same pairs. Storage: bytes per vector and recall@10 against float32 exact search
on SciFact (precomputed corpus vectors, 300 test queries). The machine is shared and noisy:
read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from course_utils import data, embeddings, models, onnx_encoders, quantize, speed, sts
from course_utils.search import exact_search_numpy


def encoder_table(pairs: pd.DataFrame, threads: int | None) -> pd.DataFrame:
    sentences = list(pairs.sentence1) + list(pairs.sentence2)
    encoders = {"torch fp32 (baseline)": models.load_model(threads=threads)}
    for name in onnx_encoders.ONNX_MODELS:
        encoders[f"onnx {name}"] = onnx_encoders.load_onnx_encoder(name, threads=threads)
    rows = []
    for label, enc in encoders.items():
        speed.encode_in_batches(enc, sentences[:32], 32, True)  # warm-up
        secs = speed.best_time(lambda: speed.encode_in_batches(enc, sentences, 32, True), 2)
        vecs = embeddings.normalize(speed.encode_in_batches(enc, sentences, 32, True))
        n = len(pairs)
        rho = sts.correlation(sts.paired_similarity(vecs[:n], vecs[n:]), pairs.score.values)["spearman"]
        rows.append({"encoder": label, "texts_per_s": len(sentences) / secs, "sts_spearman": rho})
    table = pd.DataFrame(rows)
    table["speed_x"] = table.texts_per_s / table.texts_per_s[0]
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
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=200, help="STS-B test pairs (2 sentences each)")
    parser.add_argument("--threads", type=int, default=None, help="threads (default: COURSE_THREADS)")
    args = parser.parse_args()
    pairs = data.load_sts("test").iloc[: args.pairs]
    print(f"threads: {models.default_threads() if args.threads is None else args.threads}")
    print(f"\nEncoders on {2 * len(pairs)} STS-B sentences (ratios vs torch fp32, same run)")
    print(encoder_table(pairs, args.threads).round(3).to_string(index=False))
    print("\nStorage formats on SciFact (5,183 docs, 300 queries; ratios vs float32)")
    print(storage_table().round(3).to_string(index=False))


if __name__ == "__main__":
    main()
