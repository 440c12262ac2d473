"""Data sets: BEIR retrieval sets (SciFact), STS-B, and package-shipped text corpora.

Where a BEIR data set is looked for, in order:
1. the data home: $COURSE_DATA, default `<repo>/data/home`;
2. the shared folder beside the repo: $COURSE_SHARED, default `<repo>/../shared/datasets`;
3. otherwise the official BEIR archive is downloaded into the data home, its md5 checked.

A data set is `corpus` {doc_id: {"title", "text"}}, `queries` {qid: text}, `qrels`
{qid: {doc_id: relevance}} -- the BEIR layout on disk, the TREC dict form in memory.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd

from course_utils.data import download as dl
from course_utils.paths import data_home, shared_datasets

__all__ = ["data_home", "shared_datasets",  # re-exported from paths: where the data sets are
           "BEIR_URL", "BEIR_MD5", "SPLITS", "STS_SPLITS", "STS_COLUMNS", "find_beir", "fetch_beir",
           "load_beir", "read_jsonl", "read_qrels", "ORIGINAL_PARTS", "load_scifact_original",
           "doc_texts", "load_sts", "load_precomputed"]

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
# md5 of the official archives, as published in the BEIR README.
BEIR_MD5 = {"scifact": "5f7d1de60b170fc8027bb7898e2efca1"}
SPLITS = {"scifact": ("train", "test")}
STS_SPLITS = ("train", "dev", "test")
STS_COLUMNS = ["genre", "file", "year", "id", "score", "sentence1", "sentence2"]


def find_beir(name: str, download: bool = True) -> Path:
    """Folder of BEIR data set `name`: data home, then shared, then a verified download.

    >>> find_beir("scifact").name                        # doctest: +SKIP
    'scifact'
    """
    if name not in SPLITS:
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(SPLITS)}")
    for base in (data_home(), shared_datasets()):
        if (base / name / "corpus.jsonl").exists():
            return base / name
    if not download:
        raise FileNotFoundError(f"data set {name!r} is neither in {data_home()} nor in "
                                f"{shared_datasets()}; set COURSE_DATA or allow the download")
    return fetch_beir(name, BEIR_URL.format(name=name), BEIR_MD5.get(name))


def fetch_beir(name: str, url: str, md5: str | None, home: Path | None = None) -> Path:
    """Download and unpack a BEIR archive (md5-verified) into the data home; return its folder."""
    home = Path(home or data_home())
    archive = dl.download(url, home / f"{name}.zip", md5=md5)
    unpacked = dl.extract_zip(archive, home / f".{name}-unpacked")
    inner = unpacked / name if (unpacked / name).is_dir() else unpacked
    inner.replace(home / name)
    dl.shutil.rmtree(unpacked, ignore_errors=True)
    archive.unlink()
    return home / name


def load_beir(name: str = "scifact", split: str = "test", verify: bool = True):
    """Load a BEIR data set: (corpus, queries, qrels), queries limited to those judged in `split`.

    >>> corpus, queries, qrels = load_beir("scifact", "test")     # doctest: +SKIP
    >>> len(corpus), len(queries), sum(map(len, qrels.values()))  # doctest: +SKIP
    (5183, 300, 339)
    """
    if name in SPLITS and split not in SPLITS[name]:
        raise ValueError(f"{name} has no split {split!r}; choose one of {SPLITS[name]}")
    folder = find_beir(name)
    if verify and (folder / "SHA256SUMS").exists():
        dl.verify_sha256sums(folder)
    qrels = read_qrels(folder / "qrels" / f"{split}.tsv")
    corpus = {row["_id"]: {"title": row.get("title", ""), "text": row["text"]}
              for row in read_jsonl(folder / "corpus.jsonl")}
    queries = {row["_id"]: row["text"] for row in read_jsonl(folder / "queries.jsonl")
               if row["_id"] in qrels}
    missing = set(qrels) - set(queries)
    if missing:
        raise ValueError(f"{folder}: {len(missing)} judged queries (e.g. {sorted(missing)[0]!r}) "
                         "are not in queries.jsonl; the data set is incomplete -- re-copy it")
    return corpus, queries, qrels


def read_jsonl(path: str | Path):
    """Yield one dict per line of a JSON-lines file; a bad line raises naming file and line.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "a.jsonl"; _ = p.write_text('{"_id": "1"}\\n')
    >>> list(read_jsonl(p))
    [{'_id': '1'}]
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found")
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}, line {lineno}: not valid JSON ({err.msg}); "
                                 "the file is damaged -- re-copy or re-download it") from None
            if not isinstance(row, dict) or "_id" not in row and "doc_id" not in row and "id" not in row:
                raise ValueError(f"{path}, line {lineno}: expected an object with an id field")
            yield row


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read a BEIR qrels TSV (header `query-id corpus-id score`) into {qid: {doc_id: rel}}.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "q.tsv"
    >>> _ = p.write_text("query-id\\tcorpus-id\\tscore\\n1\\td9\\t1\\n")
    >>> read_qrels(p)
    {'1': {'d9': 1}}
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is the data set complete?")
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.rstrip("\n").split("\t")
            if lineno == 1 and parts[0] == "query-id":
                continue
            if len(parts) != 3 or not parts[2].lstrip("-").isdigit():
                raise ValueError(f"{path}, line {lineno}: expected 'query-id<TAB>corpus-id<TAB>"
                                 f"integer score', got {line.strip()!r}")
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return qrels


ORIGINAL_PARTS = ("corpus", "claims_train", "claims_dev")


def load_scifact_original(part: str = "corpus") -> list[dict]:
    """Rows of the original SciFact release: `corpus` (doc_id, title, abstract as a list of
    sentences, structured), `claims_train` / `claims_dev` (claim, evidence, cited_doc_ids).

    BEIR's archive lacks these; they come from the shared folder (or the data home, if you copied
    the SciFact release's `data/` there as `scifact/original/`).

    >>> len(load_scifact_original("claims_dev"))        # doctest: +SKIP
    300
    """
    if part not in ORIGINAL_PARTS:
        raise ValueError(f"no SciFact part {part!r}; choose one of {ORIGINAL_PARTS}")
    for base in (data_home(), shared_datasets()):
        path = base / "scifact" / "original" / f"{part}.jsonl"
        if path.exists():
            return list(read_jsonl(path))
    raise FileNotFoundError(f"{part}.jsonl of the original SciFact release is in neither "
                            f"{data_home() / 'scifact' / 'original'} nor {shared_datasets() / 'scifact' / 'original'}; "
                            "get the release's data.tar.gz (github.com/allenai/scifact) and copy it there")


def doc_texts(corpus: dict) -> tuple[list[str], list[str]]:
    """(doc_ids, texts) in corpus order, text = title + " " + text, stripped (as BEIR/MTEB do).

    >>> doc_texts({"d1": {"title": "A", "text": "b."}})
    (['d1'], ['A b.'])
    """
    ids = list(corpus)
    return ids, [(corpus[i].get("title", "") + " " + corpus[i]["text"]).strip() for i in ids]


def load_sts(split: str = "test") -> pd.DataFrame:
    """STS Benchmark pairs: columns genre, file, year, id, score (0-5), sentence1, sentence2.

    >>> load_sts("test").shape                    # doctest: +SKIP
    (1379, 7)
    """
    if split not in STS_SPLITS:
        raise ValueError(f"STS-B has no split {split!r}; choose one of {STS_SPLITS}")
    folder = shared_datasets() / "stsbenchmark"
    for base in (data_home() / "stsbenchmark", folder):
        if (base / f"sts-{split}.csv").exists():
            folder = base
            break
    else:
        raise FileNotFoundError(f"sts-{split}.csv not found in {data_home() / 'stsbenchmark'} or "
                                f"{folder}; copy the STS Benchmark there (see data/README.md)")
    path = folder / f"sts-{split}.csv"
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, row in enumerate(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if len(row) < 7:
                raise ValueError(f"{path}, line {lineno}: expected >= 7 tab-separated columns")
            rows.append(row[:7])
    frame = pd.DataFrame(rows, columns=STS_COLUMNS)
    frame["score"] = frame["score"].astype(float)
    return frame


def load_precomputed(name: str = "scifact", model: str = "all-MiniLM-L6-v2"):
    """(doc_ids, vectors) precomputed for a corpus in the shared folder, checksums verified.

    Row i of `vectors` (float32, (n, d), L2-normalised) belongs to doc_ids[i]; the text recipe is
    `doc_texts` (title + " " + text). Use `embeddings.seed_cache` to put them into the cache.

    >>> ids, vecs = load_precomputed()            # doctest: +SKIP
    >>> vecs.shape                                # doctest: +SKIP
    (5183, 384)
    """
    import numpy as np

    folder = shared_datasets() / name / "embeddings" / model
    if not (folder / "corpus.npy").exists():
        raise FileNotFoundError(f"no precomputed vectors for {name}/{model} in {folder}; "
                                "encode the corpus instead (it is cached once done)")
    dl.verify_sha256sums(folder)
    ids = (folder / "ids.txt").read_text(encoding="utf-8").split()
    vectors = np.load(folder / "corpus.npy")
    if len(ids) != len(vectors):
        raise ValueError(f"{folder}: {len(ids)} ids but {len(vectors)} vectors")
    return ids, vectors.astype(np.float32, copy=False)
