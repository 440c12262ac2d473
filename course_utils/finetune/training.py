"""Fine-tune a bi-encoder (all-MiniLM-L6-v2) with sentence-transformers' trainer, on the CPU,
once per configuration, and cache the result on disk.

The objective of in-batch negatives -- MultipleNegativesRankingLoss (MNRL), i.e. InfoNCE with
cosine similarity times a scale (van den Oord et al. 2018; Henderson et al. 2017) -- for a batch
of B (query q_i, positive p_i[, hard negative n_i]) rows:

    loss = mean_i -log( exp(s * cos(q_i, p_i)) / sum_j exp(s * cos(q_i, c_j)) )

where c runs over all B positives (and all B hard negatives, if given) and s = 20. Every other
row's positive is a free negative. `mnrl_numpy` computes it in plain numpy.

The API: sentence-transformers >= 3 trains with `SentenceTransformerTrainer` +
`SentenceTransformerTrainingArguments` on a `datasets.Dataset` (columns by position: anchor,
positive[, negative], or sentence1, sentence2, score); the old `model.fit(train_objectives=...)`
with `InputExample` and a DataLoader is a legacy wrapper. In v6 the losses live in
`sentence_transformers.sentence_transformer.losses`.

A trained model is saved under `<model cache>/<name>-<hash>` (hash of the configuration and the
training rows): `course_model_id` is that folder name, so its vectors never mix with the base
model's in the embedding cache. Model cache: $COURSE_MODEL_CACHE, default data/cache/models.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from course_utils.paths import model_cache_dir

__all__ = ["mnrl_numpy", "scored_pairs", "train_bi_encoder", "load_bi_encoder", "LOSSES"]

LOSSES = ("mnrl", "cosine")


def mnrl_numpy(q: np.ndarray, p: np.ndarray, n: np.ndarray | None = None,
               scale: float = 20.0) -> float:
    """MNRL / InfoNCE loss of one batch: q, p (and n) float arrays of shape (B, d), row i a pair.

    Candidates are [p; n] (2B rows with negatives); logits = scale * cosine(q_i, candidate_j);
    loss = mean over i of cross-entropy with target j = i.
    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> round(mnrl_numpy(q, q, scale=1.0), 4)       # -log(e / (e + 1))
    0.3133
    """
    q, p = np.asarray(q, np.float64), np.asarray(p, np.float64)
    if q.ndim != 2 or q.shape != p.shape:
        raise ValueError(f"q and p must both be (B, d) arrays, got {q.shape} and {p.shape}")
    cands = p if n is None else np.vstack([p, np.asarray(n, np.float64)])
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
    logits = scale * unit(q) @ unit(cands).T                       # (B, B) or (B, 2B)
    logits -= logits.max(axis=1, keepdims=True)                    # stable log-softmax
    log_prob = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return float(-np.mean(log_prob[np.arange(len(q)), np.arange(len(q))]))


def scored_pairs(rows: Sequence[Mapping]) -> list[dict]:
    """Rows with a hard negative -> a similarity-scored set for CosineSimilarityLoss:
    (anchor, positive, 1.0) and (anchor, negative, 0.0).

    >>> scored_pairs([{"anchor": "q", "positive": "p", "negative": "n"}])
    [{'sentence1': 'q', 'sentence2': 'p', 'score': 1.0}, {'sentence1': 'q', 'sentence2': 'n', 'score': 0.0}]
    """
    out = []
    for r in rows:
        if "negative" not in r:
            raise ValueError("scored_pairs needs rows with a 'negative' (see mine_hard_negatives)")
        out += [{"sentence1": r["anchor"], "sentence2": r["positive"], "score": 1.0},
                {"sentence1": r["anchor"], "sentence2": r["negative"], "score": 0.0}]
    return out


def _config_key(rows, config: dict) -> str:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for r in rows:
        digest.update("\x1f".join(str(v) for v in r.values()).encode() + b"\x1e")
    return digest.hexdigest()[:12]


def train_bi_encoder(rows: Sequence[Mapping], loss: str = "mnrl", *, epochs: float = 1,
                     learning_rate: float = 3e-5, batch_size: int = 32,
                     max_steps: int | None = None, warmup: float = 0.1, scale: float = 20.0,
                     seed: int = 0, name: str = "minilm-ft", base_model: str | Path | None = None,
                     root: str | Path | None = None, show_progress: bool = True,
                     log_every: int = 10, evaluator=None, eval_every: int | None = None):
    """Fine-tune all-MiniLM-L6-v2 on `rows`; cached on disk by configuration + rows.

    rows: dicts {"anchor", "positive"[, "negative"]} for loss="mnrl" (in-batch negatives, plus
    hard negatives when present; batches never hold the same text twice), or
    {"sentence1", "sentence2", "score"} for loss="cosine" (CosineSimilarityLoss: squared error
    between cosine and score). max_steps: stop early (None: full epochs). base_model: a folder
    to start from (e.g. a model this function saved), default all-MiniLM-L6-v2.
    log_every: log the training loss every that many steps; evaluator: a sentence-transformers
    evaluator (e.g. `InformationRetrievalEvaluator`) run every `eval_every` steps (default log_every).
    Neither changes the weights, so neither is part of the cache key: a cached model keeps the
    logs of the run that trained it.
    Returns the SentenceTransformer with `course_model_id` (its folder name), `trained_now`
    and `training_info` (config + seconds, steps, steps per second, "loss_log" [[step, loss]],
    "eval_log" [[step, {metric: value}]]).
    >>> model = train_bi_encoder(rows, max_steps=4)           # doctest: +SKIP
    >>> model.course_model_id                                  # doctest: +SKIP
    'minilm-ft-1c0ffee2b4d1'
    """
    from course_utils.models.loading import model_path, quiet_loading, set_offline

    set_offline()
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    rows = [dict(r) for r in rows]
    need = {"mnrl": {"anchor", "positive"}, "cosine": {"sentence1", "sentence2", "score"}}[loss]
    if not rows or not need <= set(rows[0]):
        raise ValueError(f"loss={loss!r} needs non-empty rows with keys {sorted(need)}")
    if loss == "mnrl" and len(rows) < 2:
        raise ValueError("in-batch negatives need at least 2 rows")
    base = Path(base_model) if base_model else model_path()
    config = dict(base=base.name, loss=loss, epochs=epochs, lr=learning_rate,
                  batch_size=batch_size, max_steps=max_steps, warmup=warmup, scale=scale,
                  seed=seed, columns=list(rows[0]))
    folder = Path(root or model_cache_dir()) / f"{name}-{_config_key(rows, config)}"
    if (folder / "config.json").exists():
        return load_bi_encoder(folder, trained_now=False)
    with quiet_loading():
        model, stats = _fit(rows, base, config, show_progress, log_every, evaluator, eval_every)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
        model.save(str(tmp))
    (tmp / "course_training.json").write_text(json.dumps({**config, "rows": len(rows), **stats}))
    if folder.exists():  # a half-written folder from an interrupted run
        shutil.rmtree(folder)
    tmp.replace(folder)
    return load_bi_encoder(folder, trained_now=True)


def _fit(rows, base: Path, config: dict, show_progress: bool, log_every: int, evaluator,
         eval_every: int | None):
    import datasets
    import torch
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer import losses
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    from transformers import set_seed
    from transformers.trainer_callback import PrinterCallback

    set_seed(config["seed"])
    torch.manual_seed(config["seed"])
    model = SentenceTransformer(str(base), device="cpu")
    model.model_card_data.generate_widget_examples = False   # no "Computing widget examples" bar
    model.model_card_data.set_widget_examples = lambda dataset: None   # (a saved model's card would compute them)
    # a speed note ("embedding each input column in its own forward pass"; same loss and gradients) stays off stderr
    logging.getLogger("sentence_transformers.base.losses.merged_forward").setLevel(logging.ERROR)
    train = datasets.Dataset.from_list(rows)
    if config["loss"] == "mnrl":
        objective = losses.MultipleNegativesRankingLoss(model, scale=config["scale"])
        sampler = BatchSamplers.NO_DUPLICATES     # a duplicate in a batch is a false negative
    else:
        objective = losses.CosineSimilarityLoss(model)
        sampler = BatchSamplers.BATCH_SAMPLER
    with tempfile.TemporaryDirectory() as out:
        args = SentenceTransformerTrainingArguments(
            output_dir=out, num_train_epochs=config["epochs"], max_steps=config["max_steps"] or -1,
            per_device_train_batch_size=config["batch_size"], learning_rate=config["lr"],
            warmup_steps=config["warmup"], seed=config["seed"], data_seed=config["seed"],
            batch_sampler=sampler, save_strategy="no", report_to="none", use_cpu=True,
            logging_steps=log_every, disable_tqdm=not show_progress, dataloader_num_workers=0,
            **(dict(eval_strategy="steps", eval_steps=eval_every or log_every) if evaluator else {}))
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train,
                                             loss=objective, evaluator=evaluator)
        if not show_progress:   # quiet: no bar, and no dict printed at every logging step
            trainer.remove_callback(PrinterCallback)
        start = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - start
    history = trainer.state.log_history
    loss_log = [[h["step"], h["loss"]] for h in history if "loss" in h]
    eval_log = [[h["step"], {k.removeprefix("eval_"): v for k, v in h.items()
                             if k.startswith("eval_") and isinstance(v, float)}]
                for h in history if any(k.startswith("eval_") for k in h)]
    stats = dict(seconds=seconds, steps=int(result.global_step),
                 steps_per_second=result.global_step / seconds,
                 final_loss=float(result.training_loss), loss_log=loss_log, eval_log=eval_log)
    return model, stats


def load_bi_encoder(folder: str | Path, trained_now: bool = False):
    """Load a model saved by `train_bi_encoder` (CPU), tagged with its folder name.

    >>> model = load_bi_encoder("data/cache/models/minilm-ft-1c0ffee2b4d1")   # doctest: +SKIP
    """
    from sentence_transformers import SentenceTransformer

    from course_utils.models.loading import quiet_loading, set_offline

    set_offline()
    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"no model in {folder}; train one with train_bi_encoder")
    with quiet_loading():
        model = SentenceTransformer(str(folder), device="cpu")
    model.course_model_id = folder.name
    model.trained_now = trained_now
    info = folder / "course_training.json"
    model.training_info = json.loads(info.read_text()) if info.exists() else {}
    return model
