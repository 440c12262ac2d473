"""The whole stack on one machine: N replicas + nginx in front + Redis beside, always stopped.

    with Stack(bundle, replicas=2) as stack:          # everything on 127.0.0.1, free ports
        httpx.get(f"{stack.url}/search", params={"q": "aspirin"})
        stack.kill_replica(0)                         # SIGKILL: a crash, not a shutdown
        stack.stop_redis()
    stack.leftovers()                                 # [] -- no process, no open port left

Every part is a child process in its own session (`serving.run_process`), with its logs and
configs in one temporary folder (`stack.folder`, removed on exit unless `keep=True`). Leaving
the block -- normally or by an exception -- stops every part; `leftovers()` then lists any
process group still alive or port still open (the tests assert it is empty).
"""
from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from course_utils.production.serving import free_port, run_process, wait_for_port
from course_utils.production.stack.nginx import run_nginx
from course_utils.production.stack.redis_server import run_redis

__all__ = ["Stack", "replica_command", "load_during"]


def replica_command(bundle: str | Path, port: int, name: str, redis_url: str | None = None,
                    faults: bool = False, extra: tuple = ()) -> list[str]:
    """The argv that starts one replica (the same line runs it outside the course)."""
    cmd = [sys.executable, "-m", "course_utils.production.stack.replica", "--bundle", str(bundle),
           "--port", str(port), "--name", name]
    if redis_url:
        cmd += ["--redis", redis_url]
    if faults:
        cmd.append("--faults")
    return cmd + [str(x) for x in extra]


class Stack:
    """`replicas` uvicorn replicas of the bundle's service behind nginx, sharing one Redis.

    redis: False runs without a cache; faults: True enables the replicas' /admin/faults;
    replica_args: extra command-line options for every replica (see `replica.main`);
    nginx: options for `nginx.nginx_config` (max_fails, fail_timeout_s, tries, ...).
    """

    def __init__(self, bundle: str | Path, replicas: int = 2, redis: bool = True, faults: bool = True,
                 folder: str | Path | None = None, keep: bool = False, replica_args: tuple = (),
                 ready_timeout: float = 180.0, nginx: dict | None = None):
        if not 1 <= replicas <= 8:
            raise ValueError(f"replicas must be in [1, 8] on one machine, got {replicas}")
        self.bundle, self.n, self.use_redis, self.faults = Path(bundle), replicas, redis, faults
        self.replica_args, self.ready_timeout, self.nginx_options = tuple(replica_args), ready_timeout, nginx or {}
        self._folder_arg, self.keep = folder, keep
        self._parts: dict[str, contextlib.ExitStack] = {}
        self._sessions: set[int] = set()
        self._procs: dict[str, object] = {}
        self.ports: dict[str, int] = {}

    # ------------------------------------------------------------------ parts
    def _start(self, name: str, cm) -> object:
        part = contextlib.ExitStack()
        before = _child_sessions()
        try:
            value = part.enter_context(cm)
        except BaseException:
            part.close()
            raise
        finally:
            self._sessions |= _child_sessions() - before
        self._parts[name] = part
        return value

    def _stop(self, name: str) -> None:
        part = self._parts.pop(name, None)
        if part is not None:
            part.close()

    def start_redis(self) -> str:
        """Start (or restart, on the same port) the Redis cache."""
        port = self.ports.setdefault("redis", free_port())
        self._stop("redis")
        self.redis_url = self._start("redis", run_redis(self.folder / "redis", port=port))
        return self.redis_url

    def stop_redis(self) -> None:
        """Stop Redis (the replicas go on without the cache)."""
        self._stop("redis")

    def start_replica(self, i: int, wait_ready: bool = True) -> str:
        """Start (or restart, on the same port) replica i; returns its URL."""
        name = f"r{i + 1}"
        port = self.ports.setdefault(name, free_port())
        self._stop(name)                              # a crashed predecessor: nothing to stop, but tidy
        cmd = replica_command(self.bundle, port, name, self.redis_url, self.faults, self.replica_args)
        self._procs[name] = self._start(name, run_process(
            cmd, port, self.folder / "logs" / f"{name}.log", health_url=f"http://127.0.0.1:{port}/health",
            timeout=120, die_with_parent=True))
        if wait_ready:
            self.wait_ready([i])
        return f"http://127.0.0.1:{port}"

    def wait_ready(self, indices=None, timeout: float | None = None) -> None:
        """Block until the replicas' /ready answers 200 (TimeoutError after `timeout` s)."""
        for i in indices if indices is not None else range(self.n):
            name = f"r{i + 1}"
            wait_for_port(self.ports[name], timeout=timeout or self.ready_timeout, process=self._procs[name],
                          health_url=f"http://127.0.0.1:{self.ports[name]}/ready")

    def kill_replica(self, i: int) -> None:
        """SIGKILL replica i's process group -- a crash: no goodbye, connections reset."""
        proc = self._procs[f"r{i + 1}"]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    # ------------------------------------------------------------------ whole stack
    @property
    def replica_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{self.ports[f'r{i + 1}']}" for i in range(self.n)]

    @property
    def nginx_conf(self) -> str:
        """The generated nginx.conf (as nginx runs it)."""
        return (self.folder / "nginx" / "nginx.conf").read_text(encoding="utf-8")

    def processes(self) -> dict[str, int]:
        """{part: pid} of the parts started (alive or not)."""
        return {name: proc.pid for name, proc in self._procs.items()}

    def start(self) -> "Stack":
        """Start every part (what `with Stack(...)` does); call `close()` after -- it also runs
        when this process exits, and the parts get SIGTERM if it is killed."""
        return self.__enter__()

    def __enter__(self) -> "Stack":
        atexit.register(self.close)
        self.folder = Path(self._folder_arg or tempfile.mkdtemp(prefix="search-stack-"))
        (self.folder / "logs").mkdir(parents=True, exist_ok=True)
        self.redis_url = None
        self._sessions: set[int] = set()
        try:
            if self.use_redis:
                self.start_redis()
            for i in range(self.n):
                self.start_replica(i, wait_ready=False)
            self.wait_ready()
            upstreams = [u.removeprefix("http://") for u in self.replica_urls]
            self.ports["nginx"] = free_port()
            self.url = self._start("nginx", run_nginx(self.folder / "nginx", upstreams, port=self.ports["nginx"],
                                                      **self.nginx_options))
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop every part (nginx first, then the replicas, then Redis)."""
        for name in ["nginx"] + [f"r{i + 1}" for i in range(self.n)] + ["redis"] + list(self._parts):
            self._stop(name)
        atexit.unregister(self.close)
        if not self.keep:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __exit__(self, *exc) -> None:
        self.close()

    def leftovers(self) -> list[str]:
        """What is still running after close(): live process groups and open ports (should be [])."""
        left = [f"process {pid} ({cmd}) is still running" for pid, cmd in _processes_in(self._sessions)]
        for name, port in self.ports.items():
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    left.append(f"{name}: port {port} still accepts connections")
        return left


def _stat_fields(pid: str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()   # after "pid (comm) ": state ppid pgrp session ...


def _child_sessions() -> set[int]:
    """Pids of this process's children that lead their own session (how run_process starts them)."""
    me, found = str(os.getpid()), set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        f = _stat_fields(pid)
        if f and f[1] == me and f[3] == pid:
            found.add(int(pid))
    return found


def _processes_in(sessions: set[int]) -> list[tuple[int, str]]:
    """(pid, command) of the live (non-zombie) processes in `sessions`."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        f = _stat_fields(pid)
        if f and f[0] != "Z" and int(f[3]) in sessions:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            out.append((int(pid), cmd.strip()[:80]))
    return out


def load_during(url: str, queries, events=(), **load) -> tuple[dict, list[dict], list[tuple[str, float]]]:
    """Run `run_load(url, queries, method="GET", **load)` and fire each event of `events`
    [(after_n_requests, name, fn), ...] once that many requests were answered.

    Returns (the load summary, one record per request, [(event name, time it fired, s)]).
    A failing event stops nothing: its exception is re-raised after the load has finished.
    """
    from course_utils.production.service.loadtest import run_load

    records: list[dict] = []
    out: dict = {}
    runner = threading.Thread(target=lambda: out.update(run_load(url, queries, method="GET",
                                                                 records=records, **load)))
    start = time.perf_counter()
    runner.start()
    fired, error = [], None
    for after, name, fn in sorted(events, key=lambda e: e[0]):
        while len(records) < after and runner.is_alive():
            time.sleep(0.01)
        if not runner.is_alive():
            break
        try:
            fn()
        except Exception as err:          # keep the load going; report once it is over
            error = error or err
        fired.append((name, round(time.perf_counter() - start, 3)))
    runner.join()
    if error is not None:
        raise error
    return out, records, fired
