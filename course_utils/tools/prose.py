"""Prose check: every number written in a notebook's markdown is shown by its outputs, or cited.

DESIGN.md: "Prose states only what the outputs show". A number in a markdown cell is *supported* when
an output of the same notebook shows it (stream, text/plain, text/html tables, text/markdown, error
messages), when a code cell of the notebook states it (a parameter such as ``nprobe = 8``), or when a
citation of its published source sits in the same clause. Everything else is a `Finding`.
`unsupported_in(markdown, outputs, code)` applies the rules to plain strings; each rule below has a
tiny example.

**Where numbers are read.** Markdown prose only: LaTeX (``$...$``, ``$$...$$``), headings, inline
code, fenced code blocks, HTML tags and link/image targets are skipped.

>>> unsupported_in("# 5. Results with 0.123\\nThe gain is $0.456$ and `k=777`; see [a](http://x/999).")
[]

**Same value, any rendering.** Thousands separators, trailing zeros and a unicode minus do not matter.

>>> unsupported_in("It took 1,898 s; nDCG@10 is 0.6451; the gap is −0.0251.", ["1898.0 0.645100 -0.0251"])
[]

**Rounded to the written precision.** A number written with fewer decimals than the output is
supported if the output rounds to it (half-up or half-even); more decimals than shown is not.

>>> unsupported_in("About 0.65, exactly 0.6451, or 0.6452.", ["0.6451"])
['0.6452']
>>> unsupported_in("0.6451 is not shown by a two-decimal output.", ["0.65"])
['0.6451']

**Percent and fraction.** "64.5 %" is supported by 64.5 or by the fraction 0.645 (0.6451 rounds to
it); a prose fraction is supported by an output percentage.

>>> unsupported_in("Recall is 64.5 %, or 65%, and 0.39 of queries; not 70 %.", ["0.6451", "(39%)"])
['70 %']

**Ratios.** "3×" and "3x" are numbers like any other: 3.04 rounds to 3. Small integers are checked
when they carry × or %.

>>> unsupported_in("Sorting is 3× faster, 3x in the table; binary is 32× smaller.", ["3.04"])
['32×']

**Multipliers.** "10k" and "1.2M" are supported by a value that rounds to them (9,987 → 10k) or by
the same text.

>>> unsupported_in("A 10k sample, then 1.2M vectors.", ["sampled 9,987 documents"])
['1.2M']

**Signs.** An explicit sign must match; a number without a sign may be the output's magnitude
("a gap of 0.025" for -0.0251).

>>> unsupported_in("A drop of 0.025, written −0.025, not +0.025.", ["diff -0.0251"])
['+0.025']

**Several numbers in a sentence.** "121 of 300" needs support for both numbers.

>>> unsupported_in("The model finds 121 of 300.", ["300 queries"])
['121']

**Approximations.** After "about", "around", "roughly", "approximately", "nearly", "almost", "~" or
"≈", the trailing zeros of an integer are not significant: "about 1,100" is supported by 1,081.

>>> unsupported_in("About 1,100 queries would do, not 1,100 exactly.", ["1,081"])
['1,100']

**Not checked (not claims about results):**

- small integers ``|n| <= 10`` without ``%`` or ``×`` ("two threads", "k = 10", "rank 3");
- numbers inside identifiers and cut-offs: a number joined to a letter, ``@``, ``_`` or ``#``
  (all-MiniLM-L6-v2, e5, bm25, PGE2, nDCG@10, recall@100, top-10), ordinals (2nd, 10th) and
  versions (faiss 1.15.1, v1.5);
- references to parts of the course: "chapter 03", "chapters 06 and 08", "section 6.1", "step 12",
  "cell 14", "exercise 11", and any integer with a leading zero (03, 06);
- years 1900-2099 after a month, a name or "in"/"since"/"from"/"until"/"by"/"early"/"et al.", in
  parentheses, or as decades (the 1960s);
- HTTP status codes (429, 503, ...) in a sentence about HTTP, status, servers, APIs, requests or
  retries.

>>> unsupported_in("See chapter 04, sections 6.1 and 6.2, exercise 12 and cell 14 of 03.", [])
[]
>>> unsupported_in("all-MiniLM-L6-v2, e5, bm25, nDCG@10, recall@100, the top-20, the 2nd, faiss 1.15.1.", [])
[]
>>> unsupported_in("Cranfield in the 1960s, Robertson 2009, in 1994, May 2021, (2019).", [])
[]
>>> unsupported_in("With two threads, k = 10 and rank 3; but 11 queries.", [])
['11']
>>> unsupported_in("The API answers 429 when rate-limited, after 429 calls.", [])
[]

**Outputs** are stream text (tqdm progress-bar lines removed: their counters support nothing),
text/plain, text/markdown, text/latex, text/html with tags stripped (a DataFrame's full table) and
error messages.

>>> unsupported_in("It ran at 15.30 queries per second.", ["100%|█████| 300/300 [00:19, 15.30it/s]"])
['15.30']

**Stated in code.** A number that appears in a code cell's source (``nprobe = 16``,
``n_resamples=10_000``, a ``PUBLISHED`` table) is supported: the reader sees it in the notebook.

>>> unsupported_in("We probe 16 lists and shuffle 10,000 times.", [], ["index.nprobe = 16", "n = 10_000"])
[]

**Citations.** A number is supported when its clause (the sentence part between ``;`` or dashes
outside parentheses) holds a citation: a link to a web page, a parenthesis naming a source (a year,
"et al.", BEIR, MTEB, arXiv, "model card", "paper", "published", "reported", "leaderboard", "docs",
"source"), or the words "published", "reported", "according to", "et al.", "model card",
"leaderboard". "On paper" outside a parenthesis is not a citation.

>>> unsupported_in("BEIR's BM25 scores 0.665 (BEIR); the model card reports 0.6451.", [])
[]
>>> unsupported_in("CLIP saw 400 million pairs (Radford et al. 2021).", [])
[]
>>> unsupported_in("It scores 0.812 ([source](https://example.org)); ours is 0.79.", [])
['0.79']

Limits: a low-precision number ("below 0.2", "about 70 %") is supported by any shown value that
rounds to it, so such numbers are checked only loosely; derived numbers (a ratio or difference of
two printed numbers) are findings until the notebook prints them.

Command line: ``python -m course_utils.tools.prose notebooks/*.ipynb`` prints every finding (cell
index, number, sentence clipped to 160 characters) and exits 1 when a finding is not in the baseline
(``tests/prose_baseline.json``: per notebook file name, the number and a short hash of its
sentence's prose, blind to inline code and link targets) or a baseline entry no longer occurs
(exit 2 for an unreadable file); ``--update-baseline`` rewrites the baseline entries of the notebooks
given.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

import nbformat

from course_utils.paths import REPO, atomic_write

__all__ = ["DEFAULT_BASELINE", "CLIP", "ProseError", "Finding", "sentence_hash", "clip", "Written",
           "prose_numbers", "Shown", "output_numbers", "output_texts", "mask", "sentence_spans",
           "markdown_findings", "read_notebook", "notebook_findings", "unsupported_numbers",
           "unsupported_in", "load_baseline", "baseline_entries", "compare_with_baseline", "write_baseline",
           "main"]

DEFAULT_BASELINE = REPO / "tests" / "prose_baseline.json"
CLIP = 160

# --- patterns --------------------------------------------------------------------------------

_MASKED = [  # parts of markdown that are not prose (replaced by spaces, offsets kept)
    re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.S | re.M),  # fenced code
    re.compile(r"(`+).+?\1", re.S),  # inline code
    re.compile(r"(?<!\\)\$\$.+?(?<!\\)\$\$", re.S),  # display math
    re.compile(r"(?<![\\$])\$(?!\$)[^$]+?(?<!\\)\$", re.S),  # inline math
    re.compile(r"<!--.*?-->|<[A-Za-z/][^>\n]*>", re.S),  # html comments and tags
    re.compile(r"!\[[^\]]*\]\([^)]*\)"),  # images
    re.compile(r"(?<=\])\([^)\s]*(?:\s+\"[^\"]*\")?\)"),  # link targets
    re.compile(r"^ {0,3}\[[^\]]+\]:.*$", re.M),  # link definitions
    re.compile(r"https?://\S+"),  # bare urls
    re.compile(r"^ {0,3}#{1,6}(?:\s.*)?$", re.M),  # headings
]
_NUMBER = re.compile(
    r"(?P<sign>[-−+])?(?P<num>\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?P<suffix>\s?%|\s?[×x](?![A-Za-z])|[kKMB](?![A-Za-z]))?"
)
_OUTPUT_NUMBER = re.compile(
    r"(?<![\w.])[-−]?(?:\d{1,3}(?:[,_]\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?P<pct>\s?%)?"
    r"|(?<=[\w.])\d+(?:\.\d+)?"
)
_UNITS = {"ms", "s", "µs", "us", "ns", "min", "h", "GB", "MB", "KB", "kB", "GiB", "MiB", "TB", "px", "d"}
_PART_WORDS = (
    r"chapters?|ch\.|sections?|§|steps?|cells?|parts?|exercises?|questions?|figures?|fig\.|tables?|"
    r"rows?|columns?|items?|lines?|tasks?|projects?|notebooks?|lessons?|stages?|phases?|levels?|examples?"
)
_PART_REF = re.compile(
    rf"\b(?:{_PART_WORDS})\s+(?:\d+(?:\.\d+)*[a-z]?(?:'s)?\s*(?:,|and|or|&|–|-|to)\s*)*$", re.I
)
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_YEAR_BEFORE = re.compile(
    rf"(?:\b(?:in|since|from|until|by|before|after|circa|early|late|mid|al\.?|{_MONTHS}|[A-Z][\w'’-]+)|[&(,])\s*$"
)
_APPROX = re.compile(r"(?:\b(?:about|around|roughly|approximately|nearly|almost)|[~≈])\s*$", re.I)
_CITE_PAREN = re.compile(
    r"\((?=[^()]*(?:et al|\b(?:19|20)\d\d\b|BEIR|MTEB|model card|paper|published|reported|leaderboard|"
    r"\bdocs?\b|documentation|source|arXiv|\]\(https?://))[^()]*(?:\([^()]*\)[^()]*)*\)",
    re.I,
)
_CITE_WORDS = re.compile(
    r"\[[^\]]+\]\(https?://|https?://|\b(?:published|reported|according to|et al\.|model card|"
    r"leaderboard)(?!\w)",
    re.I,
)
_SENTENCE_BREAK = re.compile(
    r"\n[ \t]*\n|\n(?=[ \t]*(?:[-*+]|\d+[.)])[ \t])|\n(?=[ \t]*\|)|(?<=\|)[ \t]*\n"
    r"|(?<=[.!?])[*_)\"”’]*[ \t\n]+(?=[A-Z(*\"“_\[])"
)
_HTTP = re.compile(
    r"\bHTTP\b|\bstatus|\b[1-5]xx\b|Too Many Requests|Unavailable|Server Error|Not Found|Bad Request|"
    r"Retry-After|\bretr(?:y|ies|ied)\b|rate.limit|\bserver\b|\bAPI\b|\brequests?\b",
    re.I,
)
_STATUS_CODES = set("200 201 204 301 302 304 400 401 403 404 408 409 413 422 429 500 502 503 504".split())
_PROGRESS = re.compile(r"[^\r\n]*(?:\d%\||\bit/s\]|\bs/it\])[^\r\n]*")


# --- findings -------------------------------------------------------------------------------


class ProseError(ValueError):
    """A notebook file that cannot be read."""


@dataclass(frozen=True)
class Finding:
    """A number in markdown cell `cell` that no output, code cell or citation supports.

    `digest` hashes the sentence's prose only (code, LaTeX and link targets blanked), so renaming a
    module in inline code does not change it.

    >>> Finding(3, "0.665", "BM25 scores 0.665.").key()
    ('0.665', '2a1ab8f8c5')
    """

    cell: int
    number: str
    sentence: str
    digest: str = ""

    def key(self) -> tuple[str, str]:
        """(number, sentence hash): how the baseline names a finding."""
        return self.number, self.digest or sentence_hash(self.sentence)

    def __str__(self) -> str:
        return f"cell {self.cell}: {self.number!r} in: {clip(self.sentence, around=self.number)}"


def sentence_hash(sentence: str) -> str:
    """Short hash of a sentence, blind to whitespace changes.

    >>> sentence_hash("a  b\\n c") == sentence_hash("a b c")
    True
    """
    return hashlib.sha1(" ".join(sentence.split()).encode()).hexdigest()[:10]


def clip(text: str, width: int = CLIP, around: str = "") -> str:
    """One line: `width` characters of `text` around the first `around`, '…' where it is cut.

    >>> clip("a\\n b " + "c" * 200, 10)
    'a b cccccc …'
    >>> clip("x" * 50 + " 0.61 " + "y" * 50, 20, around="0.61")
    '… xxxxxxx 0.61 yyyyyyy …'
    """
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    start = max(0, min(text.find(around) - (width - len(around)) // 2, len(text) - width))
    return ("… " if start else "") + text[start : start + width] + (" …" if start + width < len(text) else "")


# --- numbers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    """A number as written in prose, with the renderings that would support it."""

    text: str
    signed: bool
    candidates: tuple[tuple[Decimal, int], ...]  # (value, decimal places to round outputs at)


def _decimal(text: str) -> Decimal:
    """'−1,898.50' -> Decimal('-1898.50').

    >>> _decimal("−1,898.50"), _decimal("10_000")
    (Decimal('-1898.50'), Decimal('10000'))
    """
    return Decimal(text.replace(",", "").replace("_", "").replace("−", "-").replace(" ", ""))


def _places(num: str) -> int:
    """Decimal places as written: '0.650' -> 3, '1,898' -> 0."""
    return len(num.split(".")[1]) if "." in num else 0


def _candidates(value: Decimal, places: int, suffix: str, approx: bool) -> tuple:
    """The (value, places) pairs a prose number stands for.

    >>> _candidates(Decimal("64.5"), 1, "%", False)
    ((Decimal('64.5'), 1), (Decimal('0.645'), 3))
    >>> _candidates(Decimal("1100"), 0, "", True)
    ((Decimal('1100'), 0), (Decimal('1100'), -2))
    """
    out = [(value, places)]
    if suffix == "%":
        out.append((value / 100, places + 2))
    elif suffix in {"k", "K", "M", "B"}:
        power = {"k": 3, "K": 3, "M": 6, "B": 9}[suffix]
        out.append((value.scaleb(power), places - power))
    if approx and places == 0 and value != 0:
        digits = str(abs(int(value)))
        zeros = len(digits) - len(digits.rstrip("0"))
        if zeros:
            out.append((value, -zeros))
    return tuple(out)


def _skipped(text: str, match: re.Match, http: bool) -> bool:
    """True for numbers that are not claims: identifiers, parts, years, status codes, small integers."""
    before, after = text[: match.start("num")], text[match.end("num") :]
    num, suffix = match["num"], (match["suffix"] or "").strip()
    return (
        _in_identifier(before, after, suffix)
        or _is_part_reference(before, num)
        or _is_year(before, after, num)
        or http and num in _STATUS_CODES
        or (not suffix or suffix in "kKMB") and "." not in num and "," not in num and int(num) <= 10
    )


def _in_identifier(before: str, after: str, suffix: str) -> bool:
    """Joined to a word (L6, nDCG@10, top-10, 2nd, v1.5) or a version (1.15.1).

    >>> _in_identifier("nDCG@", " is", ""), _in_identifier("the ", "nd rank", ""), _in_identifier("at ", " s", "")
    (True, True, False)
    """
    if re.search(r"(?:[A-Za-z_@#.]|[A-Za-z][-:])$", before) or re.match(r"\.\d", after):
        return True
    if suffix:
        return False
    word = re.match(r"[A-Za-zµ]+", after)
    return bool(word) and word[0] not in _UNITS


def _is_part_reference(before: str, num: str) -> bool:
    """'chapter 03', 'sections 6.1 and 6.2', a leading zero (03).

    >>> _is_part_reference("see chapters 04 and ", "06"), _is_part_reference("a ", "300")
    (True, False)
    """
    return bool(re.match(r"0\d", num) or _PART_REF.search(before))


def _is_year(before: str, after: str, num: str) -> bool:
    """1900-2099 after a month, a name, 'in', 'et al.', in parentheses, or a decade.

    >>> _is_year("Robertson ", ")", "2009"), _is_year("sample ", " docs", "2000"), _is_year("the ", "s", "1960")
    (True, False, True)
    """
    if not re.fullmatch(r"(?:19|20)\d\d", num):
        return False
    return bool(_YEAR_BEFORE.search(before) or re.match(r"s\b|\)", after))


def prose_numbers(text: str, raw: str | None = None) -> list[tuple[int, Written]]:
    """(offset, Written) for every checked number in masked prose (`raw`: the unmasked sentence).

    >>> [w.text for _, w in prose_numbers("all-MiniLM-L6-v2 gets 0.645 on 300 claims, 64.5 %.")]
    ['0.645', '300', '64.5 %']
    >>> prose_numbers("Retry on HTTP 429 and 503.")
    []
    """
    found, http = [], bool(_HTTP.search(text if raw is None else raw))
    for match in _NUMBER.finditer(text):
        if _skipped(text, match, http):
            continue
        signed = _is_sign(text, match)
        number = (match["sign"] if signed else "") + match["num"]
        approx = bool(_APPROX.search(text[: match.start()]))
        cands = _candidates(_decimal(number), _places(match["num"]), (match["suffix"] or "").strip(), approx)
        found.append((match.start("num"), Written(number + (match["suffix"] or ""), signed, cands)))
    return found


def _is_sign(text: str, match: re.Match) -> bool:
    """A '-' is a sign after a space, '(' or '=', not a hyphen or a range dash.

    >>> [_is_sign(t, _NUMBER.search(t)) for t in ("gap -0.02", "top-20", "(−3)")]
    [True, False, True]
    """
    return bool(match["sign"]) and (match.start() == 0 or text[match.start() - 1] in " \t\n(=[≈~/:")


# --- what the notebook shows ------------------------------------------------------------------


class Shown:
    """The numbers a notebook shows (outputs and code), rounded on demand at any precision.

    >>> shown = Shown(["nDCG 0.6451 | 39%"])
    >>> shown.supports(Decimal("0.65"), 2, signed=False), shown.supports(Decimal("0.39"), 2, signed=False)
    (True, True)
    """

    def __init__(self, texts):
        self.values: set[Decimal] = set()
        for text in texts:
            self.values.update(output_numbers(text))
        self._rounded: dict[tuple[int, bool], set[Decimal]] = {}

    def supports(self, value: Decimal, places: int, signed: bool) -> bool:
        """Does a shown number round to `value` at `places` decimals (sign-blind unless `signed`)?"""
        key = (places, signed)
        if key not in self._rounded:
            self._rounded[key] = {r for v in self.values for r in _roundings(v if signed else abs(v), places)}
        return (value if signed else abs(value)) in self._rounded[key]


def _roundings(value: Decimal, places: int) -> tuple[Decimal, ...]:
    """`value` rounded half-up and half-even at `places` (negative: tens, hundreds...).

    >>> _roundings(Decimal("0.645"), 2)
    (Decimal('0.65'), Decimal('0.64'))
    """
    exp = Decimal(1).scaleb(-places)
    try:
        return value.quantize(exp, ROUND_HALF_UP), value.quantize(exp, ROUND_HALF_EVEN)
    except InvalidOperation:
        return ()


def output_numbers(text: str) -> set[Decimal]:
    """Every number in an output text (percentages also as fractions; groups also split).

    >>> sorted(output_numbers("5,183 docs | 18% | 1e-05 | recall@100"))
    [Decimal('0.00001'), Decimal('0.18'), Decimal('5'), Decimal('18'), Decimal('100'), Decimal('183'), Decimal('5183')]
    """
    values = set()
    for match in _OUTPUT_NUMBER.finditer(text):
        raw = match[0].replace("%", "").strip()
        for part in [raw, *raw.lstrip("-−").split(",")] if "," in raw else [raw]:
            try:
                value = _decimal(part)
            except InvalidOperation:
                continue
            values.add(value)
            if match["pct"]:
                values.add(value / 100)
    return values


def output_texts(cell) -> list[str]:
    """The text of a code cell's outputs: stream, text/plain, text/html (tags stripped), errors.

    >>> from nbformat.v4 import new_code_cell, new_output
    >>> cell = new_code_cell(outputs=[new_output("display_data", {"text/html": "<td>0.5&nbsp;s</td>"})])
    >>> output_texts(cell)
    [' 0.5\\xa0s ']
    """
    texts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            texts.append(_PROGRESS.sub("", _text(out.get("text", ""))))
        elif out.get("output_type") == "error":
            texts.append(f"{out.get('ename', '')}: {out.get('evalue', '')}")
        for mime in ("text/plain", "text/markdown", "text/latex"):
            texts.append(_text(out.get("data", {}).get(mime, "")))
        texts.append(_strip_html(_text(out.get("data", {}).get("text/html", ""))))
    return [re.sub(r"\x1b\[[0-9;]*m", "", t) for t in texts if t]


def _text(value) -> str:
    """nbformat stores multi-line strings as lists in some files."""
    return "".join(value) if isinstance(value, list) else value


def _strip_html(text: str) -> str:
    """'<td>0.5</td>' -> ' 0.5 ' (tags become spaces, entities are decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", text)) if text else ""


# --- prose ------------------------------------------------------------------------------------


def mask(markdown: str) -> str:
    """Blank out what is not prose (code, LaTeX, headings, tags, link targets), keeping offsets.

    >>> mask("# Title 5\\nSee `x = 7` and $k=3$ [here](http://a/1).")
    '         \\nSee         and       [here]            .'
    """
    for pattern in _MASKED:
        markdown = pattern.sub(lambda m: re.sub(r"[^\n]", " ", m[0]), markdown)
    return markdown


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of sentences, list items, table rows and paragraphs.

    >>> text = "First one. Second 0.5 here.\\n- item\\n| a | b |"
    >>> [text[a:b] for a, b in sentence_spans(text)]
    ['First one.', 'Second 0.5 here.', '- item', '| a | b |']
    """
    spans, start = [], 0
    for brk in _SENTENCE_BREAK.finditer(text):
        spans.append((start, brk.start()))
        start = brk.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _clause(text: str, offset: int) -> str:
    """The part of `text` around `offset` between ';' or dashes outside parentheses.

    >>> _clause("ours 0.61; theirs 0.665 (BEIR; full) — done", 18)
    ' theirs 0.665 (BEIR; full) '
    """
    cuts = [0, *_clause_breaks(text), len(text)]
    start = max(c for c in cuts if c <= offset)
    return text[start : min(c for c in cuts if c > offset)].strip(";—")


def _clause_breaks(text: str) -> list[int]:
    """Offsets of ';', '—' and ' – ' at parenthesis depth 0."""
    depth, breaks = 0, []
    for i, ch in enumerate(text):
        depth = max(0, depth + (ch == "(") - (ch == ")"))
        if depth == 0 and (ch in ";—" or text[i - 1 : i + 2] == " – "):
            breaks.append(i)
    return breaks


def _cited(clause: str) -> bool:
    """Does the clause name a published source?

    >>> _cited("BM25 scores 0.665 (BEIR)"), _cited("(Radford et al. 2021)"), _cited("0.6 (the share above)")
    (True, True, False)
    """
    return bool(_CITE_PAREN.search(clause) or _CITE_WORDS.search(clause))


def markdown_findings(cell: int, markdown: str, shown: Shown) -> list[Finding]:
    """The unsupported numbers of one markdown cell."""
    masked, findings = mask(markdown), []
    for start, end in sentence_spans(masked):
        sentence = markdown[start:end]
        for offset, written in prose_numbers(masked[start:end], sentence):
            if not _supported(written, shown) and not _cited(_clause(sentence, offset)):
                prose = sentence_hash(masked[start:end])
                findings.append(Finding(cell, written.text, " ".join(sentence.split()), prose))
    return findings


def _supported(written: Written, shown: Shown) -> bool:
    """Is any rendering of the written number shown?"""
    return any(shown.supports(value, places, written.signed) for value, places in written.candidates)


# --- notebooks --------------------------------------------------------------------------------


def read_notebook(path: str | Path):
    """The notebook at `path`, or a ProseError that names the file and the problem.

    >>> try:
    ...     read_notebook("/no/such.ipynb")
    ... except ProseError as exc:
    ...     print(exc)
    /no/such.ipynb: no such notebook file
    """
    path = Path(path)
    if not path.is_file():
        raise ProseError(f"{path}: no such notebook file")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises json, schema and encoding errors alike
        raise ProseError(f"{path}: not a valid notebook ({type(exc).__name__}: {exc})") from exc


def notebook_findings(nb) -> list[Finding]:
    """The unsupported numbers of an nbformat notebook object."""
    texts = [t for c in nb.cells if c.cell_type == "code" for t in (*output_texts(c), _text(c.source))]
    shown = Shown(texts)
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            found += markdown_findings(index, _text(cell.source), shown)
    return found


def unsupported_numbers(path: str | Path) -> list[Finding]:
    """The numbers in a notebook's markdown that its outputs and code do not show and no citation covers."""
    return notebook_findings(read_notebook(path))


def unsupported_in(markdown: str, outputs=(), code=()) -> list[str]:
    """The unsupported numbers (as written) of `markdown`, given output texts (read as streams) and code.

    >>> unsupported_in("BM25 finds 121 of 300 claims.", ["121 300"])
    []
    """
    shown = Shown([*(_PROGRESS.sub("", text) for text in outputs), *code])
    return [f.number for f in markdown_findings(0, markdown, shown)]


# --- baseline ---------------------------------------------------------------------------------


def load_baseline(path: str | Path) -> dict[str, list[dict]]:
    """{notebook file name: [{"number", "hash", "sentence"}]}; {} when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ProseError(f"{path}: not a valid baseline file ({exc})") from exc
    return {name: entries for name, entries in data.items() if not name.startswith("_")}


def baseline_entries(findings: list[Finding]) -> list[dict]:
    """Baseline records of findings (number, sentence hash, the sentence's start for people).

    >>> baseline_entries([Finding(1, "0.7", "Ours is 0.7.")])
    [{'number': '0.7', 'hash': '98f4cbd502', 'sentence': 'Ours is 0.7.'}]
    """
    return [{"number": f.number, "hash": f.key()[1], "sentence": clip(f.sentence, 100, f.number)} for f in findings]


def compare_with_baseline(findings: list[Finding], entries: list[dict]) -> tuple[list[Finding], list[dict]]:
    """(findings not in the baseline, baseline entries that no longer occur), counted as multisets.

    >>> f = Finding(1, "0.7", "Ours is 0.7.")
    >>> new, _ = compare_with_baseline([f, f], baseline_entries([f]))
    >>> _, stale = compare_with_baseline([], baseline_entries([f]))
    >>> new == [f], stale[0]["number"]
    (True, '0.7')
    """
    left = Counter((e["number"], e["hash"]) for e in entries)
    new = []
    for finding in findings:
        if left[finding.key()] > 0:
            left[finding.key()] -= 1
        else:
            new.append(finding)
    stale = []
    for entry in entries:
        key = (entry["number"], entry["hash"])
        if left[key] > 0:
            stale.append(entry)
            left[key] -= 1
    return new, stale


def write_baseline(path: str | Path, baseline: dict[str, list[dict]]) -> None:
    """Write the baseline atomically (temporary file + os.replace), notebooks sorted."""
    path = Path(path)
    note = "Prose findings tolerated today (python -m course_utils.tools.prose --update-baseline); shrink only."
    data = {"_comment": note, **{k: baseline[k] for k in sorted(baseline) if baseline[k]}}
    atomic_write(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


# --- command line -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m course_utils.tools.prose", description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help="notebook files to check")
    parser.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE, help="baseline JSON (default: %(default)s)")
    parser.add_argument("--no-baseline", action="store_true", help="every finding counts as new")
    parser.add_argument("--update-baseline", action="store_true", help="record today's findings of these notebooks")
    return parser


def _report(name: str, findings: list[Finding], entries: list[dict]) -> bool:
    """Print one notebook's findings, marking those the baseline does not hold; True if any is new or stale."""
    new, stale = compare_with_baseline(findings, entries)
    new_ids = {id(f) for f in new}
    print(f"== {name}: {len(findings)} unsupported number(s), {len(new)} new, {len(stale)} stale")
    for finding in findings:
        print(f"  {'NEW ' if id(finding) in new_ids else ''}{finding}")
    for entry in stale:
        print(f"  STALE baseline entry, remove it: {entry['number']!r} in: {entry['sentence']}")
    return bool(new or stale)


def _update(path: Path, baseline: dict, found: dict[str, list[Finding]]) -> int:
    """Replace the baseline entries of the notebooks checked; keep the others."""
    write_baseline(path, {**baseline, **{name: baseline_entries(f) for name, f in found.items()}})
    print(f"baseline written: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Check notebooks: 0 clean (up to the baseline), 1 new or stale findings, 2 unreadable input."""
    args = _parser().parse_args(argv)
    try:
        found = {path.name: unsupported_numbers(path) for path in args.notebooks}
        baseline = {} if args.no_baseline else load_baseline(args.baseline)
    except ProseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.update_baseline:
        return _update(args.baseline, baseline, found)
    return int(any([_report(name, findings, baseline.get(name, [])) for name, findings in found.items()]))


if __name__ == "__main__":
    sys.exit(main())
