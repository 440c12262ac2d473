"""`course-utils` run as a subprocess (as a learner runs it) on a dozen short documents, and on
copies of the course's own Markdown files (passages deep inside a long file).

Tests marked `model` start the real all-MiniLM-L6-v2 (a few seconds each); the others fail
before any model is loaded. One in-process test checks the notebook-cell behaviour of `main`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from course_utils.tools.cli import STOP_ENV, main

DOCS = [("d1", "Cats", "Cats are small domesticated felines that purr.", 2019),
        ("d2", "Dogs", "Dogs are loyal animals that bark at strangers.", 2020),
        ("d3", "Python", "Python is a programming language popular for data science.", 2021),
        ("d4", "FAISS", "FAISS is a library for efficient similarity search of dense vectors.", 2022),
        ("d5", "BM25", "BM25 ranks documents by term frequency and inverse document frequency.", 2023),
        ("d6", "Aspirin", "Aspirin reduces the risk of heart attack and stroke.", 2018),
        ("d7", "Coffee", "Coffee contains caffeine, a stimulant of the nervous system.", 2017),
        ("d8", "Paris", "Paris is the capital of France, on the river Seine.", 2016),
        ("d9", "Volcano", "A volcano erupts when magma rises to the surface.", 2015),
        ("d10", "Tea", "Green tea is rich in antioxidants.", 2024),
        ("d11", "Bicycle", "A bicycle has two wheels and is powered by pedals.", 2014),
        ("d12", "Moon", "The Moon orbits the Earth every 27 days.", 2013)]
QUERIES = {"q1": "which animal barks", "q2": "vector similarity search library",
           "q3": "capital city of France"}
QRELS = {"q1": "d2", "q2": "d4", "q3": "d8"}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder with docs.jsonl, queries.tsv, qrels.tsv, its own cache and collections root."""
    d = tmp_path_factory.mktemp("cli")
    with open(d / "docs.jsonl", "w") as fh:
        for i, title, text, year in DOCS:
            fh.write(json.dumps({"_id": i, "title": title, "text": text, "year": year}) + "\n")
    (d / "queries.tsv").write_text("".join(f"{q}\t{t}\n" for q, t in QUERIES.items()))
    (d / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" +
                                 "".join(f"{q}\t{doc}\t1\n" for q, doc in QRELS.items()))
    return d


def cli(work: Path, *args, env=None) -> subprocess.CompletedProcess:
    """Run `python -m course_utils.tools.cli ARGS` with the test's cache and collections root."""
    full_env = {**os.environ, "COURSE_CACHE": str(work / "cache"),
                "COURSE_COLLECTIONS": str(work / "root"), "COURSE_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "course_utils.tools.cli", *map(str, args)],
                          capture_output=True, text=True, env=full_env, timeout=300)


@pytest.fixture(scope="module")
def embedded(work):
    """Collection 'toy': an embed interrupted after 2 batches of 4, then the same command again."""
    first = cli(work, "embed", work / "docs.jsonl", "-c", "toy", "--batch-size", "4",
                env={STOP_ENV: "2"})
    middle = json.loads(cli(work, "collections", "inspect", "toy", "--format", "json").stdout)
    second = cli(work, "embed", work / "docs.jsonl", "-c", "toy", "--batch-size", "4", "--quiet")
    third = cli(work, "embed", work / "docs.jsonl", "-c", "toy", "--quiet")
    return first, middle, second, third


@pytest.mark.model
def test_interrupted_embed_resumes_without_losing_or_duplicating(work, embedded):
    import pandas as pd

    first, middle, second, third = embedded
    assert first.returncode == 130 and "run the same command again" in first.stderr
    assert "embedding into 'toy'" in first.stderr  # the progress bar
    assert middle["count"] == 8 and middle["model"] == "all-MiniLM-L6-v2" and middle["dim"] == 384
    assert second.returncode == 0, second.stderr
    assert "4 new, 0 changed, 8 unchanged, 0 removed -> 12 documents" in second.stdout
    assert "0 new, 0 changed, 12 unchanged" in third.stdout
    meta = pd.read_parquet(work / "root" / "toy" / "store" / "metadata.parquet")
    assert sorted(meta["document"]) == sorted(d[0] for d in DOCS) and meta["doc_id"].is_unique
    assert sorted(meta["doc_id"]) == sorted(f"{d[0]}#0" for d in DOCS)  # one passage each
    assert (work / "root" / "toy" / "store" / "index.faiss").is_file()


@pytest.mark.model
def test_dense_search_table_then_ann_index_json(work, embedded):
    table = cli(work, "search", "toy", "which animal barks", "-k", "3", "--quiet")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[1].split()[0] == "1." and "d2, chars 0–46" in lines[1] and "[dense (exact)]" in lines[0]
    assert lines[2].strip() == "Dogs are loyal **animals** that **bark** at strangers."  # stems
    built = cli(work, "index", "toy", "--factory", "HNSW8", "--build-param", "efConstruction=64")
    assert built.returncode == 0 and "built HNSW8 over 12 vectors" in built.stdout
    found = cli(work, "search", "toy", "capital of France", "--param", "efSearch=32",
                "--format", "json", "--quiet")
    assert found.returncode == 0, found.stderr
    (result,) = json.loads(found.stdout)
    assert result["method"] == "dense (ann: HNSW8)" and result["results"][0]["doc_id"] == "d8"
    assert result["results"][0]["passage_id"] == "d8#0" and result["results"][0]["end"] == 51
    assert [r["rank"] for r in result["results"]] == list(range(1, 11))
    too_small = cli(work, "index", "toy", "--factory", "IVF4,Flat")
    assert too_small.returncode == 1 and "training" in too_small.stderr
    assert cli(work, "index", "toy", "--factory", "exact").returncode == 0
    listed = cli(work, "collections", "list")
    assert "toy" in listed.stdout and "ann -" in listed.stdout


@pytest.mark.model
def test_hybrid_rerank_trec_run_then_evaluate(work, embedded):
    run = work / "run.txt"
    out = cli(work, "search", "toy", "--queries", work / "queries.tsv", "--mode", "hybrid",
              "--rerank", "maxsim", "--format", "trec", "--output", run, "--quiet")
    assert out.returncode == 0, out.stderr
    assert run.read_text().splitlines()[0].split()[:4] == ["q1", "Q0", "d2#0", "1"]  # passages
    passages = cli(work, "evaluate", work / "qrels.tsv", run)
    assert passages.returncode == 1 and "--group-by document" in passages.stderr
    out = cli(work, "search", "toy", "--queries", work / "queries.tsv", "--mode", "hybrid",
              "--rerank", "maxsim", "--group-by", "document", "--format", "trec", "--output", run,
              "--quiet")
    assert out.returncode == 0, out.stderr
    lines = run.read_text().splitlines()
    assert len(lines) == 3 * 10 and lines[0].split()[:4] == ["q1", "Q0", "d2", "1"]
    scores = cli(work, "evaluate", work / "qrels.tsv", run, "--metrics", "ndcg@10", "mrr@10",
                 "--format", "json")
    assert scores.returncode == 0, scores.stderr
    assert json.loads(scores.stdout)["mrr@10"] == 1.0


def test_bm25_search_with_a_metadata_filter(work, embedded):
    out = cli(work, "search", "toy", "capital of France", "--mode", "bm25", "--where",
              "year=2016", "--format", "json")
    assert out.returncode == 0, out.stderr
    (hit,) = json.loads(out.stdout)[0]["results"]
    assert (hit["doc_id"], hit["passage_id"]) == ("d8", "d8#0")
    assert [hit["text"][a:b] for a, b in hit["highlights"]] == ["capital", "France"]
    bad = cli(work, "search", "toy", "x", "--mode", "bm25", "--where", "colour=red")
    assert bad.returncode == 1 and "fields are" in bad.stderr


@pytest.mark.model
def test_folder_source_and_prune(work):
    folder = work / "notes"
    (folder / "sub").mkdir(parents=True)
    for name, text in [("a.txt", "alpha"), ("b.md", "beta"), ("sub/c.txt", "gamma")]:
        (folder / name).write_text(text)
    assert cli(work, "embed", folder, "-c", "notes", "--quiet").returncode == 0
    (folder / "b.md").write_text("beta, rewritten")
    (folder / "a.txt").unlink()
    (folder / "d.txt").write_text("delta")
    again = cli(work, "embed", folder, "-c", "notes", "--prune", "--quiet")
    assert "1 new, 1 changed, 1 unchanged, 1 removed -> 3 documents" in again.stdout
    info = json.loads(cli(work, "collections", "inspect", "notes", "--format", "json").stdout)
    assert info["count"] == 3
    assert cli(work, "collections", "delete", "notes").returncode == 2  # needs --yes
    assert cli(work, "collections", "delete", "notes", "--yes").returncode == 0
    assert "notes" not in cli(work, "collections", "list").stdout


@pytest.mark.model
def test_dimension_mismatch_is_a_clear_error(work):
    """A collection of 8-d vectors under the model's name: search and embed refuse it."""
    import numpy as np

    from course_utils.search.store import VectorStore

    store = VectorStore("all-MiniLM-L6-v2", dim=8)
    store.add(["a"], np.eye(1, 8, dtype=np.float32), [{"title": "", "text": "x", "sha256": "0"}])
    store.save(work / "root" / "small" / "store")
    out = cli(work, "search", "small", "anything")
    assert out.returncode == 1 and "8-d vectors" in out.stderr and "384" in out.stderr
    assert out.stderr.count("\n") == 1  # one line


def test_bad_input_gives_one_line_errors_and_exit_codes(work, embedded):
    cases = [  # (args, exit code, words the message must contain)
        (["embed", work / "missing.jsonl", "-c", "x"], 1, "not found"),
        (["search", "nope", "query"], 1, "unknown collection 'nope'"),
        (["embed", work / "docs.jsonl", "-c", "toy", "--model", "other"], 1, "was embedded with"),
        (["embed", work / "docs.jsonl", "-c", "new", "--model", "other"], 1, "unknown model"),
        (["search", "toy", "x", "--model", "other"], 1, "same model"),
        (["evaluate", work / "qrels.tsv", work / "no-run.txt"], 1, "not found"),
        (["evaluate", work / "qrels.tsv", work / "queries.tsv"], 1, "expected 'qid Q0"),
        (["search", "toy"], 2, "--queries"),
        (["frobnicate"], 2, "invalid choice"),
        ([], 2, "required"),
        (["search", "toy", "x", "-k", "0"], 2, ">= 1"),
    ]
    for args, code, words in cases:
        out = cli(work, *args)
        assert out.returncode == code, (args, out.returncode, out.stderr)
        assert words in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr, out.stderr


def test_the_installed_script_runs():
    script = Path(sys.executable).with_name("course-utils")
    if not script.exists():
        pytest.skip("course-utils is not installed in this environment (pip install -e .)")
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "embed" in out.stdout and "collections" in out.stdout


def test_main_works_from_a_notebook_cell(tmp_path, monkeypatch, capsys):
    """In a kernel sys.argv holds the kernel's `-f file`: main() must neither parse it nor exit."""
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "/tmp/kernel-1.json"])
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    assert main() == 0 and "pass the arguments" in capsys.readouterr().err
    assert main(["collections", "list", "--root", str(tmp_path)]) == 0
    assert "no collections" in capsys.readouterr().out
    assert main(f"collections inspect nothing --root {tmp_path}") == 1
    assert main(["--no-such-flag"]) == 2
    assert main(["collections", "list", "--help"]) == 0


REPO = Path(__file__).resolve().parents[1]
DEEP_QUESTION = "Which sandbox tool isolates each learner's kernel when grading?"


@pytest.fixture(scope="module")
def course_docs(work):
    """Copies of the course's own Markdown files, embedded as collection 'course' (passages)."""
    folder = work / "course_docs"
    (folder / "data").mkdir(parents=True)
    for rel in ["README.md", "data/README.md"]:
        (folder / rel).write_text((REPO / rel).read_text(encoding="utf-8"), encoding="utf-8")
    return folder, cli(work, "embed", folder, "-c", "course", "--quiet")


def run_main(capsys, work, *args) -> tuple[int, str, str]:
    """`main(args)` in this process (no interpreter start-up) on the module's collections."""
    code = main([*map(str, args), "--root", str(work / "root")])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.model
def test_search_finds_the_passage_deep_inside_a_long_markdown_file(work, course_docs, capsys, monkeypatch):
    folder, embedded = course_docs
    assert embedded.returncode == 0, embedded.stderr
    assert "2 documents" in embedded.stdout and "warning" not in embedded.stderr
    monkeypatch.setenv("COURSE_CACHE", str(work / "cache"))
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert readme.index("bubblewrap") > 2000  # the answer lies deep inside the file
    for mode in ("dense", "hybrid"):
        code, out, err = run_main(capsys, work, "search", "course", DEEP_QUESTION, "--mode", mode,
                                  "-k", "3", "--format", "json", "--quiet")
        assert code == 0, err
        top = json.loads(out)[0]["results"][0]
        assert top["doc_id"] == "README.md" and top["start"] > 2000, (mode, top)
        assert "bubblewrap" in top["text"] and readme[top["start"]:top["end"]] == top["text"]
        assert top["heading"].endswith("The sandbox (`--sandbox auto`, the default)"), top["heading"]
    code, out, err = run_main(capsys, work, "search", "course", DEEP_QUESTION, "--mode", "bm25",
                              "--group-by", "document", "-k", "2")
    assert code == 0, err
    assert "README.md § " in out and "passages matched" in out
    assert "**sandbox**" in out and "\033[" not in out  # query words marked, no ANSI codes


@pytest.mark.model
def test_a_document_embedded_whole_warns_about_truncated_tokens(work, course_docs, capsys, monkeypatch):
    folder, _ = course_docs
    monkeypatch.setenv("COURSE_CACHE", str(work / "cache"))
    code, out, err = run_main(capsys, work, "embed", folder, "-c", "whole", "--chunker", "none", "--quiet")
    assert code == 0, err
    assert "2 documents, 2 passages" in out
    assert "exceed the model's 256-token window" in err and "tokens were truncated" in err


@pytest.mark.model
def test_bad_files_are_skipped_and_the_rest_embedded(work, capsys, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(work / "cache"))
    folder = work / "mixed"
    folder.mkdir()
    (folder / "good.md").write_text("# Title\n\nA perfectly good note about cats.")
    (folder / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (folder / "gone.md").symlink_to(folder / "nowhere.md")   # cannot be read
    (folder / "slides.pptx").write_bytes(b"PK\x03\x04")
    code, out, err = run_main(capsys, work, "embed", folder, "-c", "mixed", "--quiet")
    assert code == 0, err
    assert "1 new" in out and "1 documents" in out
    assert "skipped image.txt: binary file" in err
    assert "skipped gone.md: cannot be read" in err
    assert "ignored 1 files of other types (1 .pptx)" in err
    empty = work / "empty"
    empty.mkdir()
    code, out, err = run_main(capsys, work, "embed", empty, "-c", "nothing")
    assert code == 1 and "holds no" in err and "nothing to embed" in err


def test_a_collection_of_another_model_and_bad_query_files_are_clear_errors(work, embedded, capsys):
    import numpy as np

    from course_utils.search.store import VectorStore

    store = VectorStore("paraphrase-MiniLM-L3-v2", dim=384)
    store.add(["a#0"], np.eye(1, 384, dtype=np.float32), [{"title": "", "text": "x", "sha256": "0"}])
    store.save(work / "root" / "other" / "store")
    for args in (["search", "other", "anything"], ["embed", work / "docs.jsonl", "-c", "other"]):
        code, _, err = run_main(capsys, work, *args)
        assert code == 1 and "was embedded with 'paraphrase-MiniLM-L3-v2'" in err, err
    (work / "bad.json").write_text('["not", "an", "object"]')
    (work / "bad.tsv").write_text("just a question without an id\n")
    for name in ("bad.json", "bad.tsv"):
        code, _, err = run_main(capsys, work, "search", "toy", "--queries", work / name, "--mode", "bm25")
        assert code == 1 and "expected JSONL lines" in err, err


@pytest.mark.model
def test_a_full_disk_while_saving_keeps_the_previous_collection(tmp_path, monkeypatch, capsys):
    import errno

    import pandas as pd

    folder, root = tmp_path / "notes", tmp_path / "root"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha notes")
    assert main(["embed", str(folder), "-c", "n", "--root", str(root), "--quiet"]) == 0
    before = pd.read_parquet(root / "n" / "store" / "metadata.parquet")
    (folder / "b.txt").write_text("beta notes")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    assert main(["embed", str(folder), "-c", "n", "--root", str(root), "--quiet"]) == 1
    assert "the disk is full; nothing was lost" in capsys.readouterr().err
    monkeypatch.undo()
    pd.testing.assert_frame_equal(pd.read_parquet(root / "n" / "store" / "metadata.parquet"), before)
    assert main(["embed", str(folder), "-c", "n", "--root", str(root), "--quiet"]) == 0
    assert "1 new, 0 changed, 1 unchanged" in capsys.readouterr().out


def test_cross_encoder_second_stage_reorders_passages(work, embedded, capsys, monkeypatch):
    """--rerank cross-encoder with a stand-in scorer (word overlap): its order wins."""
    from course_utils.rerank import training

    class Overlap:
        course_model_id, max_seq_length = "overlap-ce", 64

        def predict(self, pairs, **_):
            return [float(len(set(q.lower().split()) & set(d.lower().split()))) for q, d in pairs]
    monkeypatch.setattr(training, "load_cross_encoder", lambda folder: Overlap())
    code, out, err = run_main(capsys, work, "search", "toy", "green tea rich in antioxidants",
                              "--mode", "bm25", "--rerank", "cross-encoder", "--reranker-model",
                              work, "--format", "json")
    assert code == 0, err
    (result,) = json.loads(out)
    assert result["method"] == "bm25 (stemmed), cross-encoder overlap-ce re-rank of top 20"
    assert result["results"][0]["doc_id"] == "d10" and result["results"][0]["score"] == 4.0
    code, _, err = run_main(capsys, work, "search", "toy", "tea", "--rerank", "cross-encoder")
    assert code == 1 and "--reranker-model" in err
    code, out, err = run_main(capsys, work, "search", "toy", "green tea rich in antioxidants",
                              "--mode", "bm25", "--rerank", "cross-encoder", "--reranker-model",
                              work, "--rerank-weight", "0.5", "--format", "json")
    assert code == 0, err
    (result,) = json.loads(out)
    assert result["method"].endswith("re-rank of top 20, interpolated (weight 0.5)")
    assert result["results"][0]["doc_id"] == "d10" and result["results"][0]["score"] <= 1.0
    code, _, err = run_main(capsys, work, "search", "toy", "tea", "--rerank", "maxsim", "--rerank-weight", "2")
    assert code == 2 and "--rerank-weight must lie between 0 and 1" in err
