"""The images of chapter 11 and their captions.

Images: scikit-learn's bundled `load_digits` -- 1,797 handwritten digits, 8 x 8 pixels with 16 grey
levels (Alpaydin & Kaynak, UCI "Optical Recognition of Handwritten Digits"); nothing is downloaded.
Captions: a digit's name in one of several sentence templates ("a handwritten seven"). Training
uses `TRAIN_TEMPLATES`; `UNSEEN_TEMPLATES` are kept for testing what the model does with words it
never saw next to an image.
"""
from __future__ import annotations

import numpy as np

__all__ = ["NUMBER_WORDS", "TRAIN_TEMPLATES", "UNSEEN_TEMPLATES", "caption", "caption_table", "load_digit_split"]

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TRAIN_TEMPLATES = (
    "a handwritten {word}",
    "the digit {word}",
    "a scan of the number {word}",
    "a small picture of a handwritten {word}",
    "the number {word}, written by hand",
    "a low-resolution image of the digit {word}",
    "someone wrote a {word}",
    "a grey 8 by 8 image of a {word}",
)
UNSEEN_TEMPLATES = (
    "a drawing of the number {word}",
    "{word}",
    "the handwritten numeral {digit}",
    "{digit}",
)


def caption(label: int, template: str) -> str:
    """The caption of digit `label` in `template` ({word}: its name, {digit}: the numeral).

    >>> caption(7, "a handwritten {word}"), caption(7, "the numeral {digit}")
    ('a handwritten seven', 'the numeral 7')
    """
    if not isinstance(label, (int, np.integer)) or not 0 <= label <= 9:
        raise ValueError(f"label must be a digit 0-9, got {label!r}")
    if "{word}" not in template and "{digit}" not in template:
        raise ValueError(f"template {template!r} names no digit: put {{word}} or {{digit}} in it")
    return template.format(word=NUMBER_WORDS[label], digit=int(label))


def caption_table(templates=TRAIN_TEMPLATES) -> list[list[str]]:
    """captions[label][t]: every digit in every template, shape 10 x len(templates).

    >>> caption_table(["the digit {word}"])[3]
    ['the digit three']
    """
    return [[caption(label, t) for t in templates] for label in range(10)]


def load_digit_split(test_size: float = 0.3, seed: int = 0):
    """(X_train, y_train, X_test, y_test): images float32 of shape (n, 1, 8, 8) scaled to [0, 1],
    labels int64; a stratified split (every digit in the same share on both sides).

    >>> X_train, y_train, X_test, y_test = load_digit_split()
    >>> X_train.shape, X_test.shape, float(X_train.max())
    ((1257, 1, 8, 8), (540, 1, 8, 8), 1.0)
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise ValueError(f"test_size is the held-out share, between 0 and 1; got {test_size!r}")
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    X_train, X_test, y_train, y_test = train_test_split(images, digits.target.astype(np.int64),
                                                        test_size=test_size, random_state=seed,
                                                        stratify=digits.target)
    return X_train, y_train, X_test, y_test
