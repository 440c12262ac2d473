"""Personal data before embedding: a regex scrubber, its evaluation on planted PII, and why the
vectors themselves leak (a nearest-neighbour inversion).

- `scrub(text)` replaces e-mails, phone numbers, ID numbers and person names by [EMAIL],
  [PHONE], [ID], [NAME]. Names are the hard part for rules: we catch a title (Dr., Prof., Mr.,
  Mrs., Ms.) followed by capitalised words, and a first name from `FIRST_NAMES` followed by a
  capitalised word. Names outside the list and without a title are missed — measured, not hidden.
- `planted_set(sentences, n, seed)` inserts synthetic PII into real sentences and records it;
  `evaluate_scrubber` reports per-type recall on it, and false positives on clean texts.
- `nearest_words` / `recovery_rate`: given only a vector, its nearest neighbours among encoded
  vocabulary words name the document's topic — an embedding is not an anonymisation.

>>> scrub("Mail jane.doe@uni.edu or call 555-123-4567, Dr. Alan Smith.")
'Mail [EMAIL] or call [PHONE], [NAME].'
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

__all__ = ["PATTERNS", "FIRST_NAMES", "scrub", "find_pii", "planted_set", "evaluate_scrubber",
           "false_positives", "frequent_words", "nearest_words", "recovery_rate"]

# First names the scrubber knows (the planted set also uses names it does not know).
FIRST_NAMES = ("James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda",
               "David", "Elizabeth", "Susan", "Thomas", "Sarah", "Karen", "Daniel", "Nancy",
               "Anna", "Peter", "Laura", "Maria", "Wei", "Priya", "Ahmed", "Fatima", "Olga")
_UNKNOWN_FIRST = ("Bartholomew", "Ingrid", "Tomasz", "Keiko", "Oluwaseun", "Saoirse", "Dmitri", "Ximena")
_SURNAMES = ("Smith", "Garcia", "Nguyen", "Okafor", "Kowalski", "Tanaka", "Müller", "Haddad",
             "Johansson", "Rossi", "Patel", "O'Brien")
_TITLES = r"(?:Dr|Prof|Mr|Mrs|Ms)\.?"
_CAP = r"[A-Z][a-zà-ÿ'’-]+"

PATTERNS = {
    "EMAIL": re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
    "PHONE": re.compile(r"(?<![\w.])(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]\d{3}[ .-]\d{4}(?!\w|\.\d)"),
    "ID": re.compile(r"\b\d{3}-\d{2}-\d{4}\b|\b(?:MRN|ID|Patient ID|patient ID)[:#]?\s*[A-Z]{0,3}\d{6,10}\b"),
    "NAME": re.compile(rf"\b{_TITLES}\s+{_CAP}(?:\s+{_CAP})?|\b(?:{'|'.join(FIRST_NAMES)})\s+{_CAP}\b"),
}


def find_pii(text: str) -> list[tuple[str, int, int]]:
    """(type, start, end) of every match, left to right, overlaps resolved first-type-wins."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    spans = []
    for kind, pat in PATTERNS.items():
        for m in pat.finditer(text):
            if not any(s < m.end() and m.start() < e for _, s, e in spans):
                spans.append((kind, m.start(), m.end()))
    return sorted(spans, key=lambda x: x[1])


def scrub(text: str) -> str:
    """`text` with each PII match replaced by its [TYPE] placeholder."""
    out, last = [], 0
    for kind, s, e in find_pii(text):
        out += [text[last:s], f"[{kind}]"]
        last = e
    return "".join(out + [text[last:]])


def _fake(kind: str, rng) -> str:
    if kind == "EMAIL":
        name = rng.choice(_SURNAMES).lower().replace(chr(39), '')
        return f"{name}.{rng.integers(1, 99)}@{rng.choice(['uni-hospital.org', 'mail.com', 'lab.edu'])}"
    if kind == "PHONE":
        a, b, c = rng.integers(200, 999), rng.integers(100, 999), rng.integers(1000, 9999)
        return str(rng.choice([f"{a}-{b}-{c}", f"({a}) {b}-{c}", f"+1 {a} {b} {c}", f"{a}.{b}.{c}"]))
    if kind == "ID":
        return str(rng.choice([f"{rng.integers(100, 999)}-{rng.integers(10, 99)}-{rng.integers(1000, 9999)}",
                               f"MRN {rng.integers(10**6, 10**7)}", f"patient ID AB{rng.integers(10**6, 10**7)}"]))
    first = rng.choice(FIRST_NAMES + _UNKNOWN_FIRST)
    style = rng.integers(3)
    return f"Dr. {rng.choice(_SURNAMES)}" if style == 0 else f"{first} {rng.choice(_SURNAMES)}"


_TEMPLATES = {"EMAIL": "Correspondence: {}.", "PHONE": "For questions call {}.",
              "ID": "Record {} was reviewed.", "NAME": "Samples were collected by {}."}


def planted_set(sentences: Sequence[str], n: int = 400, seed: int = 0) -> list[dict]:
    """`n` examples {text, kind, value}: a real sentence with one synthetic PII item appended.

    Kinds cycle EMAIL, PHONE, ID, NAME; names mix known first names, unknown ones and titles.
    """
    if not sentences:
        raise ValueError("sentences is empty; pass real texts to plant PII into")
    rng = np.random.default_rng(seed)
    kinds = list(_TEMPLATES)
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        value = _fake(kind, rng)
        out.append({"text": f"{sentences[int(rng.integers(len(sentences)))]} {_TEMPLATES[kind].format(value)}",
                    "kind": kind, "value": value})
    return out


def evaluate_scrubber(examples: Sequence[dict], scrubber=scrub) -> dict[str, float]:
    """Recall per kind: share of planted values of which no trace (no 3+ char token) survives."""
    found, total = Counter(), Counter()
    for ex in examples:
        clean = scrubber(ex["text"])
        tokens = [t for t in re.findall(r"[\w@.'-]{3,}", ex["value"]) if t not in {"MRN", "patient", "Dr."}]
        total[ex["kind"]] += 1
        found[ex["kind"]] += all(t not in clean for t in tokens)
    return {k: found[k] / total[k] for k in total}


def false_positives(texts: Sequence[str]) -> dict:
    """Matches in texts without planted PII: count per kind, share of texts changed, examples.

    Read the examples: on real texts some matches are true PII (authors' e-mail addresses),
    the rest are false positives (e.g. an institute named after a person)."""
    counts, examples, changed = Counter(), {}, 0
    for t in texts:
        spans = find_pii(t)
        changed += bool(spans)
        for kind, s, e in spans:
            counts[kind] += 1
            examples.setdefault(kind, []).append(t[s:e])
    return {"per_kind": dict(counts), "texts_changed": changed / max(len(texts), 1),
            "examples": {k: v[:5] for k, v in examples.items()}}


# --------------------------------------------------------------- inversion by nearest neighbours
def frequent_words(texts: Sequence[str], size: int = 2000, min_len: int = 4, min_df: int = 3) -> list[str]:
    """The `size` most frequent content words (document frequency) of `texts`, lower-cased."""
    from course_utils.lexical.bm25 import STOP_WORDS
    df = Counter()
    for t in texts:
        df.update({w for w in re.findall(r"[a-z][a-z-]+", t.lower()) if len(w) >= min_len and w not in STOP_WORDS})
    return [w for w, c in df.most_common(size) if c >= min_df]


def nearest_words(vectors, word_vectors, words: Sequence[str], top: int = 5) -> list[list[str]]:
    """For each vector (n, d), the `top` words whose vectors (m, d) have the highest cosine."""
    v, w = np.asarray(vectors, np.float32), np.asarray(word_vectors, np.float32)
    if v.ndim != 2 or w.ndim != 2 or v.shape[1] != w.shape[1] or len(w) != len(words):
        raise ValueError(f"shapes do not fit: vectors {v.shape}, word_vectors {w.shape}, {len(words)} words")
    sims = v @ w.T
    top_idx = np.argsort(-sims, axis=1)[:, :top]
    return [[words[j] for j in row] for row in top_idx]


def recovery_rate(recovered: Sequence[Sequence[str]], texts: Sequence[str]) -> float:
    """Share of texts for which at least one recovered word occurs in the text itself.

    >>> recovery_rate([["insulin"], ["tumour"]], ["Insulin resistance", "Bone density"])
    0.5
    """
    hits = [any(re.search(rf"\b{re.escape(w)}", t.lower()) for w in ws) for ws, t in zip(recovered, texts)]
    return float(np.mean(hits)) if hits else 0.0
