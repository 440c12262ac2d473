"""Text out of the files of a folder, for `course-utils embed`: plain text, Markdown, HTML, PDF.

- .txt .md .markdown .rst: read as UTF-8;
- .html .htm: the visible text (the standard library's HTML parser; script/style dropped,
  block elements become line breaks, the <title> becomes the document's title);
- .pdf: the text layer of each page (`pypdf`); a scanned PDF without a text layer has none.

A file that cannot be used is skipped with a reason, never fatal: not readable (permissions),
binary (a NUL byte or not UTF-8), empty, or a PDF without text. Files with other extensions
are counted and listed, not read.

>>> html_text("<html><title>T</title><p>Hello <b>you</b></p><script>x()</script></html>")
('T', 'Hello you')
"""
from __future__ import annotations

import html.parser
import re
from pathlib import Path

__all__ = ["TEXT_SUFFIXES", "HTML_SUFFIXES", "PDF_SUFFIXES", "SUPPORTED", "SkippedFile",
           "html_text", "pdf_text", "read_file", "read_folder"]

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
HTML_SUFFIXES = (".html", ".htm")
PDF_SUFFIXES = (".pdf",)
SUPPORTED = TEXT_SUFFIXES + HTML_SUFFIXES + PDF_SUFFIXES
_BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section",
           "article", "pre", "blockquote", "table", "ul", "ol", "header", "footer"}


class SkippedFile(Exception):
    """A file that was not embedded; the message says why."""


class _TextParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.title, self._skip, self._in_title = [], [], 0, False

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "noscript", "template"):
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "noscript", "template"):
            self._skip = max(self._skip - 1, 0)
        elif tag == "title":
            self._in_title = False
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if self._in_title:
            self.title.append(data)
        elif not self._skip:
            self.parts.append(data)


def html_text(markup: str) -> tuple[str, str]:
    """(title, visible text) of an HTML page; paragraphs separated by blank lines."""
    parser = _TextParser()
    parser.feed(markup)
    parser.close()
    text = re.sub(r"[ \t\r\f\v]+", " ", "".join(parser.parts))
    text = re.sub(r" ?\n[\n ]*\n ?", "\n\n", text).strip()
    return " ".join("".join(parser.title).split()), text


def pdf_text(path: Path) -> str:
    """The text layer of a PDF, pages separated by blank lines (needs `pypdf`)."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:
        raise SkippedFile("PDF support needs pypdf: pip install pypdf") from None
    try:
        reader = PdfReader(str(path))
        return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)
    except (PdfReadError, ValueError, KeyError) as err:
        raise SkippedFile(f"not a readable PDF ({err})") from None


def _decode(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise SkippedFile("binary file (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise SkippedFile(f"not UTF-8 text (byte {err.start}); save it as UTF-8") from None


def read_file(path) -> tuple[str, str]:
    """(title, text) of one file; SkippedFile says why it cannot be used."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in PDF_SUFFIXES:
            title, text = path.stem, pdf_text(path)
        elif suffix in HTML_SUFFIXES:
            title, text = html_text(_decode(path))
            title = title or path.stem
        elif suffix in TEXT_SUFFIXES:
            title, text = path.stem, _decode(path)
        else:
            raise SkippedFile(f"unsupported file type {suffix or '(none)'}; supported: "
                              f"{' '.join(SUPPORTED)}")
    except PermissionError:
        raise SkippedFile("not readable (permission denied)") from None
    except IsADirectoryError:
        raise SkippedFile("a folder, not a file") from None
    except OSError as err:
        raise SkippedFile(f"cannot be read ({err.strerror or err})") from None
    if not text.strip():
        raise SkippedFile("no text" + (" (a scanned PDF has none: run OCR first)"
                                       if suffix in PDF_SUFFIXES else " (empty file)"))
    return title, text


def read_folder(folder) -> tuple[list[dict], list[tuple[str, str]], dict[str, int]]:
    """(documents, skipped, ignored) for every file below `folder`.

    documents: [{"doc_id": path relative to folder, "title", "text"}], by path;
    skipped: [(relative path, reason)] for supported files that could not be used;
    ignored: {suffix: count} of files with other extensions (hidden files and folders excluded).
    """
    folder = Path(folder)
    docs, skipped, ignored = [], [], {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or path.is_dir():
            continue
        if path.suffix.lower() not in SUPPORTED:
            ignored[path.suffix.lower() or "(none)"] = ignored.get(path.suffix.lower() or "(none)", 0) + 1
            continue
        try:
            title, text = read_file(path)
        except SkippedFile as why:
            skipped.append((rel.as_posix(), str(why)))
            continue
        docs.append({"doc_id": rel.as_posix(), "title": title, "text": text})
    return docs, skipped, ignored
