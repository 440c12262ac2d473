"""A real multi-node Ray cluster on one machine: nodes on loopback addresses, always stopped.

`local_cluster(nodes=2)` starts a head node on 127.0.0.2 and worker nodes on 127.0.0.3, 127.0.0.4,
... with the `ray start` command line (each node its own process tree, as on separate machines),
connects this process to it with `ray.init(address=...)` and yields a `Cluster`. When the block
ends -- also on an exception or an interrupt -- the driver disconnects (`ray.shutdown()`), every
process each node started is stopped (SIGTERM, then SIGKILL) and the cluster's temporary folder
is removed. Nothing listens beyond loopback, and the memory each node may claim is capped.

The cluster uses token authentication (Ray's default): a fresh random token per cluster, given
to every node and to this process as RAY_AUTH_TOKEN, and removed again on exit.

    >>> with local_cluster(nodes=2) as cluster:          # doctest: +SKIP
    ...     cluster.address, len(cluster.alive_nodes())
    ('127.0.0.2:40123', 2)
"""
from __future__ import annotations

import atexit
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Node", "HEAD_IP", "node_ip", "Cluster", "start_cluster", "local_cluster", "connect", "quiet_ray",
           "session_processes", "muted", "node_commands"]

HEAD_IP = "127.0.0.2"  # 127.0.0.1 would be rewritten by Ray to the machine's outward address
GB = 1_000_000_000


def node_ip(i: int) -> str:
    """Loopback address of node i (0 = head): 127.0.0.2, 127.0.0.3, ...

    >>> node_ip(0), node_ip(1)
    ('127.0.0.2', '127.0.0.3')
    """
    if not isinstance(i, int) or not 0 <= i < 250:
        raise ValueError(f"node index must be a whole number 0..249, got {i!r}")
    return f"127.0.0.{i + 2}"


def _free_port(host: str = HEAD_IP) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _ray_bin() -> str:
    ray = Path(sys.executable).with_name("ray")
    return str(ray) if ray.exists() else "ray"


def quiet_ray() -> None:
    """Keep Ray's logs, progress bars and deduplication notices off this process's stderr."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # the driver's C++ core: errors only
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")     # Ray Data's console log ("finished")
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", module=r"ray(\.|$)")
    try:
        from ray.data import DataContext  # importing ray.data configures its loggers: first

        ctx = DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        ctx.verbose_stats_logs = False
        if hasattr(ctx, "enable_operator_progress_bars"):
            ctx.enable_operator_progress_bars = False
        from ray.util.debug import log_once

        log_once("ray_data_progress_manager_disabled")  # "Progress bars disabled" would be logged once
    except ImportError:
        pass
    for name in ("ray", "ray.data", "ray.serve", "ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _use_token(token: str) -> None:
    """Token auth with `token` for this process; Ray caches both, so refresh its caches."""
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    with contextlib.suppress(ImportError, AttributeError):
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


@contextlib.contextmanager
def muted() -> Iterator[list]:
    """Capture what this process prints (Python's stdout/stderr and the C-level file descriptors
    1 and 2) during the block; yields a list that holds the captured text afterwards.

    Ray's driver prints the failures it hears about ("(raylet) A worker died ...") from a
    thread; inside this block they are kept instead of flooding the notebook.

    >>> with muted() as out:
    ...     print("hidden")
    >>> out[0].strip()
    'hidden'
    """
    import io

    buffer, captured = io.StringIO(), []
    saved_fds, tmp = [], tempfile.TemporaryFile(mode="w+b")
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            saved_fds.append((fd, os.dup(fd)))
    try:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for fd, _ in saved_fds:
            os.dup2(tmp.fileno(), fd)
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield captured
    finally:
        for fd, copy in saved_fds:
            os.dup2(copy, fd)
            os.close(copy)
        tmp.seek(0)
        captured.append(buffer.getvalue() + tmp.read().decode(errors="replace"))
        tmp.close()


def connect(address: str | None = None, num_cpus: int | None = None,
            object_store_memory: int = GB // 2, node_ip_address: str = HEAD_IP):
    """`ray.init` quietly: to a running cluster at `address`, or (None) a new one in-process.

    Only this call changes between one machine and a cluster: `connect()` starts Ray inside this
    process; `connect("127.0.0.2:6380")` joins the cluster whose head listens there.
    """
    import ray

    quiet_ray()
    kwargs = dict(log_to_driver=False, logging_level=logging.ERROR, include_dashboard=False,
                  configure_logging=True)
    if address is None:
        kwargs.update(num_cpus=num_cpus, object_store_memory=object_store_memory)
        _use_token(os.environ.get("RAY_AUTH_TOKEN") or secrets.token_hex(32))
        with muted():
            ray.init(**kwargs)
    else:
        kwargs.pop("include_dashboard")
        with muted():
            ray.init(address=address, _node_ip_address=node_ip_address, **kwargs)
    quiet_ray()
    return ray.get_runtime_context()


def session_processes(sid: int) -> list[int]:
    """Pids of live (non-zombie) processes in session `sid` (a node started with its own session)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        state, session = fields[0], int(fields[3])
        if session == sid and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


@dataclass
class Node:
    ip: str
    process: subprocess.Popen
    log: Path

    @property
    def alive(self) -> bool:
        return bool(session_processes(self.process.pid))


@dataclass
class Cluster:
    """A running local cluster: its `address`, its nodes by loopback IP, and how to stop one."""
    address: str
    temp_dir: Path
    env: dict
    nodes: dict = field(default_factory=dict)   # ip -> Node
    _saved: dict = field(default_factory=dict, repr=False)
    _common: list = field(default_factory=list, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def alive_nodes(self) -> list[dict]:
        """`ray.nodes()` entries of the nodes that are alive (needs a connected driver)."""
        import ray

        return [n for n in ray.nodes() if n["Alive"]]

    def node_ids(self) -> dict[str, str]:
        """{Ray node id: loopback IP} of the alive nodes."""
        return {n["NodeID"]: n["NodeManagerAddress"] for n in self.alive_nodes()}

    def add_node(self, wait: bool = True, timeout: float = 120.0) -> str:
        """Start one more worker node on the next loopback address; returns its IP."""
        ip = node_ip(len(self.nodes))
        while ip in self.nodes:
            ip = node_ip(int(ip.rsplit(".", 1)[1]) - 1)
        cmd = [_ray_bin(), "start", f"--address={self.address}", f"--node-ip-address={ip}",
               *self._common]
        self.nodes[ip] = _start_node(cmd, ip, self.env, self.temp_dir)
        if wait:
            _wait(lambda: ip in {n["NodeManagerAddress"] for n in self.alive_nodes()}, timeout,
                  f"node {ip} to join", {ip: self.nodes[ip]})
        return ip

    def processes(self) -> list[int]:
        """Pids of every live process the cluster's nodes started."""
        return [pid for node in self.nodes.values() for pid in session_processes(node.process.pid)]

    def stop(self) -> None:
        """Disconnect the driver, stop every node (workers first) and remove the temp folder.
        Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(Exception):
            import ray

            ray.shutdown()
        for ip in sorted(self.nodes, reverse=True):
            _stop_node(self.nodes[ip])
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if self._saved.get("RAY_AUTH_TOKEN"):
            _use_token(self._saved["RAY_AUTH_TOKEN"])
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def kill_node(self, ip: str, timeout: float = 15.0) -> float:
        """Stop node `ip` abruptly (SIGKILL to all its processes), as a machine that dies; seconds."""
        if ip not in self.nodes:
            raise ValueError(f"no node {ip!r}; the nodes are {sorted(self.nodes)}")
        start = time.perf_counter()
        _stop_node(self.nodes[ip], timeout, sig=signal.SIGKILL)
        return time.perf_counter() - start


_WATCHDOG = """
import os, shutil, signal, sys, time
parent, sid, folder = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
while alive(parent) and alive(sid):
    time.sleep(1)
if alive(sid):   # the driver died without stopping this node: stop the node's whole session
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
                if int(stat[stat.rindex(")") + 2:].split()[3]) == sid:
                    os.kill(int(entry), signal.SIGKILL)
            except (OSError, ValueError):
                pass
    time.sleep(1)
    shutil.rmtree(folder, ignore_errors=True)   # the cluster's temporary folder
"""


def _start_node(cmd: list[str], ip: str, env: dict, folder: Path) -> Node:
    """Start a node in its own session, plus a watchdog that stops it if this process dies."""
    log = folder / f"node-{ip}.log"
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(proc.pid), str(folder)],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return Node(ip, proc, log)


def _stop_node(node: Node, timeout: float = 15.0, sig: int = signal.SIGTERM) -> None:
    """Signal every process of the node's session, wait, then SIGKILL what is left; reap."""
    sid = node.process.pid
    deadline = time.monotonic() + timeout
    for pid in session_processes(sid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    while session_processes(sid) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in session_processes(sid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        node.process.wait(timeout=5)
    end = time.monotonic() + 5
    while session_processes(sid) and time.monotonic() < end:
        time.sleep(0.1)


def _wait(check, timeout: float, what: str, nodes: dict) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        dead = [ip for ip, n in nodes.items() if n.process.poll() is not None]
        if dead:
            log = nodes[dead[0]].log.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"Ray node {dead[0]} exited while waiting for {what}:\n{log}")
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def node_commands(nodes: int = 2, address: str = f"{HEAD_IP}:6379", cpus_per_node: int = 2,
                  memory: int = GB, object_store_memory: int = GB // 2,
                  resources: dict | None = None, temp_dir: str | None = None,
                  client_port: int | None = None) -> list[list[str]]:
    """The arguments of `ray start` for the head and each worker node (what `start_cluster` runs).

    >>> node_commands(2, "127.0.0.2:6380")[1][:2]
    ['--address=127.0.0.2:6380', '--node-ip-address=127.0.0.3']
    """
    import json

    common = [f"--num-cpus={cpus_per_node}", f"--memory={int(memory)}",
              f"--object-store-memory={int(object_store_memory)}", "--disable-usage-stats", "--block"]
    if resources:
        common.append(f"--resources={json.dumps(resources)}")
    port = address.rsplit(":", 1)[1]
    head = ["--head", f"--node-ip-address={HEAD_IP}", f"--port={port}", "--include-dashboard=false"]
    head += [f"--ray-client-server-port={client_port}"] if client_port else []
    head += [f"--temp-dir={temp_dir}"] if temp_dir else []
    workers = [[f"--address={address}", f"--node-ip-address={node_ip(i)}"] for i in range(1, nodes)]
    return [head + common] + [w + common for w in workers]


def _wait_for_workers(cluster: "Cluster", nodes: int, timeout: float, retries: int = 2) -> None:
    """Wait until `nodes` nodes are alive; a worker whose start fails (on a very busy machine its
    raylet can time out while registering) is started again, up to `retries` times."""
    deadline = time.monotonic() + timeout
    restarts = 0
    while len(cluster.alive_nodes()) < nodes:
        for ip, node in list(cluster.nodes.items()):
            if ip != HEAD_IP and node.process.poll() is not None:
                if restarts >= retries:
                    log = node.log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"Ray node {ip} failed to start {retries + 1} times:\n{log}")
                _stop_node(node)
                cmd = [_ray_bin(), "start", f"--address={cluster.address}",
                       f"--node-ip-address={ip}", *cluster._common]
                cluster.nodes[ip] = _start_node(cmd, ip, cluster.env, cluster.temp_dir)
                restarts += 1
        if cluster.nodes[HEAD_IP].process.poll() is not None:
            raise RuntimeError("the Ray head node exited:\n"
                               + cluster.nodes[HEAD_IP].log.read_text(errors="replace")[-3000:])
        if time.monotonic() > deadline:
            raise TimeoutError(f"{nodes} alive Ray nodes did not appear within {timeout:.0f} s")
        time.sleep(0.5)


def _connect_when_ready(cluster: "Cluster", timeout: float) -> None:
    """`connect` to the head, retrying while its raylet has not registered yet."""
    import ray

    deadline = time.monotonic() + timeout
    while True:
        try:
            connect(cluster.address)
            return
        except ConnectionError:
            with contextlib.suppress(Exception):
                ray.shutdown()
            if time.monotonic() > deadline or cluster.nodes[HEAD_IP].process.poll() is not None:
                raise
            time.sleep(1.0)


def start_cluster(nodes: int = 2, cpus_per_node: int = 2, memory: int = GB,
                  object_store_memory: int = GB // 2, timeout: float = 120.0,
                  connect_driver: bool = True, resources: dict | None = None) -> "Cluster":
    """Start a head and `nodes - 1` workers on loopback and connect to it; call `.stop()` after.

    Prefer `with local_cluster(...)`. Without it, the cluster is still stopped when this process
    exits (atexit), and a watchdog process per node stops the node if this process is killed.
    cpus_per_node: logical CPUs Ray may schedule per node (an actor takes 1; keep 1 spare for
    Ray Data's read and write tasks). memory / object_store_memory: bytes per node.
    resources: custom resources every node offers, e.g. {"embed_slot": 1} (one actor per node).
    """
    if not isinstance(nodes, int) or not 1 <= nodes <= 8:
        raise ValueError(f"nodes must be a whole number 1..8, got {nodes!r}")
    if not isinstance(cpus_per_node, int) or cpus_per_node < 1:
        raise ValueError(f"cpus_per_node must be a whole number >= 1, got {cpus_per_node!r}")
    if object_store_memory < 80_000_000 or memory < 100_000_000:
        raise ValueError("give each node at least 100 MB of memory and 80 MB of object store "
                         f"(got memory={memory}, object_store_memory={object_store_memory})")
    quiet_ray()
    folder = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Unix sockets live here
    token = secrets.token_hex(32)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
           "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_BACKEND_LOG_LEVEL", None)   # the nodes keep their normal logs (in temp_dir)
    port = _free_port()
    cluster = Cluster(f"{HEAD_IP}:{port}", folder, env)
    cluster._saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    commands = node_commands(nodes, cluster.address, cpus_per_node, memory, object_store_memory,
                             resources, str(folder), _free_port())
    cluster._common = commands[0][commands[0].index(f"--num-cpus={cpus_per_node}"):]
    atexit.register(cluster.stop)
    try:
        cluster.nodes[HEAD_IP] = _start_node([_ray_bin(), "start", *commands[0]], HEAD_IP, env, folder)
        _wait(lambda: _port_open(HEAD_IP, port), timeout, f"the head node on {cluster.address}",
              cluster.nodes)
        for _ in range(1, nodes):
            cluster.add_node(wait=False)
        _use_token(token)
        if connect_driver:
            with muted():  # a node that fails to start is reported by Ray's driver thread: keep it quiet
                _connect_when_ready(cluster, timeout)
                _wait_for_workers(cluster, nodes, timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextlib.contextmanager
def local_cluster(nodes: int = 2, cpus_per_node: int = 2, memory: int = GB,
                  object_store_memory: int = GB // 2, timeout: float = 120.0,
                  connect_driver: bool = True, resources: dict | None = None) -> Iterator[Cluster]:
    """`start_cluster(...)` as a context manager: the cluster is stopped when the block ends,
    also on an exception or an interrupt (and nothing of it is left running)."""
    cluster = start_cluster(nodes, cpus_per_node, memory, object_store_memory, timeout,
                            connect_driver, resources)
    try:
        yield cluster
    finally:
        cluster.stop()
