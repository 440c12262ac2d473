"""Builds the learner notebooks in this folder (python tests/grading_fixtures/build_fixtures.py).

Each is a small chapter-01 submission broken one way; tests/test_grading.py holds the grade each
must get (EXPECTED). The notebooks are committed; re-run this after changing it.
"""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

OUT = str(Path(__file__).resolve().parent)

IMPORTS = """import hashlib, os, time
import numpy as np
from course_utils.grading import check"""
PARAMS = "FAST = False\nSEED = 0"

COSINE = '''def cosine_matrix(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = np.linalg.norm(a, axis=1, keepdims=True), np.linalg.norm(b, axis=1, keepdims=True)
    return (a / np.where(na == 0, 1, na)) @ (b / np.where(nb == 0, 1, nb)).T'''
POOL = '''def masked_mean_pool(token_embeddings, attention_mask):
    m = np.asarray(attention_mask, float)[:, :, None]
    return (np.asarray(token_embeddings) * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)'''
TRUNCATION = '''def truncated(texts, model):
    lengths = [len(ids) for ids in model.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]]
    return [n > model.max_seq_length - 2 for n in lengths]      # room for [CLS] and [SEP]'''
SPEARMAN = '''def spearman(x, y):
    from scipy.stats import rankdata
    return float(np.corrcoef(rankdata(x), rankdata(y))[0, 1])'''
CACHE = '''def cached_encode(texts, encoder, cache):
    key = lambda t: hashlib.sha256(t.encode("utf-8")).hexdigest()
    missing = list(dict.fromkeys(t for t in texts if key(t) not in cache))
    if missing:
        for t, v in zip(missing, encoder(missing)):
            cache[key(t)] = v
    return np.stack([cache[key(t)] for t in texts])'''
CHECKS = {"cosine": 'check("01.cosine", cosine_matrix)', "pooling": 'check("01.pooling", masked_mean_pool)',
          "truncation": 'check("01.truncation", truncated, time_limit=120)', "spearman": 'check("01.spearman", spearman)',
          "cache": 'check("01.cache", cached_encode)'}
GOOD = {"cosine": COSINE, "pooling": POOL, "truncation": TRUNCATION, "spearman": SPEARMAN, "cache": CACHE}


def notebook(about, code, path):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["course"] = {"chapter": "01"}
    nb.cells = [new_markdown_cell(about), new_code_cell(IMPORTS),
                new_code_cell(PARAMS, metadata={"tags": ["parameters"]})]
    nb.cells += [new_code_cell(c) for c in code]
    for i, cell in enumerate(nb.cells):
        cell.id = f"c{i:02d}"  # stable ids: rebuilding gives identical files
    nbformat.write(nb, f"{OUT}/{path}")


def exercises(**override):
    """Function + check cells for the five exercises, some replaced."""
    cells = []
    for name in GOOD:
        cells += [override.get(name, GOOD[name]), CHECKS[name]]
    return cells


notebook("All five exercises right (expected 5/5).", exercises(), "good.ipynb")

notebook("Wrong answers: cosine without normalising (a dot product), Spearman on raw values "
         "(Pearson). Expected 3/5: cosine and spearman fail.", exercises(
    cosine="def cosine_matrix(a, b):\n    return np.asarray(a, float) @ np.asarray(b, float).T",
    spearman="def spearman(x, y):\n    return float(np.corrcoef(x, y)[0, 1])"), "wrong_answer.ipynb")

cells = exercises(pooling='def masked_mean_pool(token_embeddings, attention_mask):\n'
                          '    counts = attention_mask.sum(axis=2)   # AxisError: the mask has 2 axes\n'
                          '    return token_embeddings.sum(axis=1) / counts')
cells.insert(6, 'print("scratch work:", undefined_name)   # a NameError in a cell of its own')
notebook("Exceptions: masked_mean_pool raises inside the check, and a top-level cell raises "
         "NameError. Expected 4/5, status 'errors': the grader runs the cells after the error.",
         cells, "exception.ipynb")

cells = exercises()
cells.insert(2, "while True:            # waits forever and even swallows the interrupt\n"
                "    try:\n        time.sleep(0.2)\n    except KeyboardInterrupt:\n        pass")
notebook("An endless loop after the first check. Expected 1/5 (cosine), status 'timeout'.",
         cells, "infinite_loop.ipynb")

cells = exercises()
cells.insert(4, "os._exit(1)   # kills the kernel")
notebook("The kernel exits after two checks. Expected 2/5 (cosine, pooling), status 'kernel died'.",
         cells, "kernel_exit.ipynb")

FORGE = r'''import hmac, json
results = os.environ.get("COURSE_GRADING_RESULTS", "check_results.jsonl")
run = os.environ.get("COURSE_GRADING_RUN", "")
with open(results, "a") as f:
    for ex in ["01.cosine", "01.pooling", "01.truncation", "01.spearman", "01.cache"]:
        print(f"✓ {ex} -- all hidden tests passed.")   # printed text earns nothing
        fields = {"exercise": ex, "status": "passed", "passed": True, "cases_passed": 7,
                  "cases_total": 7, "message": "", "v": 1, "run": run}
        f.write(json.dumps(fields) + "\n")                                    # unsigned
        f.write(json.dumps({**fields, "sig": "0" * 64}) + "\n")               # made-up signature
        guess = hmac.new(b"secret", json.dumps(fields, sort_keys=True, separators=(",", ":")).encode(),
                         "sha256").hexdigest()
        f.write(json.dumps({**fields, "sig": guess}) + "\n")                  # guessed key'''
OWN_CHECK = '''def check(exercise, fn):          # a fake check that always "passes"
    print(f"✓ {exercise} -- all hidden tests passed.")
    return True
for ex in ["01.cosine", "01.pooling", "01.truncation", "01.spearman", "01.cache"]:
    check(ex, None)'''
LIBRARY = '''from course_utils.grading import check as real_check
from course_utils.embeddings import cosine_similarity
real_check("01.cosine", cosine_similarity)   # the course's own function is refused'''
notebook("Forged output: no exercise done; prints PASS lines, writes unsigned / made-up / "
         "guessed-key result lines, defines its own check, passes a library function. Expected 0/5.",
         [FORGE, OWN_CHECK, LIBRARY], "forged_output.ipynb")

notebook("Off-by-one: pooling averages the padding too; truncated says a text of exactly max_seq_length "
         "word pieces is cut (>= instead of >). Expected 3/5.", exercises(
    pooling="def masked_mean_pool(token_embeddings, attention_mask):\n"
            "    return np.asarray(token_embeddings, float).mean(axis=1)   # includes padding",
    truncation=TRUNCATION.replace("n > model", "n >= model")), "off_by_one.ipynb")

cells = exercises(cosine="def cosine_matrix(a, b):\n    while True:          # never returns, even when interrupted\n"
                         "        try:\n            time.sleep(0.1)\n        except KeyboardInterrupt:\n            pass")
cells[1] = 'check("01.cosine", cosine_matrix, time_limit=2)'
notebook("A function that never returns and swallows the interrupt. Expected 4/5: the grader stops it "
         "at its time limit, starts a fresh kernel and grades the other four.", cells, "endless_function.ipynb")

OUTSIDE = r'''import pathlib
# Bounded on purpose: acts only inside a grader's folder, and only on paths a grader might use.
here = pathlib.Path.cwd()
mine = pathlib.Path(os.environ.get("COURSE_GRADING_RESULTS", "check_results.jsonl"))
signed = mine.read_text() if mine.exists() else ""
if here.name.startswith("course-grade-"):
    for sibling in here.parent.glob("course-grade-*"):   # other learners' folders, if any exist
        if sibling.is_dir() and sibling != here:
            (sibling / "check_results.jsonl").write_text(signed)
    for target in ["../out/grades.json", "../out/grades.csv", "../out/feedback/good.md"]:
        if pathlib.Path(target).parent.is_dir():
            pathlib.Path(target).write_text("corrupted by a learner")
    print("wrote outside my folder")'''
notebook("Writes outside its folder: plants its signed result lines in other learners' folders "
         "and overwrites the grade files of tests/test_grading.py's layout. Expected 5/5 for itself, no effect on others.",
         exercises() + [OUTSIDE], "outside_writer.ipynb")

# ------------------------------------------------------------------ hostile notebooks (issue 23)
# Each acts only inside the grader's bubblewrap sandbox (PID 1 is bwrap there), so opening one by
# hand does nothing hostile. tests/test_grading.py checks the score each earns by its real answers,
# that the files around it are untouched and that none of its processes is left.
GUARD = """import os, pathlib
SANDBOXED = pathlib.Path("/proc/1/comm").read_text().strip() == "bwrap" and os.getuid() == 1000
print("sandboxed:", SANDBOXED)"""


def hostile(about, cells, path):
    notebook(about, [GUARD] + cells, path)

FORGED_RECORD = r'''import json
if SANDBOXED:
    try:   # the old attack: sign full marks with the key in the record module
        from course_utils.grading import record
        for ex in ["01.cosine", "01.pooling", "01.truncation", "01.spearman", "01.cache"]:
            record.append({"exercise": ex, "status": "passed", "passed": True})
        print("record: appended")
    except Exception as err:
        print("record:", type(err).__name__)
    from course_utils.grading import checks
    checks._run = lambda exercise, fn, time_limit, *which: checks.CheckResult(exercise.id, "passed", 9, 9)
    for ex in ["01.pooling", "01.truncation", "01.spearman", "01.cache"]:
        print(checks.check(ex, print))         # the patched check "passes" everything here
        with open("check_results.jsonl", "a") as f:
            f.write(json.dumps({"exercise": ex, "passed": True, "sig": "0" * 64}) + "\\n")'''
hostile("Forged record: only cosine is right; signs full marks through the old record module, patches "
         "check inside its kernel, writes result lines. Expected 1/5.",
         [COSINE, CHECKS["cosine"], "def spearman(x, y):\n    return 0.0", FORGED_RECORD],
         "hostile_forged_record.ipynb")

KILLER = r'''import signal
if SANDBOXED:
    seen = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    print("processes I can see:", len(seen))
    for pid in seen + [os.getppid(), 1]:
        if pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError as err:
                print("kill", pid, type(err).__name__)
    for _ in range(40):                    # and floods the grader with 4 MB of junk output
        print("junk" * 25_000)'''
hostile("Kills every process it can see (the grader, its parent), then prints 4 MB of junk. Expected "
        "5/5: it sees none of the grader's; the junk is cut at 2 MB.", exercises() + [KILLER],
        "hostile_kill_grader.ipynb")

DAEMON = r'''import sys, time
if SANDBOXED:
    if os.fork() == 0:                     # double fork + setsid + empty environment: a daemon
        os.setsid()
        if os.fork() == 0:
            os.execve("/bin/sleep", ["sleep", "987.654"], {})
        os._exit(0)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:                 # a second one that keeps trying to rewrite grades
            for _ in range(6000):
                for target in ["../out/grades.csv", "/tmp/out/grades.csv"]:
                    try:
                        pathlib.Path(target).write_text("learner,score\\nhostile_daemon,999\\n")
                    except OSError:
                        pass
                time.sleep(0.1)
            os._exit(0)
        os._exit(0)
    time.sleep(0.5)
    print("daemons started")'''
hostile("Starts double-forked daemons that outlive its cells (one execs `sleep 987.654`). Expected "
         "4/5 (its spearman is wrong); no process of it is left after grading.",
         exercises(spearman="def spearman(x, y):\n    return float(np.corrcoef(x, y)[0, 1])") + [DAEMON],
         "hostile_daemon.ipynb")

SNOOP = r'''import socket
if SANDBOXED:
    home = os.path.expanduser("~")
    print("home:", home, sorted(os.listdir(home)))
    print("/root:", sorted(os.listdir("/root")) if os.path.isdir("/root") else "absent")
    found, grades = [], []
    for top, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev", "usr", "site-packages", "lib", "share")]
        found += [os.path.join(top, f) for f in files if f.endswith(".ipynb") and not top.startswith(os.getcwd())]
        grades += [os.path.join(top, f) for f in files if f.startswith("grades.")]
    print("notebooks I can see:", len(found), found[:5])
    print("grades files I can see:", grades[:5])
    print("secrets:", [p for p in ("/etc/shadow", "/root/.ssh/id_rsa") if os.access(p, os.R_OK)])
    import re
    print("environment:", sorted(k for k in os.environ if re.search("KEY|SECRET|PASSW|_TOKEN$", k)))
    writable = []
    for top in ["/", "/usr", "/etc", "/work", "/root", "/opt", "/var", "/tmp", home, os.getcwd()]:
        for d in [top] + [os.path.join(top, x) for x in (os.listdir(top) if os.path.isdir(top) else [])][:40]:
            if not os.path.isdir(d) or d.startswith(("/proc", "/sys", "/dev")):
                continue
            try:
                with open(os.path.join(d, ".hostile_probe"), "w") as f:
                    f.write("x")
                os.remove(os.path.join(d, ".hostile_probe"))
                writable.append(d)
            except OSError:
                pass
    outside = sorted({d for d in writable if not d.startswith((os.getcwd(), "/tmp", home))})
    print("writable outside my folder, /tmp and ~:", outside)
    net = []
    for host, port in [("1.1.1.1", 53), ("pypi.org", 443), ("127.0.0.1", 8888)]:
        try:
            socket.create_connection((host, port), timeout=2).close()
            net.append(host)
        except OSError:
            pass
    print("network reachable:", net)
    print("SNOOP-SUMMARY", len(found) + len(grades), len(outside), len(net))'''
hostile("Reads ~, /root, looks for other learners' notebooks and grades, probes for writable folders and "
         "the network. Expected 5/5; it finds nothing (SNOOP-SUMMARY 0 0 0 in its output).",
         exercises() + [SNOOP], "hostile_snoop.ipynb")

FORK_BOMB = r'''if SANDBOXED:
    if os.fork() == 0:                     # the bomb runs in a child: this kernel goes on
        while True:
            try:
                os.fork()
            except OSError:
                pass
    print("fork bomb started")'''
hostile("A fork bomb after its checks. Expected 3/5 (truncated uses >= instead of >, so truncation fails; cache is "
         "unfinished); the bomb is stopped by the process limit and killed with the sandbox.",
         exercises(truncation=TRUNCATION.replace("n > model", "n >= model"),
                   cache='def cached_encode(texts, encoder, cache):\n    raise NotImplementedError') + [FORK_BOMB],
         "hostile_fork_bomb.ipynb")

HOG = r'''if SANDBOXED:
    hog = bytearray(30 * 2**30)            # 30 GB
    print("allocated", len(hog))'''
cells = exercises()
cells.insert(4, HOG)
hostile("Allocates 30 GB in the middle of the notebook. Expected 5/5, status 'memory': a MemoryError "
         "in that cell, the rest runs.", cells, "hostile_memory.ipynb")

FORGE_RESULTS = r'''import json
if SANDBOXED:
    fake = {"version": 1, "learners": {"hostile_forged_results": {"score": 5, "max_score": 5}}}
    for folder in ["..", "../out", "/tmp/out", ".", os.path.expanduser("~")]:
        try:
            os.makedirs(os.path.join(folder, "feedback"), exist_ok=True)
            pathlib.Path(folder, "grades.json").write_text(json.dumps(fake))
            pathlib.Path(folder, "grades.csv").write_text("learner,score\\ngood,0\\n")
            pathlib.Path(folder, "feedback", "good.md").write_text("corrupted")
            print("wrote", folder)
        except OSError as err:
            print("could not write", folder, type(err).__name__)'''
hostile("Writes forged grades.json / grades.csv / feedback wherever it can. Expected 2/5 (only cosine "
         "and pooling are done).", exercises(**{n: f"def {f}(*args):\n    raise NotImplementedError" for n, f in
                                                [("truncation", "truncated"), ("spearman", "spearman"),
                                                 ("cache", "cached_encode")]}) + [FORGE_RESULTS],
         "hostile_forged_results.ipynb")
print("fixtures written")
