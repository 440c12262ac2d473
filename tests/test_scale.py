"""course_utils.scale: a real 2-node Ray cluster on loopback, distributed embedding, sharded search.

The unit tests need no Ray. One test starts the cluster once (head 127.0.0.2, worker 127.0.0.3)
and checks, in order: an embedding job equal to single-process `encode`, a killed actor that
loses and duplicates nothing, resume from written shards (a cut-off shard deleted and redone),
the cache contract, `course-utils embed --ray`, sharded search equal to exact search; the test
then raises on purpose inside the `with` block, and every process of the cluster must be gone.
"""
from __future__ import annotations

import doctest
import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from course_utils.scale import capacity, cluster, embed, shards
from course_utils.search import Hits, exact_search_faiss


# ------------------------------------------------------------------ no Ray needed
@pytest.mark.parametrize("module", [capacity, cluster, embed, shards])
def test_doctests(module):
    assert doctest.testmod(module, extraglobs={"np": np}).failed == 0


def _unit(rng, n, d=16):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("n_shards", [1, 2, 3, 7])
def test_merge_of_shard_topk_equals_exact_search(n_shards):
    rng = np.random.default_rng(n_shards)
    X, Q = _unit(rng, 200), _unit(rng, 9)
    parts = shards.split_rows(len(X), n_shards)
    answers = [shards.ShardIndex(X[rows], rows).search(Q, 10) for rows in parts]
    merged = shards.merge_topk([s for s, _ in answers], [i for _, i in answers], 10)
    assert shards.same_topk(merged, exact_search_faiss(Q, X, 10))


def test_merge_pads_short_lists_and_ignores_faiss_padding():
    hits = shards.merge_topk([[[0.5, -np.inf]], [[0.7]]], [[[4, -1]], [[9]]], k=3)
    assert hits.ids.tolist() == [[9, 4, -1]] and hits.scores[0, 2] == -np.inf


def test_merge_breaks_ties_by_id():
    hits = shards.merge_topk([[[0.5, 0.5]], [[0.5]]], [[[8, 3]], [[5]]], k=2)
    assert hits.ids.tolist() == [[3, 5]]


@pytest.mark.parametrize("args, match", [
    (([[[0.1]]], [[[1]]], 0), "k must be"),
    (([], [], 3), "one scores and one ids"),
    (([[[0.1, 0.2]]], [[[1]]], 2), "do not match"),
])
def test_merge_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        shards.merge_topk(*args)


def test_split_rows_and_bad_shard_count():
    assert [len(p) for p in shards.split_rows(10, 3)] == [4, 3, 3]
    with pytest.raises(ValueError, match="n_shards"):
        shards.split_rows(3, 5)


def test_same_topk_allows_ties_only():
    a = Hits(np.array([[0.9, 0.5, 0.5]], np.float32), np.array([[1, 2, 3]]))
    assert shards.same_topk(a, Hits(a.scores, np.array([[1, 3, 2]])))
    assert not shards.same_topk(a, Hits(a.scores, np.array([[2, 1, 3]])))


def test_exactly_once_report():
    assert embed.check_exactly_once("abc", "cab") == {"missing": [], "extra": [], "duplicates": []}
    assert embed.check_exactly_once(["a", "b"], ["a", "a"])["duplicates"] == ["a"]


@pytest.mark.parametrize("docs, error, match", [
    ([("a", "x"), ("a", "y")], ValueError, "duplicate doc id 'a'"),
    ([("a", 3)], TypeError, "not a string"),
    (pd.DataFrame({"id": ["a"], "text": ["x"]}), ValueError, "missing \\['doc_id'\\]"),
    ([], ValueError, "no documents"),
    (["just a string"], TypeError, "list of \\(doc_id, text\\) pairs"),
])
def test_docs_frame_rejects_bad_documents(docs, error, match):
    with pytest.raises(error, match=match):
        embed.docs_frame(docs)


def test_docs_frame_from_a_beir_corpus():
    frame = embed.docs_frame({"d1": {"title": "T", "text": "body"}})
    assert frame.to_dict("records") == [{"doc_id": "d1", "text": "T body"}]


def _shard(folder, name, ids, dim=4):
    import pyarrow as pa
    import pyarrow.parquet as pq

    vecs = np.ones((len(ids), dim), np.float32)
    pq.write_table(pa.table({"doc_id": ids, "vector": pa.FixedSizeListArray.from_arrays(
        pa.array(vecs.ravel()), dim)}), folder / name)


def test_read_shards_refuses_duplicates_and_drops_cut_off_files(tmp_path):
    _shard(tmp_path, "a.parquet", ["d1", "d2"])
    (tmp_path / "b.parquet").write_bytes(b"PAR1 cut off by a crash")
    with pytest.raises((OSError, ValueError)):        # pyarrow: not a Parquet file
        embed.read_shards(tmp_path)
    ids, vecs = embed.read_shards(tmp_path, delete_bad=True)
    assert ids == ["d1", "d2"] and vecs.shape == (2, 4) and not (tmp_path / "b.parquet").exists()
    _shard(tmp_path, "c.parquet", ["d2"])
    with pytest.raises(ValueError, match="1 duplicate ids"):
        embed.read_shards(tmp_path)
    with pytest.raises(FileNotFoundError):
        embed.read_shards(tmp_path / "nope")


def test_embed_needs_a_connection_and_sane_options(tmp_path):
    import ray

    if ray.is_initialized():
        pytest.skip("a Ray session is open in this process")
    with pytest.raises(RuntimeError, match="not connected"):
        embed.embed_to_shards([("a", "x")], tmp_path, cache=False)


@pytest.mark.parametrize("kwargs, match", [({"nodes": 0}, "nodes must be"),
                                           ({"cpus_per_node": 0}, "cpus_per_node"),
                                           ({"object_store_memory": 10}, "at least")])
def test_cluster_rejects_bad_sizes_before_starting_anything(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cluster.start_cluster(**kwargs)


def test_capacity_arithmetic():
    assert capacity.workers_for_deadline(10_000_000, 50.0, hours=24) == 3
    assert capacity.vector_bytes(10, 4, bytes_per_vector=2) == 100
    row = capacity.plan(1_000_000_000, 50.0)
    assert row["float32_GB"] == pytest.approx(1544) and row["pq_GB"] == pytest.approx(56)
    with pytest.raises(ValueError, match="docs_per_second must be a positive number"):
        capacity.encode_hours(10, 0)


def test_muted_captures_python_and_c_level_output():
    with cluster.muted() as out:
        print("py")
        os.write(2, b"c-level\n")
    assert "py" in out[0] and "c-level" in out[0]


# ------------------------------------------------------------------ a real 2-node cluster
TEXTS = [f"Claim {i}: {t}" for i, t in enumerate(
    ["aspirin lowers the risk of stroke", "coffee raises blood pressure a little",
     "vitamin D deficiency is common in winter", "exercise improves insulin sensitivity",
     "smoking causes lung cancer", "sleep loss impairs memory"] * 6)]
DOCS = pd.DataFrame({"doc_id": [f"d{i:02d}" for i in range(len(TEXTS))], "text": TEXTS})
SLOT = {"embed_slot": 1}


class _Sentinel(Exception):
    pass


def _kill_first_actor_after(report_dir: Path, batches: int, killed: dict) -> threading.Thread:
    def run():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for f in report_dir.glob("*.txt"):
                text = f.read_text()
                if text.isdigit() and int(text) >= batches:
                    killed["pid"] = int(f.stem.rsplit("-", 1)[1])
                    os.kill(killed["pid"], signal.SIGKILL)
                    return
            time.sleep(0.05)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.model
def test_two_node_cluster_embeds_searches_survives_a_fault_and_leaves_nothing(tmp_path, minilm):
    from course_utils.embeddings import encode
    from course_utils.tools.cli import main
    from course_utils.tools.named_collections import load_store

    single = encode(TEXTS, minilm, cache=False, show_progress=False)
    row = {d: i for i, d in enumerate(DOCS["doc_id"])}
    state = {}
    with pytest.raises(_Sentinel):
        with cluster.local_cluster(2, resources=SLOT) as c:
            state["cluster"] = c
            assert sorted(c.node_ids().values()) == ["127.0.0.2", "127.0.0.3"]

            # 1. the job: every id once, equal to single-process encode, actors on both nodes
            out = tmp_path / "out"                       # (the test's own, empty embedding cache)
            summary = embed.embed_to_shards(DOCS, out, minilm, actors=2, batch_size=6,
                                            resources=SLOT)
            ids, vecs, info = embed.read_shards(out, with_info=True)
            assert summary["embedded"] == len(DOCS) and embed.check_exactly_once(DOCS.doc_id, ids) == \
                {"missing": [], "extra": [], "duplicates": []}
            np.testing.assert_allclose(vecs, single[[row[i] for i in ids]], atol=1e-5)

            # 2. a fault: an actor killed after its first batch; nothing lost, nothing twice
            faulty, reports, killed = tmp_path / "faulty", tmp_path / "reports", {}
            reports.mkdir()
            watcher = _kill_first_actor_after(reports, 1, killed)
            with cluster.muted():
                embed.embed_to_shards(DOCS, faulty, minilm, actors=2, batch_size=4, cache=False,
                                      report_dir=reports, resources=SLOT)
            watcher.join(1)
            assert killed, "no actor was killed: the job ended before the fault"
            ids, vecs = embed.read_shards(faulty)
            assert embed.check_exactly_once(DOCS.doc_id, ids) == {"missing": [], "extra": [], "duplicates": []}
            np.testing.assert_allclose(vecs, single[[row[i] for i in ids]], atol=1e-5)

            # 3. resume: two shards gone, one cut off -> only their documents are embedded again
            files = sorted(faulty.glob("*.parquet"))
            lost = sum(len(embed.read_shards_file(f)[0]) for f in files[:3])
            for f in files[:2]:
                f.unlink()
            files[2].write_bytes(files[2].read_bytes()[:100])
            again = embed.embed_to_shards(DOCS, faulty, minilm, actors=2, batch_size=4, cache=False,
                                          resources=SLOT)
            assert again["embedded"] == lost and again["done_before"] == len(DOCS) - lost
            ids, _ = embed.read_shards(faulty)
            assert embed.check_exactly_once(DOCS.doc_id, ids)["missing"] == []

            # 4. the cache contract: job 1 filled the cache; only edited texts are embedded again
            edited = DOCS.iloc[:2].assign(doc_id=["e0", "e1"], text=DOCS.text.iloc[:2] + " (edited)")
            mixed = pd.concat([DOCS.iloc[:10], edited], ignore_index=True)
            fresh = embed.embed_to_shards(mixed, tmp_path / "c2", minilm, actors=1, batch_size=5,
                                          resources=SLOT)
            assert (fresh["from_cache"], fresh["embedded"]) == (10, 2)
            ids, vecs = embed.read_shards(tmp_path / "c2")
            np.testing.assert_allclose(vecs[ids.index("e1")], encode([mixed.text.iloc[11]], minilm,
                                       cache=False, show_progress=False)[0], atol=1e-5)

            # 5. the command line: --ray ADDRESS gives the same vectors as one process
            jsonl = tmp_path / "docs.jsonl"
            notes = [f"Note: {t}" for t in TEXTS[12:20]]      # new texts: not in the cache
            jsonl.write_text("".join(json.dumps({"_id": d, "text": t}) + "\n"
                                     for d, t in zip(DOCS.doc_id[:8], notes)))
            assert main(["embed", str(jsonl), "-c", "notes", "--root", str(tmp_path / "col"),
                         "--ray", c.address, "--chunker", "none", "--quiet"]) == 0
            store = load_store(tmp_path / "col", "notes")      # passage ids: <doc>#<n>, one passage each
            np.testing.assert_allclose(store.get_vectors([f"{d}#0" for d in DOCS.doc_id[:8]]),
                                       encode(notes, minilm, cache=False, show_progress=False), atol=1e-5)

            # 6. sharded search: one FAISS shard actor per node; merged top-k == exact top-k
            rng = np.random.default_rng(0)
            X, Q = _unit(rng, 3000, 64), _unit(rng, 25, 64)
            sharded = shards.ShardedSearch(X, 2, nodes=list(c.nodes))
            assert sorted(i["node"] for i in sharded.info()) == ["127.0.0.2", "127.0.0.3"]
            assert shards.same_topk(sharded.search(Q, 10), exact_search_faiss(Q, X, 10))
            sharded.close()
            raise _Sentinel("an error inside the block must still stop the cluster")
    c = state["cluster"]
    time.sleep(0.5)
    assert c.processes() == [], "cluster processes were left running"
    assert not c.temp_dir.exists()
    def leftover_pids():
        found = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and str(c.temp_dir) in (proc / "cmdline").read_text():
                    found.append(proc.name)
            except OSError:
                pass
        return found

    deadline = time.monotonic() + 15          # a process killed by stop() may take a moment to exit
    while (leftovers := leftover_pids()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert leftovers == [], f"processes of the cluster left: {leftovers}"
    import ray

    assert not ray.is_initialized()
