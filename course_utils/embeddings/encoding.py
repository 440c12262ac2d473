"""texts -> vectors: encoding with a content-hash cache (similarity measures: `similarity`).

`encode` is the one way the course turns texts into vectors: float32, shape (n, d), L2-normalised
by default, every text encoded at most once per model (the cache is on disk, shared by all
notebooks). The model is passed in; see `course_utils.models.load_model`.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm  # text bars: no ipywidgets needed

from course_utils.embeddings.cache import EmbeddingCache
from course_utils.embeddings.similarity import cosine_similarity, dot_similarity, l1_distance, l2_distance, normalize
from course_utils.models.loading import model_id

__all__ = ["check_texts", "cache_namespace", "encode", "seed_cache", "encode_corpus",
           # re-exported: the similarity measures belong with the vectors encode returns
           "normalize", "dot_similarity", "cosine_similarity", "l2_distance", "l1_distance"]


def check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string; for one text use [text]")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"texts must be a list of strings, got {type(texts).__name__}") from None
    if not texts:
        raise ValueError("no texts to encode: the list is empty")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__} ({text!r:.40}), not a string; "
                            "convert or drop it before encoding")
    return texts


_OPEN_CACHES: dict[tuple[str, str], EmbeddingCache] = {}


def _default_cache(namespace: str) -> EmbeddingCache:
    """One open cache per (cache folder, namespace) per process: its shards are read from disk
    once, not on every `encode` call (which cost ~1 s per call with 60k cached vectors)."""
    from course_utils.paths import embedding_cache_dir

    key = (str(embedding_cache_dir()), namespace)
    if key not in _OPEN_CACHES:
        _OPEN_CACHES[key] = EmbeddingCache(namespace)
    return _OPEN_CACHES[key]


def cache_namespace(model, normalize: bool = True) -> str:
    """Cache folder name: model id, normalisation and max sequence length (all change vectors).

    >>> class M: course_model_id = "m"; max_seq_length = 256
    >>> cache_namespace(M())
    'm__norm__len256'
    """
    length = getattr(model, "max_seq_length", None)
    return f"{model_id(model)}__{'norm' if normalize else 'raw'}__len{length}"


def encode(texts, model, batch_size: int = 32, normalize_vectors: bool = True,
           cache: EmbeddingCache | bool = True, show_progress: bool = True,
           chunk_size: int = 512) -> np.ndarray:
    """Encode texts with `model` into float32 vectors of shape (len(texts), d).

    Texts already in the cache are not encoded again; new ones are encoded longest-first in
    chunks of `chunk_size`, each chunk written to the cache as soon as it is done (an interrupted
    run keeps its progress). Pass `cache=False` to bypass the cache, or an `EmbeddingCache` to
    read its `hits`/`misses` counters afterwards.

    >>> vecs = encode(["A cat sat.", "A dog ran."], model)        # doctest: +SKIP
    >>> vecs.shape, vecs.dtype                                     # doctest: +SKIP
    ((2, 384), dtype('float32'))
    """
    texts = check_texts(texts)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    if cache is True:
        cache = _default_cache(cache_namespace(model, normalize_vectors))
    elif cache is False or cache is None:
        cache = None
    elif not isinstance(cache, EmbeddingCache):
        raise TypeError(f"cache must be True, False or an EmbeddingCache, got {type(cache).__name__}")
    unique = list(dict.fromkeys(texts))
    found, missing = cache.get(unique) if cache is not None else ({}, list(range(len(unique))))
    missing.sort(key=lambda i: -len(unique[i]))
    bar = tqdm(total=len(missing), desc="encoding", unit="text", disable=not show_progress or not missing)
    for start in range(0, len(missing), chunk_size):
        todo = missing[start:start + chunk_size]
        batch = [unique[i] for i in todo]
        vecs = np.asarray(model.encode(batch, batch_size=batch_size, show_progress_bar=False,
                                       convert_to_numpy=True), dtype=np.float32)
        vecs = normalize(vecs) if normalize_vectors else vecs
        if cache is not None:  # (an empty cache is falsy: it has a __len__)
            cache.put(batch, vecs)
        found.update(zip(todo, vecs))
        bar.update(len(todo))
    bar.close()
    position = {text: i for i, text in enumerate(unique)}
    return np.stack([found[position[t]] for t in texts]).astype(np.float32, copy=False)


def seed_cache(texts, vectors: np.ndarray, model, sample: int = 8, min_cosine: float = 0.999,
               seed: int = 0) -> int:
    """Put precomputed `vectors` for `texts` into `model`'s cache, after checking they match it.

    A random sample of `sample` texts is re-encoded (uncached); if any cosine to the given vector
    is below `min_cosine`, nothing is stored and ValueError says so. Returns how many new texts
    were added.

    >>> ids, vecs = load_precomputed("scifact")                    # doctest: +SKIP
    >>> seed_cache(texts, vecs, model)                             # doctest: +SKIP
    5183
    """
    texts = check_texts(texts)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.shape[0] != len(texts):
        raise ValueError(f"{len(texts)} texts but {vectors.shape[0]} vectors")
    cache = _default_cache(cache_namespace(model, True))
    _, missing = cache.get(texts)
    if not missing:
        return 0
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(texts), size=min(sample, len(texts)), replace=False)
    fresh = encode([texts[i] for i in pick], model, cache=False, show_progress=False)
    cosines = np.sum(normalize(fresh) * normalize(vectors[pick]), axis=1)
    if cosines.min() < min_cosine:
        raise ValueError(f"precomputed vectors do not match model {model_id(model)!r}: cosine "
                         f"{cosines.min():.4f} < {min_cosine} on a re-encoded sample -- they were "
                         "made by another model or text recipe; encode the texts instead")
    cache.put([texts[i] for i in missing], normalize(vectors[missing]))
    return len(missing)


def encode_corpus(corpus: dict, model, precomputed: str | None = None, **kwargs):
    """(doc_ids, vectors) for a BEIR corpus, text = title + " " + text.

    With `precomputed="scifact"` the shared precomputed vectors seed the cache first (checked
    against `model` on a sample), so a cold cache costs seconds instead of ~17 minutes.

    >>> doc_ids, doc_vecs = encode_corpus(corpus, model, precomputed="scifact")   # doctest: +SKIP
    """
    from course_utils.data.loaders import doc_texts, load_precomputed

    ids, texts = doc_texts(corpus)
    if precomputed:
        pre_ids, pre_vecs = load_precomputed(precomputed, model_id(model))
        row = {doc_id: i for i, doc_id in enumerate(pre_ids)}
        keep = [i for i, doc_id in enumerate(ids) if doc_id in row]
        if keep:
            seed_cache([texts[i] for i in keep], pre_vecs[[row[ids[i]] for i in keep]], model)
    return ids, encode(texts, model, **kwargs)
