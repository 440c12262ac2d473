"""Start and stop servers on loopback, from a notebook or a test, and always stop them.

Two context managers, used by chapter 09 (a search service, a Chroma server) and chapter 10 (an
embedding API server):

- `serve_app(app)` runs an ASGI app (FastAPI) with uvicorn in a background thread of this process
  on 127.0.0.1 and a free port; it yields the base URL and stops the server on exit, also when
  the body raises.
- `run_process(command, port=...)` starts an external server (e.g. `chroma run ...`) as a child
  process, waits until its port accepts connections (or a health URL answers), yields the
  `subprocess.Popen`, and terminates it (then kills it) on exit. Its output goes to a log file,
  whose tail is shown when the server fails to start.

Nothing listens beyond 127.0.0.1.

>>> with serve_app(app) as url:            # doctest: +SKIP
...     httpx.get(f"{url}/health").json()
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["free_port", "wait_for_port", "serve_app", "run_process"]

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, process: subprocess.Popen | None = None,
                  health_url: str | None = None) -> None:
    """Block until 127.0.0.1:port accepts connections (and `health_url` answers 2xx).

    Raises RuntimeError if `process` exits first, TimeoutError after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server process exited with code {process.returncode} before "
                               f"port {port} opened")
        if _answers(port, health_url):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing answered on {HOST}:{port} within {timeout:.0f} s")


def _answers(port: int, health_url: str | None) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            pass
        if health_url:
            with urllib.request.urlopen(health_url, timeout=2) as response:
                return 200 <= response.status < 300
        return True
    except OSError:
        return False


@contextlib.contextmanager
def serve_app(app, port: int | None = None, timeout: float = 30.0,
              log_level: str = "warning") -> Iterator[str]:
    """Run an ASGI `app` with uvicorn on 127.0.0.1 in a thread; yield its base URL.

    The server is stopped (and its thread joined) when the block ends, even on an exception.
    """
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(app, host=HOST, port=port, log_level=log_level, access_log=False,
                            lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"uvicorn stopped before serving on {HOST}:{port} "
                                   "(is the port taken? see the log above)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn did not start on {HOST}:{port} within {timeout:.0f} s")
            time.sleep(0.05)
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def run_process(command: Sequence[str], port: int, log_path: str | Path, health_url: str | None = None,
                timeout: float = 60.0, env: dict | None = None,
                die_with_parent: bool = False) -> Iterator[subprocess.Popen]:
    """Start `command` (a server listening on `port`), wait until it answers, stop it on exit.

    Output goes to `log_path`; on a failed start the error message includes the log's tail.
    die_with_parent (Linux): the server gets SIGTERM if the thread that started it dies, e.g.
    when a notebook's kernel is killed before the block could end.
    """
    if not command:
        raise ValueError("command is empty: give the server's argv, e.g. ['chroma', 'run', ...]")
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, start_new_session=True,
                                preexec_fn=_parent_death_signal() if die_with_parent else None)
    try:
        try:
            wait_for_port(port, timeout=timeout, process=proc, health_url=health_url)
        except (RuntimeError, TimeoutError) as err:
            tail = log_path.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"{err}\ncommand: {' '.join(command)}\nlog tail ({log_path}):\n{tail}") from None
        yield proc
    finally:
        _stop(proc)


def _parent_death_signal():
    """A function for the child (before exec) asking Linux for SIGTERM when the parent thread dies.

    libc's prctl is looked up here, in the parent: the child, forked from a process that may run
    other threads, only makes the call (no import, no lock)."""
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):          # not Linux: nothing to ask for
        return None
    return lambda: prctl(1, signal.SIGTERM)    # 1 = PR_SET_PDEATHSIG


def _stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL if it has not exited after `grace` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace)
