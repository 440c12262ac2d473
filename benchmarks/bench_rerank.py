"""Pairs per second of each second stage of chapter 06, on the same (claim, abstract) pairs.

SciFact test claims and their BM25 top `--depth` abstracts; one thread; best of `REPEATS`;
nothing cached. Re-rankers: the random control, MaxSim over all-MiniLM-L6-v2 token vectors
(encoding every candidate, and with the candidates' token vectors stored ahead of time, as a
ColBERT index would), the cosine of all-mpnet-base-v2 vectors at 128 tokens (encoding every
candidate, as chapter 06 measures it), and a cross-encoder on the MiniLM backbone at two input lengths (speed
does not depend on the weights, so the untrained backbone stands in unless `--model` names a
trained one). Printed: pairs/s and the ratio to the cross-encoder at 128 tokens.

    python benchmarks/bench_rerank.py [--queries 4] [--depth 20] [--model <cross-encoder folder>]
"""
import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from course_utils import bm25, crossencoder, data, models, rerank, timing  # noqa: E402
from course_utils.rerank import scorers  # noqa: E402
from course_utils.runs import trec_order  # noqa: E402

REPEATS = 3


def candidates(n_queries, depth):
    corpus, queries, _ = data.load_beir("scifact", "test")
    ids, texts = data.doc_texts(corpus)
    text = dict(zip(ids, texts))
    chosen = dict(list(queries.items())[:n_queries])
    run = bm25.bm25_run(corpus, chosen, depth, tokenizer=lambda t: bm25.tokenize(t, stem=True), variant="lucene")
    return [(chosen[q], [text[d] for d in trec_order(run[q])[:depth]]) for q in chosen]


def cross_encoder(folder, max_length):
    import logging

    from sentence_transformers.cross_encoder import CrossEncoder
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()          # an untrained head on the backbone is expected here
    hf_logging.disable_progress_bar()
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)

    if folder:
        model = crossencoder.load_cross_encoder(folder)
        model.max_length = max_length
        return model
    model = CrossEncoder(str(models.model_path()), num_labels=1, max_length=max_length, device="cpu")
    model.course_model_id = f"bench-untrained-{max_length}"
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=4)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--model", default=None, help="folder of a trained cross-encoder (optional)")
    args = parser.parse_args()
    models.set_threads(1)
    batch = candidates(args.queries, args.depth)
    n_pairs = sum(len(docs) for _, docs in batch)
    bi = models.load_model(threads=1)
    stored = {d: v for _, docs in batch for d, v in zip(docs, rerank.token_vectors(bi, docs))}
    late = lambda q, docs: [rerank.maxsim(rerank.token_vectors(bi, [q])[0], stored[d]) for d in docs]
    mpnet = models.load_mpnet(threads=1)
    mpnet.max_seq_length = 128                # chapter 06's setting
    systems = {"random (control)": scorers.random_scorer(0),
               "MaxSim, encoding the candidates": lambda q, docs: rerank.maxsim_scores(bi, q, docs),
               "MaxSim, stored token vectors": late,
               "mpnet cosine (128 tokens), encoding the candidates": scorers.bi_encoder_scorer(mpnet, cache=False)}
    for length in (128, 256):
        ce = cross_encoder(args.model, length)
        systems[f"cross-encoder, {length} tokens"] = (
            lambda ce: lambda q, docs: rerank.pair_scores(ce, [(q, d) for d in docs], cache=False,
                                                          show_progress=False))(ce)
    rows = []
    for name, scorer in systems.items():
        seconds = timing.best_time(lambda: [scorer(q, docs) for q, docs in batch], REPEATS)
        rows.append((name, n_pairs / seconds))
    table = pd.DataFrame(rows, columns=["re-ranker", "pairs/s"]).set_index("re-ranker")
    table["x cross-encoder 128"] = table["pairs/s"] / table.loc["cross-encoder, 128 tokens", "pairs/s"]
    table["ms/query at depth"] = 1000 * args.depth / table["pairs/s"]
    print(f"{n_pairs} (claim, abstract) pairs: {args.queries} SciFact test claims x BM25 top {args.depth}; "
          f"1 thread, best of {REPEATS}")
    print(table.round(2).to_string())
    assert np.isfinite(table["pairs/s"]).all()


if __name__ == "__main__":
    main()
