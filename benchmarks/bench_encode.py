"""Encoding throughput by batch size, and the embedding cache's warm/cold ratio, on SciFact.

    python benchmarks/bench_encode.py [--docs 300] [--sentences 256] [--threads N]

Prints ratios measured in the same run (the machine is shared and noisy: compare ratios, not
seconds). Expect the warm cache to be well over 10x faster than encoding.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from course_utils import data, embeddings, models, timing
from course_utils.embeddings.cache import EmbeddingCache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=300, help="SciFact abstracts to encode")
    parser.add_argument("--sentences", type=int, default=256, help="STS-B sentences for the batch-size table")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: COURSE_THREADS)")
    args = parser.parse_args()

    model = models.load_model(threads=args.threads)
    corpus, _, _ = data.load_beir("scifact", "test")
    _, texts = data.doc_texts(corpus)
    texts = texts[: args.docs]
    sentences = list(data.load_sts("test").sentence1[: args.sentences])

    print(f"threads: {models.default_threads() if args.threads is None else args.threads}")
    table = timing.throughput(sentences, model, batch_sizes=(1, 8, 32, 64, 128), repeats=2)
    base = table.loc[table.batch_size == 1, "texts_per_s"].item()
    table["vs_batch_1"] = table.texts_per_s / base
    print(f"\nSTS-B sentences ({len(sentences)}), encode throughput by batch size")
    print(table.round(2).to_string(index=False))

    with tempfile.TemporaryDirectory() as tmp:
        seconds = {}
        for run in ("cold", "warm"):
            cache = EmbeddingCache(embeddings.cache_namespace(model), root=tmp)
            start = time.perf_counter()
            embeddings.encode(texts, model, cache=cache, show_progress=run == "cold")
            seconds[run] = time.perf_counter() - start
            print(f"{run}: {seconds[run]:.3f} s  (encoded {cache.misses}, from cache {cache.hits})")
    print(f"\nSciFact abstracts ({len(texts)}): cold {len(texts) / seconds['cold']:.1f} docs/s, "
          f"warm/cold speed ratio {seconds['cold'] / seconds['warm']:.0f}x")


if __name__ == "__main__":
    main()
