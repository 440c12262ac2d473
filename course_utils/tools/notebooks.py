"""Execute the course notebooks (papermill) and check the executed copies.

    python -m course_utils.tools.notebooks run [--fast] [--out DIR] NOTEBOOK...
    python -m course_utils.tools.notebooks check NOTEBOOK...

`run` without --out rewrites each notebook in place with its outputs (what `make course` does, in
full mode); with --out it writes executed copies there (what the tests do, in FAST mode).
It prints a progress line per notebook and a summary table (notebook, mode, seconds, status).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat

__all__ = ["PARAMETER_NAMES", "CHECK_TAG", "INJECTED_TAG", "parameters_cell", "fold_parameters",
           "problems", "output_drift", "execute", "run", "main"]

PARAMETER_NAMES = ("FAST", "SEED")
CHECK_TAG = "nbval-check-output"  # outputs that must be identical in FAST and full mode
INJECTED_TAG = "injected-parameters"  # the cell papermill adds after the parameters cell


def parameters_cell(nb) -> dict:
    """The source lines of the cell tagged `parameters` as {name: source line}; raise if absent."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            lines = [ln for ln in cell.source.splitlines() if "=" in ln and not ln.startswith("#")]
            return {ln.split("=")[0].strip(): ln for ln in lines}
    raise ValueError("no code cell tagged 'parameters' (papermill needs one, with FAST and SEED)")


def fold_parameters(nb) -> bool:
    """Move papermill's injected values into the one `parameters` cell and drop the injected cell.

    The learner then sees one parameters cell with the values the notebook ran with; later
    execution counts shift down by one so they stay consecutive. Returns True if anything changed.
    >>> from nbformat.v4 import new_code_cell, new_notebook
    >>> nb = new_notebook(cells=[new_code_cell("FAST = False\\nSEED = 0", metadata={"tags": ["parameters"]},
    ...                                        execution_count=1),
    ...                          new_code_cell("# Parameters\\nFAST = True\\n", execution_count=2,
    ...                                        metadata={"tags": ["injected-parameters"]}),
    ...                          new_code_cell("print(FAST)", execution_count=3)])
    >>> fold_parameters(nb), [c.source for c in nb.cells], [c.execution_count for c in nb.cells]
    (True, ['FAST = True\\nSEED = 0', 'print(FAST)'], [1, 2])
    """
    injected = [i for i, c in enumerate(nb.cells) if INJECTED_TAG in c.metadata.get("tags", [])]
    if not injected:
        return False
    values = {}
    for i in injected:
        for line in nb.cells[i].source.splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                values[line.split("=")[0].strip()] = line
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            cell.source = "\n".join(_with_value(ln, values) for ln in cell.source.splitlines())
    first = injected[0]
    nb.cells = [c for i, c in enumerate(nb.cells) if i not in injected]
    for cell in nb.cells[first:]:
        if cell.cell_type == "code" and cell.execution_count:
            cell.execution_count -= len(injected)
            for out in cell.get("outputs", []):
                if out.get("execution_count"):
                    out["execution_count"] -= len(injected)
    return True


def _with_value(line: str, values: dict) -> str:
    """`NAME = old  # note` with the injected value of NAME, the note kept."""
    name, eq, rest = line.partition("=")
    if not eq or name.strip() not in values:
        return line
    code, hash_, note = rest.partition("#")
    new = values[name.strip()].partition("=")[2].strip()
    return f"{name}= {new}" + (f"  #{note}" if hash_ else "")


def problems(path: str | Path) -> list[str]:
    """What is wrong with a saved, executed notebook: errors, unexecuted or out-of-order cells,
    a missing parameters cell. An empty list means it is fine.
    """
    nb = nbformat.read(path, as_version=4)
    found = []
    try:
        names = parameters_cell(nb)
        found += [f"parameters cell lacks {n}" for n in PARAMETER_NAMES if n not in names]
    except ValueError as err:
        found.append(str(err))
    tagged = [c for c in nb.cells if {"parameters", INJECTED_TAG} & set(c.metadata.get("tags", []))]
    if len(tagged) > 1:
        found.append(f"{len(tagged)} parameters cells; keep one (fold_parameters merges papermill's)")
    counts = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        tags = cell.metadata.get("tags", [])
        if cell.execution_count is None:
            found.append(f"cell {i} was not executed")
        counts.append(cell.execution_count or 0)
        for out in cell.get("outputs", []):
            if out.output_type == "error" and "raises-exception" not in tags:
                found.append(f"cell {i} raised {out.ename}: {out.evalue}"[:200])
    if counts != sorted(counts) or len(set(counts)) != len(counts):
        found.append(f"cells were executed out of order: {counts}")
    return found


def _text(outputs) -> str:
    parts = []
    for out in outputs:
        if out.output_type == "stream" and out.name == "stdout":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts).strip()


def output_drift(saved: str | Path, executed: str | Path) -> list[str]:
    """Cells tagged `nbval-check-output` whose text output differs between two executions."""
    a, b = (nbformat.read(p, as_version=4) for p in (saved, executed))
    tagged = lambda nb: [c for c in nb.cells if CHECK_TAG in c.metadata.get("tags", [])]
    drift = []
    for i, (ca, cb) in enumerate(zip(tagged(a), tagged(b))):
        if ca.source != cb.source:
            drift.append(f"tagged cell {i}: sources differ; re-run `make course`")
        elif _text(ca.outputs) != _text(cb.outputs):
            drift.append(f"tagged cell {i}: saved {_text(ca.outputs)[:80]!r} != now {_text(cb.outputs)[:80]!r}")
    return drift


def execute(path: str | Path, out: str | Path, fast: bool, seed: int = 0, timeout: int = 1800) -> float:
    """Run one notebook with papermill (FAST, SEED injected) in its own folder; return seconds."""
    import papermill

    path = Path(path)
    start = time.perf_counter()
    papermill.execute_notebook(str(path), str(out), parameters={"FAST": fast, "SEED": seed},
                               cwd=str(path.parent), kernel_name="python3", progress_bar=False,
                               execution_timeout=timeout, log_output=False)
    seconds = time.perf_counter() - start
    nb = nbformat.read(out, as_version=4)
    if fold_parameters(nb):
        nbformat.write(nb, out)
    return seconds


def run(paths, fast: bool, out_dir: str | Path | None = None) -> list[tuple[str, float, str]]:
    """Execute notebooks one after another; print progress and a summary; return the rows."""
    rows = []
    mode = "FAST" if fast else "full"
    for n, path in enumerate(map(Path, paths), 1):
        target = Path(out_dir) / path.name if out_dir else path
        print(f"[{n}/{len(paths)}] {path} ({mode}) ...", flush=True)
        try:
            seconds, status = execute(path, target, fast), "ok"
        except Exception as err:  # report and go on with the next notebook
            detail = f"{getattr(err, 'ename', type(err).__name__)}: {getattr(err, 'evalue', err)}"
            seconds, status = float("nan"), f"FAILED ({detail})"[:300]
        print(f"    {status}" + (f" in {seconds:.0f} s" if status == "ok" else ""), flush=True)
        rows.append((str(path), seconds, status))
    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"\n{'notebook':<{width}}  mode  seconds  status")
    for name, seconds, status in rows:
        print(f"{name:<{width}}  {mode:<4}  {seconds:7.0f}  {status.splitlines()[0]}")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.tools.notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="execute notebooks")
    run_p.add_argument("notebooks", nargs="+")
    run_p.add_argument("--fast", action="store_true", help="FAST mode: small subsets (as in CI)")
    run_p.add_argument("--out", help="write executed copies here instead of in place")
    check_p = sub.add_parser("check", help="report errors / out-of-order cells in saved notebooks")
    check_p.add_argument("notebooks", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "run":
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
        rows = run(args.notebooks, args.fast, args.out)
        return int(any(status != "ok" for _, _, status in rows))
    bad = {p: problems(p) for p in args.notebooks}
    for p, found in bad.items():
        print(f"{p}: {'ok' if not found else '; '.join(found)}")
    return int(any(bad.values()))


if __name__ == "__main__":
    sys.exit(main())
