"""Speed of course_utils.evaluate against pytrec_eval (C trec_eval) on a synthetic run.

    python benchmarks/bench_evaluate.py [--queries 10000] [--docs 100] [--repeats 3]

Prints seconds (best of --repeats) for each metric and the ratio ours / pytrec_eval. Both sides
are timed from the Python dicts to the mean, as a notebook would call them. pytrec_eval has no
cutoff for recip_rank: its time is recip_rank on the full run, and |diff| compares our mrr@10 with
its recip_rank on the run cut to the top 10.
"""
import argparse
import time

import numpy as np
import pytrec_eval

from course_utils.evaluate import evaluate, trec_order

PYTREC = {"ndcg@10": "ndcg_cut_10", "recall@100": "recall_100", "mrr@10": "recip_rank"}


def synthetic(n_queries, n_docs, seed=0):
    """qrels with 1-5 relevant docs (labels 1-3) per query and a run of n_docs scored docs."""
    rng = np.random.default_rng(seed)
    qrels, run = {}, {}
    for q in range(n_queries):
        doc_ids = [f"d{i}" for i in rng.choice(100 * n_docs, n_docs, replace=False)]
        relevant = rng.choice(n_docs, rng.integers(1, 6), replace=False)
        qrels[f"q{q}"] = {doc_ids[i]: int(rng.integers(1, 4)) for i in relevant}
        qrels[f"q{q}"][f"missed{q}"] = 1  # one relevant doc the run never retrieves
        run[f"q{q}"] = dict(zip(doc_ids, np.round(rng.random(n_docs), 3).tolist()))  # some ties
    return qrels, run


def best_of(repeats, fn):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def pytrec_mean(qrels, run, measure):
    scores = pytrec_eval.RelevanceEvaluator(qrels, {measure}).evaluate(run)
    return float(np.mean([row[measure] for row in scores.values()]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    qrels, run = synthetic(args.queries, args.docs)
    top10 = {qid: {d: docs[d] for d in trec_order(docs)[:10]} for qid, docs in run.items()}
    print(f"{args.queries} queries x {args.docs} docs, best of {args.repeats}\n")
    print(f"{'metric':<12}{'ours (s)':>10}{'pytrec (s)':>12}{'ratio':>8}{'|diff|':>10}")
    for metric, measure in PYTREC.items():
        ours_s, ours = best_of(args.repeats, lambda: evaluate(qrels, run, [metric])[metric])
        theirs_s, theirs = best_of(args.repeats, lambda: pytrec_mean(qrels, run, measure))
        if metric == "mrr@10":
            theirs = pytrec_mean(qrels, top10, measure)
        print(f"{metric:<12}{ours_s:>10.3f}{theirs_s:>12.3f}{ours_s / theirs_s:>8.2f}"
              f"{abs(ours - theirs):>10.1e}")
    all_s, _ = best_of(args.repeats, lambda: evaluate(qrels, run, list(PYTREC)))
    print(f"{'all three':<12}{all_s:>10.3f}{'':>12}{'':>8}  (one evaluate call)")


if __name__ == "__main__":
    main()
