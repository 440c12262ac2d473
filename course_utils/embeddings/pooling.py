"""Pooling token embeddings into one vector, and embedding documents longer than the model's window.

A transformer returns one vector per token; a sentence embedding pools them. all-MiniLM-L6-v2 was
trained with mean pooling (Reimers & Gurevych 2019, Sentence-BERT, section 3), which is why CLS or
max pooling of the same tokens score lower -- chapter 01 measures by how much.
"""

from __future__ import annotations

import numpy as np

from course_utils.embeddings.encoding import check_texts, encode, normalize

__all__ = ["STRATEGIES", "token_embeddings", "pool", "encode_pooled", "split_tokens", "embed_long"]

STRATEGIES = ("mean", "cls", "max")


def token_embeddings(texts, model, batch_size: int = 32) -> list[np.ndarray]:
    """Per-text arrays of shape (n_tokens_i, d): the transformer's output before pooling.

    >>> [t.shape for t in token_embeddings(["Hi there"], model)]   # doctest: +SKIP
    [(4, 384)]
    """
    texts = check_texts(texts)
    out = model.encode(texts, batch_size=batch_size, output_value="token_embeddings",
                       show_progress_bar=False, convert_to_numpy=False)
    return [np.asarray(t.float().cpu().numpy() if hasattr(t, "cpu") else t, np.float32) for t in out]


def pool(tokens: np.ndarray, strategy: str = "mean") -> np.ndarray:
    """Pool (n_tokens, d) token vectors into one (d,) vector: mean, CLS (first token) or max.

    >>> pool(np.array([[1.0, 0.0], [3.0, 2.0]]), "mean")
    array([2., 1.], dtype=float32)
    >>> pool(np.array([[1.0, 0.0], [3.0, 2.0]]), "max")
    array([3., 2.], dtype=float32)
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown pooling {strategy!r}; choose one of {STRATEGIES}")
    tokens = np.asarray(tokens, dtype=np.float32)
    if tokens.ndim != 2 or len(tokens) == 0:
        raise ValueError(f"tokens must have shape (n_tokens >= 1, d), got {tokens.shape}")
    if strategy == "cls":
        return tokens[0].copy()
    return tokens.mean(axis=0) if strategy == "mean" else tokens.max(axis=0)


def encode_pooled(texts, model, strategy: str = "mean", batch_size: int = 32,
                  normalize_vectors: bool = True) -> np.ndarray:
    """Encode with a chosen pooling of the raw token outputs; float32 (n, d), L2-normalised
    unless `normalize_vectors=False` (then: the pooled vectors as they are).

    >>> encode_pooled(["a", "b"], model, "cls").shape                 # doctest: +SKIP
    (2, 384)
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown pooling {strategy!r}; choose one of {STRATEGIES}")
    tokens = token_embeddings(texts, model, batch_size)
    pooled = np.stack([pool(t, strategy) for t in tokens])
    return normalize(pooled) if normalize_vectors else pooled


def split_tokens(text: str, tokenizer, window: int = 200, overlap: int = 50) -> list[str]:
    """Split `text` into pieces of at most `window` tokens, consecutive pieces sharing `overlap`.

    Pieces are slices of the original text (via the tokenizer's character offsets), so nothing is
    lost or re-worded.

    >>> split_tokens("one two three four five", tok, window=2, overlap=0)   # doctest: +SKIP
    ['one two', 'three four', 'five']
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must be a non-empty string")
    if window < 1 or not 0 <= overlap < window:
        raise ValueError(f"need window >= 1 and 0 <= overlap < window, got {window}, {overlap}")
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                        verbose=False)["offset_mapping"]  # verbose=False: no "too long" warning
    step = window - overlap
    starts = range(0, max(len(offsets) - overlap, 1), step)
    return [text[offsets[s][0]:offsets[min(s + window, len(offsets)) - 1][1]] for s in starts]


def embed_long(text: str, model, window: int | None = None, overlap: int = 32,
               how: str = "mean") -> tuple[np.ndarray, list[str]]:
    """Embed a text longer than the model's window: split it, encode the pieces, pool them.

    `how="mean"` averages the piece vectors (then re-normalises); `how="first"` keeps only the
    first window -- what the model does by itself when it truncates. Returns (vector (d,), pieces).

    >>> vec, pieces = embed_long(long_text, model)               # doctest: +SKIP
    """
    if how not in ("mean", "first"):
        raise ValueError(f"how must be 'mean' or 'first', got {how!r}")
    window = window or model.max_seq_length - 2  # room for [CLS] and [SEP]
    pieces = split_tokens(text, model.tokenizer, window, overlap)
    vectors = encode(pieces if how == "mean" else pieces[:1], model, show_progress=False)
    return normalize(vectors.mean(axis=0, keepdims=True))[0], pieces
