"""Debian's `nginx` as the load balancer in front of the replicas: a generated config, run as a child.

`nginx_config(...)` is the whole configuration (chapter 09b prints it):
- an `upstream` with the replicas, each with **passive health checks**: after `max_fails`
  failed attempts within `fail_timeout` seconds, a replica is taken out of rotation for
  `fail_timeout` seconds (open-source nginx has no active health checks; it learns from traffic);
- **retries on the next upstream** (`proxy_next_upstream`) on connection errors, timeouts and
  502/503/504, at most `tries` attempts per request within `retry_timeout_s`. nginx retries only
  idempotent requests (GET, HEAD ...) once a request was sent -- a POST that reached a dying
  replica is not replayed -- so the service offers search as `GET /search?q=...`;
- **timeouts** for connecting to a replica and for its answer;
- `/admin/` (fault injection on the replicas) is not reachable through the balancer;
- its own prefix, pid file, logs and temp folders, `daemon off`: nothing of the system's nginx
  (no /etc/nginx, no /var/log/nginx) is read or written, and stopping the child stops it all.

`run_nginx(folder, upstreams)` writes the config into `folder`, starts `nginx -p folder -c ...`
on 127.0.0.1 and a free port, yields its URL, and stops it on exit (also on error).

>>> conf = nginx_config(["127.0.0.1:8001", "127.0.0.1:8002"], port=8080, folder="/tmp/lb")
>>> print([line.strip() for line in conf.splitlines() if "server 127" in line][0])
server 127.0.0.1:8001 max_fails=1 fail_timeout=5s;
"""
from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from course_utils.paths import atomic_write
from course_utils.production.serving import free_port, run_process

__all__ = ["nginx_config", "nginx_binary", "run_nginx"]


def nginx_config(upstreams: Sequence[str], port: int, folder: str | Path, max_fails: int = 1,
                 fail_timeout_s: int = 5, tries: int = 2, retry_timeout_s: int = 10,
                 connect_timeout_s: float = 1.0, read_timeout_s: int = 10) -> str:
    """nginx.conf balancing `upstreams` ("host:port" strings) behind 127.0.0.1:`port`."""
    if not upstreams:
        raise ValueError("upstreams is empty: give at least one replica as 'host:port'")
    bad = [u for u in upstreams if not str(u).startswith("127.0.0.1:")]
    if bad:
        raise ValueError(f"upstreams must be on loopback (127.0.0.1:PORT), got {bad}")
    f = Path(folder)
    servers = "\n".join(f"        server {u} max_fails={max_fails} fail_timeout={fail_timeout_s}s;"
                        for u in upstreams)
    temps = "\n".join(f"    {kind}_temp_path {f / 'temp' / kind};"
                      for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""daemon off;
worker_processes 1;
pid {f / 'nginx.pid'};
error_log {f / 'logs' / 'error.log'} warn;
events {{ worker_connections 512; }}

http {{
    log_format balance '$request_method $uri $status $upstream_addr $upstream_status '
                       '$request_time $upstream_response_time';
    access_log {f / 'logs' / 'access.log'} balance;
{temps}
    proxy_max_temp_file_size 0;

    upstream search_replicas {{
{servers}
        keepalive 32;
    }}

    server {{
        listen 127.0.0.1:{int(port)};

        location /admin/ {{ return 404; }}

        location / {{
            proxy_pass http://search_replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout {connect_timeout_s:g}s;
            proxy_send_timeout {read_timeout_s}s;
            proxy_read_timeout {read_timeout_s}s;
            proxy_next_upstream error timeout http_502 http_503 http_504;
            proxy_next_upstream_tries {tries};
            proxy_next_upstream_timeout {retry_timeout_s}s;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    """Path of `nginx`, or a clear error saying how to install it."""
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if not found:
        raise FileNotFoundError("nginx is not installed; on Debian/Ubuntu: sudo apt-get install nginx "
                                "(the course runs its own copy with its own config, never the system's)")
    return found


@contextlib.contextmanager
def run_nginx(folder: str | Path, upstreams: Sequence[str], port: int | None = None,
              timeout: float = 20.0, **config) -> Iterator[str]:
    """Write `nginx_config(upstreams, ...)` into `folder`, run nginx; yield `http://127.0.0.1:PORT`."""
    folder = Path(folder)
    for sub in ("logs", "temp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = folder / "nginx.conf"
    atomic_write(conf, nginx_config(upstreams, port, folder, **config))
    cmd = [nginx_binary(), "-p", str(folder), "-c", str(conf), "-e", str(folder / "logs" / "error.log")]
    with run_process(cmd, port, folder / "logs" / "nginx.out", timeout=timeout, die_with_parent=True):
        yield f"http://127.0.0.1:{port}"
