"""Hidden test cases of chapter 07's exercises (solutions/07_rag_exercises.ipynb).

Exercises: word windows with overlap that keep provenance (`chunk_words`), packing ranked chunks
into a context under a token budget (`pack_context`), evidence precision@k / recall@k over queries
(`precision_recall_at_k`) and an LRU cache of search results (`cached_search`). Reference answers
are computed here, at check time; when a wrong answer matches a known mistake (the last window
lost, a break instead of a skip, no dedupe, dividing by the number retrieved, FIFO instead of
LRU...) the message names the mistake, never the expected values.
"""
from __future__ import annotations

import functools
import math
import re
from pathlib import Path

import numpy as np

from .cases import Case, Exercise, Fail, as_array, call, held_back


def _rng(n: int) -> np.random.Generator:
    return np.random.default_rng(7000 + n)


# --- 07.chunk: windows of `size` words sharing `overlap` words, with character offsets ---------
_KEYS = ("doc_id", "index", "start", "end", "text")


def _word_spans(text):
    return [m.span() for m in re.finditer(r"\S+", text)]


def _window_starts(n, size, overlap, mode="right"):
    step = size - overlap
    if mode == "no_last":      # only full windows: the tail is lost
        return list(range(0, max(n - size + 1, 0), step)) if n >= size else ([0] if n else [])
    if mode == "extra":        # one window per step up to n: a last window inside the one before
        return list(range(0, n, step))
    return [s for s in range(0, max(n - overlap, 1), step) if s < n]


def _ref_chunks(text, doc_id, size, overlap, mode="right"):
    words = _word_spans(text)
    out = []
    for s in _window_starts(len(words), size, overlap, mode):
        a, b = words[s][0], words[min(s + size, len(words)) - 1][1]
        out.append({"doc_id": str(doc_id), "index": len(out), "start": a, "end": b, "text": text[a:b]})
    return out


def _check_chunks(out, text, doc_id, size, overlap):
    want = _ref_chunks(text, doc_id, size, overlap)
    if out is None:
        raise Fail("the result is None: did you forget `return`?")
    if not isinstance(out, list):
        raise Fail(f"return a list of chunk dicts, got a {type(out).__name__}")
    for c in out:
        if not isinstance(c, dict) or set(c) != set(_KEYS):
            raise Fail(f"each chunk must be a dict with exactly the keys {list(_KEYS)}, got "
                       f"{sorted(c) if isinstance(c, dict) else type(c).__name__}")
    for c in out:
        if not str(c["text"]).strip():
            raise Fail("an empty (or whitespace-only) chunk: a chunk holds at least one word")
        if text[c["start"]:c["end"]] != c["text"]:
            rebuilt = " ".join(text[c["start"]:c["end"]].split()) == c["text"]
            raise Fail("provenance is broken: text[start:end] must equal the chunk's text"
                       + (" -- keep the document's own spacing (slice the original text between the "
                          "first word's start and the last word's end; do not ' '.join the words)"
                          if rebuilt else " (offsets are character positions in the original text)"))
    if any(not isinstance(c["doc_id"], str) or c["doc_id"] != str(doc_id) for c in out):
        raise Fail("every chunk's doc_id must be the document's id as a string (`str(doc_id)`)")
    if [c["index"] for c in out] != list(range(len(out))):
        raise Fail("chunk indexes must count 0, 1, 2, ... in order")
    spans, want_spans = [(c["start"], c["end"]) for c in out], [(c["start"], c["end"]) for c in want]
    if spans == want_spans:
        return
    for mode, message in (
            ("no_last", "the last words of the document are in no chunk: the last window must reach "
                        "the end of the text, even when it holds fewer than `size` words"),
            ("extra", "your last chunk adds no new word -- it lies inside the chunk before it: stop "
                      "once a window has reached the end of the text")):
        if spans == [(c["start"], c["end"]) for c in _ref_chunks(text, doc_id, size, overlap, mode)]:
            raise Fail(message)
    n_words = [len(text[a:b].split()) for a, b in spans]
    if any(n > size for n in n_words):
        raise Fail(f"a chunk holds more than size = {size} words")
    words = _word_spans(text)
    first = {a: i for i, (a, _) in enumerate(words)}
    last = {b: i for i, (_, b) in enumerate(words)}
    if all(a in first and b in last for a, b in spans) and len(spans) > 1:
        shared = [last[b0] - first[a1] + 1 for (_, b0), (a1, _) in zip(spans, spans[1:])]
        if any(s != overlap for s in shared[:-1]):
            raise Fail(f"consecutive chunks must share exactly overlap = {overlap} words (yours share "
                       f"{sorted(set(shared))}): step forward by size - overlap words")
    raise Fail(f"{len(out)} chunks where {len(want)} were expected, or their offsets differ")


def _chunk_case(text, doc_id, size, overlap):
    def run(fn):
        out = call(fn, text, doc_id, size, overlap, names=("text", "doc_id", "size", "overlap"))
        _check_chunks(out, text, doc_id, size, overlap)
    return run


def _raises_case(size, overlap, why):
    def run(fn):
        try:
            fn("one two three four five six", "d", size, overlap)
        except ValueError:
            return
        except Exception as err:   # noqa: BLE001 -- the learner's error, reported
            raise Fail(f"size = {size}, overlap = {overlap} raised {type(err).__name__}; raise a "
                       f"ValueError saying what is wrong ({why})") from None
        raise Fail(f"size = {size}, overlap = {overlap} must raise ValueError ({why})")
    return run


_VOCAB = ("cells", "the", "mice", "were", "treated", "with", "vitamin", "D,", "and", "bone",
          "loss", "(p", "<", "0.05)", "decreased.", "RESULTS", "In", "α-thalassaemia", "1,000")


def _synthetic(seed, n_words):
    rng = _rng(seed)
    seps = rng.choice([" ", " ", " ", "  ", "\n", "\n\n", "\t "], size=n_words)
    words = rng.choice(_VOCAB, size=n_words)
    return "  " + "".join(w + s for w, s in zip(words, seps)) + "\n"


CHUNK = Exercise(
    "07.chunk", "word windows with overlap and provenance", "chunk_words",
    ("Find the words with their character positions (a regular expression for runs of non-space "
     "characters, with `re.finditer`, gives each word's span). Windows start at word 0, size - overlap, "
     "2 (size - overlap), ...; stop after the first window that reaches the last word. A chunk's start "
     "is its first word's start, its end its last word's end, and its text the slice between them.",
     "Check the arguments first (size >= 1, 0 <= overlap < size, else ValueError). `range` with a step "
     "of size - overlap gives the first word of every window; stop once a window has reached the last "
     "word, and cut the last window at the number of words. Each chunk is a dict with doc_id as a "
     "string, its index, the character offsets and the text sliced with them."),
    (Case("10 words, size 4, overlap 1", _chunk_case("a b c d e f g h i j", "d1", 4, 1)),
     Case("overlap 0 (plain consecutive windows)", _chunk_case("a b c d e f g", "d1", 3, 0)),
     Case("the last window is shorter than size", _chunk_case("w1 w2 w3 w4 w5 w6 w7 w8", "d", 4, 1)),
     Case("the last full window ends exactly at the end of the text",
          _chunk_case("w1 w2 w3 w4 w5 w6 w7", "d", 4, 1)),
     Case("a text shorter than one window", _chunk_case("Only three words.", "x", 10, 2)),
     Case("an empty text and a whitespace-only text give no chunk",
          lambda fn: (_chunk_case("", "e", 5, 1)(fn), _chunk_case("  \n\t ", "e", 5, 1)(fn))),
     Case("newlines, tabs and double spaces between words; leading and trailing whitespace",
          _chunk_case(_synthetic(1, 23), "doc-7", 5, 2)),
     Case("an integer doc_id", _chunk_case("Alpha beta gamma delta epsilon.", 4983, 2, 1)),
     Case("overlap = size - 1 (a window moving one word at a time)", _chunk_case("p q r s t u", "d", 3, 2)),
     Case("an abstract-sized text: 230 words, size 64, overlap 16", _chunk_case(_synthetic(2, 230), "13734012", 64, 16)),
     Case("overlap equal to size", _raises_case(4, 4, "the window would never move forward")),
     Case("overlap larger than size", _raises_case(3, 5, "overlap must be smaller than size")),
     Case("size 0 or a negative overlap", lambda fn: (_raises_case(0, 0, "size must be >= 1")(fn),
                                                      _raises_case(3, -1, "overlap must be >= 0")(fn)))),
    points=2,
)


# --- 07.pack: ranked chunks -> numbered context within a token budget ---------------------------
def _ref_pack(retrieved, budget, count, stop=False, dedupe=True, strict=False, rank_numbers=False):
    kept, lines, used, ids, texts = [], [], 0, set(), set()
    for rank, r in enumerate(retrieved, 1):
        if dedupe and (r["chunk_id"] in ids or r["text"] in texts):
            continue
        n = count(r["text"])
        if (used + n >= budget + (0 if strict else 1)):
            if stop:
                break
            continue
        used += n
        ids.add(r["chunk_id"]), texts.add(r["text"])
        kept.append(r["chunk_id"])
        lines.append(f"[{rank if rank_numbers else len(kept)}] {r['text']}")
    return {"text": "\n".join(lines), "sources": kept, "tokens": used}


_PACK_MISTAKES = (
    (dict(stop=True), "you stop at the first chunk that does not fit; skip it instead and keep going "
                      "-- a later, shorter chunk may still fit in the tokens left"),
    (dict(dedupe=False), "a duplicate was packed twice: skip a chunk whose chunk_id, or whose exact "
                         "text, is already in the context (it would waste budget)"),
    (dict(strict=True), "a chunk that fills the budget exactly still fits: keep it when "
                        "used + tokens <= budget"),
    (dict(rank_numbers=True), "number the sources 1, 2, 3, ... in the order they are kept, without "
                              "gaps -- not by their rank in the retrieved list"),
)


def _check_pack(out, retrieved, budget, count):
    want = _ref_pack(retrieved, budget, count)
    if out is None:
        raise Fail("the result is None: did you forget `return`?")
    if not isinstance(out, dict) or set(out) != {"text", "sources", "tokens"}:
        raise Fail("return a dict with exactly the keys 'text', 'sources' and 'tokens'")
    if not isinstance(out["sources"], list):
        raise Fail(f"'sources' must be a list of chunk ids, got a {type(out['sources']).__name__}")
    texts = {r["chunk_id"]: r["text"] for r in reversed(retrieved)}
    unknown = [s for s in out["sources"] if s not in texts]
    if unknown:
        raise Fail(f"'sources' holds {unknown[0]!r}, which is not a retrieved chunk id")
    body = [line.split("] ", 1)[1] if "] " in line else line for line in str(out["text"]).split("\n")]
    if any(t not in texts.values() for t in body if t) and \
            any(any(r["text"].startswith(t) for r in retrieved) for t in body if t):
        raise Fail("a chunk was cut short: never cut a chunk mid-way; skip a chunk that does not fit "
                   "whole")
    used = sum(count(texts[s]) for s in out["sources"])
    if used > budget:
        raise Fail(f"the kept chunks hold {used} tokens, more than the budget of {budget}")
    if out["sources"] == want["sources"] and out["text"] == want["text"]:
        if out["tokens"] != want["tokens"]:
            raise Fail("'tokens' must be the total count_tokens(...) of the kept chunks' texts")
        return
    for variant, message in _PACK_MISTAKES:
        other = _ref_pack(retrieved, budget, count, **variant)
        if other != want and out["sources"] == other["sources"] and \
                (out["text"] == other["text"] or variant.get("rank_numbers") is None):
            raise Fail(message)
    if out["sources"] == want["sources"]:
        raise Fail("the right chunks, but the text is not the lines '[n] chunk text' (n = 1, 2, ...) "
                   "joined by '\\n', in the order kept")
    if sorted(out["sources"]) == sorted(want["sources"]):
        raise Fail("the right chunks in the wrong order: keep the retrieved (rank) order")
    raise Fail(f"{len(out['sources'])} chunks kept where {len(want['sources'])} were expected, or "
               "other chunks")


def _words(text):
    return len(text.split())


def _quarter_chars(text):
    return math.ceil(len(text) / 4)


def _pack_case(retrieved, budget, count=_words):
    def run(fn):
        out = call(fn, retrieved, budget, count, names=("retrieved", "budget", "count_tokens"))
        _check_pack(out, retrieved, budget, count)
    return run


def _item(cid, text, score):
    return {"chunk_id": cid, "text": text, "score": score}


_R1 = [_item("d1#0", "one two three", 0.9), _item("d2#4", "four five", 0.8), _item("d1#2", "six seven eight nine", 0.7)]
_R_SKIP = [_item("a#0", "w " * 4, 0.9), _item("b#1", "w " * 7, 0.8), _item("c#0", "x y", 0.7), _item("c#1", "z", 0.6)]
_R_DUP = [_item("a#0", "same text here", 0.9), _item("a#0", "same text here", 0.9),
          _item("b#3", "other words", 0.8), _item("c#9", "same text here", 0.7), _item("d#1", "last one", 0.6)]


def _random_items(seed, n):
    rng = _rng(seed)
    items = []
    for i in range(n):
        doc = int(rng.integers(0, 6))
        text = " ".join(rng.choice(_VOCAB, size=int(rng.integers(3, 40))))
        items.append(_item(f"{doc}#{i}", text, float(0.9 - 0.01 * i)))
    items[7] = dict(items[2])          # a repeat of an earlier chunk
    return items


PACK = Exercise(
    "07.pack", "context packing under a token budget", "pack_context",
    ("Walk through `retrieved` in order, counting tokens used. Skip a chunk whose chunk_id or exact "
     "text is already kept; skip (do not stop!) a chunk whose count_tokens(text) does not fit in the "
     "tokens left; otherwise keep it whole. Number the kept chunks 1, 2, 3, ...",
     "Keep two sets (the chunk ids and the texts already kept) and a running token count. For each "
     "retrieved chunk: `continue` past a repeat or a chunk that would overflow the budget (a later, "
     "shorter one may still fit). Number the kept chunks as you keep them, and join the numbered lines "
     "with newlines for the 'text' entry."),
    (Case("three chunks that all fit", _pack_case(_R1, 20)),
     Case("a long chunk that does not fit, followed by shorter ones that do", _pack_case(_R_SKIP, 8)),
     Case("duplicates: the same chunk twice, and the same text under another id", _pack_case(_R_DUP, 50)),
     Case("chunks that fill the budget exactly", _pack_case(_R1, 9)),
     Case("a budget too small for any chunk", _pack_case(_R1, 1)),
     Case("an empty list of retrieved chunks", _pack_case([], 100)),
     Case("a different tokenizer: ceil(characters / 4)", _pack_case(_R_SKIP + _R1, 12, _quarter_chars)),
     Case("30 retrieved chunks with a repeat, budget 200", _pack_case(_random_items(1, 30), 200))),
    points=2,
)


# --- 07.pr: mean evidence precision@k and recall@k over queries ---------------------------------
def _ref_pr(ranked, gold, k, per_retrieved=False, skip_missing=False, dupes=False, all_queries=False):
    ps, rs = [], []
    for q, rel in gold.items():
        rel = set(rel)
        if not rel and not all_queries:
            continue
        if q not in ranked and skip_missing:
            continue
        top = list(ranked.get(q, []))[:k]
        hits = sum(d in rel for d in top) if dupes else len(set(top) & rel)
        denom = len(top) if per_retrieved else k
        ps.append(hits / denom if denom else 0.0)
        rs.append(hits / len(rel) if rel else 0.0)
    if not ps:
        raise ValueError("no query with gold evidence")
    return float(np.mean(ps)), float(np.mean(rs))


_PR_MISTAKES = (
    (dict(per_retrieved=True), "precision@k divides by k, even when fewer than k results came back "
                               "(the missing places count as misses)"),
    (dict(skip_missing=True), "a query of `gold` missing from `ranked` (nothing retrieved) counts as "
                              "precision 0 and recall 0; skipping it raises the average"),
    (dict(dupes=True), "a retrieved id that appears twice in the top k is counted twice: count each "
                       "gold id found once (use sets)"),
    (dict(all_queries=True), "queries without gold evidence must be left out of both averages (their "
                             "recall is undefined)"),
)


def _check_pr(out, ranked, gold, k):
    want = _ref_pr(ranked, gold, k)
    if out is None:
        raise Fail("the result is None: did you forget `return`?")
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Fail(f"return a pair (precision, recall), got a {type(out).__name__}")
    got = tuple(float(as_array(v, name).reshape(-1)[0]) if as_array(v, name).size == 1 else math.nan
                for v, name in zip(out, ("the precision", "the recall")))
    if not all(map(math.isfinite, got)):
        raise Fail("the precision or the recall is not a single finite number (a division by zero?)")
    if np.allclose(got, want, atol=1e-9):
        return
    if np.allclose(got[::-1], want, atol=1e-9):
        raise Fail("precision and recall are swapped: return (precision, recall)")
    for variant, message in _PR_MISTAKES:
        other = _ref_pr(ranked, gold, k, **variant)
        if not np.allclose(other, want, atol=1e-9) and np.allclose(got, other, atol=1e-9):
            raise Fail(message)
    which = "precision" if abs(got[0] - want[0]) > 1e-9 else "recall"
    raise Fail(f"the mean {which}@k is off by {abs(got[0] - want[0] if which == 'precision' else got[1] - want[1]):.3g}")


def _pr_case(ranked, gold, k):
    def run(fn):
        _check_pr(call(fn, ranked, gold, k, names=("ranked", "gold", "k")), ranked, gold, k)
    return run


def _pr_raises(fn):
    try:
        fn({"q": ["a"]}, {"q": set()}, 5)
    except ValueError:
        return
    except Exception as err:   # noqa: BLE001
        raise Fail(f"with no query having gold evidence, raise ValueError (got {type(err).__name__})") from None
    raise Fail("with no query having gold evidence the averages are undefined: raise ValueError")


def _many_pr(seed, nq):
    rng = _rng(seed)
    docs = [f"{d}#{s}" for d in range(40) for s in range(3)]
    ranked, gold = {}, {}
    for i in range(nq):
        gold[f"q{i}"] = set(rng.choice(docs, size=int(rng.integers(0, 5)), replace=False).tolist())
        if i % 9 != 4:
            ranked[f"q{i}"] = rng.choice(docs, size=int(rng.integers(2, 15)), replace=False).tolist()
    return ranked, gold


PR = Exercise(
    "07.pr", "evidence precision@k and recall@k", "precision_recall_at_k",
    ("For each query with at least one gold id: hits = how many distinct gold ids are in its first k "
     "retrieved ids; precision@k = hits / k, recall@k = hits / (number of gold ids). A query with "
     "nothing retrieved scores 0 and 0. Return the two means over those queries.",
     "Loop over the gold queries only, turning each gold list into a set and skipping the empty ones; "
     "`ranked.get` with an empty default covers a query retrieval skipped. The hits are the size of the "
     "intersection of the first k retrieved ids (as a set) with the gold set. Raise ValueError when no "
     "query was scored, else return the two means as floats."),
    (Case("one query, k = 3", _pr_case({"q": ["a", "b", "c", "d"]}, {"q": {"b", "d"}}, 3)),
     Case("fewer results than k", _pr_case({"q": ["a", "b"]}, {"q": {"a"}}, 5)),
     Case("a query of gold that retrieval skipped", _pr_case({"q1": ["a", "b"]}, {"q1": {"a"}, "q2": {"c"}}, 2)),
     Case("a query without gold evidence (left out)", _pr_case({"q1": ["x", "y"], "q2": ["a"]},
                                                              {"q1": set(), "q2": ["a", "b"]}, 2)),
     Case("an id retrieved twice", _pr_case({"q": ["a", "a", "b"]}, {"q": {"a", "z"}}, 3)),
     Case("gold ids given as a list; queries only in `ranked` are ignored",
          _pr_case({"q": ["d1#0", "d1#1"], "extra": ["d1#0"]}, {"q": ["d1#1", "d2#0", "d3#3"]}, 2)),
     Case("no query with gold evidence", _pr_raises),
     Case("60 queries, k = 5", _pr_case(*_many_pr(1, 60), 5))),
    points=1,
)


# --- 07.cache: LRU cache of search results keyed by (normalised query, k) -----------------------
def _norm(query):
    return " ".join(query.lower().split())


class _Search:
    """A fake search: results depend on the normalised query and k; records every call."""

    def __init__(self, empty=()):
        self.calls, self.empty = [], set(empty)

    def __call__(self, query, k):
        self.calls.append((_norm(query), k))
        if _norm(query) in self.empty:
            return []
        base = sum(map(ord, _norm(query)))
        return [(f"{(base + i) % 97}#{i}", round(1.0 - 0.1 * i, 2)) for i in range(k)]


def _ref_cache(steps, maxsize):
    """(results, search calls, final key order) of running `steps` [(query, k)] through an LRU."""
    cache, search, results = {}, _Search(empty={"nothing matches"}), []
    for q, k in steps:
        key = (_norm(q), k)
        if key in cache:
            cache[key] = cache.pop(key)          # a hit becomes the most recently used
        else:
            cache[key] = search(q, k)
            while len(cache) > maxsize:
                cache.pop(next(iter(cache)))
        results.append(cache[key])
    return results, search.calls, list(cache)


def _run_learner(fn, steps, maxsize):
    cache, search, results = {}, _Search(empty={"nothing matches"}), []
    for q, k in steps:
        out = call(fn, q, k, search, cache, maxsize, names=("query", "k", "search_fn", "cache", "maxsize"),
                   mutable=(2, 3))
        if out is None and search.calls and search.calls[-1] != ("nothing matches", k):
            raise Fail("the result is None: did you forget `return`?")
        results.append(out)
    return results, search.calls, list(cache)


def _fifo(steps, maxsize):
    cache, search, results = {}, _Search(empty={"nothing matches"}), []
    for q, k in steps:
        key = (_norm(q), k)
        if key not in cache:
            cache[key] = search(q, k)
            while len(cache) > maxsize:
                cache.pop(next(iter(cache)))
        results.append(cache[key])
    return results, search.calls, list(cache)


def _check_cache(fn, steps, maxsize):
    want = _ref_cache(steps, maxsize)
    got = _run_learner(fn, steps, maxsize)
    results, calls, keys = got
    if results != want[0]:
        bad = next(i for i, (a, b) in enumerate(zip(results, want[0])) if a != b)
        raise Fail(f"lookup {bad + 1} returned other results than the search gives for that query and k")
    if len(keys) > maxsize:
        raise Fail(f"the cache holds {len(keys)} entries, more than maxsize = {maxsize}: after storing, "
                   "evict the least recently used entries")
    if calls == want[1] and keys == want[2]:
        return
    if any(not (isinstance(key, tuple) and len(key) == 2) for key in keys):
        raise Fail("the cache keys must be pairs (normalised query, k) -- results for k = 5 cannot "
                   "answer a request for k = 10")
    if any(key[0] != _norm(key[0]) for key in keys):
        raise Fail("normalise the query in the key: lower-case it and collapse whitespace "
                   "(' '.join(query.lower().split())), so 'Vitamin D ' and 'vitamin d' share an entry")
    if len(calls) > len(want[1]) and ("nothing matches", 5) in calls and \
            calls.count(("nothing matches", 5)) > want[1].count(("nothing matches", 5)):
        raise Fail("an empty result list is a valid cached value: test `key in cache`, not whether "
                   "the cached value is truthy")
    if (calls, keys) == _fifo(steps, maxsize)[1:]:
        raise Fail("a hit must make its entry the most recently used (move it to the end); yours "
                   "evicts the oldest stored entry even when it was just used (FIFO, not LRU)")
    if len(calls) > len(want[1]):
        raise Fail(f"the search ran {len(calls)} times where {len(want[1])} were needed: a repeated "
                   "(query, k) still in the cache must be served from it")
    raise Fail("the entries kept after eviction are not the most recently used ones")


def _cache_case(steps, maxsize):
    return lambda fn: _check_cache(fn, steps, maxsize)


CACHE = Exercise(
    "07.cache", "an LRU cache of search results", "cached_search",
    ("The key is the query lower-cased with its whitespace collapsed to single spaces, paired with k. "
     "On a hit (`key in cache`), move the entry to the end of the dict (most recently used) and return "
     "it without searching. On a miss, call search_fn(query, k), store the result at the end, and evict "
     "from the front (least recently used) while the cache holds more than maxsize entries.",
     "A dict keeps insertion order: popping a key and setting it again moves it to the end, and "
     "`next(iter(cache))` is the oldest key. Test membership with `in`, not the truth of the cached "
     "value: an empty result list is a valid value."),
    (Case("a miss, then the same query again", _cache_case([("vitamin D and bone", 5)] * 2, 4)),
     Case("the same query with other capitalisation and spacing",
          _cache_case([("Vitamin D and bone", 5), ("  vitamin d  AND bone ", 5)], 4)),
     Case("the same query with another k", _cache_case([("mice", 5), ("mice", 10), ("mice", 5)], 4)),
     Case("more distinct queries than maxsize", _cache_case([(f"claim {i}", 3) for i in range(6)], 3)),
     Case("a hit refreshes its entry (least recently used leaves first)",
          _cache_case([("a", 2), ("b", 2), ("a", 2), ("c", 2), ("a", 2), ("b", 2)], 2)),
     Case("a query with no results (an empty list)",
          _cache_case([("nothing matches", 5), ("nothing matches", 5)], 3)),
     Case("maxsize 1", _cache_case([("x", 1), ("x", 1), ("y", 1), ("x", 1)], 1)),
     Case("200 lookups drawn from 30 queries, maxsize 10",
          _cache_case([(f"query {int(i)}", 5) for i in _rng(5).zipf(1.5, 200) % 30], 10))),
    points=2,
)



# --- 07.token_chunks: the model's tokenizer cuts windows (with offsets), model.encode ranks them --
from .minilm import model_folder as _model_path  # noqa: E402
from .minilm import vectors as _vectors  # noqa: E402


@functools.lru_cache(maxsize=1)
def _tokenizer():
    """The model's fast tokenizer from its tokenizer.json (no torch needed), without truncation."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(_model_path()) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


@functools.lru_cache(maxsize=1)
def _abstracts() -> dict:
    from course_utils.data import load_beir

    corpus = load_beir("scifact", "test")[0]
    return {d: corpus[d]["text"] for d in ("13734012", "4983", "5836", "7912", "18670")}


_QUESTIONS = ("Which cells does the virus infect?", "What did the trial measure in the brain?",
              "How were the patients followed up?")


def _token_spans(text, size, overlap, special=False):
    offsets = _tokenizer().encode(text, add_special_tokens=special).offsets
    return [(offsets[s][0], offsets[min(s + size, len(offsets)) - 1][1])
            for s in _window_starts(len(offsets), size, overlap)]


@functools.lru_cache(maxsize=None)
def _token_reference(doc_ids, question, size, overlap):
    docs = _abstracts()
    spans = [(d, a, b) for d in doc_ids for a, b in _token_spans(docs[d], size, overlap)]
    vectors = _vectors([docs[d][a:b] for d, a, b in spans] + [question])
    scores = vectors[:-1] @ vectors[-1]
    return {span: float(x) for span, x in zip(spans, scores)}


def _token_case(doc_ids, question, size, overlap, k):
    def run(fn):
        docs = {d: _abstracts()[d] for d in doc_ids}
        out = call(fn, _model_path(), docs, question, size, overlap, k,
                   names=("model_path", "docs", "question", "size", "overlap", "k"))
        ref = _token_reference(tuple(doc_ids), question, size, overlap)
        want = sorted(ref, key=lambda span: -ref[span])[:k]
        if not isinstance(out, list) or not all(isinstance(r, dict) for r in out):
            raise Fail("return a list of dicts {'doc_id', 'start', 'end', 'score'}, best first")
        if any(not {"doc_id", "start", "end", "score"} <= set(r) for r in out):
            raise Fail("each result needs the keys 'doc_id', 'start', 'end' and 'score'")
        got = [(str(r["doc_id"]), int(r["start"]), int(r["end"])) for r in out]
        unknown = [g for g in got if g not in ref]
        if unknown:
            d, a, b = unknown[0]
            if d not in docs or not 0 <= a < b <= len(docs[d]):
                raise Fail(f"result {unknown[0]} is not a span of a given document (start < end, "
                           "character offsets into docs[doc_id])")
            tokens = len(_tokenizer().encode(docs[d][a:b], add_special_tokens=False).ids)
            if tokens > size + 2:
                raise Fail(f"a chunk spans {tokens} tokens, more than size = {size}: count TOKENS of the "
                           "model's tokenizer (model.tokenizer), not words; the model truncates what is longer")
            special = {(d, a, b) for d in docs for a, b in _token_spans(docs[d], size, overlap, special=True)}
            if unknown[0] in special:
                raise Fail("your windows count [CLS] and [SEP]: tokenize with add_special_tokens=False "
                           "(the model adds them again when it encodes each chunk)")
            no_overlap = {(d, a, b) for d in docs for a, b in _token_spans(docs[d], size, 0)}
            if unknown[0] in no_overlap:
                raise Fail("your windows do not overlap: each window starts size - overlap tokens after "
                           "the previous one")
            raise Fail(f"result {unknown[0]} is not a window of `size` tokens of that document: start at "
                       "the first token's start offset, end at the last token's end offset")
        bad = [g for g, r in zip(got, out) if abs(float(r["score"]) - ref[g]) > 1e-3]
        if bad:
            raise Fail(f"the score of {bad[0]} is not the cosine of the question with that chunk's text "
                       "(model.encode(..., normalize_embeddings=True), then a dot product)")
        if got != want:
            if len(got) != len(want):
                raise Fail(f"{len(got)} results instead of k = {k}")
            raise Fail("not the k best chunks, best first: rank ALL chunks of ALL documents together")
    return run


TOKEN_CHUNKS = Exercise(
    "07.token_chunks", "token windows with the model's tokenizer, searched with provenance",
    "search_token_chunks",
    ("Load the model from its folder. Cut each document into windows of `size` TOKENS of "
     "`model.tokenizer` (add_special_tokens=False, return_offsets_mapping=True gives each token's "
     "character span), overlapping by `overlap` tokens; a chunk's provenance is (doc_id, start, end) in "
     "characters. Encode the chunks' texts and the question, and return the k most similar chunks.",
     "Calling `model.tokenizer` on a text with `add_special_tokens=False` and "
     "`return_offsets_mapping=True` gives each token's (start, end) character span in its "
     "'offset_mapping' (`verbose=False` silences the warning about texts longer than the model reads). "
     "A window of tokens s to e becomes the span from token s's start to token e - 1's end. "
     "`model.encode` with `normalize_embeddings=True` makes a dot product the cosine."),
    (Case("3 SciFact abstracts, windows of 64 tokens overlapping by 16, k = 4",
          _token_case(("13734012", "4983", "5836"), _QUESTIONS[0], 64, 16, 4)),
     Case("1 abstract, windows of 40 tokens overlapping by 10, k = 3",
          _token_case(("7912",), _QUESTIONS[1], 40, 10, 3)),
     Case("1 abstract, windows of 100 tokens overlapping by 20, k = 2",
          _token_case(("5836",), _QUESTIONS[2], 100, 20, 2)),
     Case("a window longer than the abstract: one chunk per document, k = 2",
          _token_case(("4983", "7912"), _QUESTIONS[0], 512, 64, 2)),
     Case("3 abstracts, windows of 160 tokens overlapping by 32, k = 3",
          _token_case(("13734012", "5836", "18670"), _QUESTIONS[2], 160, 32, 3))),
    points=3,
)

# --- held-back cases: the public situations again, with other inputs (graded; `check` never runs them)
CHUNK = held_back(
    CHUNK,
    Case("12 words, size 5, overlap 2", _chunk_case("k l m n o p q r s t u v", "d2", 5, 2)),
    Case("the last window is shorter than size", _chunk_case("a1 a2 a3 a4 a5 a6 a7 a8 a9", "z", 3, 1)),
    Case("a text shorter than one window", _chunk_case("Just two", "y", 6, 1)),
    Case("an empty text gives no chunk", _chunk_case(" \n ", "e2", 3, 0)),
    Case("irregular whitespace, an integer doc_id", _chunk_case(_synthetic(60, 41), 5836, 6, 3)),
    Case("an abstract-sized text: 180 words, size 50, overlap 10", _chunk_case(_synthetic(61, 180), "4983", 50, 10)),
    Case("overlap larger than size", _raises_case(2, 7, "overlap must be smaller than size")))
_R2 = [_item("x#1", "alpha beta", 0.95), _item("y#0", "gamma delta epsilon zeta", 0.85), _item("x#3", "eta", 0.5)]
_R_SKIP2 = [_item("p#0", "v " * 9, 0.9), _item("q#2", "u u", 0.8), _item("r#5", "t " * 5, 0.7), _item("s#1", "o", 0.2)]
_R_DUP2 = [_item("m#0", "repeated words", 0.9), _item("n#1", "fresh", 0.8), _item("m#0", "repeated words", 0.9),
           _item("o#4", "repeated words", 0.7)]
PACK = held_back(
    PACK,
    Case("three chunks that all fit", _pack_case(_R2, 30)),
    Case("a long chunk that does not fit, followed by shorter ones", _pack_case(_R_SKIP2, 6)),
    Case("duplicates by id and by text", _pack_case(_R_DUP2, 40)),
    Case("chunks that fill the budget exactly", _pack_case(_R2, 7)),
    Case("a budget too small for any chunk", _pack_case(_R_SKIP2, 0)),
    Case("ceil(characters / 4) tokens", _pack_case(_R_DUP2 + _R2, 9, _quarter_chars)),
    Case("40 retrieved chunks with a repeat, budget 150", _pack_case(_random_items(60, 40), 150)))
PR = held_back(
    PR,
    Case("one query, k = 2", _pr_case({"q": ["e", "f", "g"]}, {"q": {"f", "h"}}, 2)),
    Case("fewer results than k, a query of gold that retrieval skipped",
         _pr_case({"a": ["x"]}, {"a": {"x", "y"}, "b": {"z"}}, 4)),
    Case("a query without gold evidence, an id retrieved twice",
         _pr_case({"a": ["m", "m", "n"], "b": ["o"]}, {"a": ["m"], "b": set()}, 3)),
    Case("40 queries, k = 3", _pr_case(*_many_pr(60, 40), 3)))
CACHE = held_back(
    CACHE,
    Case("the same query with other capitalisation and spacing",
         _cache_case([("Aspirin  Stroke", 3), ("aspirin stroke", 3), ("ASPIRIN\tstroke ", 3)], 2)),
    Case("the same query with another k", _cache_case([("gene", 2), ("gene", 4), ("gene", 4), ("gene", 2)], 3)),
    Case("a hit refreshes its entry", _cache_case([("p", 1), ("q", 1), ("r", 1), ("p", 1), ("s", 1), ("p", 1), ("q", 1)], 3)),
    Case("a query with no results", _cache_case([("nothing matches", 5), ("other", 5), ("nothing matches", 5)], 2)),
    Case("150 lookups drawn from 20 queries, maxsize 6",
         _cache_case([(f"question {int(i)}", 3) for i in _rng(60).zipf(1.4, 150) % 20], 6)))
TOKEN_CHUNKS = held_back(
    TOKEN_CHUNKS,
    Case("2 abstracts, windows of 48 tokens overlapping by 12, k = 3",
         _token_case(("18670", "7912"), _QUESTIONS[1], 48, 12, 3)),
    Case("1 abstract, windows of 80 tokens overlapping by 8, k = 2", _token_case(("13734012",), _QUESTIONS[0], 80, 8, 2)))

EXERCISES = (CHUNK, PACK, PR, CACHE, TOKEN_CHUNKS)
