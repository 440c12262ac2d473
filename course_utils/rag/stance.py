"""A stance head: a cross-encoder that reads a claim and a sentence *together* and says SUPPORT,
CONTRADICT or NOT ENOUGH INFO.

Vectors of the claim and of the sentence encoded apart (`verify.SentenceVerifier`) keep what a
sentence is about, not which way its finding points. A cross-encoder attends across both texts
at once: `CrossEncoder(<MiniLM folder>, num_labels=3)` puts a new three-logit head on the bundled
all-MiniLM-L6-v2 and `CrossEncoderTrainer` fine-tunes it with cross-entropy (chapter 06 trains
the one-logit re-ranker with the same function, `rerank.training.train_cross_encoder`, which
caches the model under $COURSE_MODEL_CACHE keyed by the pairs and the configuration).

Training pairs come from SciFact *train* (`verify.rationale_pairs`): each rationale sentence
with its claim's label, plus non-rationale sentences of the cited abstracts as NOT ENOUGH INFO.
NOT ENOUGH INFO outnumbers the other labels, so the loss is class-weighted
(`balanced_weights`: n / (k * count), scikit-learn's "balanced"). The train claims are split
(`split_claims`) into a training part and a validation part, by claim, so no claim is in both;
`select_stance_head` trains one head per learning rate, evaluates macro-F1 on the validation
pairs while training, keeps each run's best evaluated step, and returns the best run.

Claim level: `stance_probs` gives the (n, 3) probabilities of a claim's retrieved sentences,
and `verify.verify_claim` turns them into a verdict (rationales: the sentences with
P(SUPPORT) + P(CONTRADICT) >= threshold, at most 3, best first; the label of SUPPORT /
CONTRADICT with more probability summed over them; NOT ENOUGH INFO if none is selected).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from course_utils.rag.labels import LABELS

__all__ = ["stance_triples", "split_claims", "balanced_weights", "train_stance_head",
           "select_stance_head", "stance_probs"]


def stance_triples(pairs: Sequence[Mapping]) -> list[tuple[str, str, int]]:
    """(claim, sentence, class) triples from `verify.rationale_pairs` rows; class = LABELS index.

    >>> stance_triples([{"claim": "X cures Y.", "sentence": "X did not cure Y.", "label": "CONTRADICT"}])
    [('X cures Y.', 'X did not cure Y.', 1)]
    """
    unknown = {p["label"] for p in pairs} - set(LABELS)
    if unknown:
        raise ValueError(f"unknown labels {sorted(unknown)}; expected {list(LABELS)}")
    return [(p["claim"], p["sentence"], LABELS.index(p["label"])) for p in pairs]


def split_claims(claims: Sequence[Mapping], validation_share: float = 0.15,
                 seed: int = 0) -> tuple[list[Mapping], list[Mapping]]:
    """(training claims, validation claims): a seeded random split by claim, order kept.

    >>> train, val = split_claims([{"id": i} for i in range(20)], validation_share=0.25)
    >>> len(train), len(val), sorted(c["id"] for c in train + val) == list(range(20))
    (15, 5, True)
    """
    if not 0 < validation_share < 1:
        raise ValueError(f"validation_share must lie strictly between 0 and 1, got {validation_share!r}")
    n_val = int(round(len(claims) * validation_share))
    if not 0 < n_val < len(claims):
        raise ValueError(f"{len(claims)} claims are too few to hold out a share of {validation_share}")
    held = set(np.random.default_rng(seed).permutation(len(claims))[:n_val].tolist())
    return ([c for i, c in enumerate(claims) if i not in held],
            [c for i, c in enumerate(claims) if i in held])


def balanced_weights(classes: Sequence[int], n_classes: int = len(LABELS)) -> list[float]:
    """One loss weight per class, n / (n_classes * count): each class weighs the same in total.

    >>> balanced_weights([0, 0, 0, 1, 2, 2])          # rounded to 3 decimals (they key the model cache)
    [0.667, 2.0, 1.0]
    """
    counts = np.bincount(np.asarray(classes, int), minlength=n_classes)
    if len(counts) != n_classes or not counts.all():
        raise ValueError(f"every class 0..{n_classes - 1} needs at least one example, counts {counts.tolist()}")
    return [round(float(len(classes) / (n_classes * c)), 3) for c in counts]


def train_stance_head(train: Sequence[tuple], validation: Sequence[tuple] | None = None, *,
                      learning_rate: float = 5e-5, epochs: float = 2, batch_size: int = 16,
                      max_length: int = 128, max_steps: int | None = None, evaluations: int = 4,
                      weighted: bool = True, seed: int = 0, root=None, show_progress: bool = True):
    """Fine-tune MiniLM with a three-label head on (claim, sentence, class) triples; cached.

    validation: held-out triples, scored by macro-F1 `evaluations` times while training; the
    weights of the best evaluation are kept. weighted: class-balanced cross-entropy.
    Returns the CrossEncoder from `rerank.training.train_cross_encoder` (its `training_info`
    holds the curves; `trained_now` is False when it came from the cache).
    >>> head = train_stance_head(triples, val_triples, learning_rate=5e-5)   # doctest: +SKIP
    """
    from course_utils.rerank.training import train_cross_encoder

    train = list(train)
    weights = balanced_weights([t[2] for t in train]) if weighted else None
    return train_cross_encoder(train, epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
                               max_length=max_length, max_steps=max_steps, validation=list(validation or []) or None,
                               evaluations=evaluations, num_labels=len(LABELS), class_weights=weights,
                               seed=seed, name="minilm-stance", root=root, show_progress=show_progress)


def select_stance_head(train: Sequence[tuple], validation: Sequence[tuple],
                       learning_rates: Sequence[float] = (3e-5, 1e-4), **kwargs):
    """Train one head per learning rate (`train_stance_head`) and keep the best on validation.

    Returns (model, rows): one row per learning rate with the best validation macro-F1, the
    step it was reached at (the weights kept), the training seconds (from the cache: the
    original run's), whether this call trained it, and the curves "loss" and "validation"
    [(step, value)] for plotting.
    """
    if not validation:
        raise ValueError("selecting a learning rate needs validation triples")
    runs, rows = {}, []
    for lr in learning_rates:
        model = train_stance_head(train, validation, learning_rate=lr, **kwargs)
        curve = model.training_info.get("val_log", [])
        best = max(curve, key=lambda x: x[1]) if curve else [None, float("nan")]
        runs[lr] = model
        rows.append({"learning rate": lr, "best validation macro-F1": best[1], "at step": best[0],
                     "steps": model.training_info.get("steps"), "seconds": model.training_info.get("seconds"),
                     "trained now": model.trained_now,
                     "loss": [tuple(x) for x in model.training_info.get("loss_log", [])],
                     "validation": [tuple(x) for x in curve]})
    score = lambda r: -np.inf if np.isnan(r["best validation macro-F1"]) else r["best validation macro-F1"]  # noqa: E731
    chosen = max(rows, key=score)
    return runs[chosen["learning rate"]], rows


def stance_probs(model, claim: str, sentences: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """float (n, 3): softmax of the head's logits for (claim, sentence i), columns in LABELS order.

    >>> class Head:          # a stand-in with the CrossEncoder.predict signature
    ...     def predict(self, pairs, **kw): return np.zeros((len(pairs), 3))
    >>> stance_probs(Head(), "X cures Y.", ["a", "b"]).round(3).tolist()
    [[0.333, 0.333, 0.333], [0.333, 0.333, 0.333]]
    """
    from scipy.special import softmax

    if not len(sentences):
        return np.zeros((0, len(LABELS)))
    logits = np.asarray(model.predict([(claim, s) for s in sentences], batch_size=batch_size,
                                      activation_fn=_identity(), show_progress_bar=False), float)
    if logits.ndim != 2 or logits.shape[1] != len(LABELS):
        raise ValueError(f"the model gives {logits.shape[1:] or 'one score'} per pair, not {len(LABELS)} logits: "
                         "pass a head from train_stance_head")
    return softmax(logits, axis=1)


def _identity():
    try:
        import torch
        return torch.nn.Identity()
    except ImportError:      # a stand-in model in a doctest needs no torch
        return None
