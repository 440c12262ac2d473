"""Second-stage scorers, each a callable `scorer(query_text, doc_texts) -> scores` for
`rerank.stage.rerank_with`: a trained cross-encoder, MaxSim over a bi-encoder's token vectors,
the cosine of a (bigger) bi-encoder's vectors, and a random control. `cached_scorer` keeps any
scorer's pair scores on disk.

Pair scores are cached in an `EmbeddingCache` namespace (one float per pair, keyed by a sha256
of query and document), so a re-run of a chapter scores nothing again.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np

from course_utils.embeddings.cache import EmbeddingCache
from course_utils.embeddings.encoding import encode
from course_utils.models.loading import model_id
from course_utils.rerank.cross_encoder import maxsim, pair_key, pair_scores, token_vectors

__all__ = ["cached_scorer", "maxsim_scorer", "cross_encoder_scorer", "bi_encoder_scorer",
           "random_scorer"]

Scorer = Callable[[str, list[str]], Sequence[float]]


def cached_scorer(scorer: Scorer, namespace: str) -> Scorer:
    """`scorer` with its (query, document) scores kept on disk under `namespace`.

    >>> calls = []
    >>> def count(q, docs): calls.append(len(docs)); return [len(d) for d in docs]
    >>> s = cached_scorer(count, "doctest-count")          # doctest: +SKIP
    >>> s("q", ["ab", "c"]), s("q", ["ab"]), calls          # doctest: +SKIP
    ([2.0, 1.0], [2.0], [2])
    """
    cache = EmbeddingCache(namespace)

    def scored(query: str, docs: list[str]) -> list[float]:
        keys = [pair_key(query, d) for d in docs]
        unique = list(dict.fromkeys(keys))
        found, missing = cache.get(unique)
        if missing:
            new = np.asarray(scorer(query, [docs[keys.index(unique[i])] for i in missing]),
                             np.float32).reshape(-1, 1)
            cache.put([unique[i] for i in missing], new)
            found.update(zip(missing, new))
        position = {key: i for i, key in enumerate(unique)}
        return [float(found[position[k]][0]) for k in keys]
    return scored


def maxsim_scorer(model, batch_size: int = 16, cache: bool = True) -> Scorer:
    """MaxSim (ColBERT's late interaction) with the bi-encoder `model`'s token vectors; each
    document's token vectors are computed once per scorer; scores cached on disk by default.

    Same scores as `rerank.maxsim_scores(model, query, docs)`.
    >>> s = maxsim_scorer(load_model())                     # doctest: +SKIP
    >>> s("aspirin and stroke", ["Aspirin lowers stroke risk."])   # doctest: +SKIP
    """
    memo: dict[str, np.ndarray] = {}

    def score(query: str, docs: list[str]) -> list[float]:
        new = [d for d in dict.fromkeys(docs) if d not in memo]
        memo.update(zip(new, token_vectors(model, new, batch_size)))
        q = token_vectors(model, [query], batch_size)[0]
        return [maxsim(q, memo[d]) for d in docs]
    return cached_scorer(score, f"maxsim__{model_id(model)}") if cache else score


def cross_encoder_scorer(model, batch_size: int = 32) -> Scorer:
    """A cross-encoder's logits for (query, each document), cached as `rerank.pair_scores`.

    >>> s = cross_encoder_scorer(ce); s("claim", ["abstract 1", "abstract 2"])   # doctest: +SKIP
    """
    def score(query: str, docs: list[str]) -> list[float]:
        return pair_scores(model, [(query, d) for d in docs], batch_size, show_progress=False).tolist()
    return score


def bi_encoder_scorer(model, batch_size: int = 8, cache: bool = True) -> Scorer:
    """Cosine of `model`'s normalised vectors of the query and each document (e.g. a bigger
    bi-encoder than the first stage's re-scoring its candidates); no training.

    Vectors come from `embeddings.encode`, so with `cache=True` each text is encoded once per
    model (and `max_seq_length`) and kept in the embedding cache.
    >>> s = bi_encoder_scorer(load_mpnet())                                # doctest: +SKIP
    >>> s("aspirin and stroke", ["Aspirin lowers stroke risk.", "Statins."])   # doctest: +SKIP
    """
    def score(query: str, docs: list[str]) -> list[float]:
        q = encode([query], model, batch_size, cache=cache, show_progress=False)[0]
        return (encode(docs, model, batch_size, cache=cache, show_progress=False) @ q).tolist()
    return score


def random_scorer(seed: int = 0) -> Scorer:
    """A control: random scores, the same for the same (seed, query, documents).

    >>> s = random_scorer(0)
    >>> s("q", ["a", "b", "c"]) == s("q", ["a", "b", "c"])
    True
    """
    def score(query: str, docs: list[str]) -> list[float]:
        digest = hashlib.sha256(pair_key(str(seed), query).encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little")).random(len(docs)).tolist()
    return score
