"""Private helpers of `course_utils.tools.cli`: read documents, queries, qrels and runs; print results."""
from __future__ import annotations

import csv
import json
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from course_utils.tools.extract import SUPPORTED, read_folder
from course_utils.tools.named_collections import CollectionError

__all__ = ["ID_FIELDS", "RESERVED", "load_model_named", "quiet_transformers",
           "check_collection_model", "LazyModel", "parse_pairs", "warn", "read_documents",
           "read_queries", "read_qrels_any", "read_run", "location", "write_results"]

ID_FIELDS = ("_id", "id", "doc_id")
RESERVED = {"doc_id", "_label", "sha256", "title", "text", "document", "passage", "start", "end",
            "heading"}


def warn(message: str) -> None:
    """One line on stderr: `course-utils: warning: ...`."""
    print(f"course-utils: warning: {message}", file=sys.stderr)


def load_model_named(name: str | None):
    """models.load_model with a clear error listing the offline models for an unknown name."""
    from course_utils.models.loading import DEFAULT_MODEL, MODELS, load_model

    name = name or DEFAULT_MODEL
    if name not in MODELS:
        raise CollectionError(f"unknown model {name!r}; the offline models are: "
                              f"{', '.join(MODELS)}")
    quiet_transformers()
    return load_model(name)


def quiet_transformers() -> None:
    """No "Loading weights" bar from transformers (noise on a command line)."""
    try:
        from transformers.utils import logging as hf_logging
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def check_collection_model(collection: str, model_name: str) -> None:
    """A collection embedded with a model that is not installed here cannot be searched or grown."""
    from course_utils.models.loading import MODELS

    if model_name not in MODELS:
        raise CollectionError(
            f"collection {collection!r} was embedded with {model_name!r}, which is not one of "
            f"the offline models here ({', '.join(MODELS)}); its vectors are only comparable "
            "with that model's — re-embed the documents into a new collection")


class LazyModel:
    """The named model, loaded only when something has to be encoded (an unchanged re-run of
    `embed` starts no model); on loading, its dimension must match the collection's."""

    def __init__(self, name: str | None, dim: int | None = None):
        from course_utils.models.loading import DEFAULT_MODEL, MODELS

        self.course_model_id, self._dim, self._model = name or DEFAULT_MODEL, dim, None
        if self.course_model_id not in MODELS:
            load_model_named(self.course_model_id)  # raises: unknown model, lists the known ones

    def _load(self):
        if self._model is None:
            self._model = load_model_named(self.course_model_id)
            real = self._model.get_embedding_dimension()
            if self._dim is not None and real != self._dim:
                raise CollectionError(
                    f"model {self.course_model_id!r} makes {real}-d vectors but the collection "
                    f"holds {self._dim}-d vectors; re-embed into a new collection")
        return self._model

    def get_embedding_dimension(self) -> int:
        return self._dim if self._dim is not None else self._load().get_embedding_dimension()

    def __getattr__(self, attr):
        return getattr(self._load(), attr)


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    """["a=1", "b=x"] -> {"a": "1", "b": "x"}; a pair without '=' raises."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected NAME=VALUE, got {pair!r}")
        out[key] = value
    return out


def _rows(path: Path):
    if path.suffix == ".jsonl":
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield n, json.loads(line)
                    except json.JSONDecodeError as err:
                        raise ValueError(f"{path}, line {n}: not valid JSON ({err.msg})") from None
    elif path.suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as fh:
            yield from enumerate(csv.DictReader(fh), 2)
    else:
        raise ValueError(f"{path}: expected a folder, a .jsonl or a .csv file")


def read_documents(source, id_field=None, text_field="text", title_field="title",
                   report: Callable[[str], None] = warn) -> list[dict]:
    """Documents {"doc_id", "title", "text", scalar fields...} from a folder or a JSONL/CSV file.

    A folder: every .txt/.md/.rst/.html/.pdf file below it (`course_utils.tools.extract`), id =
    its path relative to the folder; files that cannot be used are skipped and `report`ed.
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source} not found: give a folder of {'/'.join(SUPPORTED)} "
                                "files or a .jsonl/.csv file")
    if source.is_dir():
        return _folder_documents(source, report)
    docs, seen = [], set()
    for n, row in _rows(source):
        if not isinstance(row, dict):
            raise ValueError(f"{source}, line {n}: expected an object with an id and a text")
        key = id_field or next((f for f in ID_FIELDS if f in row), None)
        if key is None or row.get(key) in (None, ""):
            raise ValueError(f"{source}, line {n}: no id field ({id_field or ' / '.join(ID_FIELDS)})"
                             "; name it with --id-field")
        if not isinstance(row.get(text_field), str):
            raise ValueError(f"{source}, line {n}: no text in field {text_field!r}; fields are "
                             f"{sorted(row)} — name it with --text-field")
        doc_id = str(row[key])
        if doc_id in seen:
            raise ValueError(f"{source}, line {n}: duplicate id {doc_id!r}; ids must be unique")
        seen.add(doc_id)
        extra = {k: v for k, v in row.items() if k not in {key, text_field, title_field}
                 and k not in RESERVED and isinstance(v, (str, int, float, bool))}
        docs.append({"doc_id": doc_id, "title": str(row.get(title_field) or ""),
                     "text": row[text_field], **extra})
    if not docs:
        raise ValueError(f"{source} holds no documents")
    _unify_types(docs)
    return docs


def _folder_documents(source: Path, report) -> list[dict]:
    docs, skipped, ignored = read_folder(source)
    for rel, why in skipped:
        report(f"skipped {rel}: {why}")
    if ignored:
        kinds = ", ".join(f"{n} {suffix}" for suffix, n in sorted(ignored.items()))
        report(f"ignored {sum(ignored.values())} files of other types ({kinds}); supported: "
               f"{' '.join(SUPPORTED)}")
    if not docs:
        what = "no usable files" if skipped else f"no {'/'.join(SUPPORTED)} files"
        raise ValueError(f"{source} holds {what}: nothing to embed — put text, Markdown, HTML or "
                         "PDF files in it, or give a .jsonl/.csv file")
    return docs


def _unify_types(docs: list[dict]) -> None:
    """A field with mixed value types (e.g. 2020 and "n/a") is stored as text (Parquet needs one)."""
    types: dict[str, set] = {}
    for d in docs:
        for k, v in d.items():
            types.setdefault(k, set()).add(type(v))
    for k, ts in types.items():
        if len(ts) > 1 and ts != {int, float}:
            for d in docs:
                if k in d:
                    d[k] = str(d[k])


def read_queries(path) -> dict[str, str]:
    """{qid: text} from a JSONL file (_id/id, text), a JSON object {qid: text} or a TSV file
    (id<TAB>text); anything else is a clear error naming the line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"queries file {path} not found")
    expected = ("expected JSONL lines {\"_id\": ..., \"text\": ...}, a JSON object {id: text} "
                "or TSV lines 'query-id<TAB>text'")
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text; {expected}") from None
    if path.suffix == ".jsonl":
        return {d["doc_id"]: d["text"] for d in read_documents(path)}
    if path.suffix == ".json":
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err.msg}); {expected}") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError(f"{path}: {expected}")
        out = {str(q): t for q, t in data.items()}
    else:
        out = {}
        for n, line in enumerate(raw.splitlines(), 1):
            if line.strip():
                qid, sep, text = line.partition("\t")
                if not sep or not qid.strip() or not text.strip():
                    raise ValueError(f"{path}, line {n}: {expected}")
                out[qid.strip()] = text
    if not out:
        raise ValueError(f"{path} holds no queries; {expected}")
    return out


def read_qrels_any(path) -> dict[str, dict[str, int]]:
    """qrels from a BEIR TSV (query-id, corpus-id, score) or a TREC file (qid 0 doc rel)."""
    from course_utils.data.loaders import read_qrels

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"qrels file {path} not found")
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    if "\t" in first:
        return read_qrels(path)
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if parts and (len(parts) != 4 or not parts[3].lstrip("-").isdigit()):
            raise ValueError(f"{path}, line {n}: expected 'qid 0 doc_id relevance'")
        if parts:
            qrels.setdefault(parts[0], {})[parts[2]] = int(parts[3])
    return qrels


def read_run(path) -> dict[str, dict[str, float]]:
    """A run from JSON {qid: {doc_id: score}} or a TREC run file (qid Q0 doc rank score tag)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"run file {path} not found")
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        return {str(q): {str(d): float(s) for d, s in docs.items()}
                for q, docs in json.loads(text).items()}
    run: dict[str, dict[str, float]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if parts and len(parts) != 6:
            raise ValueError(f"{path}, line {n}: expected 'qid Q0 doc_id rank score tag'")
        if parts:
            try:
                run.setdefault(parts[0], {})[parts[2]] = float(parts[4])
            except ValueError:
                raise ValueError(f"{path}, line {n}: score {parts[4]!r} is not a number") from None
    return run


def location(hit: dict) -> str:
    """Where a passage sits: "doc § heading, chars a–b".

    >>> location({"doc_id": "a.md", "heading": "Install", "start": 10, "end": 99})
    'a.md § Install, chars 10–99'
    """
    where = hit["doc_id"] + (f" § {hit['heading']}" if hit.get("heading") else "")
    return f"{where}, chars {hit['start']:,}–{hit['end']:,}"


def _marked(text: str, spans, width: int, bold: bool) -> str:
    """A window of about `width` characters of `text` around its first highlight, highlights
    marked (**word**, or bold on a terminal), whitespace collapsed."""
    first = spans[0][0] if spans else 0
    lo = 0 if first < width // 2 else first - width // 4
    hi = min(len(text), lo + width)
    on, off = ("\033[1m", "\033[0m") if bold else ("**", "**")
    out, pos = [], lo
    for a, b in spans:
        if a >= pos and b <= hi:
            out += [text[pos:a], on, text[a:b], off]
            pos = b
    out.append(text[pos:hi])
    body = " ".join("".join(out).split())
    return ("…" if lo > 0 else "") + body + ("…" if hi < len(text) else "")


def write_results(results: dict, queries: dict, fmt: str, how: str, bold: bool = False) -> str:
    """results {qid: [hit...]} as a table, JSON or a TREC run.

    A hit is a passage {"passage_id", "doc_id", "score", "start", "end", "heading", "title",
    "text", "highlights"} or, grouped by document, the same for its best passage plus
    "passage_score" and "matched_passages". TREC's docno is the passage id ("<doc>#<n>") or,
    grouped, the document id.
    """
    grouped = any("matched_passages" in h for hits in results.values() for h in hits)
    if fmt == "json":
        return json.dumps([{"query_id": q, "query": queries[q], "method": how,
                            "results": [{"rank": r, **hit} for r, hit in enumerate(hits, 1)]}
                           for q, hits in results.items()], indent=2, ensure_ascii=False) + "\n"
    if fmt == "trec":
        key = "doc_id" if grouped else "passage_id"
        return "".join(f"{q} Q0 {h[key]} {r} {h['score']:.6f} course-utils\n"
                       for q, hits in results.items() for r, h in enumerate(hits, 1))
    lines = []
    for q, hits in results.items():
        lines.append(f"query {q}: {queries[q]}   [{how}]")
        for r, h in enumerate(hits, 1):
            extra = (f"  ({h['matched_passages']} passages matched; best {h['passage_score']:.4f})"
                     if grouped else "")
            lines.append(f"{r:>3}. {h['score']:.4f}  {location(h)}{extra}")
            lines += textwrap.wrap(_marked(h["text"], h.get("highlights", []), 300, bold), 96,
                                   initial_indent="     ", subsequent_indent="     ")
        if not hits:
            lines.append("     (no results)")
        lines.append("")
    return "\n".join(lines) + "\n"
