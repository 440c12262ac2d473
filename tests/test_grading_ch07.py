"""Chapter 07's exercise checks: typical mistakes fail with a message that names them, and other
correct implementations pass (the generic tests -- solutions pass, notebooks grade -- are in
test_grading.py)."""
import re

import numpy as np
import pytest
from test_grading import _reference

from course_utils.grading import check


# ------------------------------------------------------------------- 07.chunk: mistakes
def _chunks_from(text, doc_id, size, overlap, starts_fn, joined=False):
    spans = [m.span() for m in re.finditer(r"\S+", text)]
    out = []
    for s in starts_fn(len(spans), size, overlap):
        e = min(s + size, len(spans))
        a, b = spans[s][0], spans[e - 1][1]
        body = " ".join(text[a:b].split()) if joined else text[a:b]
        out.append({"doc_id": str(doc_id), "index": len(out), "start": a, "end": b, "text": body})
    return out


def _chunker(starts_fn, joined=False):
    return lambda text, doc_id, size, overlap: _chunks_from(text, doc_id, size, overlap, starts_fn, joined)


_right = lambda n, size, overlap: [s for s in range(0, max(n - overlap, 1), size - overlap) if s < n]  # noqa: E731
_no_last = lambda n, size, overlap: list(range(0, n - size + 1, size - overlap)) or ([0] if n else [])  # noqa: E731
_extra = lambda n, size, overlap: list(range(0, n, size - overlap))  # noqa: E731
_no_overlap = lambda n, size, overlap: list(range(0, n, size))  # noqa: E731


def _unchecked(text, doc_id, size, overlap):          # no validation: overlap > size gives []
    if overlap >= size:
        return []
    return _reference("07.chunk")(text, doc_id, size, overlap)


# ------------------------------------------------------------------- 07.pack: mistakes
def _packer(stop=False, dedupe=True, strict=False, rank_numbers=False, truncate=False):
    def pack(retrieved, budget, count_tokens):
        used, kept, lines, texts = 0, [], [], set()
        for rank, r in enumerate(retrieved, 1):
            if dedupe and (r["chunk_id"] in kept or r["text"] in texts):
                continue
            text, n = r["text"], count_tokens(r["text"])
            if used + n > budget or (strict and used + n == budget):
                if truncate and budget - used > 0:
                    text = " ".join(text.split()[: budget - used])
                    n = count_tokens(text)
                    if not text or used + n > budget:
                        continue
                elif stop:
                    break
                else:
                    continue
            used += n
            kept.append(r["chunk_id"])
            texts.add(r["text"])
            lines.append(f"[{rank if rank_numbers else len(kept)}] {text}")
        return {"text": "\n".join(lines), "sources": kept, "tokens": used}
    return pack


# ------------------------------------------------------------------- 07.pr: mistakes
def _pr(per_retrieved=False, skip_missing=False, dupes=False, all_queries=False, swap=False):
    def fn(ranked, gold, k):
        ps, rs = [], []
        for q, rel in gold.items():
            rel = set(rel)
            if (not rel and not all_queries) or (skip_missing and q not in ranked):
                continue
            top = list(ranked.get(q, []))[:k]
            hits = sum(d in rel for d in top) if dupes else len(set(top) & rel)
            ps.append(hits / (len(top) if per_retrieved and top else k))
            rs.append(hits / len(rel) if rel else 0.0)
        if not ps:
            raise ValueError("none")
        out = (float(np.mean(ps)), float(np.mean(rs)))
        return out[::-1] if swap else out
    return fn


# ------------------------------------------------------------------- 07.cache: mistakes
def _cacher(lru=True, evict=True, truthy=False, normalise=True, with_k=True):
    def cached(query, k, search_fn, cache, maxsize):
        q = " ".join(query.lower().split()) if normalise else query
        key = (q, k) if with_k else q
        hit = cache.get(key) if truthy else key in cache
        if hit:
            if lru:
                cache[key] = cache.pop(key)
            return cache[key]
        cache[key] = search_fn(query, k)
        while evict and len(cache) > maxsize:
            del cache[next(iter(cache))]
        return cache[key]
    return cached


def _token_chunks(mode):
    """search_token_chunks variants: word windows, [CLS]/[SEP] counted, windows that do not overlap."""
    def fn(model_path, docs, question, size, overlap, k):
        from sentence_transformers import SentenceTransformer
        model = SentenceTransformer(model_path, device="cpu")
        spans = []
        for doc_id, text in docs.items():
            if mode == "words":
                offsets = [m.span() for m in re.finditer(r"\S+", text)]
            else:
                offsets = model.tokenizer(text, add_special_tokens=mode == "special",
                                          return_offsets_mapping=True)["offset_mapping"]
            n, step = len(offsets), size if mode == "no overlap" else size - overlap
            for s in range(0, max(n - (0 if mode == "no overlap" else overlap), 1), step):
                spans.append((doc_id, offsets[s][0], offsets[min(s + size, n) - 1][1]))
        spans = [(d, a, b) for d, a, b in spans if b > a]
        vectors = model.encode([docs[d][a:b] for d, a, b in spans] + [question], normalize_embeddings=True,
                               show_progress_bar=False)
        scores = vectors[:-1] @ vectors[-1]
        best = np.argsort(-scores)[:k]
        return [{"doc_id": spans[i][0], "start": spans[i][1], "end": spans[i][2], "score": float(scores[i])} for i in best]
    return fn


_MISTAKES = [
    ("07.chunk", _chunker(_no_last), "last words of the document are in no chunk"),
    ("07.chunk", _chunker(_extra), "adds no new word"),
    ("07.chunk", _chunker(_no_overlap), "share exactly overlap"),
    ("07.chunk", _chunker(_right, joined=True), "do not ' '.join the words"),
    ("07.chunk", _unchecked, "must raise ValueError"),
    ("07.chunk", lambda t, d, s, o: [dict(c, doc_id=d) for c in _reference("07.chunk")(t, d, s, o)], "str(doc_id)"),
    ("07.pack", _packer(stop=True), "skip it instead and keep going"),
    ("07.pack", _packer(dedupe=False), "a duplicate was packed twice"),
    ("07.pack", _packer(strict=True), "fills the budget exactly still fits"),
    ("07.pack", _packer(rank_numbers=True), "without gaps"),
    ("07.pack", _packer(truncate=True), "never cut a chunk mid-way"),
    ("07.pr", _pr(per_retrieved=True), "divides by k"),
    ("07.pr", _pr(skip_missing=True), "missing from `ranked`"),
    ("07.pr", _pr(dupes=True), "counted twice"),
    ("07.pr", _pr(all_queries=True), "without gold evidence must be left out"),
    ("07.pr", _pr(swap=True), "swapped"),
    ("07.cache", _cacher(lru=False), "FIFO, not LRU"),
    ("07.cache", _cacher(evict=False), "more than maxsize"),
    ("07.cache", _cacher(truthy=True), "empty result list is a valid cached value"),
    ("07.cache", _cacher(normalise=False), "normalise the query"),
    ("07.cache", _cacher(with_k=False), "(normalised query, k)"),
    pytest.param("07.token_chunks", _token_chunks("words"), "count TOKENS", marks=pytest.mark.model),
    pytest.param("07.token_chunks", _token_chunks("special"), "[CLS] and [SEP]", marks=pytest.mark.model),
    pytest.param("07.token_chunks", _token_chunks("no overlap"), "do not overlap", marks=pytest.mark.model),
]


@pytest.mark.parametrize("ex, fn, words", _MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(_MISTAKES)])
def test_typical_mistakes_fail_with_a_message_that_names_them(ex, fn, words, capsys):
    result = check(ex, fn, time_limit=120)
    assert result.status == "failed" and words in result.message, result.message
    assert words in capsys.readouterr().out.replace("\n    ", " ")


def _chunk_with_find(text, doc_id, size, overlap):     # str.split + find, a loop with a while
    if size < 1 or overlap < 0 or overlap >= size:
        raise ValueError("bad size/overlap")
    starts, pos = [], 0
    for w in text.split():
        pos = text.index(w, pos)
        starts.append((pos, pos + len(w)))
        pos += len(w)
    out, s = [], 0
    while s < len(starts):
        e = min(s + size, len(starts))
        a, b = starts[s][0], starts[e - 1][1]
        out.append({"doc_id": str(doc_id), "index": len(out), "start": a, "end": b, "text": text[a:b]})
        if e == len(starts):
            break
        s += size - overlap
    return out


def _pr_numpy(ranked, gold, k):
    rows = [(len(set(list(ranked.get(q, []))[:k]) & set(g)), len(set(g))) for q, g in gold.items() if len(set(g))]
    if not rows:
        raise ValueError("no gold")
    hits, n = np.array(rows, float).T
    return np.mean(hits / k), np.mean(hits / n)


def _cache_del(query, k, search_fn, cache, maxsize):
    key = (" ".join(query.lower().split()), k)
    if key in cache:
        value = cache[key]
        del cache[key]
    else:
        value = search_fn(query, k)
        if len(cache) >= maxsize:
            cache.pop(list(cache)[0])
    cache[key] = value
    return value


@pytest.mark.parametrize("ex, fn", [("07.chunk", _chunk_with_find), ("07.pr", _pr_numpy), ("07.cache", _cache_del),
                                    ("07.pack", _packer())],
                         ids=["chunk-split-find", "pr-numpy", "cache-del", "pack-other"])
def test_other_correct_implementations_pass(ex, fn, capsys):
    assert check(ex, fn), capsys.readouterr().out


@pytest.mark.model
def test_the_token_chunks_solution_passes(capsys):
    assert check("07.token_chunks", _reference("07.token_chunks"), time_limit=180), capsys.readouterr().out
