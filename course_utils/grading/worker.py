"""Execute one learner notebook with papermill -- run by the grader as a separate process.

    python -m course_utils.grading.worker IN.ipynb OUT.ipynb --timeout SECONDS

FAST=True and SEED=0 are injected, the kernel is `python3`, the working directory is IN's folder,
every cell gets at most SECONDS, and cells keep running after one raises (so later checks still
count). The exit code is the outcome, which the learner's kernel (another process) cannot fake:
"""
from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

__all__ = ["EXIT", "STATUS", "run_notebook", "main"]

EXIT = {"ok": 0, "errors": 3, "timeout": 4, "kernel died": 5, "failed": 6}
STATUS = {code: name for name, code in EXIT.items()}


def run_notebook(src: Path, dst: Path, timeout: int) -> str:
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(str(src), str(dst), parameters={"FAST": True, "SEED": 0},
                                   cwd=str(src.parent), kernel_name="python3", progress_bar=False,
                                   log_output=False, start_timeout=120, execution_timeout=timeout,
                                   allow_errors=True, shutdown_kernel="immediate")
    except PapermillExecutionError:
        return "errors"
    except (CellTimeoutError, TimeoutError):
        return "timeout"
    except DeadKernelError:
        return "kernel died"
    except Exception as err:  # a kernel that vanished mid-message surfaces in several ways
        if "kernel died" in str(err).lower() or "dead" in type(err).__name__.lower():
            return "kernel died"
        traceback.print_exc()
        return "failed"
    return "ok"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.grading.worker")
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--timeout", type=int, required=True)
    args = parser.parse_args(argv)
    return EXIT[run_notebook(args.src, args.dst, args.timeout)]


if __name__ == "__main__":
    sys.exit(main())
