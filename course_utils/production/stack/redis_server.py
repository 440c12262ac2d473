"""Debian's `redis-server` as a throw-away cache on loopback: its own config, no persistence.

`redis_config(port, maxmemory_mb, policy)` is the whole configuration (shown in chapter 09b);
`run_redis(folder)` writes it into `folder`, starts `redis-server` as a child process on
127.0.0.1 and a free port, yields its `redis://` URL and stops it on exit (also on error).

>>> print(redis_config(6390, folder="/tmp/r").splitlines()[0])
bind 127.0.0.1
"""
from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from course_utils.paths import atomic_write
from course_utils.production.serving import free_port, run_process

__all__ = ["redis_config", "redis_binary", "run_redis"]


def redis_config(port: int, folder: str | Path, maxmemory_mb: int = 32,
                 policy: str = "allkeys-lru") -> str:
    """A redis.conf for a loopback-only, memory-only cache of at most `maxmemory_mb` MB."""
    return "\n".join([
        "bind 127.0.0.1",                   # loopback only
        "protected-mode yes",
        f"port {int(port)}",
        "daemonize no",                     # a child process we can stop, not a daemon
        f"dir {folder}",
        'save ""',                          # no RDB snapshots: a cache is rebuilt, not restored
        "appendonly no",                    # no append-only file either
        f"maxmemory {int(maxmemory_mb)}mb",  # the size limit ...
        f"maxmemory-policy {policy}",       # ... and what goes when it is reached
        "loglevel warning",
        "logfile \"\"",
    ]) + "\n"


def redis_binary() -> str:
    """Path of `redis-server`, or a clear error saying how to install it."""
    found = shutil.which("redis-server")
    if not found:
        raise FileNotFoundError("redis-server is not installed; on Debian/Ubuntu: "
                                "sudo apt-get install redis-server (the course starts its own copy)")
    return found


@contextlib.contextmanager
def run_redis(folder: str | Path, port: int | None = None, maxmemory_mb: int = 32,
              policy: str = "allkeys-lru", timeout: float = 20.0) -> Iterator[str]:
    """Start redis-server with `redis_config` in `folder`; yield `redis://127.0.0.1:PORT/0`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = folder / "redis.conf"
    atomic_write(conf, redis_config(port, folder, maxmemory_mb, policy))
    with run_process([redis_binary(), str(conf)], port, folder / "redis.log", timeout=timeout,
                     die_with_parent=True):
        yield f"redis://127.0.0.1:{port}/0"
