"""Fine-tuning cost on the CPU, and a before/after table, on a small fixed SciFact subset.

    python benchmarks/bench_finetune.py [--rows 32] [--batch 8] [--steps 3] [--queries 30]

Prints training steps per second for MNRL with in-batch negatives only and with one hard
negative per row, each as a ratio to a reference measured in the same run: the time of one
forward pass (encoding, no gradients) over the same batch's texts. Then a before/after table
(nDCG@10, recall@100) on `--queries` test claims over their positives plus the base model's top
distractors, for the base model, the briefly fine-tuned model and a linear adapter. Models are
trained into a temporary folder (nothing cached), so every run measures training.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import pandas as pd

from course_utils import adapter, data, embeddings, evaluate, finetune, finetune_data, models, search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=32, help="training rows (fixed: the first N)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--queries", type=int, default=30, help="test claims in the before/after table")
    args = parser.parse_args()

    base = models.load_model()
    corpus, train_q, train_qrels = data.load_beir("scifact", "train")
    _, test_q, test_qrels = data.load_beir("scifact", "test")
    doc_ids, texts = data.doc_texts(corpus)
    doc_text = dict(zip(doc_ids, texts))
    _, doc_vecs = embeddings.encode_corpus(corpus, base, precomputed="scifact")
    twins = {t for _, t, _ in finetune_data.near_duplicate_queries(test_q, train_q)}
    qrels = {q: d for q, d in train_qrels.items() if q not in twins}
    qids = list(qrels)
    qv = embeddings.encode([train_q[q] for q in qids], base, show_progress=False)
    run = search.to_run(search.exact_search_numpy(qv, doc_vecs, 30), qids, doc_ids)
    negs = finetune_data.mine_hard_negatives(run, qrels, n=1, skip=3, depth=20)
    rows3 = finetune_data.training_rows(train_q, qrels, doc_text, negs)[: args.rows]
    rows2 = [{"anchor": r["anchor"], "positive": r["positive"]} for r in rows3]
    finetune_data.check_no_leakage(rows3, test_q)

    table, models_ = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, rows in (("MNRL in-batch", rows2), ("MNRL + hard negative", rows3)):
            batch_texts = [t for r in rows[: args.batch] for t in r.values()]
            t0 = time.perf_counter()
            base.encode(batch_texts, batch_size=len(batch_texts))
            forward = time.perf_counter() - t0
            m = finetune.train_bi_encoder(rows, batch_size=args.batch, max_steps=args.steps, root=tmp,
                                          show_progress=False)
            sps = m.training_info["steps_per_second"]
            table.append({"objective": name, "texts/step": len(batch_texts), "steps/s": sps,
                          "step / forward pass": 1 / sps / forward})
            models_[name] = m
        print(f"training speed ({args.rows} rows, batch {args.batch}, {args.steps} steps, "
              f"{models.default_threads()} thread(s))")
        print(pd.DataFrame(table).round(3).to_string(index=False))

        rng = np.random.default_rng(0)
        sub_q = sorted(rng.choice(list(test_qrels), args.queries, replace=False))
        sub_qrels = {q: test_qrels[q] for q in sub_q}
        base_qv = embeddings.encode([test_q[q] for q in sub_q], base, show_progress=False)
        rows_ix = {d: i for i, d in enumerate(doc_ids)}
        keep = sorted({rows_ix[d] for q in sub_q for d in test_qrels[q]}
                      | set(search.exact_search_numpy(base_qv, doc_vecs, 5).ids.ravel().tolist()))
        sub_ids = [doc_ids[i] for i in keep]

        def score(qvecs, dvecs):
            hits = search.exact_search_numpy(qvecs, dvecs, 100)
            return evaluate.evaluate(sub_qrels, search.to_run(hits, sub_q, sub_ids), ["ndcg@10", "recall@100"])

        ft = models_["MNRL + hard negative"]
        fit_pairs = [(q, d) for q in qids for d in qrels[q]]
        t0 = time.perf_counter()
        W, stats = adapter.train_adapter(qv[[qids.index(q) for q, _ in fit_pairs]],
                                         doc_vecs[[rows_ix[d] for _, d in fit_pairs]], epochs=5)
        after = {"base MiniLM": score(base_qv, doc_vecs[keep]),
                 f"fine-tuned ({args.steps} steps)": score(
                     embeddings.encode([test_q[q] for q in sub_q], ft, cache=False, show_progress=False),
                     embeddings.encode([doc_text[d] for d in sub_ids], ft, cache=False, show_progress=False)),
                 f"adapter ({stats['seconds']:.1f} s)": score(adapter.apply_adapter(base_qv, W), doc_vecs[keep])}
    print(f"\nbefore/after on {len(sub_q)} test claims x {len(sub_ids)} abstracts "
          "(a quick check, not the chapter's result)")
    print(pd.DataFrame(after).T.round(4).to_string())


if __name__ == "__main__":
    main()
