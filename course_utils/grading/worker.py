"""Run one learner notebook in its sandboxed kernel, then compute its verdicts -- a separate process.

    python -m course_utils.grading.worker PRIVATE_DIR

PRIVATE_DIR (the grader's, never visible to the learner's kernel) holds `job.json`: the notebook,
the learner's folder, the sandbox, the limits, the chapter's exercise ids. The worker

1. starts a Jupyter kernel in the sandbox (see `sandbox`; the kernel talks to the worker over
   Unix sockets in a folder of its own, since the sandbox has no network), injects FAST=True and
   SEED=0 after the `parameters` cell, and executes the cells one by one: a cell that raises is
   recorded and the next runs; a cell that exceeds the time limit or kills the kernel is *fatal*:
   the kernel is killed with its whole sandbox, a fresh one runs the cells before it again, and
   no later cell runs (so the exercises defined before it still count);
2. for each exercise, asks the kernel for the learner's function (the one last given to `check`,
   else the notebook's global of that name) and runs the hidden cases *in this process* with that
   function as a `remote.Remote`: inputs go to the kernel as plain data, outputs come back as plain
   data, and the comparison with the expected values happens here (`checks._run` over the
   exercise's held-back cases, the ones the grade counts; items graded by hand are skipped);
3. writes `verdicts.json` (atomically, after each step) and `executed.ipynb` into PRIVATE_DIR.

Outputs of the notebook beyond `MAX_OUTPUT` bytes are dropped; messages from the kernel beyond
`remote.MAX_MESSAGE` bytes drop the connection. The grader reads only PRIVATE_DIR's two files.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import sys
import time
from pathlib import Path

__all__ = ["MAX_OUTPUT", "DROPPED", "EXIT_OK", "Run", "inject_parameters", "run_sync", "main"]

MAX_OUTPUT = 2_000_000       # bytes of outputs kept per notebook
DROPPED = f"\n[the grader dropped this notebook's outputs beyond {MAX_OUTPUT // 1_000_000} MB]\n"
EXIT_OK = 0


def _write_json(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


class Run:
    """One learner: the kernel, the cells, the verdicts."""

    def __init__(self, private: Path):
        self.private = Path(private)
        self.job = json.loads((self.private / "job.json").read_text())
        self.work, self.sockets = Path(self.job["work"]), Path(self.job["sockets"])
        self.out = {"status": "ok", "detail": "", "fatal_cell": None, "exercises": {},
                    "truncated": False, "restarts": 0}
        self.km = self.client = None
        self.outputs_size = 0
        self.started = time.monotonic()

    def save(self) -> None:
        _write_json(self.private / "verdicts.json", self.out)

    # ------------------------------------------------------------------ the kernel
    def _kernel_manager(self):
        import zmq
        from jupyter_client.kernelspec import KernelSpec
        from jupyter_client.manager import AsyncKernelManager

        from . import remote, sandbox

        box = sandbox.Sandbox(mode=self.job["sandbox"], work=self.work, sockets=self.sockets,
                              readable=self.job["readable"], hidden=self.job["hidden"],
                              limits=sandbox.Limits(**self.job["limits"]), env=self.job["env"],
                              uid=self.job.get("uid"), stage=self.job.get("stage"))
        conn = self.sockets / f"kernel-{secrets.token_hex(4)}.json"
        km = AsyncKernelManager(transport="ipc", ip=str(self.sockets / f"k{secrets.token_hex(3)}"),
                                connection_file=str(conn))
        km._kernel_spec = KernelSpec(argv=sandbox.kernel_command(box), display_name="sandbox",
                                     language="python", interrupt_mode="message",
                                     env={} if box.mode == "bwrap" else dict(self.job["env"]))
        km.context.setsockopt(zmq.MAXMSGSIZE, remote.MAX_MESSAGE)   # a huge message drops the socket
        km.shutdown_wait_time = 2.0
        return km

    def start(self, nb):
        from nbclient import NotebookClient

        self.km = self._kernel_manager()
        worker = self

        class Client(NotebookClient):
            def output(self, outs, msg, display_id, cell_index):
                content = msg.get("content", {})
                left = MAX_OUTPUT - worker.outputs_size
                if msg.get("msg_type") == "stream" and 0 < left < len(str(content.get("text", ""))):
                    content["text"] = str(content["text"])[:left] + DROPPED   # keep the start
                    worker.out["truncated"] = True
                worker.outputs_size += len(json.dumps(content, default=str))
                if worker.outputs_size > MAX_OUTPUT + 1000:
                    if not worker.out["truncated"]:
                        worker.out["truncated"] = True
                        outs.append(_stream(DROPPED))
                    return None
                return super().output(outs, msg, display_id, cell_index)

        self.client = Client(nb, km=self.km, timeout=self.job["timeout"], allow_errors=True,
                             startup_timeout=120, kernel_name="sandbox", record_timing=False,
                             resources={"metadata": {"path": str(self.work)}})
        self.client.reset_execution_trackers()
        self.client.start_new_kernel(cwd=str(self.work), env=self._launch_env())
        self.client.start_new_kernel_client()

    def _launch_env(self) -> dict:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        if self.job["sandbox"] == "none":
            env.update({k: v for k, v in os.environ.items() if not k.startswith("COURSE_GRADING")})
            env.update(self.job["env"])
        return env

    def stop(self) -> None:
        """Kill the kernel and with it the sandbox (its PID namespace: every process in it)."""
        if self.client is not None and self.client.kc is not None:
            try:
                self.client.kc.stop_channels()
            except Exception:   # noqa: BLE001
                pass
        if self.km is not None:
            try:
                run_sync(_kill)(self.km)
            except Exception:   # noqa: BLE001
                pass
        self.km = self.client = None

    # ------------------------------------------------------------------ the cells
    def execute(self, nb, upto: int | None = None, replay: bool = False) -> int | None:
        """Run cells [0, upto); return the index of a fatal cell (timeout / dead kernel), or None."""
        from nbclient.exceptions import CellTimeoutError, DeadKernelError

        budget, started = self.job["total"], time.monotonic()   # a replay gets a budget of its own
        for index, cell in enumerate(nb.cells[:upto]):
            if cell.cell_type != "code":
                continue
            left = budget - (time.monotonic() - started)
            if left <= 0:
                self._fatal(index, "timeout", f"time limit: {budget} s for the whole notebook")
                return index
            self.client.timeout = int(max(1, min(self.job["timeout"], left)))
            try:
                self.client.execute_cell(cell, index)
            except CellTimeoutError:
                self._fatal(index, "timeout", f"time limit: cell {index} ran longer than "
                                              f"{self.client.timeout} s")
                return index
            except DeadKernelError:
                self._fatal(index, "kernel died", f"the kernel died in cell {index}")
                return index
            except Exception as err:   # noqa: BLE001 -- a kernel that vanished mid-message
                self._fatal(index, "kernel died", f"cell {index}: {type(err).__name__}: {str(err)[:150]}")
                return index
            if any(o.get("output_type") == "error" and o.get("ename") == "MemoryError"
                   for o in cell.get("outputs", [])) and self.out["status"] in ("ok", "errors"):
                self.out["status"], self.out["detail"] = "memory", f"cell {index} ran out of memory"
            elif any(o.get("output_type") == "error" for o in cell.get("outputs", [])) \
                    and self.out["status"] == "ok":
                self.out["status"] = "errors"
        return None

    def _fatal(self, index: int, status: str, detail: str) -> None:
        if self.out["fatal_cell"] is None:
            self.out.update(status=status, detail=detail, fatal_cell=index)
            self.save()

    # ------------------------------------------------------------------ the sandbox's processes
    def _kernel_pid(self) -> int | None:
        """The kernel's pid as this process sees it: the process whose command line names our
        connection file and which lives in *another* PID namespace (the sandbox's) -- never bwrap
        or the limits wrapper, whose command lines name the file too."""
        conn = str(self.km.connection_file).encode() if self.km is not None else None
        mine, found = _pidns(os.getpid()), []
        for pid in _pids():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
            except OSError:
                continue
            if conn in argv and b"ipykernel_launcher" in argv and "bwrap" not in exe \
                    and _pidns(pid) not in (None, mine):
                found.append((_stat(pid)[19], pid))   # start time: forks of the kernel are younger
        return min(found)[1] if found else None

    def reap(self) -> int:
        """Kill every process of the sandbox but the kernel (daemons, a fork bomb): stopped first,
        then killed, round after round, so none forks meanwhile. Returns how many."""
        if self.job["sandbox"] != "bwrap" or self.km is None:
            return 0
        kernel = self._kernel_pid()
        ns = _pidns(kernel) if kernel else None
        if ns is None or ns == _pidns(os.getpid()):   # never outside the sandbox's namespace
            return 0
        self.out.setdefault("pidns", []).append(ns)
        keep, p = {kernel}, kernel
        while p > 1:
            p = _ppid(p)
            keep.add(p)
        killed = 0
        for _ in range(200):
            others = [q for q in _pids() if q not in keep and q > 1 and _pidns(q) == ns
                      and _stat(q)[0] != "Z"]   # zombies are dead already
            if not others:
                break
            for sig in (signal.SIGSTOP, signal.SIGKILL):
                for q in others:
                    try:
                        os.kill(q, sig)
                    except OSError:
                        pass
            killed += len(others)
            time.sleep(0.01)
        return killed

    # ------------------------------------------------------------------ the verdicts
    def evaluate(self) -> None:
        from . import cases

        todo = [ex for ex in cases.chapter_exercises(self.job["chapter"]) if not ex.manual]
        for ex in todo:
            self.out["exercises"].setdefault(ex.id, {"status": "not run", "message": ""})
        i = 0
        while i < len(todo):
            try:
                peer, listener = self._connect()
            except Exception as err:   # noqa: BLE001
                for ex in todo[i:]:
                    self.out["exercises"][ex.id]["message"] = f"could not reach the kernel ({err})"[:300]
                self.save()
                return
            try:
                while i < len(todo):
                    ex = todo[i]
                    i += 1
                    self.out["exercises"][ex.id] = self._one(peer, ex)
                    self.save()
                    if self.out["exercises"][ex.id].get("broken"):
                        break
            finally:
                self._disconnect(peer, listener)
            if i < len(todo) and not self._kernel_idle():
                if not self._restart():
                    return
                self.out["background_killed"] += self.reap()

    def _one(self, peer, ex) -> dict:
        from . import checks, remote

        peer.deadline = None
        root = remote.Remote(peer, {"$h": 0})
        try:
            peer.deadline = time.monotonic() + 30
            fn = root(ex.id, ex.function)
        except remote.PeerLost as err:
            return {"status": "not run", "message": f"the kernel was lost ({err})", "broken": True}
        except checks._TimeLimit:
            return {"status": "not run", "message": "the kernel did not answer", "broken": True}
        except Exception as err:   # noqa: BLE001 -- LookupError: no such function
            return {"status": "not run", "message": str(err)[:300]}
        finally:
            peer.deadline = None
        total = len(ex.hidden_cases)
        if isinstance(fn, remote.Remote) and not fn._meta.get("callable"):
            return {"status": "failed", "cases_passed": 0, "cases_total": total,
                    "message": f"`{ex.function}` is a {fn._meta.get('type')}, not a function"}
        if not isinstance(fn, remote.Remote):
            return {"status": "failed", "cases_passed": 0, "cases_total": total,
                    "message": f"`{ex.function}` is a {type(fn).__name__}, not a function"}
        try:
            result = checks._run(ex, fn, self.job["eval_seconds"], "hidden")
        except remote.PeerLost as err:
            return {"status": "failed", "cases_passed": 0, "cases_total": total, "broken": True,
                    "message": f"the kernel died during the hidden tests ({str(err)[:100]})"}
        out = {"status": result.status, "cases_passed": result.cases_passed,
               "cases_total": result.cases_total, "message": result.message[:500]}
        if "time limit" in result.failing:
            out["broken"] = True   # the kernel may still be running the learner's call
        return out

    def _connect(self):
        from . import remote

        path = self.sockets / f"g{secrets.token_hex(4)}"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        os.chmod(path, 0o777)
        if self.job.get("uid") is not None:
            os.chown(path, self.job["uid"], self.job["uid"])
        listener.listen(1)
        listener.settimeout(30)
        self.client.kc.execute(f"import course_utils.grading.remote as _grader_remote\n"
                               f"_grader_remote.serve({str(path)!r})", silent=True, store_history=False)
        conn, _ = listener.accept()
        conn.settimeout(None)
        from . import checks

        peer = remote.Peer(conn)
        peer.on_timeout = checks._TimeLimit
        peer.reraise = (remote._Bye, remote.PeerLost, checks._TimeLimit)   # a time limit is ours
        return peer, listener

    def _disconnect(self, peer, listener) -> None:
        try:
            peer.deadline = time.monotonic() + 2
            peer.send({"op": "bye", "h": 0})
        except BaseException:   # noqa: BLE001
            pass
        for s in (peer.sock, listener):
            try:
                s.close()
            except OSError:
                pass

    def _kernel_idle(self, wait: float = 10.0) -> bool:
        """Interrupt whatever the kernel still runs; True when it answers again within `wait` s."""
        try:
            run_sync(self.km.interrupt_kernel)()
        except Exception:   # noqa: BLE001
            return False
        try:
            reply = self.client.kc.execute_interactive("pass", timeout=wait, silent=True,
                                                       store_history=False, output_hook=lambda m: None)
            return reply["content"]["status"] == "ok"
        except Exception:   # noqa: BLE001
            return False

    def _restart(self) -> bool:
        """A fresh sandbox with the cells before the fatal one (all cells if none) run again."""
        self.stop()
        self.out["restarts"] += 1
        if self.out["restarts"] > 3:
            return False
        import copy

        nb = copy.deepcopy(self.nb)
        try:
            self.start(nb)
        except Exception as err:   # noqa: BLE001
            self.out["detail"] += f"; could not restart the kernel ({str(err)[:100]})"
            return False
        return self.execute(nb, self.out["fatal_cell"], replay=True) is None

    # ------------------------------------------------------------------ the whole run
    def run(self) -> None:
        import nbformat

        nb = inject_parameters(nbformat.read(self.job["notebook"], as_version=4))
        self.nb = nb
        self.save()
        import copy

        executed = copy.deepcopy(nb)
        try:
            self.start(executed)
            fatal = self.execute(executed)
            nbformat.write(executed, self.private / "executed.ipynb")
            if fatal is not None and not self._restart():
                self.save()
                return
            self.out["background_killed"] = self.reap()
            self.evaluate()
        finally:
            self.stop()
            self.save()


def inject_parameters(nb, source: str = "FAST = True\nSEED = 0"):
    """`nb` with a cell setting FAST and SEED after its `parameters` cell (first, if none) --
    as papermill does, tagged `injected-parameters`."""
    from nbformat.v4 import new_code_cell

    tags = [c.get("metadata", {}).get("tags", []) for c in nb.cells]
    where = next((i + 1 for i, t in enumerate(tags) if "parameters" in t), 0)
    cell = new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells = [c for c, t in zip(nb.cells, tags) if "injected-parameters" not in t]
    nb.cells.insert(min(where, len(nb.cells)), cell)
    return nb


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _pidns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _stat(pid: int) -> list:
    """/proc/PID/stat after the command name: [state, ppid, ...] ("" and zeros if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return [fields[0]] + [int(x) for x in fields[1:]]
    except (OSError, ValueError, IndexError):
        return ["", *[0] * 50]


def _ppid(pid: int) -> int:
    return _stat(pid)[1]


def run_sync(fn):
    from jupyter_core.utils import run_sync as wrap  # the event loop nbclient uses too

    return wrap(fn)


def _stream(text: str):
    from nbformat.v4 import new_output

    return new_output("stream", name="stderr", text=text)


async def _kill(km) -> None:
    try:
        await km.shutdown_kernel(now=True)
    except Exception:   # noqa: BLE001
        if km.has_kernel:
            await km.kill_kernel()


def _die_with_parent() -> None:
    """SIGKILL this worker when the grader dies (then bwrap's --die-with-parent ends the sandbox)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:   # the grader died before the prctl
        os._exit(1)


def main(argv=None) -> int:
    private = Path((argv or sys.argv[1:])[0])
    _die_with_parent()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    try:
        import resource

        cap = 8 * 2**30   # the worker itself: junk from the kernel cannot take the machine
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ImportError, ValueError, OSError):
        pass
    Run(private).run()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
