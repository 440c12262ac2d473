"""Reading a joint image-text space: zero-shot classification and a linear probe.

Zero-shot (CLIP, Radford et al. 2021): write one or more text prompts per class ("a handwritten
seven"), embed them, and give each image the class whose prompts it is most similar to -- no
labelled image needed. With several prompts per class the class score is the mean cosine over its
prompts (prompt ensembling). A linear probe is the labelled baseline: a logistic regression trained
on the image vectors of the training split.
"""
from __future__ import annotations

import numpy as np

__all__ = ["class_scores", "zero_shot_predict", "linear_probe"]


def _unit(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (n, d), got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{name} has rows of zero length: their cosine is undefined")
    return x / norms


def class_scores(image_vecs, prompt_vecs, prompt_labels):
    """(classes, scores): the sorted distinct labels, and scores (n_images, n_classes) = mean cosine
    of each image to the prompts of each class.

    >>> classes, s = class_scores([[1, 0]], [[1, 0], [0, 1], [1, 1]], ["a", "b", "b"])
    >>> classes.tolist(), s.round(3).tolist()
    (['a', 'b'], [[1.0, 0.354]])
    """
    images, prompts = _unit(image_vecs, "image_vecs"), _unit(prompt_vecs, "prompt_vecs")
    labels = np.asarray(prompt_labels)
    if images.shape[1] != prompts.shape[1]:
        raise ValueError(f"dimension mismatch: images {images.shape[1]}, prompts {prompts.shape[1]} -- "
                         "both must be in the same joint space")
    if labels.shape != (len(prompts),):
        raise ValueError(f"prompt_labels must give one class per prompt: {len(prompts)} prompts, "
                         f"{labels.size} labels")
    classes = np.unique(labels)
    sims = images @ prompts.T
    return classes, np.stack([sims[:, labels == c].mean(axis=1) for c in classes], axis=1)


def zero_shot_predict(image_vecs, prompt_vecs, prompt_labels) -> np.ndarray:
    """The class of each image whose prompts it is most similar to (ties: the smaller class).

    >>> zero_shot_predict([[1, 0], [0, 1]], [[1, 0.1], [0.1, 1]], [7, 3]).tolist()
    [7, 3]
    """
    classes, scores = class_scores(image_vecs, prompt_vecs, prompt_labels)
    return classes[np.argmax(scores, axis=1)]


def linear_probe(train_vecs, train_labels, test_vecs, test_labels, seed: int = 0) -> float:
    """Accuracy on the test vectors of a logistic regression fitted on the training vectors.

    >>> X = np.array([[0.0], [0.1], [1.0], [1.1]]); y = np.array([0, 0, 1, 1])
    >>> linear_probe(X, y, X, y)
    1.0
    """
    from sklearn.linear_model import LogisticRegression

    probe = LogisticRegression(max_iter=5000, random_state=seed)
    probe.fit(np.asarray(train_vecs), np.asarray(train_labels))
    return float(probe.score(np.asarray(test_vecs), np.asarray(test_labels)))
