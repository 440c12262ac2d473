"""Points, public and held-back cases, items graded by hand, the gradebook, the LMS exports, the
learner's submission and the learner bundle (course_utils.grading) -- fast: no kernel, tiny
notebooks built here; the grader's sandboxed runs are replaced by records of what they return
(the real runs are in test_grading.py)."""
from __future__ import annotations

import csv
import functools
import io
import json
import os
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest

from course_utils.grading import __main__ as cli
from course_utils.grading import cases, check, checks, generate, gradebook, grader, lms, release, report, submission
from course_utils.grading.cases import Case, Exercise, Fail, call

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ a toy chapter "99"
def _double_case(x):
    def run(fn):
        out = call(fn, np.asarray(x, float), names=("x",))
        if not np.allclose(np.asarray(out, float), 2 * np.asarray(x, float)):
            raise Fail("the result is not twice the input")
    return run


TOY = Exercise("99.double", "double every value", "double",
               ("Multiply by two.", "Every element, times 2."),
               tuple(Case(f"case {i}", _double_case(x)) for i, x in
                     enumerate([[1.0], [1.0, 2.0], [0.0], [-3.0, 5.0], [1e6, 7.0]])),
               points=2, public=2)
EXPLAIN = Exercise("99.explain", "why doubling", "", ("", ""), (), points=3, kind="written",
                   rubric=(("names the idea", 2), ("gives an example", 1)))
TOY_REGISTRY = {ex.id: ex for ex in (TOY, EXPLAIN)}


@pytest.fixture
def toy(monkeypatch):
    """Chapter 99 (one automatic exercise with public/held-back cases, one written item) beside
    the course's chapters."""
    real = cases.registry()
    monkeypatch.setattr(cases, "registry", lambda: {**real, **TOY_REGISTRY})
    monkeypatch.setattr(checks, "_attempts", checks.Counter())
    monkeypatch.setattr(checks, "_failures", checks.Counter())


def _small_values_only(x):         # right on the public cases, wrong on big numbers (held back)
    return np.where(np.abs(x) < 100, 2 * x, x)


# ------------------------------------------------------------------ cases: points, the split
def test_public_and_held_back_cases_split_and_their_default():
    assert [c.name for c in TOY.public_cases] == ["case 0", "case 1"]
    assert [c.name for c in TOY.hidden_cases] == ["case 2", "case 3", "case 4"]
    cosine = cases.get("01.cosine")
    if cosine.public is None:                 # default: every case public and graded, as before
        assert cosine.public_cases == cosine.hidden_cases == cosine.cases
    for bad in (dict(public=5), dict(kind="essay"), dict(points=0), dict(kind="rubric")):
        with pytest.raises(ValueError):
            Exercise(**{**TOY.__dict__, **bad})


def test_check_runs_only_the_public_cases_and_counts_attempts(toy, capsys):
    result = check("99.double", _small_values_only)
    out = capsys.readouterr().out
    assert result and result.cases_total == 2 and "2 public tests passed" in out and "3 more, held-back" in out
    assert "case 4" not in out                                     # a held-back case is never named
    graded = checks._run(TOY, _small_values_only, 5, "hidden")
    assert (graded.status, graded.cases_passed, graded.cases_total) == ("failed", 2, 3)
    check("99.double", lambda x: x)
    check("99.double", lambda x: (_ for _ in ()).throw(NotImplementedError()))   # not an attempt
    assert checks.attempts() == {"99.double": 2}
    with pytest.raises(ValueError, match="graded by the instructor"):
        check("99.explain", print)


def test_a_mutating_function_then_a_correct_one_in_the_same_kernel(toy, capsys):
    """Mutate, then retry: the held-back inputs are intact for the second attempt."""
    def vandal(x):
        x[...] = 0
        return x
    assert not checks._run(TOY, vandal, 5, "all")
    assert checks._run(TOY, lambda x: 2 * x, 5, "all").cases_passed == len(TOY.cases)


def test_partial_credit_is_points_times_the_share_of_held_back_cases(toy):
    verdicts = {"99.double": {"status": "failed", "cases_passed": 2, "cases_total": 3, "message": "m"}}
    scored = grader.score("99", verdicts)
    assert scored["99.double"]["earned"] == round(2 * 2 / 3, 2) and scored["99.double"]["points"] == 2
    assert scored["99.explain"] == {**scored["99.explain"], "status": "to grade", "earned": 0.0, "points": 3}
    assert grader.score("99", {"99.double": {"status": "passed", "cases_passed": 3, "cases_total": 3}})[
        "99.double"]["earned"] == 2


# ------------------------------------------------------------------ tiny notebooks, fake grading runs
def _notebook(chapter: str, answer: str = "") -> bytes:
    nb = nbformat.v4.new_notebook(metadata={"course": {"chapter": chapter}})
    nb.cells = [nbformat.v4.new_code_cell("def double(x):\n    return 2 * x"),
                nbformat.v4.new_markdown_cell(answer or generate.TEXT_STUB,
                                              metadata={"tags": [f"answer:{chapter}.explain"]})]
    return nbformat.writes(nb).encode()


def _fake_grade_one(path, learner, timeout, chapter, *rest):
    """What grader.grade_one returns, without a kernel: every chapter-99 case passes."""
    data, manifest, problem = submission.read_submission(path)
    nb = nbformat.reads(data.decode(), as_version=4)
    chapter = chapter or grader.detect_chapter(nb)
    verdicts = {"99.double": {"status": "passed", "cases_passed": 3, "cases_total": 3}}
    rec = {"learner": learner, "submission": str(path), "chapter": chapter, "status": "ok", "detail": "",
           "errors": [], "flags": {"manifest": problem} if problem else {}, "graded_at": "now", "seconds": 0.0,
           "submission_sha256": grader.hashlib.sha256(Path(path).read_bytes()).hexdigest(),
           "answers": grader.answers(nb, chapter), "exercises": grader.score(chapter, verdicts)}
    rec["submitted_at"], rec["submitted_from"] = submission.submission_time(path, manifest)
    rec["attempts"] = (manifest or {}).get("attempts", {})
    rec["score"] = sum(e["earned"] for e in rec["exercises"].values())
    rec["max_score"] = sum(e["points"] for e in rec["exercises"].values())
    return rec


@pytest.fixture
def graded(toy, tmp_path, monkeypatch):
    """alice: chapters 99 and 01 in one folder (99 submitted as a zip two days late); bob: 99 on time."""
    monkeypatch.setattr(grader, "grade_one", _fake_grade_one)
    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)
    (subs / "bob").mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (work / "99_toy_exercises.ipynb").write_bytes(_notebook("99", "Doubling keeps the order."))
    submission.make_submission(work / "99_toy_exercises.ipynb", subs / "alice", attempts={"99.double": 4},
                               now="2026-12-03T09:00:00Z")
    (subs / "alice" / "01_embeddings_exercises.ipynb").write_bytes(_notebook("01"))
    bob = subs / "bob" / "99_toy_exercises.ipynb"
    bob.write_bytes(_notebook("99"))
    on_time = gradebook.parse_time("2026-11-30T12:00:00").timestamp()
    os.utime(bob, (on_time, on_time))                                 # no manifest: the file's time
    out = tmp_path / "out"
    policy = gradebook.Policy(deadlines={"99": "2026-12-01"}, penalty_per_day=10)
    state = grader.grade([subs], out, sandbox_mode="none", policy=policy, log=lambda m: None)
    return state, out


def test_a_learner_folder_with_two_chapters_gives_two_records(graded):
    state, out = graded
    assert set(state) == {"alice/99", "alice/01", "bob/99"}
    rows = list(csv.DictReader((out / report.TABLE).open()))
    assert [(r["learner"], r["chapter"]) for r in rows] == [("alice", "01"), ("alice", "99"), ("bob", "99")]
    assert rows[1]["99.double"] == "2.0" and rows[0]["99.double"] == ""     # points per exercise
    book = list(csv.DictReader((out / report.BOOK).open()))
    assert [r["learner"] for r in book] == ["alice", "bob"] and "99 (5)" in book[0]
    assert (out / "feedback" / "alice_01.md").exists() and (out / "feedback" / "alice_99.md").exists()


def test_a_late_submission_is_penalised_and_the_manifest_gives_its_time(graded):
    state, out = graded
    alice, bob = state["alice/99"], state["bob/99"]
    assert (alice["submitted_from"], bob["submitted_from"]) == ("manifest", "mtime")
    assert [r["attempts"] for r in csv.DictReader((out / report.TABLE).open())] == ["", "99.double:4", ""]
    rows = {(r["learner"], r["chapter"]): r for r in csv.DictReader((out / report.TABLE).open())}
    assert (rows["alice", "99"]["days_late"], rows["alice", "99"]["penalty_percent"]) == ("2", "20.0")
    assert float(rows["alice", "99"]["score"]) == 1.6 and float(rows["bob", "99"]["score"]) == 2.0
    assert "-20%" in (out / "feedback" / "alice_99.md").read_text()


def test_written_answers_wait_for_the_instructor_and_comments_are_merged(graded, capsys):
    state, out = graded
    assert state["alice/99"]["answers"] == {"99.explain": "Doubling keeps the order."}
    assert state["bob/99"]["answers"] == {}                           # the placeholder is no answer
    sheet = (out / "answers" / "alice_99.md").read_text()
    assert "Doubling keeps the order." in sheet and "names the idea (2)" in sheet
    template = list(csv.DictReader((out / report.TEMPLATE).open()))
    assert {(r["learner"], r["exercise"]) for r in template} == {("alice", "99.explain"), ("bob", "99.explain")}
    (out / gradebook.COMMENTS).write_text(
        "learner,chapter,exercise,points,comment\n"
        "alice,99,99.explain,2.5,\"Right idea; the example is missing.\"\n"
        "alice,99,,,Good work overall.\n"
        "bob,99,99.double,1,Copied from alice (points overridden).\n")
    assert cli.main(["export", "--out", str(out)]) == 0
    rows = {(r["learner"], r["chapter"]): r for r in csv.DictReader((out / report.TABLE).open())}
    assert float(rows["alice", "99"]["raw_score"]) == 4.5 and float(rows["alice", "99"]["score"]) == 3.6
    assert float(rows["bob", "99"]["score"]) == 1.0 and rows["bob", "99"]["to_grade"] == "99.explain"
    text = (out / "feedback" / "alice_99.md").read_text()
    assert "Right idea; the example is missing." in text and "Good work overall." in text
    assert "2.5 / 3" in text
    assert "1 item(s) still to grade by hand" in capsys.readouterr().out


def _roster(tmp_path, extra: str = "") -> Path:
    path = tmp_path / "roster.csv"
    path.write_text("learner,name,student_id,login,email,section,canvas_id\n"
                    "alice,\"Liddell, Alice\",S001,aliddell,alice@example.org,A,101\n"
                    "bob,\"Builder, Bob\",S002,bbuilder,bob@example.org,B,102\n" + extra)
    return path


def test_roster_maps_learners_and_canvas_and_moodle_files_have_their_import_columns(graded, tmp_path):
    state, out = graded
    roster = _roster(tmp_path, "carol,\"Carol\",S003,carol,carol@example.org,A,103\n")
    assert cli.main(["export", "--out", str(out), "--roster", str(roster),
                     "--assignment", "99=Toy exercises (5501)"]) == 0
    canvas = list(csv.reader((out / "canvas.csv").open()))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Exercises 01",
                         "Toy exercises (5501)"]
    points_01 = f"{sum(ex.points for ex in cases.chapter_exercises('01')):g}"
    assert canvas[1] == ["Points Possible", "", "", "", "", points_01, "5"]
    rows = {r[0]: r for r in canvas[2:]}
    assert rows["Liddell, Alice"][1:] == ["101", "S001", "aliddell", "A", "0.0", "1.6"]     # 99: 20% late
    assert rows["Builder, Bob"][-2:] == ["", "2.0"] and rows["Carol"][-2:] == ["", ""]  # nothing submitted
    moodle = list(csv.DictReader((out / "moodle.csv").open()))
    assert list(moodle[0])[:4] == ["ID number", "Email address", "Username", "Full name"]
    assert {r["ID number"]: r["Toy exercises (5501)"] for r in moodle} == {"S001": "1.6", "S002": "2.0", "S003": ""}
    assert cli.main(["export", "--out", str(out), "--roster", str(roster), "--missing", "zero"]) == 0
    assert {r["ID number"]: r["Exercises 99"] for r in csv.DictReader((out / "moodle.csv").open())}["S003"] == "0.0"
    book = {r["learner"]: r for r in csv.DictReader((out / report.BOOK).open())}
    assert book["alice"]["student_id"] == "S001" and float(book["alice"]["total"]) == 1.6


def test_a_graded_learner_missing_from_the_roster_is_an_error(graded, tmp_path, capsys):
    state, out = graded
    roster = tmp_path / "roster.csv"
    roster.write_text("learner,student_id\nalice,S001\n")
    assert cli.main(["export", "--out", str(out), "--roster", str(roster)]) == 2
    assert "bob" in capsys.readouterr().err
    roster.write_text("student_id\nS001\n")
    with pytest.raises(ValueError, match="missing column"):
        gradebook.load_roster(roster)
    roster.write_text("learner\nalice\nalice\n")
    with pytest.raises(ValueError, match="twice"):
        gradebook.load_roster(roster)


def test_the_deadline_options_and_the_policy_file(tmp_path, graded, capsys):
    state, out = graded
    assert gradebook.load_policy(out).deadlines == {"99": "2026-12-01"}
    assert cli.main(["export", "--out", str(out), "--deadline", "99=2026-12-05", "--late-penalty", "5"]) == 0
    rows = {(r["learner"], r["chapter"]): r for r in csv.DictReader((out / report.TABLE).open())}
    assert rows["alice", "99"]["penalty_percent"] == "0.0"
    assert gradebook.load_policy(out).penalty_per_day == 5
    assert cli.main(["export", "--out", str(out), "--deadline", "9=tomorrow"]) == 2
    with pytest.raises(ValueError, match="not a date"):
        gradebook.Policy(deadlines={"*": "soon"})
    p = gradebook.Policy(deadlines={"*": "2026-12-01T00:00+01:00"}, penalty_per_day=40, max_penalty=50)
    assert p.lateness("07", "2026-11-30T23:30:00+00:00") == (1, 40.0)    # 30 min late counts as a day
    assert p.lateness("07", "2026-12-05T00:00:00+00:00") == (5, 50.0)    # capped
    assert p.lateness("07", "2026-11-30T22:00:00+00:00") == (0, 0.0)


def test_grades_files_of_version_1_are_read_per_learner_and_chapter(tmp_path):
    rec = {"learner": "ann", "chapter": "01", "score": 1, "max_score": 5, "exercises": {}}
    (tmp_path / report.STATE).write_text(json.dumps({"version": 1, "learners": {"ann": rec}}))
    assert report.load_state(tmp_path) == {"ann/01": rec}


# ------------------------------------------------------------------ the learner's side
def test_submit_zips_the_notebook_with_a_manifest_and_a_changed_notebook_is_flagged(tmp_path, capsys):
    nb = tmp_path / "02_semantic_search_exercises.ipynb"
    nb.write_bytes(_notebook("02"))
    assert cli.main(["submit", str(nb), "--out", str(tmp_path / "up")]) == 0
    zipped = tmp_path / "up" / "02_semantic_search_exercises.zip"
    data, manifest, problem = submission.read_submission(zipped)
    assert data == nb.read_bytes() and problem == "" and manifest["chapter"] == "02"
    assert submission.submission_time(zipped, manifest) == (manifest["submitted_at"], "manifest")
    with zipfile.ZipFile(zipped) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    entries[nb.name] = entries[nb.name].replace(b"2 * x", b"3 * x")
    with zipfile.ZipFile(zipped, "w") as zf:
        for name, body in entries.items():
            zf.writestr(name, body)
    assert "changed after submit" in submission.read_submission(zipped)[2]
    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(ValueError, match="exactly one notebook"):
        submission.read_submission(empty)


def test_submit_in_a_notebook_records_the_attempts(toy, tmp_path, monkeypatch, capsys):
    nb = tmp_path / "99_toy_exercises.ipynb"
    nb.write_bytes(_notebook("99"))
    check("99.double", lambda x: x)
    monkeypatch.setenv("JPY_SESSION_NAME", str(nb))
    monkeypatch.delenv("COURSE_GRADING", raising=False)
    zipped = submission.submit()
    assert zipped == tmp_path / "99_toy_exercises.zip"
    assert submission.read_submission(zipped)[1]["attempts"] == {"99.double": 1}
    monkeypatch.setenv("COURSE_GRADING", "1")                      # under the grader: nothing
    assert submission.submit() is None


# ------------------------------------------------------------------ the learner bundle
@functools.lru_cache(maxsize=1)
def _repo_bundle() -> tuple:
    return tuple(release.bundle_files(ROOT))


def test_the_learner_bundle_of_this_course_has_exercises_and_no_solutions():
    files = _repo_bundle()
    assert any(f.startswith("exercises/") for f in files) and "README.md" in files
    assert not any(f.startswith(("solutions/", "tests/", ".ci/")) for f in files)


def test_release_builds_a_zip_and_refuses_a_notebook_with_a_solution(tmp_path):
    root = tmp_path / "course"
    for d in ("solutions", "exercises", "notebooks", "course_utils", "tests"):
        (root / d).mkdir(parents=True)
    sol = nbformat.v4.new_notebook()
    sol.cells = [nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION")]
    nbformat.write(sol, root / "solutions" / "01_x_exercises.ipynb")
    generate.generate_exercises(root / "solutions", root / "exercises")
    (root / "README.md").write_text("course")
    (root / "tests" / "test_x.py").write_text("")
    out = release.build_release(root, tmp_path / "dist")
    with zipfile.ZipFile(out) as zf:
        names = sorted(n.split("/", 1)[1] for n in zf.namelist())
    assert names == ["README.md", "exercises/01_x_exercises.ipynb"]
    nbformat.write(sol, root / "notebooks" / "01_x.ipynb")          # a solution where learners look
    with pytest.raises(ValueError, match="solution regions"):
        release.build_release(root, tmp_path / "dist")
    (root / "notebooks" / "01_x.ipynb").unlink()
    (root / "exercises" / "01_x_exercises.ipynb").unlink()
    with pytest.raises(ValueError, match="make exercises"):
        release.build_release(root, tmp_path / "dist")


def test_lms_exports_need_no_roster_for_the_gradebook():
    state = {"ann/01": {"learner": "ann", "chapter": "01", "exercises": {
        "01.cosine": {"points": 2, "earned": 1.5, "status": "failed"}}}}
    text = lms.gradebook_csv(state, gradebook.Policy(), {})
    assert list(csv.reader(io.StringIO(text))) == [
        ["learner", "name", "student_id", "login", "email", "section", "canvas_id", "01 (2)", "total"],
        ["ann", "", "", "", "", "", "", "1.5", "1.5"]]
