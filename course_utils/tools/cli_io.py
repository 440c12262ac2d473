"""Private helpers of `course_utils.tools.cli`: read documents, queries, qrels and runs; print results."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from course_utils.tools.named_collections import CollectionError

__all__ = ["DOC_SUFFIXES", "ID_FIELDS", "RESERVED", "load_model_named", "LazyModel", "parse_pairs",
           "read_documents", "read_queries", "read_qrels_any", "read_run", "write_results"]

DOC_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
ID_FIELDS = ("_id", "id", "doc_id")
RESERVED = {"doc_id", "_label", "sha256", "title", "text"}


def load_model_named(name: str | None):
    """models.load_model with a clear error listing the offline models for an unknown name."""
    from course_utils.models.loading import DEFAULT_MODEL, MODELS, load_model

    name = name or DEFAULT_MODEL
    if name not in MODELS:
        raise CollectionError(f"unknown model {name!r}; the offline models are: "
                              f"{', '.join(MODELS)}")
    try:  # the "Loading weights" bar of transformers is noise here
        from transformers.utils import logging as hf_logging
        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    return load_model(name)


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


def read_documents(source, id_field=None, text_field="text", title_field="title") -> list[dict]:
    """Documents {"doc_id", "title", "text", scalar fields...} from a folder or a JSONL/CSV file.

    A folder: every .txt/.md/.rst file below it, id = its path relative to the folder.
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source} not found: give a folder of .txt/.md files or a "
                                ".jsonl/.csv file")
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix in DOC_SUFFIXES and p.is_file())
        if not files:
            raise ValueError(f"{source} holds no {'/'.join(DOC_SUFFIXES)} files")
        return [{"doc_id": p.relative_to(source).as_posix(), "title": p.stem,
                 "text": p.read_text(encoding="utf-8", errors="replace")} for p in files]
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
    """{qid: text} from a JSONL file (_id/id, text) or a TSV file (id<TAB>text)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"queries file {path} not found")
    if path.suffix == ".jsonl":
        return {d["doc_id"]: d["text"] for d in read_documents(path)}
    out = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            qid, sep, text = line.partition("\t")
            if not sep:
                raise ValueError(f"{path}, line {n}: expected 'query-id<TAB>text'")
            out[qid] = text
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


def _snippet(text: str, width: int = 70) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 1] + "…"


def write_results(results: dict, queries: dict, fmt: str, how: str) -> str:
    """results {qid: [{"doc_id", "score", "title", "text"}...]} as a table, JSON or a TREC run."""
    if fmt == "json":
        return json.dumps([{"query_id": q, "query": queries[q], "method": how,
                            "results": [{"rank": r, **hit} for r, hit in enumerate(hits, 1)]}
                           for q, hits in results.items()], indent=2, ensure_ascii=False) + "\n"
    if fmt == "trec":
        return "".join(f"{q} Q0 {h['doc_id']} {r} {h['score']:.6f} course-utils\n"
                       for q, hits in results.items() for r, h in enumerate(hits, 1))
    lines = []
    for q, hits in results.items():
        lines.append(f"query {q}: {queries[q]}   [{how}]")
        lines.append(f"{'rank':>4}  {'score':>8}  {'doc_id':<24} text")
        for r, h in enumerate(hits, 1):
            label = (h["title"] + ": " if h.get("title") else "") + h.get("text", "")
            lines.append(f"{r:>4}  {h['score']:>8.4f}  {h['doc_id']:<24} {_snippet(label)}")
        if not hits:
            lines.append("      (no results)")
        lines.append("")
    return "\n".join(lines) + "\n"
