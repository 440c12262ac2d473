"""Exercises, checks and grading (course_utils.grading).

Fast unit tests first (no kernel); then the tests that prove the checks with real kernels: the
solution notebooks score full marks, the generated exercise notebooks score zero with every check
failing (not crashing), and the broken and hostile learner notebooks in tests/grading_fixtures/
get the grades written in EXPECTED -- in the bubblewrap sandbox, with nothing around them changed
and none of their processes left. Each grader call runs many notebooks (a kernel start costs
seconds).
"""
import csv
import functools
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import numpy as np
import pytest

from course_utils.grading import __main__ as cli
from course_utils.grading import cases, check, checks, generate, grader, remote, report, sandbox

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "grading_fixtures"
SOLUTIONS = sorted((ROOT / "solutions").glob(generate.PATTERN))
FIXTURE_TIMEOUT = 30  # seconds per cell: the endless loop is stopped after this (01.truncation's check loads the model)
SLOW_LIMIT = 180     # seconds for one exercise's tests when they load a model
EVAL_SECONDS = 30     # seconds for the hidden tests of one exercise (01.truncation's load the model): the endless function is stopped

# learner: (exercises passed, run status, {exercise: status} for the exercises that do not pass);
# the score is the sum of each exercise's points x the share of its graded cases passed
EXPECTED = {
    "good": (5, "ok", {}),
    "wrong_answer": (3, "ok", {"01.cosine": "failed", "01.spearman": "failed"}),
    "exception": (4, "errors", {"01.pooling": "failed"}),
    "infinite_loop": (1, "timeout", {e: "not run" for e in ("01.pooling", "01.truncation", "01.spearman", "01.cache")}),
    "kernel_exit": (2, "kernel died", {e: "not run" for e in ("01.truncation", "01.spearman", "01.cache")}),
    "forged_output": (0, "ok", {"01.cosine": "failed", **{e: "not run" for e in
                                                           ("01.pooling", "01.truncation", "01.spearman", "01.cache")}}),
    "off_by_one": (3, "ok", {"01.pooling": "failed", "01.truncation": "failed"}),
    "outside_writer": (5, "ok", {}),
    "endless_function": (4, "ok", {"01.cosine": "failed"}),
    # hostile notebooks (issue 23): each earns what its real answers earn, and nothing more
    "hostile_forged_record": (1, "ok", {e: "failed" for e in ("01.pooling", "01.truncation", "01.spearman", "01.cache")}),
    "hostile_kill_grader": (5, "ok", {}),
    "hostile_daemon": (4, "ok", {"01.spearman": "failed"}),
    "hostile_snoop": (5, "ok", {}),
    "hostile_fork_bomb": (3, "ok", {"01.truncation": "failed", "01.cache": "not implemented"}),
    "hostile_memory": (5, "memory", {}),
    "hostile_forged_results": (2, "ok", {e: "not implemented" for e in ("01.truncation", "01.spearman", "01.cache")}),
}
# chapter 01's library exercise (01.sts, 2 points) is in none of these notebooks: "not run" for all
EXPECTED = {k: (n, status, {**not_passed, "01.sts": "not run"}) for k, (n, status, not_passed) in EXPECTED.items()}
MAX_01 = 7   # 01.cosine, .pooling, .truncation, .spearman, .cache: 1 point each; 01.sts: 2
try:
    sandbox.check_bwrap()
    BWRAP = ""
except sandbox.SandboxUnavailable as err:
    BWRAP = str(err)
needs_bwrap = pytest.mark.skipif(bool(BWRAP), reason=f"the grader's sandbox is not available: {BWRAP}")


# ---------------------------------------------------------------- generate: solutions -> exercises
def test_strip_solutions_keeps_indentation_and_the_rest():
    src = "def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION\n    y = x\n    return y\n    ### END SOLUTION\nprint(1)"
    assert generate.strip_solutions(src) == f"def f(x):\n    '''doc'''\n    {generate.CODE_STUB}\nprint(1)"
    assert generate.strip_solutions("no regions") == "no regions"


@pytest.mark.parametrize("bad", ["### BEGIN SOLUTION\nx", "x\n### END SOLUTION",
                                 "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"])
def test_strip_solutions_rejects_unbalanced_markers(bad):
    with pytest.raises(ValueError, match="SOLUTION"):
        generate.strip_solutions(bad)


def test_there_are_solutions():
    assert SOLUTIONS, "no solutions/NN_topic_exercises.ipynb"


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_exercises_are_up_to_date_with_solutions(path):
    wanted = generate.exercise_notebook(nbformat.read(path, as_version=4))
    target = ROOT / "exercises" / path.name
    assert target.exists(), f"{target} missing: run `make exercises`"
    found = generate.differences(wanted, nbformat.read(target, as_version=4))
    assert not found, f"{target} is out of date ({found[:3]}): run `make exercises`"
    assert not any(generate.BEGIN in c.source for c in wanted.cells)


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_solution_checks_every_exercise_of_its_chapter(path):
    nb = nbformat.read(path, as_version=4)
    chapter = nb.metadata["course"]["chapter"]
    assert path.name.startswith(chapter + "_")
    called = re.findall(r'check\("([\w.]+)"', "\n".join(c.source for c in nb.cells))
    assert sorted(called) == sorted(ex.id for ex in cases.chapter_exercises(chapter))
    assert generate.count_regions(nb) >= len(called)


def test_generate_check_only_reports_stale_copies(tmp_path):
    shutil.copy(SOLUTIONS[0], tmp_path / SOLUTIONS[0].name)
    out = tmp_path / "ex"
    assert generate.generate_exercises(tmp_path, out, check_only=True) == [out / SOLUTIONS[0].name]
    assert not out.exists()
    generate.generate_exercises(tmp_path, out)
    assert generate.generate_exercises(tmp_path, out, check_only=True) == []


# ------------------------------------------------------------------ plain data between processes
@pytest.mark.parametrize("value", [
    None, True, 3, -2.5, float("inf"), "café", b"\x00\xff", [1, [2, "x"]], (1, (2,)), {"a": 1, 2: [3], (4, "b"): None},
    {1.5, "s"}, frozenset({1}), np.arange(6, dtype=np.float32).reshape(2, 3), np.array(["a", "bc"]),
    np.float32(1.25), np.int64(7), np.array([{"k": 1}, None], dtype=object), np.zeros((0, 384))])
def test_plain_data_survives_the_codec_exactly(value):
    handles = {}
    back = remote.from_wire(json.loads(remote.dumps(remote.to_wire(value, lambda o: handles.setdefault(id(o), o) and 0))),
                         lambda meta: pytest.fail("no handle expected"))
    assert not handles and cases._same(back, value) if not isinstance(value, float) else back == value
    assert type(back) is type(value)


def test_pandas_frames_and_series_cross_as_data():
    import pandas as pd

    frame = pd.DataFrame({"recall@10": [0.5, 0.75], "ndcg@5": [0.25, 1.0]},
                         index=pd.Index([0.0, 0.5], name="alpha"))
    for value in (frame, frame["ndcg@5"], frame.iloc[:0]):
        back = remote.from_wire(json.loads(remote.dumps(remote.to_wire(value, lambda o: pytest.fail("data")))), None)
        assert type(back) is type(value) and back.equals(value) and back.index.name == "alpha"
        if isinstance(value, pd.DataFrame):
            assert list(back.columns) == list(value.columns)


def test_objects_that_are_not_data_travel_as_handles_never_as_pickles():
    class Encoder:
        def __call__(self, texts):
            return np.ones((len(texts), 2))
    given = []
    data = remote.to_wire({"enc": Encoder(), "f": print}, lambda obj: given.append(obj) or len(given))
    text = remote.dumps(data).decode()
    assert "pickle" not in text and len(given) == 2 and '"callable":true' in text
    with pytest.raises(remote.ProtocolError):
        remote.from_wire({"$pickle": "gASV"}, lambda meta: None)
    deep = []
    for _ in range(remote.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(remote.ProtocolError, match="nested"):
        remote.to_wire(deep, lambda o: 0)


def test_a_learner_function_is_called_over_a_socket_and_mutations_come_back(tmp_path):
    """Both ends in one process (a thread serves): calls, callbacks to our objects, attribute
    access on its objects, its exceptions, and in-place changes to its arguments."""
    import socket
    import threading

    path = str(tmp_path / "s.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    class Cache:
        def __init__(self, n):
            self.hits, self.n = 0, n

        def get(self, key):
            self.hits += 1
            return key * self.n

    def cached(texts, encoder, cache):
        cache["k"] = encoder(texts).sum()
        return len(texts)

    learner = {"01.x": cached, "01.cls": Cache, "01.bad": lambda: 1 / 0}
    remote_find = lambda ex, name: learner[ex]
    thread = threading.Thread(target=lambda: _serve_with(path, remote_find), daemon=True)
    thread.start()
    conn, _ = listener.accept()
    peer = remote.Peer(conn)
    root = remote.Remote(peer, {"$h": 0})
    calls, cache = [], {}
    encoder = lambda texts: calls.append(list(texts)) or np.ones((len(texts), 2))
    assert root("01.x", "cached")(["a", "b"], encoder, cache) == 2
    assert calls == [["a", "b"]] and cache == {"k": 4.0}          # the callback ran here; cache came back
    obj = root("01.cls", "Cache")(3)
    assert obj.get("ab") == "ababab" and obj.hits == 1
    with pytest.raises(ZeroDivisionError):
        root("01.bad", "bad")()
    peer.send({"op": "bye", "h": 0})
    thread.join(5)


def test_a_learner_that_keeps_calling_back_is_stopped_by_the_time_limit(tmp_path):
    import socket
    import threading

    path = str(tmp_path / "s.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    def cached_encode(texts, encoder, cache):
        while True:                                   # the grader answers every call ...
            encoder(texts)
    thread = threading.Thread(target=lambda: _serve_with(path, lambda ex, name: cached_encode), daemon=True)
    thread.start()
    conn, _ = listener.accept()
    peer = remote.Peer(conn)
    peer.on_timeout, peer.reraise = checks._TimeLimit, (remote._Bye, remote.PeerLost, checks._TimeLimit)
    fn = remote.Remote(peer, {"$h": 0})("01.cache", "cached_encode")
    result = checks._run(cases.get("01.cache"), fn, 1.0)    # ... until its own alarm stops it
    assert result.status == "failed" and "time limit" in result.failing
    conn.close()


def _serve_with(path, find):
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    peer = remote.Peer(sock)
    peer.objects[0] = find
    try:
        while True:
            peer.answer(peer.recv())
    except (remote._Bye, remote.PeerLost):
        pass


def test_check_remembers_the_function_it_was_given(monkeypatch, capsys):
    monkeypatch.setattr(checks, "_submitted", {})
    fn = lambda x, y: 0.0
    check("01.spearman", fn)
    assert checks._submitted == {"01.spearman": fn}


# ---------------------------------------------------------------------------------- the sandbox
def test_sandbox_modes_and_a_missing_bubblewrap_is_refused_with_how_to_install(monkeypatch, tmp_path, capsys):
    assert sandbox.resolve("none") == "none"
    with pytest.raises(ValueError, match="auto, bwrap or none"):
        sandbox.resolve("docker")
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    for mode in ("auto", "bwrap"):
        with pytest.raises(sandbox.SandboxUnavailable, match="apt-get install bubblewrap.*--sandbox none"):
            sandbox.resolve(mode)
    (tmp_path / "a.ipynb").write_text("{}")
    assert cli.main(["grade", str(tmp_path / "a.ipynb"), "--out", str(tmp_path / "out")]) == 2
    assert "bubblewrap" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_the_kernel_command_unshares_everything_and_hides_the_submissions(tmp_path):
    subs, out, work, socks = (tmp_path / n for n in ("subs", "out", "work", "socks"))
    for d in (subs, out, work, socks):
        d.mkdir()
    box = sandbox.Sandbox("bwrap", work, socks, readable=[tmp_path], hidden=[subs, out])
    argv = sandbox.kernel_command(box, "/c.json")
    inner = argv[argv.index("--") + 1:]
    assert inner[0].endswith("bwrap") and inner[-5:] == [os.sys.executable, "-m", "ipykernel_launcher", "-f", "/c.json"]
    for flag in ("--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--clearenv",
                 "--disable-userns"):
        assert flag in inner
    text = " ".join(inner)
    assert f"--tmpfs {subs}" in text and f"--tmpfs {out}" in text        # inside a bound folder: hidden
    assert f"--bind {work} {work}" in text and f"--ro-bind {tmp_path} {tmp_path}" in text
    assert inner.index("--remount-ro") > inner.index("--bind") and "--as" in argv and "--nproc" in argv


def test_reference_implementation_calls_are_flagged_not_failed():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in [
        "from course_utils.grading import check\nfrom course_utils.grading.ch01 import _cosine as ref\n%matplotlib inline",
        "def cosine_matrix(a, b):\n    return ref(a, b)",
        "def masked_mean_pool(t, m):\n    import course_utils.pooling\n    return course_utils.pooling.mean_pool(t, m)",
        "def truncated(texts, model):\n    return check",            # the check itself is no reference
        "def spearman(x, y):\n    return 0.0"]]
    flags = grader.reference_calls(nb, "01")
    assert set(flags) == {"01.cosine", "01.pooling"} and "course_utils.grading.ch01._cosine" in flags["01.cosine"]


# ------------------------------------------------------------------------------ check, in-process
@functools.lru_cache(maxsize=None)
def _solution_functions(chapter):
    """The functions defined in a chapter's solution notebook (cells starting with `def `)."""
    path, = (ROOT / "solutions").glob(f"{chapter}_*_exercises.ipynb")
    nb = nbformat.read(path, as_version=4)
    namespace = {}
    exec("import hashlib, math\nimport numpy as np\n" + "\n".join(c.source for c in nb.cells if c.source.startswith("def ")),
         namespace)
    return namespace


def _reference(exercise_id):
    """The solution's function for an exercise, taken from the solution notebook's source."""
    exercise = cases.get(exercise_id)
    return _solution_functions(exercise.chapter)[exercise.function]


AUTOMATIC = sorted(ex for ex, e in cases.registry().items() if not e.manual)


@pytest.mark.parametrize("ex", AUTOMATIC)
def test_the_solution_passes_every_public_and_held_back_test(ex, capsys):
    # the library exercises load a model in some cases: a limit for a busy machine, as the notebooks give
    assert check(ex, _reference(ex), time_limit=SLOW_LIMIT) and "✓" in capsys.readouterr().out
    result = checks._run(cases.get(ex), _reference(ex), SLOW_LIMIT, "all")
    assert result and result.cases_passed == result.cases_total >= 5


def _loop(a, b):
    while True:
        try:
            pass
        except Exception:
            pass


def _raise_not_implemented(*args):
    raise NotImplementedError("exercise")


@pytest.mark.parametrize("fn, status, words", [
    (_raise_not_implemented, "not implemented", "not written yet"),
    (lambda a, b: 1 / 0, "failed", "raised ZeroDivisionError"),
    (lambda a, b: exec("import sys; sys.exit(3)"), "failed", "raised SystemExit"),
    (lambda a, b: np.asarray(a, float) @ np.asarray(b, float).T, "failed", "values are wrong"),
    (lambda a, b: _reference("01.cosine")(a, b).T, "failed", "transposed"),
    (lambda a, b: None, "failed", "forget `return`"),
    (lambda a, b: (a.__setitem__(0, 0), _reference("01.cosine")(a, b))[1], "failed", "changed its input"),
    (np.dot, "failed", "library function"),
    ("cosine_matrix", "failed", "without parentheses"),
    (_loop, "failed", "endless loop"),
])
def test_check_reports_every_failure_and_never_raises(fn, status, words, capsys):
    result = check("01.cosine", fn, time_limit=1)
    assert result.status == status and not result
    assert words in result.message and words in capsys.readouterr().out.replace("\n    ", " ")


def test_hint_ladder_gives_the_stronger_hint_from_the_second_failure(monkeypatch, capsys):
    monkeypatch.setattr(checks, "_failures", checks.Counter())
    hint1, hint2 = (h[:40] for h in cases.get("01.spearman").hints)
    flat = lambda: capsys.readouterr().out.replace("\n    ", " ")
    check("01.spearman", _raise_not_implemented)
    out = flat()
    assert hint1 in out and hint2 not in out                    # not implemented: no attempt yet
    check("01.spearman", lambda x, y: 0.5)
    out = flat()
    assert hint1 in out and hint2 not in out
    check("01.spearman", lambda x, y: 0.5)
    assert hint2 in flat()


# --------------------------------------------------- chapters 02-03: typical mistakes are named
def _wrong_topk_unsorted(queries, vectors, k):               # argpartition without the sort
    scores = np.atleast_2d(np.asarray(queries, np.float32)) @ np.asarray(vectors, np.float32).T
    ids = np.argpartition(-scores, min(k, scores.shape[1]) - 1, axis=1)[:, :k]
    return np.take_along_axis(scores, ids, axis=1), ids


def _wrong_mmr_sum(query_vec, cand_vectors, k, lam):          # penalty: sum instead of max
    c = np.asarray(cand_vectors, float)
    rel, sims, picked = c @ np.asarray(query_vec, float).reshape(-1), c @ c.T, []
    for _ in range(k):
        gain = lam * rel - (1 - lam) * (sims[:, picked].sum(axis=1) if picked else 0)
        gain[picked] = -np.inf
        picked.append(int(np.argmax(gain)))
    return picked


def _dcg_ratio(ranking, qrel, k, discount, gain=lambda g: g, ideal_from=None):
    dcg = lambda gains: sum(gain(g) / discount(rank) for rank, g in enumerate(gains, 1))
    labels = qrel.values() if ideal_from is None else [qrel.get(d, 0) for d in ideal_from]
    ideal = dcg(sorted(labels, reverse=True)[:k])
    return dcg([qrel.get(d, 0) for d in list(ranking)[:k]]) / ideal if ideal else 0.0


def _sign_flips(a, b, n, seed, extreme):                        # a randomization test with a pluggable count
    d = np.asarray(b, float) - np.asarray(a, float)
    null = (np.random.default_rng(seed).choice([-1.0, 1.0], size=(n, len(d))) * d).mean(axis=1)
    return (1 + np.sum(extreme(null, d.mean()))) / (1 + n)


def _wrong_unpaired(a, b, n=10_000, seed=0):                    # shuffles scores across queries
    rng, pooled, m = np.random.default_rng(seed), np.r_[np.asarray(a, float), np.asarray(b, float)], len(a)
    perms = rng.permuted(np.tile(pooled, (n, 1)), axis=1)
    null = perms[:, m:].mean(axis=1) - perms[:, :m].mean(axis=1)
    return (1 + np.sum(np.abs(null) >= abs(np.mean(b) - np.mean(a)) - 1e-12)) / (1 + n)


_MISTAKES = [  # (exercise, learner's function, words the failure message must contain)
    ("02.topk", _wrong_topk_unsorted, "not sorted best first"),
    ("02.topk", lambda q, v, k: tuple(a[:, ::-1] for a in _reference("02.topk")(q, v, k)), "worst first"),
    ("02.to_run", lambda s, i, q, d: {str(x): {d[j]: float(v) for v, j in zip(sr, ir)} for x, sr, ir in
                                      zip(q, np.asarray(s).tolist(), np.asarray(i).tolist())}, "LAST doc id"),
    ("02.to_run", lambda s, i, q, d: {str(x): {d[j]: v for v, j in zip(sr, ir) if j != -1} for x, sr, ir in
                                      zip(q, s, i)}, "pytrec_eval rejects numpy float32"),
    ("02.mmr", lambda q, c, k, lam: _reference("02.mmr")(q, c, k, 1.0), "plain similarity order"),
    ("02.mmr", _wrong_mmr_sum, "sum of the similarities"),
    ("02.post_filter", lambda s, i, a, k: tuple(x[:, :1] for x in _reference("02.post_filter")(s, i, a, k)),
     "always return k columns"),
    ("03.recall", lambda r, q, k: sum(q.get(d, 0) > 0 for d in list(r)[:k]) / k, "precision@k"),
    ("03.ndcg", lambda r, q, k: _dcg_ratio(r, q, k, lambda rank: math.log2(rank)), "log2(rank + 1)"),
    ("03.ndcg", lambda r, q, k: _dcg_ratio(r, q, k, lambda rank: np.log2(rank)), "log2(rank + 1)"),  # nan, not an error
    ("03.ndcg", lambda r, q, k: _dcg_ratio(r, q, k, lambda rank: math.log2(rank + 2)), "one rank too deep"),
    ("03.ndcg", lambda r, q, k: _dcg_ratio(r, q, k, lambda rank: math.log2(rank + 1), gain=lambda g: 2 ** g - 1),
     "exponential gain"),
    ("03.ndcg", lambda r, q, k: _dcg_ratio(r, q, k, lambda rank: math.log2(rank + 1), ideal_from=r), "ALL labels"),
    ("03.mrr", lambda r, q, k: _reference("03.mrr")(r, {x: q[x] for x in q if x in r}, k), "missing from `rankings`"),
    ("03.randomization", lambda a, b, n=10_000, seed=0: _sign_flips(a, b, n, seed, lambda null, obs: null >= obs - 1e-12),
     "one-sided"),
    ("03.randomization", lambda a, b, n=10_000, seed=0: _sign_flips(a, b, n, seed, lambda null, obs: abs(null) > abs(obs)),
     ">=, not >"),
    ("03.randomization", _wrong_unpaired, "paired test keeps"),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the np.log2(rank) mistake divides by zero
@pytest.mark.parametrize("ex, fn, words", _MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(_MISTAKES)])
def test_typical_mistakes_fail_with_a_message_that_names_them(ex, fn, words, capsys):
    result = check(ex, fn)
    assert result.status == "failed" and words in result.message, result.message
    assert words in capsys.readouterr().out.replace("\n    ", " ")


@pytest.mark.parametrize("ex, fn", [
    ("03.ndcg", lambda r, q, k: _dcg_ratio(r, q, k, lambda rank: math.log(rank + 1))),   # any log base: same nDCG
    ("03.randomization", lambda a, b, n=10_000, seed=0: float(                          # other draws of the signs
        (1 + np.sum(np.abs(((2 * np.random.default_rng(seed).integers(0, 2, (n, len(a))) - 1)
                            * (np.asarray(b, float) - np.asarray(a, float))).mean(axis=1))
                    >= abs(np.mean(b) - np.mean(a)) - 1e-12)) / (1 + n))),
    ("02.topk", lambda q, v, k: (lambda s, i: (s, i))(*_reference("02.topk")(q, v, k))),
], ids=["ndcg-natural-log", "randomization-other-draws", "topk-as-given"])
def test_other_correct_implementations_pass(ex, fn, capsys):
    assert check(ex, fn), capsys.readouterr().out


def test_unknown_exercise_is_a_clear_error():
    with pytest.raises(ValueError, match="01.cosine"):
        check("01.cosin", print)


# --------------------------------------------------------------------------- grader, no kernel
def test_learner_names_and_duplicates(tmp_path):
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "01_embeddings_exercises.ipynb").write_text("{}")
    (tmp_path / "bob.ipynb").write_text("{}")
    assert [s.learner for s in grader.find_submissions([tmp_path])] == ["alice", "bob"]
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "bob.ipynb").write_text("{}")
    with pytest.raises(ValueError, match="two submissions for learner 'bob', chapter None"):
        grader.find_submissions([tmp_path])


def test_score_takes_the_verdicts_and_ignores_unknown_ids():
    verdicts = {"01.cosine": {"status": "passed", "cases_passed": 7, "cases_total": 7},
                "01.truncation": {"status": "failed", "message": "m", "cases_passed": 2}, "99.bogus": {"status": "passed"},
                "01.cache": "passed"}                                  # not a verdict: not run
    scored = grader.score("01", verdicts)
    assert scored["01.cosine"]["status"] == "passed" and scored["01.truncation"]["cases_passed"] == 2
    assert scored["01.cosine"]["earned"] == 1.0 and scored["01.truncation"]["earned"] == round(2 / len(cases.get("01.truncation").hidden_cases), 2)
    assert scored["01.cache"]["status"] == scored["01.pooling"]["status"] == "not run"
    assert sum(e["status"] == "passed" for e in scored.values()) == 1 and "99.bogus" not in scored
    assert scored["01.cache"]["earned"] == 0.0


def _fake_record(learner, path, *_):
    return {"learner": learner, "submission": str(path), "chapter": "01", "status": "ok", "detail": "",
            "submitted_at": "2026-12-01T10:00:00+00:00", "submitted_from": "mtime",
            "errors": [], "flags": {}, "graded_at": "now", "seconds": 0.0, "score": 1, "max_score": 5,
            "submission_sha256": grader.hashlib.sha256(Path(path).read_bytes()).hexdigest(),
            "exercises": grader.score("01", {"01.cosine": {"status": "passed"}})}


def test_rerun_skips_graded_learners_unless_forced_or_changed(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(grader, "grade_one", lambda path, learner, *a: calls.append(learner) or _fake_record(learner, path))
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("ann", "ben"):
        (subs / f"{name}.ipynb").write_text(name)
    out = tmp_path / "out"
    grade = functools.partial(grader.grade, sandbox_mode="none", log=lambda m: None)
    grade([subs], out)
    grade([subs], out)
    assert calls == ["ann", "ben"]
    (subs / "ben.ipynb").write_text("ben, resubmitted")
    grade([subs], out)
    grade([subs / "ann.ipynb"], out, force=True)
    assert calls == ["ann", "ben", "ben", "ann"]
    assert set(report.load_state(out)) == {"ann/01", "ben/01"}        # others keep their grades
    (out / "executed").mkdir(exist_ok=True)
    (out / "executed" / "ann.ipynb").write_text("an executed copy, not a learner")
    assert [s.learner for s in grader.find_submissions([tmp_path], exclude=out)] == ["ann", "ben"]


def test_a_changed_grading_package_stops_the_run_and_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(grader, "grade_one", lambda path, learner, *a: _fake_record(learner, path))
    prints = iter([{"checks.py": "a"}, {"checks.py": "b"}])
    monkeypatch.setattr(grader, "_fingerprint", lambda: next(prints))
    (tmp_path / "eve.ipynb").write_text("x")
    with pytest.raises(grader.TamperedError, match="eve"):
        grader.grade([tmp_path / "eve.ipynb"], tmp_path / "out", sandbox_mode="none", log=lambda m: None)
    assert report.load_state(tmp_path / "out")["eve/01"]["status"] == "tampered"


def test_unreadable_grades_file_is_an_error_not_overwritten(tmp_path):
    (tmp_path / report.STATE).write_text("not json")
    with pytest.raises(ValueError, match="--force"):
        report.load_state(tmp_path)
    assert (tmp_path / report.STATE).read_text() == "not json"


# ------------------------------------------------------------------------- grader, real kernels
def _tree_digest(*folders) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for f in folders for p in sorted(Path(f).rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def _marker_processes() -> list[str]:
    """Processes of the hostile daemon (it execs `sleep 987.654`) still running anywhere."""
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "987.654" in line and "ps -eo" not in line]


@pytest.fixture(scope="module")
def fixture_grades(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    subs = work / "subs"
    shutil.copytree(FIXTURES, subs, ignore=shutil.ignore_patterns("*.py", "*.md"))
    out = work / "out"  # beside the learners' folders, where outside_writer aims its writes
    canary = work / "instructor.txt"
    canary.write_text("the instructor's own file")
    before = _tree_digest(subs, grader.HERE)
    before[str(canary)] = canary.read_text()
    secret = os.environ.setdefault("HF_TOKEN", "hf_not_for_learners")   # must not reach a kernel
    try:
        state = grader.grade([subs], out, timeout=FIXTURE_TIMEOUT, work_root=work, eval_seconds=EVAL_SECONDS)
    finally:
        if secret == "hf_not_for_learners":
            del os.environ["HF_TOKEN"]
    after = _tree_digest(subs, grader.HERE)
    after[str(canary)] = canary.read_text()
    return state, out, before, after


@pytest.mark.notebook
@needs_bwrap
@pytest.mark.parametrize("learner", sorted(EXPECTED))
def test_broken_and_hostile_notebooks_get_exactly_what_their_answers_earn(fixture_grades, learner):
    state, *_ = fixture_grades
    rec = state[f"{learner}/01"]
    passed, status, not_passed = EXPECTED[learner]
    assert (rec["max_score"], rec["status"]) == (MAX_01, status), rec
    assert sum(ex["status"] == "passed" for ex in rec["exercises"].values()) == passed, rec
    for ex_id, ex in rec["exercises"].items():
        assert ex["status"] == not_passed.get(ex_id, "passed"), (ex_id, ex)
        assert ex["earned"] == (1.0 if ex["status"] == "passed" else round(ex["cases_passed"] / ex["cases_total"], 2))
        assert ex["earned"] < 1 or ex["status"] == "passed"
    assert rec["score"] == round(sum(ex["earned"] for ex in rec["exercises"].values()), 2)
    assert rec["sandbox"] == "bwrap" and rec["processes_left"] == 0, rec    # nothing outlived the run


@pytest.mark.notebook
@needs_bwrap
def test_no_process_of_any_learner_is_left_and_nothing_around_them_changed(fixture_grades):
    state, out, before, after = fixture_grades
    assert not _marker_processes()                                # the daemon died with its sandbox
    assert before == after                                        # submissions, package, instructor file
    assert not list(Path(out).parent.glob("course-grade-*"))      # the learners' folders are gone


@pytest.mark.notebook
@needs_bwrap
def test_the_sandbox_hides_home_submissions_grades_and_the_network(fixture_grades):
    _, out, *_ = fixture_grades
    snoop = nbformat.read(out / "executed" / "hostile_snoop_01.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in snoop.cells if c.cell_type == "code" for o in c.outputs)
    assert "sandboxed: True" in text and "SNOOP-SUMMARY 0 0 0" in text, text[-1500:]
    assert "secrets: []" in text and "environment: []" in text
    killer = nbformat.read(out / "executed" / "hostile_kill_grader_01.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in killer.cells if c.cell_type == "code" for o in c.outputs)
    assert "processes I can see: 2" in text and "dropped this notebook's outputs beyond 2 MB" in text
    assert len(text) < 2_500_000


@pytest.mark.notebook
@needs_bwrap
def test_library_functions_and_printed_or_written_results_earn_nothing(fixture_grades):
    state, *_ = fixture_grades
    assert "library function" in state["forged_output/01"]["exercises"]["01.cosine"]["message"]
    assert state["forged_output/01"]["exercises"]["01.pooling"]["status"] == "not run"


@pytest.mark.notebook
@needs_bwrap
def test_files_written_by_learners_do_not_change_the_grades(fixture_grades):
    state, out, *_ = fixture_grades
    saved = report.load_state(out)                               # valid JSON, every learner in it
    assert {k: v["score"] for k, v in saved.items()} == {f"{k}/01": state[f"{k}/01"]["score"] for k in EXPECTED}
    table = list(csv.DictReader((out / "grades.csv").open()))
    assert [r["learner"] for r in table] == sorted(EXPECTED) and {r["chapter"] for r in table} == {"01"}
    daemon = next(r for r in table if r["learner"] == "hostile_daemon")
    assert float(daemon["01.cosine"]) == 1.0 and float(daemon["01.spearman"]) < 1.0   # points per exercise
    assert f"Score: 5 / {MAX_01}" in (out / "feedback" / "good_01.md").read_text()
    assert "NameError" in (out / "feedback" / "exception_01.md").read_text()
    assert "Hint 2" in (out / "feedback" / "wrong_answer_01.md").read_text()
    assert sorted(p.stem for p in (out / "executed").glob("*.ipynb")) == sorted(f"{k}_01" for k in EXPECTED)


@pytest.mark.notebook
def test_solutions_score_full_marks_and_exercises_zero(tmp_path):
    """Two learners with every chapter in one folder each: "solution" (chapter 01 as a late
    submission zip) and "exercise" (the generated notebooks, untouched)."""
    from course_utils.grading import gradebook, submission

    subs = tmp_path / "subs"
    for who in ("solution", "exercise"):
        (subs / who).mkdir(parents=True)
    for path in SOLUTIONS:
        shutil.copy(ROOT / "exercises" / path.name, subs / "exercise" / path.name)
        if path.name.startswith("01_"):
            submission.make_submission(path, subs / "solution", now="2026-12-03T09:00:00+00:00")
        else:
            shutil.copy(path, subs / "solution" / path.name)
    policy = gradebook.Policy(deadlines={"01": "2026-12-01"}, penalty_per_day=10)
    state = grader.grade([subs], tmp_path / "out", timeout=300, work_root=tmp_path, policy=policy,
                         sandbox_mode="none" if BWRAP else "bwrap")
    assert len(state) == 2 * len(SOLUTIONS)
    for path in SOLUTIONS:
        chapter = path.name[:2]
        sol, ex = state[f"solution/{chapter}"], state[f"exercise/{chapter}"]
        assert sol["status"] == "ok" and sol["score"] == sol["max_score"] >= 3, sol
        assert all(e["earned"] == e["points"] for e in sol["exercises"].values() if e["kind"] == "auto")
        assert ex["status"] == "ok" and ex["score"] == 0 and not ex["errors"], ex
        assert {e["status"] for e in ex["exercises"].values()} <= {"not implemented", "to grade"}, ex  # each check ran
        assert sol["processes_left"] == ex["processes_left"] == 0
    late = state["solution/01"]
    assert late["submitted_from"] == "manifest" and late["submitted_at"].startswith("2026-12-03") and not late["flags"]
    table = {(r["learner"], r["chapter"]): r for r in csv.DictReader((tmp_path / "out" / "grades.csv").open())}
    assert (table["solution", "01"]["days_late"], table["solution", "01"]["penalty_percent"]) == ("2", "20.0")
    assert float(table["solution", "01"]["score"]) == round(0.8 * late["max_score"], 2)
    book = list(csv.DictReader((tmp_path / "out" / "gradebook.csv").open()))
    assert [r["learner"] for r in book] == ["exercise", "solution"]                  # one row per learner
    assert len([c for c in book[0] if c[:2].isdigit()]) == len(SOLUTIONS)          # one column per chapter
    for path in SOLUTIONS:     # nbval's output check, on these executions (not a second run of them)
        executed = nbformat.read(tmp_path / "out" / "executed" / f"solution_{path.name[:2]}.ipynb", as_version=4)
        assert _checked_outputs(nbformat.read(path, as_version=4)) == _checked_outputs(executed), path.name


def _sanitizers() -> list:
    import configparser

    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "tests" / "nbval_sanitize.cfg")
    return [(re.compile(cfg[s]["regex"]), cfg[s]["replace"]) for s in cfg.sections()]


def _checked_outputs(nb) -> list:
    """(source, sanitized text outputs) of the cells tagged nbval-check-output, as nbval compares them."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code" or "nbval-check-output" not in cell.metadata.get("tags", []):
            continue
        text = "".join(o.get("text", "") if o.get("output_type") == "stream" else
                       o.get("data", {}).get("text/plain", "") for o in cell.get("outputs", []))
        for pattern, replacement in _sanitizers():
            text = pattern.sub(replacement, text)
        out.append((cell.source, text))
    return out


def test_the_nbval_sanitizers_hide_timings_paths_and_addresses():
    text = "took 1.25 s (312 sentences/s) at 0x7f3a9c2e10d0 in /work/main/data/x.npy on 2026-12-06T06:40:00Z"
    for pattern, replacement in _sanitizers():
        text = pattern.sub(replacement, text)
    assert text == "took TIME (RATE) at ADDRESS in PATH on DATE"


@pytest.mark.notebook
@needs_bwrap
def test_a_killed_grading_run_leaves_nothing_running_and_resumes(tmp_path):
    import signal
    import sys
    import time

    subs, out, tmp = tmp_path / "subs", tmp_path / "out", tmp_path / "tmp"
    subs.mkdir()
    tmp.mkdir()
    for name in ("good", "infinite_loop"):          # the second one runs for FIXTURE_TIMEOUT seconds
        shutil.copy(FIXTURES / f"{name}.ipynb", subs / f"{name}.ipynb")
    argv = [sys.executable, "-m", "course_utils.grading", "grade", str(subs), "--out", str(out),
            "--timeout", str(FIXTURE_TIMEOUT)]
    env = {**os.environ, "TMPDIR": str(tmp)}         # every folder of the run is under tmp_path
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "good/01" not in (report.load_state(out) if (out / report.STATE).exists() else {}):
        time.sleep(0.5)
    time.sleep(3)                                     # infinite_loop's kernel is running now
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(2)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(tmp_path) not in ps, [line for line in ps.splitlines() if str(tmp_path) in line]
    assert set(report.load_state(out)) == {"good/01"}    # written after each learner, intact
    log = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300).stdout
    assert f"good/01: already graded (5/{MAX_01}), skipped" in log
    assert {k: v["score"] for k, v in report.load_state(out).items()} == {"good/01": 5, "infinite_loop/01": 1}
