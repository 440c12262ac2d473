"""Reading a verification label (SUPPORT / CONTRADICT / NOT ENOUGH INFO) out of generated text.

A small model rarely answers with the bare label: it writes "The claim is not supported by the
sources. The sources do not provide evidence to support it." A parser that looks only one word
back for a negation reads the second sentence as SUPPORT. Here the answer is cut into clauses
(at . ; : ! ? line breaks, and before "but" / "however" / "whereas"), and a SUPPORT or
CONTRADICT mention counts only when its clause holds no negation at all (not, no, never, n't,
neither, nor, cannot, without, lack..., fail...). "NOT ENOUGH INFO" (and "not enough
information / evidence") is a label of its own and is removed from the clause before the
negation check. The first mention that counts gives the label; an answer with none gives None.
"""
from __future__ import annotations

import re

__all__ = ["LABELS", "parse_label", "label_mentions"]

LABELS = ("SUPPORT", "CONTRADICT", "NOT ENOUGH INFO")
_CLAUSE = re.compile(r"[.;:!?\n]+|,?\s+(?=\b(?:but|however|whereas|although)\b)", re.IGNORECASE)
_NEI = re.compile(r"\bnot\s+enough\s+(?:info(?:rmation)?|evidence)\b|\binsufficient\s+(?:info(?:rmation)?|evidence)\b",
                  re.IGNORECASE)
_WORDS = (("SUPPORT", re.compile(r"\bsupport", re.IGNORECASE)),
          ("CONTRADICT", re.compile(r"\bcontradict|\brefut", re.IGNORECASE)))
_NEGATION = re.compile(r"\b(?:not|no|never|neither|nor|cannot|without|lack\w*|fail\w*|un\w*support\w*)\b|n't",
                       re.IGNORECASE)


def label_mentions(answer: str) -> list[tuple[int, str, bool]]:
    """Every label mention in `answer`: (character position, label, negated), in text order.

    >>> label_mentions("Not supported: the data contradict it.")
    [(4, 'SUPPORT', True), (24, 'CONTRADICT', False)]
    """
    if not isinstance(answer, str):
        raise TypeError(f"answer must be a str, got {type(answer).__name__}")
    found, start = [], 0
    for clause in _split(answer):
        offset = answer.index(clause, start) if clause else start
        start = offset + len(clause)
        found += [(offset + m.start(), LABELS[2], False) for m in _NEI.finditer(clause)]
        rest = _NEI.sub(lambda m: " " * len(m.group()), clause)
        negated = bool(_NEGATION.search(rest))
        for label, pattern in _WORDS:
            found += [(offset + m.start(), label, negated) for m in pattern.finditer(rest)]
    return sorted(found)


def _split(answer: str) -> list[str]:
    return [c for c in _CLAUSE.split(answer) if c and c.strip()]


def parse_label(answer: str) -> str | None:
    """The first label `answer` states without negating it in the same clause, or None.

    >>> parse_label("The sources contradict the claim [2]."), parse_label("Maybe.")
    ('CONTRADICT', None)
    >>> parse_label("The claim is not supported. The sources do not provide evidence to support it.") is None
    True
    >>> parse_label("The sources do not support the claim; they contradict it [1].")
    'CONTRADICT'
    """
    for _, label, negated in label_mentions(answer):
        if not negated:
            return label
    return None
