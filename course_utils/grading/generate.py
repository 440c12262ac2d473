"""solutions/NN_topic_exercises.ipynb -> exercises/NN_topic_exercises.ipynb (never edit the copy).

In every cell, each region from a `### BEGIN SOLUTION` line to its `### END SOLUTION` line is
replaced by one line at the BEGIN marker's indentation: `raise NotImplementedError(...)` in a code
cell, `*Your answer here.*` in a markdown cell. Outputs, execution counts and execution metadata
are cleared, and the cell papermill injects when the solution is executed (`injected-parameters`)
is dropped, and so are saved widget states; tags and the notebook's metadata (kernel,
`course.chapter`) are kept.

>>> print(strip_solutions("def f(x):\\n    ### BEGIN SOLUTION\\n    return x\\n    ### END SOLUTION"))
def f(x):
    raise NotImplementedError("exercise: replace this line with your code")
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

__all__ = ["CODE_STUB", "TEXT_STUB", "ROOT", "PATTERN", "strip_solutions", "exercise_notebook",
           "count_regions", "target_for", "generate_exercises", "differences"]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CODE_STUB = 'raise NotImplementedError("exercise: replace this line with your code")'
TEXT_STUB = "*Your answer here.*"
ROOT = Path(__file__).resolve().parents[2]
PATTERN = "[0-9][0-9]_*_exercises.ipynb"


def strip_solutions(source: str, stub: str = CODE_STUB) -> str:
    """`source` with each solution region replaced by `stub` (indented like the BEGIN line)."""
    out, inside = [], False
    for n, line in enumerate(source.split("\n"), 1):
        marker = line.strip()
        if marker.startswith(BEGIN):
            if inside:
                raise ValueError(f"line {n}: {BEGIN} inside another solution region")
            inside = True
            out.append(re.match(r"\s*", line).group(0) + stub)
        elif marker.startswith(END):
            if not inside:
                raise ValueError(f"line {n}: {END} without a {BEGIN} before it")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"a {BEGIN} region is not closed by {END}")
    return "\n".join(out)


def exercise_notebook(solution) -> nbformat.NotebookNode:
    """The exercise version of a solution notebook (a new object; the input is not changed)."""
    nb = copy.deepcopy(solution)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)      # progress-bar widget states saved by an execution
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    for i, cell in enumerate(nb.cells):
        try:
            cell.source = strip_solutions(cell.source, CODE_STUB if cell.cell_type == "code" else TEXT_STUB)
        except ValueError as err:
            raise ValueError(f"cell {i}: {err}") from None
        for key in ("papermill", "execution", "scrolled", "collapsed"):
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def count_regions(nb) -> int:
    """How many solution regions a notebook holds (a solution notebook must hold at least one)."""
    return sum(c.source.count(BEGIN) for c in nb.cells)


def target_for(solution_path: Path, exercises_dir: Path) -> Path:
    return Path(exercises_dir) / Path(solution_path).name


def generate_exercises(solutions_dir: Path = ROOT / "solutions", exercises_dir: Path = ROOT / "exercises",
             check_only: bool = False) -> list[Path]:
    """Write (or, with check_only, only compare) every exercise notebook; return the paths that
    were out of date (missing, different cell sources/types/tags, or carrying outputs)."""
    exercises_dir = Path(exercises_dir)
    stale = []
    for path in sorted(Path(solutions_dir).glob(PATTERN)):
        solution = nbformat.read(path, as_version=4)
        if not count_regions(solution):
            raise ValueError(f"{path}: no {BEGIN} region -- is it really a solution notebook?")
        wanted, target = exercise_notebook(solution), target_for(path, exercises_dir)
        if target.exists() and not differences(wanted, nbformat.read(target, as_version=4)):
            continue
        stale.append(target)
        if not check_only:
            exercises_dir.mkdir(parents=True, exist_ok=True)
            nbformat.write(wanted, target)
    return stale


def differences(wanted, actual) -> list[str]:
    """Why `actual` (an exercise notebook on disk) is not what `wanted` says it should be."""
    found = []
    if len(wanted.cells) != len(actual.cells):
        found.append(f"{len(actual.cells)} cells instead of {len(wanted.cells)}")
    for i, (w, a) in enumerate(zip(wanted.cells, actual.cells)):
        if (w.cell_type, w.source) != (a.cell_type, a.source):
            found.append(f"cell {i} differs")
        elif w.metadata.get("tags", []) != a.metadata.get("tags", []):
            found.append(f"cell {i}: tags differ")
        elif a.cell_type == "code" and (a.outputs or a.execution_count is not None):
            found.append(f"cell {i} carries outputs")
    return found
