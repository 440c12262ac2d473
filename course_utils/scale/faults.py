"""Fault injection for a running embedding job: kill an actor, or a whole node, mid-job.

The job's actors record their progress in a folder (`embed_to_shards(..., report_dir=...)`):
one file `<node ip>-<pid>.txt` per actor holding how many batches it has finished. `kill_when`
watches that folder from a thread and, once an actor has finished `min_batches` batches (on
`node`, if given), runs the fault: SIGKILL to that actor's process, or `cluster.kill_node(ip)`.

    >>> fault = kill_when("reports/", "actor", min_batches=2)          # doctest: +SKIP
    >>> embed_to_shards(docs, "out/", model, report_dir="reports/")    # doctest: +SKIP
    >>> fault.wait(); fault.record                                     # doctest: +SKIP
    {'kind': 'actor', 'pid': 4242, 'node': '127.0.0.3', 'at': 1234.5}
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

__all__ = ["progress", "Fault", "kill_when"]


def progress(report_dir) -> dict[tuple[str, int], int]:
    """{(node ip, actor pid): batches finished} from a report folder.

    >>> progress("no-such-folder")
    {}
    """
    out = {}
    for f in Path(report_dir).glob("*.txt"):
        node, _, pid = f.stem.rpartition("-")
        text = f.read_text().strip()
        if text.isdigit() and pid.isdigit():
            out[(node, int(pid))] = int(text)
    return out


class Fault(threading.Thread):
    """A watcher thread; `record` holds what it killed and when (time.perf_counter), or stays {}."""

    def __init__(self, report_dir, kind: str, min_batches: int, node: str | None,
                 cluster=None, timeout: float = 600.0):
        super().__init__(daemon=True)
        self.report_dir, self.kind, self.min_batches = Path(report_dir), kind, min_batches
        self.node, self.cluster, self.timeout = node, cluster, timeout
        self.record: dict = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and not self._stop_event.is_set():
            for (node, pid), batches in progress(self.report_dir).items():
                if batches >= self.min_batches and (self.node is None or node == self.node):
                    self.record = {"kind": self.kind, "pid": pid, "node": node,
                                   "at": time.perf_counter()}
                    if self.kind == "actor":
                        os.kill(pid, signal.SIGKILL)
                    else:
                        self.cluster.kill_node(node)
                    return
            time.sleep(0.05)

    def wait(self, timeout: float = 30.0) -> dict:
        """Stop watching (if nothing happened yet) and return `record`."""
        self._stop_event.set()
        self.join(timeout)
        return self.record


def kill_when(report_dir, kind: str = "actor", min_batches: int = 1, node: str | None = None,
              cluster=None) -> Fault:
    """Start a `Fault` watcher: kind "actor" (SIGKILL the actor) or "node" (needs `cluster`)."""
    if kind not in ("actor", "node"):
        raise ValueError(f"kind must be 'actor' or 'node', got {kind!r}")
    if kind == "node" and (cluster is None or node is None):
        raise ValueError("a node fault needs the cluster and the node's IP (never the head)")
    Path(report_dir).mkdir(parents=True, exist_ok=True)
    fault = Fault(report_dir, kind, min_batches, node, cluster)
    fault.start()
    return fault
