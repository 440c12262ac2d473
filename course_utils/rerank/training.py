"""Train a cross-encoder re-ranker from the bundled MiniLM backbone, once, and cache it on disk.

No package ships a pretrained cross-encoder (see shared/ASSETS.md), so the course builds one:
`CrossEncoder(<MiniLM folder>, num_labels=1)` puts a new one-logit head on all-MiniLM-L6-v2,
and `CrossEncoderTrainer` with `BinaryCrossEntropyLoss` teaches it to tell a query's relevant
documents (label 1) from hard negatives (label 0): documents a first-stage retriever (BM25)
ranks high for the query but that are not judged relevant.

The trained model is saved under `<model cache>/<name>-<hash>`, the hash covering the training
configuration and the training pairs, so the same configuration is trained once and then loaded
in seconds. Model cache: $COURSE_MODEL_CACHE, default `<repo>/data/cache/models`.
Training needs the `datasets` and `accelerate` packages (sentence-transformers' `train` extra).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from course_utils.paths import model_cache_dir
from course_utils.runs import trec_order

__all__ = ["training_pairs", "train_cross_encoder", "load_cross_encoder"]


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


def _config_key(pairs, config: dict) -> str:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for query, doc, label in pairs:
        digest.update(f"{query}\x1f{doc}\x1f{label}\x1e".encode())
    return digest.hexdigest()[:12]


def train_cross_encoder(pairs, base_model: str | Path | None = None, *, epochs: int = 1,
                        learning_rate: float = 1e-4, batch_size: int = 16, max_length: int = 256,
                        max_steps: int | None = None, warmup: float = 0.1, seed: int = 0,
                        name: str = "minilm-ce", root: str | Path | None = None,
                        show_progress: bool = True):
    """Fine-tune a one-logit cross-encoder on (query, document, label) pairs; cached on disk.

    base_model: folder of the backbone (default: the bundled all-MiniLM-L6-v2).
    max_steps: stop after this many optimiser steps (a quick, weak model); None = full epochs.
    Returns the CrossEncoder, with `course_model_id` = its cache folder name (which keys the
    re-ranking score cache) and `trained_now` = whether this call trained it.
    >>> ce = train_cross_encoder(pairs, max_steps=30)        # doctest: +SKIP
    >>> ce.course_model_id                                    # doctest: +SKIP
    'minilm-ce-3f9c0a12b4d1'
    """
    from course_utils.models.loading import model_path, set_offline

    set_offline()
    pairs = [(str(q), str(d), float(label)) for q, d, label in pairs]
    if not pairs:
        raise ValueError("no training pairs")
    base = Path(base_model) if base_model else model_path()
    config = dict(base=base.name, epochs=epochs, lr=learning_rate, batch_size=batch_size,
                  max_length=max_length, max_steps=max_steps, warmup=warmup, seed=seed)
    folder = Path(root or model_cache_dir()) / f"{name}-{_config_key(pairs, config)}"
    if (folder / "config.json").exists():
        return load_cross_encoder(folder, trained_now=False)
    model = _fit(pairs, base, config, show_progress)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    model.save_pretrained(str(tmp))
    (tmp / "course_training.json").write_text(json.dumps({**config, "pairs": len(pairs)}))
    if folder.exists():  # a half-written folder from an interrupted run
        shutil.rmtree(folder)
    tmp.replace(folder)
    return load_cross_encoder(folder, trained_now=True)


def _fit(pairs, base: Path, config: dict, show_progress: bool):
    import datasets
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the new head's "newly initialized" notice is expected
    model = CrossEncoder(str(base), num_labels=1, max_length=config["max_length"], device="cpu")
    train = datasets.Dataset.from_dict({"query": [p[0] for p in pairs],
                                        "passage": [p[1] for p in pairs],
                                        "label": [p[2] for p in pairs]})
    with tempfile.TemporaryDirectory() as out:
        args = CrossEncoderTrainingArguments(
            output_dir=out, num_train_epochs=config["epochs"],
            max_steps=config["max_steps"] or -1, per_device_train_batch_size=config["batch_size"],
            learning_rate=config["lr"], warmup_steps=config["warmup"], seed=config["seed"],
            save_strategy="no", report_to="none", use_cpu=True, logging_steps=50,
            disable_tqdm=not show_progress, dataloader_num_workers=0)
        trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=train,
                                      loss=BinaryCrossEntropyLoss(model))
        trainer.train()
    return model


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
