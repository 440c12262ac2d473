"""Every benchmark script runs at tiny sizes and prints its table (`make bench-smoke`), so a
benchmark cannot rot between the occasions someone runs `make benchmarks`. Nothing is timed here."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "bench_ann.py": ["--n", "12000", "--queries", "50", "--d", "48"],
    "bench_bm25.py": ["--docs", "2000"],
    "bench_rerank.py": ["--queries", "1", "--depth", "3"],
    "bench_encode.py": ["--docs", "6", "--sentences", "16", "--threads", "1"],
    "bench_evaluate.py": ["--queries", "200", "--docs", "20", "--repeats", "1"],
    "bench_fast_embeddings.py": ["--pairs", "8", "--threads", "1"],
    "bench_finetune.py": ["--rows", "8", "--batch", "4", "--steps", "1", "--queries", "3"],
}


def test_every_benchmark_has_tiny_sizes():
    assert sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py")) == sorted(TINY)


@pytest.mark.bench
@pytest.mark.parametrize("script", sorted(TINY))
def test_benchmark_runs_at_tiny_sizes(script, tmp_path):
    env = {**os.environ, "COURSE_THREADS": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *TINY[script]],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip(), f"{script} printed nothing"
