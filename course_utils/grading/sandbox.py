"""The sandbox a learner's kernel runs in: bubblewrap namespaces plus resource limits.

`kernel_command(...)` gives the command line that starts one learner's Jupyter kernel:

    python sandbox.py --as BYTES --nproc N --cpu S --fsize BYTES [--uid U] [--chown PATH...] --
        bwrap --unshare-all --die-with-parent --new-session ... -- python -m ipykernel_launcher -f CONN

This file, run as a script (standard library only), sets the rlimits (address space, processes,
CPU seconds, file size, no core files), and -- when the grader runs as root -- gives the learner's
folder to a fresh unprivileged uid and switches to it, then executes bubblewrap. Inside:

- new user, PID, network, IPC, UTS and cgroup namespaces; uid 1000 inside; no network at all
  (loopback only); no new user namespaces;
- a read-only root that holds only what the kernel needs, read-only: /usr, /etc and the other
  system folders, the Python installation and virtual environment, the course package, its data
  folder and caches ($COURSE_* paths) and the shared data sets -- not the instructor's home, not
  the submissions, not the grader's output or private folders (hidden under an empty tmpfs if
  they lie inside a bound folder);
- a private tmpfs /tmp and home (size-limited), a new /proc and /dev;
- writable: only the learner's working folder and the folder of the kernel's sockets;
- `--die-with-parent`: when the grader's worker dies, the sandbox dies; when the sandbox's PID 1
  exits, the kernel kills every process of its PID namespace (double-forked ones too).

`mode="none"` runs the kernel with the same limits but without namespaces (trusted work only).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SANDBOX_UID", "INSTALL_HINT", "SYSTEM_DIRS", "SandboxUnavailable", "Limits", "Sandbox",
           "bwrap_path", "check_bwrap", "resolve", "bwrap_args", "kernel_command", "fresh_uid",
           "give_to"]

SANDBOX_UID = 1000          # the learner's uid inside the sandbox
INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: "
                "`sudo dnf install bubblewrap`), or pass --sandbox none to grade trusted "
                "submissions without a sandbox")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces here."""


@dataclass(frozen=True)
class Limits:
    """Per-process limits of a learner's kernel and everything it starts."""

    memory_mb: int = 6144        # address space of one process (RLIMIT_AS)
    processes: int = 256         # processes + threads of the sandbox's uid (RLIMIT_NPROC)
    cpu_seconds: int = 1800      # CPU time of one process (RLIMIT_CPU)
    file_mb: int = 1024          # largest file it may write (RLIMIT_FSIZE)
    tmp_mb: int = 512            # size of the private /tmp and of the home folder (tmpfs)


@dataclass
class Sandbox:
    """What one learner's kernel may see; `mode` is "bwrap" or "none"."""

    mode: str
    work: Path                           # the learner's folder: cwd, writable
    sockets: Path                        # the kernel's connection file and sockets: writable
    readable: list = field(default_factory=list)   # extra read-only folders
    hidden: list = field(default_factory=list)     # paths never visible (submissions, output)
    limits: Limits = Limits()
    env: dict = field(default_factory=dict)
    uid: int | None = None               # host uid to switch to (root only): see `fresh_uid`
    stage: Path | None = None            # an empty folder of the grader's, for `_staged` (root only)


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


_WORKS: dict[str, str] = {}


def check_bwrap() -> None:
    """Raise SandboxUnavailable (saying how to fix it) unless bubblewrap can run a sandbox here."""
    exe = bwrap_path()
    if not exe:
        raise SandboxUnavailable(f"bubblewrap (`bwrap`) is not installed: {INSTALL_HINT}")
    if exe not in _WORKS:
        argv = [exe, "--unshare-all", "--unshare-user", "--die-with-parent", "--uid", str(SANDBOX_UID),
                "--gid", str(SANDBOX_UID), *_system_binds(), "--proc", "/proc", "--dev", "/dev", "--", "true"]
        stage = None
        if os.geteuid() == 0:   # as it will run: through the wrapper, as a fresh unprivileged uid
            import tempfile

            stage = tempfile.mkdtemp(prefix="course-stage-", dir="/tmp" if os.path.isdir("/tmp") else None)
            os.chmod(stage, 0o711)
            argv = [sys.executable, "-I", str(Path(__file__).resolve()), "--as", str(2**40), "--nproc",
                    "100000", "--cpu", "600", "--fsize", str(2**30), "--uid", str(fresh_uid()),
                    "--stage", stage, "--", *argv]
        try:
            run = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        finally:
            if stage:
                shutil.rmtree(stage, ignore_errors=True)
        _WORKS[exe] = "" if run.returncode == 0 else (run.stderr.strip() or f"exit code {run.returncode}")
    if _WORKS[exe]:
        raise SandboxUnavailable(f"bubblewrap cannot create a sandbox here ({_WORKS[exe][:200]}); "
                                 "user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone"
                                 f" / user.max_user_namespaces); {INSTALL_HINT.split(', or ')[1]}")


def resolve(mode: str) -> str:
    """"auto" -> "bwrap" when it works, else SandboxUnavailable; "bwrap" likewise; "none" as is."""
    if mode not in ("auto", "bwrap", "none"):
        raise ValueError(f"--sandbox must be auto, bwrap or none, not {mode!r}")
    if mode == "none":
        return "none"
    check_bwrap()
    return "bwrap"


def _system_binds() -> list[str]:
    args = []
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    return args


def _inside(path: Path, roots) -> bool:
    return any(path == r or r in path.parents for r in roots)


def bwrap_args(box: Sandbox, command: list[str]) -> list[str]:
    """The bubblewrap command line that runs `command` in `box`."""
    home, tmp_size = "/home/learner", str(box.limits.tmp_mb * 2**20)
    args = [bwrap_path() or "bwrap", "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session",
            "--disable-userns", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--hostname", "sandbox", *_system_binds(), "--proc", "/proc", "--dev", "/dev",
            "--size", tmp_size, "--tmpfs", "/tmp", "--size", tmp_size, "--tmpfs", home]
    roots = []
    for path in _dedupe(box.readable):
        args += ["--ro-bind", str(path), str(path)]
        roots.append(path)
    for path in _dedupe(box.hidden):
        if _inside(path, roots) and path.exists():   # hide it under an empty tmpfs / an empty file
            args += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
    args += ["--bind", str(box.work), str(box.work), "--bind", str(box.sockets), str(box.sockets),
             "--chdir", str(box.work), "--clearenv"]
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": home,
           "USER": "learner", "LANG": "C.UTF-8", "TMPDIR": "/tmp", **box.env}
    for key, value in env.items():
        args += ["--setenv", key, str(value)]
    return args + ["--remount-ro", "/", "--", *command]


def _dedupe(paths) -> list[Path]:
    out = []
    for p in paths:
        p = Path(p).resolve()
        if p.exists() and p not in out and not any(q in p.parents for q in out):
            out.append(p)
    return out


def kernel_command(box: Sandbox, connection_file: str = "{connection_file}") -> list[str]:
    """The command that starts the learner's kernel in `box` (with limits, as a fresh uid if root)."""
    kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file]
    inner = bwrap_args(box, kernel) if box.mode == "bwrap" else kernel
    lim = box.limits
    wrapper = [sys.executable, "-I", str(Path(__file__).resolve()),
               "--as", str(lim.memory_mb * 2**20), "--nproc", str(lim.processes),
               "--cpu", str(lim.cpu_seconds), "--fsize", str(lim.file_mb * 2**20)]
    if box.uid is not None:
        wrapper += ["--uid", str(box.uid), "--chown", connection_file, "--stage", str(box.stage)]
    return wrapper + ["--", *inner]


def fresh_uid() -> int:
    """An unused-looking high uid: the learner's processes share it with no one."""
    import secrets

    return 1_000_000 + secrets.randbelow(1_000_000_000)


def give_to(uid: int, *paths: Path) -> None:
    """chown the learner's folders to the sandbox's host uid (root only)."""
    for path in paths:
        os.chown(path, uid, uid)
        for sub in Path(path).rglob("*"):
            os.chown(sub, uid, uid, follow_symlinks=False)


# ------------------------------------------------------------------ the wrapper (run as a script)
def _main(argv: list[str]) -> None:
    import resource

    split = argv.index("--")
    opts, command = argv[:split], argv[split + 1:]
    values: dict[str, list[str]] = {}
    for name, value in zip(opts[::2], opts[1::2]):
        values.setdefault(name, []).append(value)
    one = lambda name: int(values[name][0])
    uid = one("--uid") if "--uid" in values else None
    for path in values.get("--chown", []):
        if uid is not None and os.path.exists(path):
            os.chown(path, uid, uid)
    nproc = one("--nproc")
    if uid is None:   # same uid as the grader: allow for the processes it already has
        nproc += sum(1 for p in os.listdir("/proc") if p.isdigit() and _owned(p)) * 4
    for limit, value in ((resource.RLIMIT_AS, one("--as")), (resource.RLIMIT_NPROC, nproc),
                         (resource.RLIMIT_CPU, one("--cpu")), (resource.RLIMIT_FSIZE, one("--fsize")),
                         (resource.RLIMIT_CORE, 0)):
        soft, hard = resource.getrlimit(limit)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(limit, (value, value if limit != resource.RLIMIT_CPU else value + 5))
    if uid is not None:
        command = _staged(command, values["--stage"][0])
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    os.execvp(command[0], command)


def _staged(command: list[str], stage: str) -> list[str]:
    """Bind each bind's source under `stage` in a private mount namespace of this process, now (as
    root): after the switch to the unprivileged uid, bwrap could not reach sources under /root or
    other 0700 folders, but it can reach `stage` (and the mounts vanish with this process)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    ms_bind, ms_rec, ms_private = 4096, 16384, 1 << 18
    if libc.unshare(0x00020000) != 0:   # CLONE_NEWNS
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS) failed")
    if libc.mount(b"none", b"/", None, ms_rec | ms_private, None) != 0:
        raise OSError(ctypes.get_errno(), "making / private failed")
    import tempfile

    stage = tempfile.mkdtemp(dir=stage)   # one per launch: a restarted kernel gets a fresh one
    os.chmod(stage, 0o755)
    out, i, n = [], 0, 0
    while i < len(command):
        arg = command[i]
        if arg == "--":
            return out + command[i:]
        if arg in ("--bind", "--ro-bind") and i + 2 < len(command):
            src, n = command[i + 1], n + 1
            dst = os.path.join(stage, str(n))
            if os.path.isdir(src):
                os.mkdir(dst)
            else:
                open(dst, "w").close()
            if libc.mount(src.encode(), dst.encode(), None, ms_bind | ms_rec, None) != 0:
                raise OSError(ctypes.get_errno(), f"bind {src} failed")
            out += [arg, dst, command[i + 2]]
            i += 3
            continue
        out.append(arg)
        i += 1
    return out


def _owned(pid: str) -> bool:
    try:
        return os.stat(f"/proc/{pid}").st_uid == os.getuid()
    except OSError:
        return False


if __name__ == "__main__":
    _main(sys.argv[1:])
