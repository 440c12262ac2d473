"""Queries per second of our BM25 (course_utils.lexical.bm25) against rank-bm25 and bm25s.

Two corpora: SciFact (5,183 abstracts, its 1,109 claims as queries) and a seeded synthetic
corpus of 100,000 Zipf-distributed documents. Every library gets the same tokens; each
answers top-10 queries, one thread, best of `REPEATS` timings. rank-bm25 scores every document
in Python, so it is timed on a sample of queries. Printed: index seconds, QPS, QPS ratios, and
top-10 agreement (our okapi vs rank-bm25, our lucene vs bm25s lucene).
Targets (issue 11): >= 50x rank-bm25, within 2x of bm25s.

    python benchmarks/bench_bm25.py [--docs 100000]
"""
import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import bm25s  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from rank_bm25 import BM25Okapi  # noqa: E402

from course_utils import bm25, data  # noqa: E402

REPEATS, K = 3, 10


def best(fn, repeats=REPEATS):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def scifact():
    corpus, test, _ = data.load_beir("scifact", "test")
    _, train, _ = data.load_beir("scifact", "train")
    _, texts = data.doc_texts(corpus)
    return ([bm25.tokenize(t) for t in texts],
            [bm25.tokenize(q) for q in [*train.values(), *test.values()]])


def zipf(n_docs, n_queries=1000, vocab=50_000, seed=0):
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(vocab + 1)])
    draw = lambda n: words[np.minimum(rng.zipf(1.2, size=n), vocab)].tolist()
    return ([draw(int(n)) for n in rng.integers(20, 150, n_docs)],
            [draw(int(n)) for n in rng.integers(3, 8, n_queries)])


def overlap(a, b):
    return float(np.mean([len(set(x) & set(y)) / K for x, y in zip(a, b)]))


def bench(name, docs, queries, n_rank_bm25):
    rows = []
    t_idx, ours = best(lambda: bm25.BM25(variant="okapi").fit(docs), 1)
    t_q, hits = best(lambda: ours.search(queries, k=K))
    rows.append(("course_utils.lexical.bm25", t_idx, len(queries) / t_q))
    lucene = bm25.BM25(variant="lucene").fit(docs).search(queries, k=K).ids

    t_idx, ref = best(lambda: _bm25s_index(docs), 1)
    t_q, (ids_s, _) = best(lambda: ref.retrieve(queries, k=K, show_progress=False, n_threads=0))
    rows.append(("bm25s (numpy backend)", t_idx, len(queries) / t_q))

    t_idx, slow = best(lambda: BM25Okapi(docs), 1)
    sample = queries[:n_rank_bm25]
    t_q, scores = best(lambda: [slow.get_scores(q) for q in sample], 1)
    rows.append(("rank-bm25 BM25Okapi", t_idx, len(sample) / t_q))
    ids_r = [np.argsort(-s, kind="stable")[:K] for s in scores]

    table = pd.DataFrame(rows, columns=["system", "index_s", "qps"]).set_index("system")
    table["x_rank_bm25"] = table.qps / table.loc["rank-bm25 BM25Okapi", "qps"]
    table["x_bm25s"] = table.qps / table.loc["bm25s (numpy backend)", "qps"]
    print(f"\n== {name}: {len(docs):,} documents, {len(queries):,} queries "
          f"(rank-bm25 on {len(sample)})")
    print(table.round(2).to_string())
    print(f"top-10 agreement: okapi vs rank-bm25 {overlap(hits.ids[:len(sample)], ids_r):.3f}, "
          f"lucene vs bm25s {overlap(lucene, ids_s):.3f}")
    ours_x = table.loc["course_utils.lexical.bm25"]
    print(f"ratios: {ours_x.x_rank_bm25:.0f}x rank-bm25 (target >= 50x), "
          f"{ours_x.x_bm25s:.2f}x bm25s (target >= 0.5x)")
    return table


def _bm25s_index(docs):
    retriever = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    retriever.index([list(d) for d in docs], show_progress=False)
    return retriever


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000, help="synthetic corpus size")
    args = parser.parse_args()
    bench("SciFact", *scifact(), n_rank_bm25=100)
    bench("synthetic Zipf", *zipf(args.docs), n_rank_bm25=20)


if __name__ == "__main__":
    main()
