"""Recall@10 / speed / memory sweep of every ANN family on >= 100k vectors, single CPU thread.

    python benchmarks/bench_ann.py [--n 100000] [--queries 1000] [--d 384] [--threads 1]

Data: seeded synthetic clustered vectors (course_utils.ann.indexes.clustered_data; uniform noise would
make every index look broken). Recall is computed against exact search on the same vectors; QPS
is given batched (all queries in one call) and one query per call, each also as a ratio to exact
flat search measured in the same run (absolute numbers depend on the machine and its load).
As in ann-benchmarks, one CPU thread by default. Takes ~5-10 minutes on 2 busy cores.
"""
import argparse
import math
import time

import faiss
import pandas as pd

from course_utils import ann, ann_scale, ann_sweep


def grid(n: int) -> dict:
    # FAISS guideline 4-16·sqrt(n), a power of 2, and at most n / 39 lists (k-means needs 39 points each)
    nlist = 2 ** min(round(math.log2(4 * math.sqrt(n))), math.floor(math.log2(n / 39)))
    ivf = f"IVF{nlist}"
    probes = [p for p in (1, 2, 4, 8, 16, 32, 64, 128) if p <= nlist]
    return {
        "Flat": {},
        f"{ivf},Flat": {"nprobe": probes},
        f"{ivf},SQ8": {"nprobe": probes[::2]},
        f"{ivf},PQ48np": {"nprobe": probes[::2]},
        f"{ivf},PQ48np,RFlat": {"nprobe": probes[2::2], "k_factor_rf": [16]},
        f"OPQ48,{ivf},PQ48np": {"nprobe": probes[::2], "build": {"opq_niter": 10}},
        "HNSW16": {"efSearch": [16, 32, 64, 128, 256]},
        "HNSW32": {"efSearch": [16, 32, 64, 128, 256]},
        "SQ8": {},
        "PQ48np": {},
        "LSH1024r": {},
        "LSH2048r": {},
        "LSH1024r,RFlat": {"k_factor_rf": [10, 50]},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    x, q = ann.clustered_data(args.n, args.queries, d=args.d, seed=args.seed)
    print(f"{args.n:,} clustered synthetic vectors x {args.d} dims, {args.queries:,} queries, "
          f"{args.threads} FAISS thread(s), faiss {faiss.__version__}")
    start = time.perf_counter()
    df = ann_sweep.sweep(x, q, grid(args.n), threads=args.threads)
    flat = df[df["index"] == "Flat"].iloc[0]
    df["x_flat_batch"] = df["qps_batch"] / flat["qps_batch"]
    df["x_flat_single"] = df["qps_single"] / flat["qps_single"]
    cols = ["index", "setting", "recall@10", "qps_batch", "x_flat_batch", "qps_single",
            "x_flat_single", "ms_per_query", "build_s", "bytes_per_vector"]
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(df[cols].to_string(index=False, float_format=lambda v: f"{v:,.3f}" if v < 10
                                 else f"{v:,.0f}"))
        print(f"\nsweep took {time.perf_counter() - start:.0f} s")
        for target in (0.9, 0.95, 0.99):
            try:
                best = ann_sweep.tune(df, target).iloc[0]
                print(f"fastest (batched) at recall@10 >= {target}: {best['index']} "
                      f"{best['setting']} -> recall {best['recall@10']:.3f}, "
                      f"{best['x_flat_batch']:.1f}x flat, {best['bytes_per_vector']:.0f} B/vector")
            except ValueError as err:
                print(f"recall@10 >= {target}: {err}")
        print(f"\nMemory on paper (ann_scale.scale_table, d = {args.d}, 70% of RAM usable):")
        table = ann_scale.scale_table(list(grid(args.n)), d=args.d)
        print(table.to_string(formatters={c: "{:,.1f}".format if table[c].dtype.kind == "f"
                                          else "{:,}".format for c in table.columns[1:]}))


if __name__ == "__main__":
    main()
