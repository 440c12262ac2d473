"""A parallel corpus of real translations: Django's message catalogues.

The `django` package ships the messages of its user interface ("This field is required.", "Your
password was changed.") with human translations into ~100 languages, in compiled gettext catalogues
(`locale/<lang>/LC_MESSAGES/django.mo`, BSD licence). Row i of `load_parallel` is one English
message and its translations: a small, real parallel corpus for cross-lingual retrieval.
Nothing is downloaded; the files are read without importing Django.
"""
from __future__ import annotations

import importlib.util
import re
import struct
from pathlib import Path

import pandas as pd

__all__ = ["LANGUAGES", "read_mo", "catalogue_files", "load_parallel"]

LANGUAGES = {"en": "English", "de": "German", "fr": "French", "es": "Spanish", "ja": "Japanese"}
_PLACEHOLDER = re.compile(r"%|\{|\}|<|>")      # format strings and markup: not plain sentences


def read_mo(path: str | Path) -> dict[str, str]:
    """{message: translation} from a compiled gettext catalogue (.mo), plural and context entries
    included as stored ("singular\\x00plural", "context\\x04message").

    Format: magic number, revision, count N, offsets of two tables of (length, offset) pairs.

    >>> admin_fr = [p for p in catalogue_files("fr") if p.parts[-5] == "admin"][0]
    >>> read_mo(admin_fr)["Yes, I’m sure"]
    'Oui, je suis sûr'
    """
    blob = Path(path).read_bytes()
    if len(blob) < 20:
        raise ValueError(f"{path} is too short to be a .mo file")
    magic = struct.unpack("<I", blob[:4])[0]
    order = {0x950412DE: "<", 0xDE120495: ">"}.get(magic)
    if order is None:
        raise ValueError(f"{path} is not a gettext .mo file (magic number {magic:#x})")
    _, count, originals, translations = struct.unpack(order + "4I", blob[4:20])
    out = {}
    for i in range(count):
        (olen, ooff), (tlen, toff) = (struct.unpack(order + "2I", blob[t + 8 * i:t + 8 * i + 8])
                                      for t in (originals, translations))
        out[blob[ooff:ooff + olen].decode("utf-8")] = blob[toff:toff + tlen].decode("utf-8")
    return out


def catalogue_files(language: str) -> list[Path]:
    """The .mo files of one language in the installed `django` package, sorted.

    >>> len(catalogue_files("fr")) > 10
    True
    """
    spec = importlib.util.find_spec("django")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the parallel corpus is read from the PyPI package 'django', which is not "
                          "installed here: run `make setup` (or `pip install django==5.2.17`)")
    root = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(root.glob(f"**/locale/{language}/LC_MESSAGES/django.mo"))
    if not files:
        raise ValueError(f"no Django catalogue for language {language!r}; try one of {sorted(LANGUAGES)}")
    return files


def _catalogue(language: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in catalogue_files(language):
        for msg, text in read_mo(path).items():
            if msg and text and "\x00" not in msg and "\x04" not in msg:   # no plural / context entries
                merged.setdefault(msg, text)
    return merged


def _plain(text: str, min_words: int) -> bool:
    return len(text.split()) >= min_words and not _PLACEHOLDER.search(text)


def load_parallel(languages=("en", "de", "fr", "es", "ja"), min_words: int = 3) -> pd.DataFrame:
    """One row per English message with at least `min_words` words and no placeholder or markup,
    translated into every language; one column per language code ("en" = the English original).

    Rows whose text repeats another row's in any column are dropped, so each query has exactly one
    right answer. Order: by English text.

    >>> load_parallel(("en", "fr")).columns.tolist()
    ['en', 'fr']
    """
    languages = list(languages)
    if "en" not in languages or len(set(languages)) != len(languages):
        raise ValueError(f"languages must include 'en' (the messages' own language) once each, got {languages}")
    if not isinstance(min_words, int) or min_words < 1:
        raise ValueError(f"min_words must be a whole number >= 1, got {min_words!r}")
    catalogues = {lang: _catalogue(lang) for lang in languages if lang != "en"}
    rows = []
    for msg in sorted(set.intersection(*(set(c) for c in catalogues.values())) if catalogues else []):
        row = {"en": " ".join(msg.split())}
        row.update({lang: " ".join(c[msg].split()) for lang, c in catalogues.items()})
        untranslated = any(row[lang] == row["en"] for lang in catalogues)
        if _plain(msg, min_words) and not untranslated and not any(_PLACEHOLDER.search(t) for t in row.values()):
            rows.append(row)
    table = pd.DataFrame(rows, columns=languages)
    unique = ~pd.concat([table[c].duplicated(keep=False) for c in languages], axis=1).any(axis=1)
    return table[unique].reset_index(drop=True)
