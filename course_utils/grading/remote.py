"""Calling the learner's functions from the grader's process, with plain data in between.

The grader keeps the hidden test cases and the comparisons in its own process. After the learner's
notebook ran (in its sandboxed kernel), the grader executes `serve(path)` in that kernel: the kernel
connects to the grader's Unix socket, and the grader's case code then calls the learner's
function through a `Remote` proxy. Every value that crosses the socket is *plain data*: JSON with
a few tags -- tuples, dicts with any keys, sets, bytes, numpy arrays as `.npy` bytes
(`allow_pickle=False`), numpy scalars -- never a pickle. A message is at most `MAX_MESSAGE`
bytes. What is not plain data travels as a handle:

- an object of the learner's (an instance of its class, a returned function) becomes a `Remote`
  on the grader's side: calling it, reading an attribute, `len`, `iter`, ... are requests to the
  kernel;
- an object of the grader's (a fake encoder, a fake search, a scripted RNG) becomes a `Handle`
  on the kernel's side whose calls come back to the grader, which runs its own object.

Arguments are copies: a function that changes a list, dict, set or array it was given sends the
new contents back with its reply and the caller applies them to its own object in place, so the
cases' "you changed your input" tests still see it. The learner's code can therefore influence
only what its own functions return, raise, and do to their arguments -- never the grader's
expected values or its comparison.

>>> kernel = {}
>>> data = {"ids": (1, 2), (0, "x"): np.arange(3, dtype=np.int8), "s": {1.5}, "none": None}
>>> back = from_wire(json.loads(dumps(to_wire(data, kernel.setdefault))), lambda h: h)
>>> back["ids"], back[(0, "x")].dtype, back["s"], kernel
((1, 2), dtype('int8'), {1.5}, {})
"""
from __future__ import annotations

import base64
import builtins
import io
import itertools
import json
import os
import socket
import struct
import traceback

import numpy as np

__all__ = ["MAX_MESSAGE", "MAX_DEPTH", "ProtocolError", "PeerLost", "to_wire", "from_wire", "dumps",
           "Peer", "where", "RemoteError", "Remote", "serve"]

MAX_MESSAGE = 256 * 2**20   # bytes of one message; larger is an error, not read
MAX_DEPTH = 60              # nesting of containers in one value
_HEADER = struct.Struct("!Q")
_CONTAINERS = (list, dict, set, np.ndarray)


class ProtocolError(Exception):
    """A message that is not plain data under the limits (too big, too deep, not JSON)."""


class PeerLost(BaseException):
    """The other side closed the connection (the kernel died or was killed).

    A BaseException on purpose: case code that catches `Exception` must not swallow it."""


# ------------------------------------------------------------------------------ the data codec
def _npy(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _from_npy(text: str):
    return np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False)


def to_wire(obj, handle, depth: int = 0):
    """`obj` as JSON-ready plain data; objects that are not data become {"$h": handle(obj)}."""
    if depth > MAX_DEPTH:
        raise ProtocolError(f"a value nested more than {MAX_DEPTH} levels deep")
    kind = type(obj)
    if obj is None or kind in (bool, int, float, str):
        return obj
    sub = lambda x: to_wire(x, handle, depth + 1)
    if isinstance(obj, np.generic):
        return {"$n": _npy(np.asarray(obj))} if obj.dtype.kind != "O" else sub(obj.item())
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "O" or obj.dtype.fields is not None:
            return {"$ao": list(obj.shape), "v": [sub(x) for x in obj.ravel(order="C").tolist()]}
        return {"$a": _npy(obj)}
    if kind is list:
        return [sub(x) for x in obj]
    if isinstance(obj, tuple):
        return {"$t": [sub(x) for x in obj]}
    if isinstance(obj, dict):
        return {"$d": [[sub(k), sub(v)] for k, v in obj.items()]}
    if isinstance(obj, (set, frozenset)):
        return {"$fs" if isinstance(obj, frozenset) else "$s": [sub(x) for x in obj]}
    if isinstance(obj, (bytes, bytearray)):
        return {"$b": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, (bool, int, float, str)):      # subclasses (IntEnum, str enums): the value
        return {bool: bool, int: int, float: float, str: str}[next(
            t for t in (bool, int, float, str) if isinstance(obj, t))](obj)
    if isinstance(obj, list):
        return [sub(x) for x in obj]
    if kind.__module__.startswith("pandas") and kind.__name__ in ("DataFrame", "Series"):
        index = {"index": [sub(x) for x in obj.index], "index_name": sub(obj.index.name)}
        if kind.__name__ == "Series":
            return {"$ser": {**index, "name": sub(obj.name), "values": sub(obj.to_numpy())}}
        return {"$df": {**index, "columns": [sub(c) for c in obj.columns],
                        "data": [sub(obj.iloc[:, i].to_numpy()) for i in range(obj.shape[1])]}}
    if hasattr(obj, "__array__") and not isinstance(obj, type):  # torch tensors, pandas frames
        try:
            arr = np.asarray(obj)
        except Exception:   # noqa: BLE001 -- not convertible: a handle instead
            arr = None
        if arr is not None and arr.dtype.kind != "O":
            return {"$a": _npy(arr)}
    module = getattr(obj, "__module__", None) if isinstance(obj, type) or callable(obj) else None
    return {"$h": handle(obj), "type": kind.__name__, "callable": callable(obj),
            "module": str(module or getattr(kind, "__module__", ""))[:200],
            "name": str(getattr(obj, "__name__", "") or kind.__name__)[:200]}


def from_wire(data, handle_of, depth: int = 0):
    """The inverse of `to_wire`; {"$h": ...} becomes handle_of(that dict)."""
    if depth > MAX_DEPTH:
        raise ProtocolError(f"a value nested more than {MAX_DEPTH} levels deep")
    sub = lambda x: from_wire(x, handle_of, depth + 1)
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [sub(x) for x in data]
    if not isinstance(data, dict) or len(data) < 1:
        raise ProtocolError(f"not a value: {str(data)[:80]}")
    if "$a" in data:
        return _from_npy(data["$a"])
    if "$n" in data:
        return _from_npy(data["$n"])[()]
    if "$ao" in data:
        arr = np.empty(len(data["v"]), dtype=object)
        arr[:] = [sub(x) for x in data["v"]] or arr[:0]
        return arr.reshape([int(n) for n in data["$ao"]])
    if "$t" in data:
        return tuple(sub(x) for x in data["$t"])
    if "$d" in data:
        return {sub(k): sub(v) for k, v in data["$d"]}
    if "$s" in data:
        return {sub(x) for x in data["$s"]}
    if "$fs" in data:
        return frozenset(sub(x) for x in data["$fs"])
    if "$b" in data:
        return base64.b64decode(data["$b"])
    if "$df" in data or "$ser" in data:
        return _pandas(data, sub)
    if "$h" in data:
        return handle_of(data)
    raise ProtocolError(f"unknown tag in {str(data)[:80]}")


def _pandas(data: dict, sub):
    """A pandas DataFrame / Series from its tagged form (columns as arrays, the index as a list)."""
    import pandas as pd

    body = data.get("$df") or data.get("$ser")
    index = pd.Index([sub(x) for x in body["index"]], name=sub(body["index_name"]), tupleize_cols=True)
    if "$ser" in data:
        return pd.Series(sub(body["values"]), index=index, name=sub(body["name"]))
    columns = [sub(c) for c in body["columns"]]
    frame = pd.DataFrame({i: sub(col) for i, col in enumerate(body["data"])}, index=index)
    frame.columns = columns if columns else frame.columns
    return frame


def dumps(data) -> bytes:
    return json.dumps(data, separators=(",", ":"), allow_nan=True).encode("utf-8")


def _apply_in_place(mine, new) -> None:
    """Make the caller's container `mine` hold `new` (what the callee left in its copy)."""
    if isinstance(mine, dict) and isinstance(new, dict):
        mine.clear()
        mine.update(new)
    elif isinstance(mine, list) and isinstance(new, list):
        mine[:] = new
    elif isinstance(mine, set) and isinstance(new, set):
        mine.clear()
        mine.update(new)
    elif isinstance(mine, np.ndarray) and isinstance(new, np.ndarray) and mine.flags.writeable:
        if mine.shape == new.shape:
            try:
                mine[...] = new
            except (TypeError, ValueError):
                pass


# ------------------------------------------------------------------------------ one connection
class Peer:
    """One end of the connection: sends requests, answers the other end's requests meanwhile."""

    def __init__(self, sock: socket.socket, library=("course_utils",)):
        self.sock, self.library = sock, library
        self.objects: dict[int, object] = {}    # handles given out: id -> our object
        self._ids = itertools.count(1)
        self.deadline: float | None = None       # time.monotonic() after which a wait times out
        self.on_timeout = TimeoutError
        self.reraise: tuple = (_Bye, PeerLost)    # exceptions that end the serving, never sent

    # ---- framing
    def send(self, message: dict) -> None:
        body = dumps(message)
        if len(body) > MAX_MESSAGE:
            raise ProtocolError(f"a message of {len(body)} bytes is over the limit of {MAX_MESSAGE}")
        try:
            self.sock.sendall(_HEADER.pack(len(body)) + body)
        except OSError as err:
            raise PeerLost(f"connection lost while sending ({err})") from None

    def _recv_exactly(self, n: int) -> bytes:
        import time

        chunks, left = [], n
        while left:
            if self.deadline is not None:
                wait = self.deadline - time.monotonic()
                if wait <= 0:
                    raise self.on_timeout()
                self.sock.settimeout(wait)
            try:
                chunk = self.sock.recv(min(left, 1 << 20))
            except socket.timeout:
                raise self.on_timeout() from None
            except OSError as err:
                raise PeerLost(f"connection lost ({err})") from None
            if not chunk:
                raise PeerLost("the other side closed the connection")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def recv(self) -> dict:
        size, = _HEADER.unpack(self._recv_exactly(_HEADER.size))
        if size > MAX_MESSAGE:
            raise PeerLost(f"a message of {size} bytes announced (limit {MAX_MESSAGE}): connection dropped")
        try:
            message = json.loads(self._recv_exactly(size))
        except (ValueError, RecursionError) as err:
            raise PeerLost(f"a message that is not JSON ({str(err)[:80]})") from None
        if not isinstance(message, dict):
            raise PeerLost("a message that is not a JSON object")
        return message

    # ---- values
    def handle(self, obj) -> int:
        n = next(self._ids)
        self.objects[n] = obj
        return n

    def enc(self, obj):
        return to_wire(obj, self.handle)

    def dec(self, data):
        return from_wire(data, lambda meta: Remote(self, meta))

    # ---- requests
    def request(self, op: str, h: int, *, args=(), kwargs=None, name: str | None = None):
        """Ask the other side to do `op` on its object `h`; serve its requests until the reply."""
        self.send({"op": op, "h": h, "name": name, "args": self.enc(list(args)),
                   "kwargs": self.enc(dict(kwargs or {}))})
        while True:
            message = self.recv()
            if "op" in message:
                self.answer(message)
                continue
            mutated = message.get("mut") or {}
            if isinstance(mutated, dict):
                for i, new in mutated.items():
                    if str(i).isdigit() and int(i) < len(args):
                        _apply_in_place(args[int(i)], self.dec(new))
            if "err" in message:
                raise _rebuild(message["err"])
            if "ok" not in message:
                raise PeerLost("a reply without a value")
            return self.dec(message["ok"])

    def answer(self, message: dict) -> None:
        """Do what the other side asked, on our object, and send the reply (or the error)."""
        try:
            op, obj = message.get("op"), self.objects.get(message.get("h"), _MISSING)
            if op == "bye":
                raise _Bye()
            if obj is _MISSING:
                raise LookupError(f"no object with handle {message.get('h')!r}")
            args, kwargs = self.dec(message.get("args", [])), self.dec(message.get("kwargs", {}))
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise ProtocolError("bad arguments")
            before = [dumps(self.enc(a)) if isinstance(a, _CONTAINERS) else None for a in args]
            value = _perform(obj, op, message.get("name"), args, kwargs)
            mutated = {str(i): self.enc(a) for i, (a, old) in enumerate(zip(args, before))
                       if old is not None and dumps(self.enc(a)) != old}
            reply = {"ok": self.enc(value), "mut": mutated}
        except BaseException as err:   # noqa: BLE001 -- the callee's error goes back as data
            if isinstance(err, self.reraise):
                raise
            reply = {"err": {"type": type(err).__name__, "msg": str(err)[:2000],
                             "where": where(err, self.library)}}
        try:
            self.send(reply)
        except ProtocolError as err:
            self.send({"err": {"type": "ProtocolError", "msg": str(err), "where": ""}})


class _Bye(BaseException):
    pass


_MISSING = object()
_SAFE = {"call", "getattr", "len", "iter", "getitem", "contains", "bool", "array", "repr"}


def _perform(obj, op, name, args, kwargs):
    if op not in _SAFE:
        raise ProtocolError(f"unknown request {op!r}")
    if op == "call":
        return obj(*args, **kwargs)
    if op == "getattr":   # public attributes only, and never a module
        if not isinstance(name, str) or (name.startswith("_") and name not in ("__name__", "__module__",
                                                                              "__qualname__", "__doc__")):
            raise AttributeError(f"attribute {name!r} is not available here")
        value = getattr(obj, name)
        if isinstance(value, type(os)):
            raise AttributeError(f"attribute {name!r} is a module, not available here")
        return value
    if op == "len":
        return len(obj)
    if op == "iter":
        return list(obj)
    if op == "getitem":
        return obj[args[0]]
    if op == "contains":
        return args[0] in obj
    if op == "bool":
        return bool(obj)
    if op == "array":
        return np.asarray(obj)
    return repr(obj)[:500]


def where(err: BaseException, library=("course_utils",)) -> str:
    """' (in f, line 7: return a @ b)' -- the frame of the learner's own code nearest the error."""
    skip = tuple(library) + ("site-packages", f"{os.sep}lib{os.sep}python", "remote.py")
    frames = [f for f in traceback.extract_tb(err.__traceback__) if not any(s in f.filename for s in skip)]
    if not frames:
        return ""
    f = frames[-1]
    code = (f.line or "").strip()[:60]
    return f" (in {f.name}, line {f.lineno}{': ' + code if code else ''})"


class RemoteError(Exception):
    """An exception of a type that is not a Python builtin, raised on the other side."""


def _rebuild(err) -> BaseException:
    err = err if isinstance(err, dict) else {}
    name, msg = str(err.get("type", "Exception"))[:100], str(err.get("msg", ""))[:2000]
    cls = getattr(builtins, name, None)
    safe = (isinstance(cls, type) and issubclass(cls, BaseException)
            and not issubclass(cls, (KeyboardInterrupt, GeneratorExit)))
    exc = cls(msg) if safe else RemoteError(f"{name}: {msg}" if msg else name)
    exc._course_where = str(err.get("where", ""))[:200]
    exc._course_type = name
    return exc


class Remote:
    """The other side's object: calls, attributes and a few protocols become requests."""

    def __init__(self, peer: Peer, meta: dict):
        object.__setattr__(self, "_peer", peer)
        object.__setattr__(self, "_h", meta.get("$h"))
        object.__setattr__(self, "_meta", meta)
        self.__dict__["__module__"] = str(meta.get("module", ""))
        self.__dict__["__name__"] = str(meta.get("name", meta.get("type", "object")))

    def __call__(self, *args, **kwargs):
        return self._peer.request("call", self._h, args=args, kwargs=kwargs)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._peer.request("getattr", self._h, name=name)

    def __setattr__(self, name, value):
        raise AttributeError("setting attributes of the other side's objects is not supported")

    def __len__(self):
        return self._peer.request("len", self._h)

    def __iter__(self):
        return iter(self._peer.request("iter", self._h))

    def __getitem__(self, key):
        return self._peer.request("getitem", self._h, args=(key,))

    def __contains__(self, item):
        return self._peer.request("contains", self._h, args=(item,))

    def __bool__(self):
        return self._peer.request("bool", self._h)

    def __array__(self, dtype=None, copy=None):
        arr = self._peer.request("array", self._h)
        return arr if dtype is None else arr.astype(dtype)

    def __repr__(self):
        return f"<{self._meta.get('type', 'object')} of the other side>"


# ------------------------------------------------------------------------- the kernel's side
def serve(path: str, library=("course_utils", "numpy", "scipy", "sklearn", "torch",
                              "sentence_transformers")) -> None:
    """Run in the learner's kernel: connect to the grader at `path` and answer its requests.

    The grader asks for an exercise's function with {"op": "call"} on handle 0, whose object
    finds it: the function last given to `check` for that exercise in this kernel, else the
    notebook's global of that name.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    peer = Peer(sock, library=("course_utils",))
    peer.reraise = (_Bye, PeerLost, KeyboardInterrupt)   # the grader's interrupt ends the serving
    peer.objects[0] = _find_function
    try:
        while True:
            peer.answer(peer.recv())
    except (_Bye, PeerLost):
        pass
    finally:
        sock.close()


def _find_function(exercise_id: str, name: str):
    import sys

    checks = sys.modules.get("course_utils.grading.checks")
    submitted = getattr(checks, "_submitted", {}) if checks else {}
    if exercise_id in submitted:
        return submitted[exercise_id]
    try:
        namespace = get_ipython().user_ns   # noqa: F821 -- defined in an IPython kernel
    except NameError:
        namespace = vars(sys.modules["__main__"])
    if name not in namespace:
        raise LookupError(f"no function `{name}` in the notebook (was its cell run, or renamed?)")
    return namespace[name]
