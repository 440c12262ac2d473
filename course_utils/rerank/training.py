"""Train a cross-encoder re-ranker from the bundled MiniLM backbone, once, and cache it on disk.

No package ships a pretrained cross-encoder, so the course builds one:
`CrossEncoder(<MiniLM folder>, num_labels=1)` puts a new one-logit head on all-MiniLM-L6-v2,
and `CrossEncoderTrainer` with `BinaryCrossEntropyLoss` teaches it to tell a query's relevant
documents (label 1) from negatives (label 0). `mine_negatives` draws several per query: hard
ones from the top of first-stage runs (BM25, dense) after skipping the first few unjudged
documents (with sparse judgments those are often unjudged positives), plus random ones.
`train_cross_encoder` can evaluate on validation samples while it trains (nDCG@10 of re-ranking
each validation query's candidates) and keeps the loss and validation curves with the model.
With `num_labels > 1` the same function trains a *classifier* head instead (labels are class
numbers, `CrossEntropyLoss` with optional class weights, validation = macro-F1 on held-out
(text, text, class) triples, the best evaluated step kept): chapter 07's stance head.

The trained model is saved under `<model cache>/<name>-<hash>`, the hash covering the training
configuration and the training pairs, so the same configuration is trained once and then loaded
in seconds. Model cache: $COURSE_MODEL_CACHE, default `<repo>/data/cache/models`.
Training needs the `datasets` and `accelerate` packages (sentence-transformers' `train` extra).
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from course_utils.finetune.pairs import mine_hard_negatives
from course_utils.paths import model_cache_dir
from course_utils.runs import trec_order

__all__ = ["training_pairs", "mine_negatives", "labelled_pairs", "validation_samples",
           "train_cross_encoder", "load_cross_encoder", "training_log"]


def training_pairs(queries: Mapping, qrels: Mapping, doc_text: Mapping, run: Mapping,
                   negatives: int = 2, skip: int = 0, seed: int = 0) -> list[tuple[str, str, float]]:
    """(query, document, label) triples: every judged-relevant document of a query (label 1.0)
    and `negatives` hard negatives per query (label 0.0), drawn at random from the run's top
    `4 * negatives` unjudged documents after skipping the first `skip` of them.

    queries {qid: text}; qrels {qid: {doc_id: relevance}}; doc_text {doc_id: text};
    run: a first-stage run on the same queries (e.g. BM25), the source of hard negatives.
    >>> pairs = training_pairs({"q": "cats"}, {"q": {"d1": 1}}, {"d1": "cats purr", "d2": "cat food"},
    ...                        {"q": {"d2": 2.0, "d1": 1.0}}, negatives=1)
    >>> [(doc, label) for _, doc, label in pairs]
    [('cats purr', 1.0), ('cat food', 0.0)]
    """
    rng = np.random.default_rng(seed)
    pairs = []
    for qid, judged in qrels.items():
        if qid not in queries:
            continue
        relevant = [d for d, rel in judged.items() if rel > 0 and d in doc_text]
        pairs += [(queries[qid], doc_text[d], 1.0) for d in relevant]
        pool = [d for d in trec_order(run.get(qid, {})) if d not in judged][skip:skip + 4 * negatives]
        picked = rng.choice(len(pool), size=min(negatives, len(pool)), replace=False) if pool else []
        pairs += [(queries[qid], doc_text[pool[i]], 0.0) for i in sorted(picked)]
    if not pairs:
        raise ValueError("no training pairs: do queries, qrels and the run share query ids?")
    return pairs


def mine_negatives(runs: Mapping[str, Mapping], qrels: Mapping, doc_ids, per_run: int = 2,
                   random: int = 1, skip: int = 3, depth: int = 20,
                   seed: int = 0) -> dict[str, list[str]]:
    """Negatives per query: `per_run` hard ones from each first-stage run (drawn from its ranks
    skip+1..skip+depth once every judged document of the query and of its sibling claims is
    removed, as `finetune.mine_hard_negatives`), then `random` unjudged documents of `doc_ids`.

    runs {name: run}; qrels {qid: {doc_id: relevance}}; doc_ids: every document id.
    >>> runs = {"bm25": {"q": {"d1": 3, "d2": 2, "d3": 1}}, "dense": {"q": {"d3": 2, "d1": 1}}}
    >>> mine_negatives(runs, {"q": {"d1": 1}}, ["d1", "d2", "d3", "d4"], per_run=1, random=0,
    ...                skip=0, depth=1)
    {'q': ['d2', 'd3']}
    """
    rng = np.random.default_rng(seed)
    out = {qid: [] for qid in qrels}
    for i, run in enumerate(runs.values()):
        mined = mine_hard_negatives(run, qrels, n=per_run, skip=skip, depth=depth, seed=seed + i)
        for qid, docs in mined.items():
            out[qid] += [d for d in docs if d not in out[qid]]
    doc_ids = list(doc_ids)
    for qid, docs in out.items():
        taken = set(docs) | set(qrels[qid])
        drawn = rng.choice(len(doc_ids), size=min(len(doc_ids), random + len(taken)), replace=False)
        docs += [doc_ids[j] for j in drawn if doc_ids[j] not in taken][:random]
    return {qid: docs for qid, docs in out.items() if docs}


def labelled_pairs(queries: Mapping, qrels: Mapping, doc_text: Mapping, negatives: Mapping,
                   exclude=()) -> list[tuple[str, str, float]]:
    """(query, document, label) triples: each judged-relevant document (1.0), each negative (0.0).

    negatives {qid: [doc_id, ...]} (from `mine_negatives`); exclude: query ids left out (e.g.
    training claims that nearly copy a test claim).
    >>> labelled_pairs({"q": "cats"}, {"q": {"d1": 1}}, {"d1": "cats purr", "d2": "dogs"}, {"q": ["d2"]})
    [('cats', 'cats purr', 1.0), ('cats', 'dogs', 0.0)]
    """
    exclude = set(exclude)
    pairs = []
    for qid, judged in qrels.items():
        if qid in exclude or qid not in queries:
            continue
        pairs += [(queries[qid], doc_text[d], 1.0) for d, rel in judged.items() if rel > 0 and d in doc_text]
        pairs += [(queries[qid], doc_text[d], 0.0) for d in negatives.get(qid, []) if d in doc_text]
    if not pairs:
        raise ValueError("no training pairs: do queries, qrels and doc_text share query ids?")
    return pairs


def validation_samples(queries: Mapping, qrels: Mapping, doc_text: Mapping, run: Mapping,
                       depth: int = 10) -> list[dict]:
    """Samples for `CrossEncoderRerankingEvaluator`: each query with its relevant documents and
    the run's top `depth` documents, in the run's order (so the evaluator also reports the
    first stage's own nDCG on them).

    >>> validation_samples({"q": "cats"}, {"q": {"d1": 1}}, {"d1": "cats purr", "d2": "dogs"},
    ...                    {"q": {"d2": 2.0, "d1": 1.0}}, depth=2)
    [{'query': 'cats', 'positive': ['cats purr'], 'documents': ['dogs', 'cats purr']}]
    """
    return [{"query": queries[qid],
             "positive": [doc_text[d] for d, rel in qrels[qid].items() if rel > 0],
             "documents": [doc_text[d] for d in trec_order(run[qid])[:depth]]}
            for qid in qrels if qid in queries and qid in run]


def _config_key(pairs, config: dict) -> str:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for query, doc, label in pairs:
        digest.update(f"{query}\x1f{doc}\x1f{label}\x1e".encode())
    return digest.hexdigest()[:12]


def _checked_pairs(pairs, num_labels: int, class_weights) -> list[tuple]:
    if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1:
        raise ValueError(f"num_labels must be a whole number >= 1, got {num_labels!r}")
    if class_weights is not None and (num_labels == 1 or len(class_weights) != num_labels):
        raise ValueError(f"class_weights needs one weight per class of a classifier (num_labels > 1), "
                         f"got {class_weights!r} for num_labels={num_labels}")
    if num_labels == 1:
        pairs = [(str(q), str(d), float(label)) for q, d, label in pairs]
    else:
        pairs = [(str(q), str(d), int(label)) for q, d, label in pairs]
        bad = sorted({label for _, _, label in pairs if not 0 <= label < num_labels})
        if bad:
            raise ValueError(f"class labels must lie in 0..{num_labels - 1}, got {bad}")
    if not pairs:
        raise ValueError("no training pairs")
    return pairs


def train_cross_encoder(pairs, base_model: str | Path | None = None, *, epochs: float = 1,
                        learning_rate: float = 1e-4, batch_size: int = 16, max_length: int = 256,
                        max_steps: int | None = None, warmup: float = 0.1,
                        scheduler: str = "linear", validation: list | None = None,
                        evaluations: int = 3, num_labels: int = 1,
                        class_weights: list[float] | None = None, seed: int = 0,
                        name: str = "minilm-ce", root: str | Path | None = None,
                        show_progress: bool = True):
    """Fine-tune a cross-encoder on (query, document, label) pairs; cached on disk.

    base_model: folder of the backbone (default: the bundled all-MiniLM-L6-v2).
    max_steps: stop after this many optimiser steps (a quick, weak model); None = full epochs.
    warmup: fraction of the steps with a rising learning rate; scheduler: its decay afterwards
    ("linear", "cosine", "constant_with_warmup"). validation: samples from `validation_samples`,
    scored `evaluations` times while training (nDCG@10 printed beside the training loss).
    num_labels: 1 = a relevance score (labels 0.0/1.0, binary cross-entropy); k > 1 = a k-class
    classifier (labels 0..k-1, cross-entropy weighted by `class_weights` if given); validation is
    then a list of (text, text, class) triples, scored by macro-F1, and the model returned is the
    one of the evaluated step with the best validation macro-F1 (early stopping by selection).
    Returns the CrossEncoder, with `course_model_id` = its cache folder name (which keys the
    re-ranking score cache), `trained_now` = whether this call trained it, and
    `training_info` = its configuration, seconds, and the loss and validation curves.
    >>> ce = train_cross_encoder(pairs, max_steps=30)        # doctest: +SKIP
    >>> ce.course_model_id                                    # doctest: +SKIP
    'minilm-ce-3f9c0a12b4d1'
    """
    import time

    from course_utils.models.loading import model_path, set_offline

    set_offline()
    pairs = _checked_pairs(pairs, num_labels, class_weights)
    if validation and num_labels > 1:
        validation = [list(t) for t in _checked_pairs(validation, num_labels, None)]
    base = Path(base_model) if base_model else model_path()
    config = dict(base=base.name, epochs=epochs, lr=learning_rate, batch_size=batch_size,
                  max_length=max_length, max_steps=max_steps, warmup=warmup, seed=seed)
    if scheduler != "linear" or validation:      # (older keys stay valid for older models)
        config.update(scheduler=scheduler, evaluations=evaluations if validation else 0,
                      validation=hashlib.sha256(json.dumps(validation, sort_keys=True).encode()
                                                ).hexdigest()[:12] if validation else None)
    if num_labels != 1:
        config.update(num_labels=num_labels, class_weights=class_weights)
    folder = Path(root or model_cache_dir()) / f"{name}-{_config_key(pairs, config)}"
    if (folder / "config.json").exists():
        return load_cross_encoder(folder, trained_now=False)
    start = time.perf_counter()
    model, log = _fit(pairs, base, config, validation, show_progress)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    model.save_pretrained(str(tmp))
    info = {**config, "pairs": len(pairs), "seconds": time.perf_counter() - start, **log}
    (tmp / "course_training.json").write_text(json.dumps(info))
    if folder.exists():  # a half-written folder from an interrupted run
        shutil.rmtree(folder)
    tmp.replace(folder)
    return load_cross_encoder(folder, trained_now=True)


def _validation_metric(key: str) -> bool:
    """Whether a logged key is the validation metric: nDCG@10 (scores) or macro-F1 (classes)."""
    return (key.endswith("ndcg@10") and "base_" not in key) or key.endswith("f1_macro")


def _log_printer(show: bool):
    from transformers import TrainerCallback

    class _Print(TrainerCallback):
        """Print the training loss and the validation metric as the trainer logs them."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not show or not logs:
                return
            val = [(k, v) for k, v in logs.items() if _validation_metric(k)]
            if "loss" in logs:
                print(f"step {state.global_step:4d}/{state.max_steps}: training loss {logs['loss']:.4f}")
            if val:
                name = "nDCG@10" if val[0][0].endswith("ndcg@10") else "macro-F1"
                print(f"step {state.global_step:4d}/{state.max_steps}: validation {name} {val[0][1]:.4f}")
    return _Print()


def _best_keeper(model):
    """A callback keeping (in memory) the weights of the evaluation with the best macro-F1."""
    import copy

    from transformers import TrainerCallback

    class _Best(TrainerCallback):
        best, step, state_dict = -1.0, None, None

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            score = next((v for k, v in (metrics or {}).items() if k.endswith("f1_macro")), None)
            if score is not None and score > self.best:
                self.best, self.step = score, state.global_step
                self.state_dict = copy.deepcopy(model.state_dict())
    return _Best()


def _fit(pairs, base: Path, config: dict, validation, show_progress: bool):
    import datasets
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.evaluation import (
        CrossEncoderClassificationEvaluator,
        CrossEncoderRerankingEvaluator,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss, CrossEntropyLoss
    from transformers import PrinterCallback, set_seed
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the new head's "newly initialized" notice is expected
    set_seed(config["seed"])          # the new head's initial weights, then the data order
    n_labels = config.get("num_labels", 1)
    quiet = logging.getLogger("sentence_transformers")
    level, quiet.level = quiet.level, logging.ERROR   # "converting ... to CrossEncoder" is expected
    try:
        model = CrossEncoder(str(base), num_labels=n_labels, max_length=config["max_length"], device="cpu")
    finally:
        quiet.setLevel(level)
    train = datasets.Dataset.from_dict({"query": [p[0] for p in pairs],
                                        "passage": [p[1] for p in pairs],
                                        "label": [p[2] for p in pairs]})
    steps = config["max_steps"] or int(np.ceil(len(pairs) / config["batch_size"] * config["epochs"]))
    every = max(1, steps // max(1, config.get("evaluations", 0))) if validation else None
    if n_labels == 1:
        loss = BinaryCrossEntropyLoss(model)
        evaluator = (CrossEncoderRerankingEvaluator(validation, at_k=10, always_rerank_positives=False,
                                                    name="val", batch_size=32, write_csv=False)
                     if validation else None)
    else:
        weights = config.get("class_weights")
        loss = CrossEntropyLoss(model, weight=torch.tensor(weights, dtype=torch.float32) if weights else None)
        evaluator = (CrossEncoderClassificationEvaluator([t[:2] for t in validation], [t[2] for t in validation],
                                                         name="val", batch_size=32, write_csv=False)
                     if validation else None)
    keeper = _best_keeper(model) if validation and n_labels > 1 else None
    with tempfile.TemporaryDirectory() as out:
        args = CrossEncoderTrainingArguments(
            output_dir=out, num_train_epochs=config["epochs"],
            max_steps=config["max_steps"] or -1, per_device_train_batch_size=config["batch_size"],
            learning_rate=config["lr"], warmup_steps=int(round(config["warmup"] * steps)),
            lr_scheduler_type=config.get("scheduler", "linear"), seed=config["seed"],
            save_strategy="no", report_to="none", use_cpu=True,
            logging_steps=max(1, min(50, steps // 10)),
            eval_strategy="steps" if validation else "no", eval_steps=every,
            disable_tqdm=True, dataloader_num_workers=0)
        trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=train, loss=loss,
                                      evaluator=evaluator,
                                      callbacks=[_log_printer(show_progress)] + ([keeper] if keeper else []))
        trainer.remove_callback(PrinterCallback)    # its raw dicts: ours prints them readably
        trainer.train()
        history = trainer.state.log_history
    losses = [[h["step"], h["loss"]] for h in history if "loss" in h]
    val = [[h["step"], v] for h in history for k, v in h.items() if _validation_metric(k)]
    base_val = [v for h in history for k, v in h.items() if k.endswith("base_ndcg@10")]
    log = {"steps": steps, "loss_log": losses, "val_log": val,
           "val_first_stage": base_val[0] if base_val else None}
    if keeper and keeper.state_dict is not None:
        model.load_state_dict(keeper.state_dict)
        log["best_step"] = keeper.step
    return model, log


def training_log(model) -> dict:
    """The curves kept with a model from `train_cross_encoder` (also when loaded from cache):
    {"loss": [(step, training loss)], "validation": [(step, nDCG@10 or, for a classifier,
    macro-F1)], "first_stage": nDCG@10 of the validation candidates in their first-stage order,
    "seconds": training time, "best_step": the step of the classifier's kept weights}.

    >>> class M: training_info = {"loss_log": [[10, 0.5]], "val_log": [], "seconds": 3.0}
    >>> training_log(M())["loss"]
    [(10, 0.5)]
    """
    info = getattr(model, "training_info", {}) or {}
    return {"loss": [tuple(x) for x in info.get("loss_log", [])],
            "validation": [tuple(x) for x in info.get("val_log", [])],
            "first_stage": info.get("val_first_stage"), "seconds": info.get("seconds"),
            "best_step": info.get("best_step")}


def load_cross_encoder(folder: str | Path, trained_now: bool = False):
    """Load a cross-encoder saved by `train_cross_encoder` (CPU), tagged with its folder name."""
    from sentence_transformers.cross_encoder import CrossEncoder

    from course_utils.models.loading import set_offline

    set_offline()
    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"no cross-encoder in {folder}; train one with train_cross_encoder")
    model = CrossEncoder(str(folder), device="cpu")
    model.course_model_id = folder.name
    model.trained_now = trained_now
    info = folder / "course_training.json"
    model.training_info = json.loads(info.read_text()) if info.exists() else {}
    return model
