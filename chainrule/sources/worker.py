"""Python implementations in a worker process of their own, so that nothing they do reaches the
process that judges them: exiting, crashing, hanging with the GIL held, exhausting memory, or
changing numpy's error state, warning filters, torch or JAX settings, sys.path or the working
directory. The judges' process never imports the implementation's module.

The worker is ``python -m chainrule.sources.serve KIND SPEC`` (chainrule.sources.serve), asked
over JSON lines like any command (chainrule.sources.jsonlines.Command), with three private
additions to the contract's protocol:

- arrays travel as one base64 string of their float64 bytes (``"arrays"``, ``"grads"``): exact,
  and cheap for millions of parameters; a layer's arrays (``"inputs"``, ``"dy"``, ``"y"``,
  ``"grads"``) each as ``{"dtype": ..., "shape": [...], "data": base64}``, float64, int64 or bool;
- a layer request is the JSON-lines one (``"layer"``, ``"config"``, ``"inputs"``, ``"dy"``),
  and the worker answers it, or ``{"unsupported": "why"}``;
- a contract fault found in the worker, which holds the implementation's original answer
  (float32 arrays, modified arguments), comes back as ``{"fault": {"kind": ..., "message": ...}}``
  and is raised here as the same Fault;
- the describe reply carries ``"load_error"`` when the implementation cannot be loaded (exit
  code 2, with the message an in-process load gives), else its ``"module"``, and always
  ``"networks"`` (whether it has loss_and_gradients) and, for one with vjp, ``"layers"`` and
  ``"layer_configs"`` as it declares them.

Every way a worker can end is a fatal Fault, after which it is never asked again nor restarted:
``exited`` (any status), ``crashed`` (a signal: a segfault, an abort, SIGKILL, perhaps from the
kernel's out-of-memory killer), ``timeout`` (it is killed, whatever it holds; faulthandler dumps
its stack on SIGUSR1 first, and the message says where it was) and ``memory`` (past its limit,
set as RLIMIT_DATA in the worker), each with the last of its stderr.
"""

from __future__ import annotations

import base64
import json
import math
import os
import queue
import re
import select
import signal
import sys
import time

import numpy as np

from chainrule.reference import Architecture
from chainrule.sources.faults import FAULT_KINDS, Fault, LoadError, Unsupported
from chainrule.sources.implementation import DEFAULT_TIMEOUT, Implementation, with_timeout, wrap
from chainrule.sources.jsonlines import _OWN, STARTUP_TIMEOUT, Command

__all__ = [
    "WORKER", "Worker", "decode_answer", "decode_layer_answer", "decode_layer_request", "decode_request", "default_memory_limit",
    "encode_answer", "encode_layer_answer", "encode_layer_request", "encode_request", "worker", "worker_stderr_summary",
]

WORKER = "a worker process"  # Implementation.isolation of one that runs in a worker
DECLARED = ("precision", "kink_derivatives", "version")  # attributes of the implementation the Worker carries as its own (contract: "Precision", kinks)
DUMP_WAIT = 1.0  # seconds to wait for a hung worker's stack (faulthandler, on SIGUSR1) before killing it
_HEADER = re.compile(r"\(most recent call first\):$")
_FRAME = re.compile(r'^File ".*", line \d+ in \S+')
_ASKED = (" in loss_and_gradients", " in vjp")  # a dumped frame of the contract's own call
_DTYPES = ("float64", "int64", "bool")  # what a layer's arrays hold


def default_memory_limit() -> int | None:
    """The machine's physical memory: a worker past it would only swap or meet the OOM killer."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _blob(arrays) -> str:
    return base64.b64encode(b"".join(np.ascontiguousarray(a, dtype=np.float64).tobytes() for a in arrays)).decode("ascii")


def _unblob(text: str, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """The arrays of those shapes, in order, from one base64 blob (ValueError if it does not fit)."""
    flat = np.frombuffer(base64.b64decode(text, validate=True), dtype=np.float64)
    counts = [math.prod(shape) for shape in shapes]
    if flat.size != sum(counts):
        raise ValueError(f"{flat.size} numbers, expected {sum(counts)}")
    arrays, start = [], 0
    for shape, count in zip(shapes, counts):
        arrays.append(flat[start : start + count].reshape(shape))
        start += count
    return arrays


def _layer_shapes(sizes) -> list[tuple[int, ...]]:
    return [shape for n, m in zip(sizes, sizes[1:]) for shape in ((m, n), (m,))]


def encode_request(arch, params, X, Y, twice: bool = False, precision: str = "float64") -> str:
    """One request line for the worker: the architecture, then every array in one blob. ``twice``:
    answer it, then (unless that was a fault) answer it again, on a line of its own. ``precision``:
    the one it is judged in (the narrowest its arrays may come back in)."""
    request = {
        "sizes": [int(n) for n in arch.sizes], "activations": list(arch.activations), "loss": arch.loss, "batch": len(X),
        "arrays": _blob([array for pair in params for array in pair] + [X, Y]),
    }
    if twice:
        request["twice"] = True
    if precision != "float64":
        request["precision"] = precision
    return json.dumps(request, separators=(",", ":")) + "\n"


def decode_request(request: dict) -> tuple[Architecture, list[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
    """(arch, params, X, Y) as the engine sent them (read-only arrays: the caller copies)."""
    arch = Architecture(tuple(request["sizes"]), tuple(request["activations"]), request["loss"])
    N = request["batch"]
    arrays = _unblob(request["arrays"], _layer_shapes(arch.sizes) + [(N, arch.sizes[0]), (N, arch.sizes[-1])])
    params = [(arrays[i], arrays[i + 1]) for i in range(0, len(arrays) - 2, 2)]
    return arch, params, arrays[-2], arrays[-1]


def encode_answer(loss: float, grads) -> str:
    """The worker's reply to a request it answered (already checked against the contract)."""
    return json.dumps({"loss": loss, "grads": _blob([array for pair in grads for array in pair])}, separators=(",", ":")) + "\n"


def decode_answer(reply: dict, arch) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
    arrays = _unblob(reply["grads"], _layer_shapes(arch.sizes))
    loss = reply["loss"]
    if not isinstance(loss, float):
        raise ValueError(f"loss {loss!r}")
    return loss, [(arrays[i], arrays[i + 1]) for i in range(0, len(arrays), 2)]


def _encode_array(array) -> dict:
    array = np.asarray(array)
    dtype = array.dtype.name if array.dtype.name in _DTYPES else "float64"
    data = base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")
    return {"dtype": dtype, "shape": list(array.shape), "data": data}


def _decode_array(encoded: dict) -> np.ndarray:
    """The array (read-only: the caller copies); ValueError if it does not fit its shape."""
    if encoded["dtype"] not in _DTYPES:
        raise ValueError(f"dtype {encoded['dtype']!r}")
    flat = np.frombuffer(base64.b64decode(encoded["data"], validate=True), dtype=encoded["dtype"])
    return flat.reshape(tuple(encoded["shape"]))


def encode_layer_request(layer: str, config: dict, inputs: dict, dy, twice: bool = False, precision: str = "float64") -> str:
    """One layer request line for the worker (``twice`` and ``precision`` as in encode_request)."""
    request = {"layer": layer, "config": config, "inputs": {name: _encode_array(a) for name, a in inputs.items()}, "dy": _encode_array(dy)}
    if twice:
        request["twice"] = True
    if precision != "float64":
        request["precision"] = precision
    return json.dumps(request, separators=(",", ":")) + "\n"


def decode_layer_request(request: dict) -> tuple[str, dict, dict[str, np.ndarray], np.ndarray]:
    """(layer, config, inputs, dy) as the engine sent them (read-only arrays: the caller copies)."""
    inputs = {name: _decode_array(encoded) for name, encoded in request["inputs"].items()}
    return request["layer"], request["config"], inputs, _decode_array(request["dy"])


def encode_layer_answer(y: np.ndarray, grads: dict[str, np.ndarray]) -> str:
    """The worker's reply to a layer request it answered (already checked against the contract)."""
    return json.dumps({"y": _encode_array(y), "grads": {name: _encode_array(g) for name, g in grads.items()}}, separators=(",", ":")) + "\n"


def decode_layer_answer(reply: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    if "unsupported" in reply:
        raise Unsupported(str(reply["unsupported"]))
    return _decode_array(reply["y"]).copy(), {name: _decode_array(encoded).copy() for name, encoded in reply["grads"].items()}


def _frames(lines: list[str]) -> str:
    """Where a faulthandler dump says the call was: its innermost frame and, if that is not
    loss_and_gradients (or vjp) itself, the frame of that call it was called from; else ''."""
    blocks: list[list[str]] = []
    for line in lines:
        if _HEADER.search(line):
            blocks.append([])
        elif blocks and _FRAME.match(line):
            blocks[-1].append(line)
    blocks = [block for block in blocks if block]
    if not blocks:
        return ""
    block = next((b for b in blocks if any(f.endswith(_ASKED) for f in b)), blocks[0])
    caller = next((f for f in block if f.endswith(_ASKED)), block[0])
    return block[0] if caller == block[0] else f"{block[0]}, called from {caller}"


def worker_stderr_summary(lines: list[str]) -> str:
    """The last of a worker's stderr, for a message: a fatal error faulthandler reported, with
    where it happened; else the last line naming an error; else the last line; or ''."""
    lines = [line.strip() for line in lines if line.strip()]
    fatal = [line for line in lines if line.startswith("Fatal Python error:")]
    where = _frames(lines)
    if fatal or where:
        return ", at ".join(part for part in (fatal[-1] if fatal else "", where) if part)[:400]
    errors = [line for line in lines if re.match(r"^[\w.$]*(Error|Exception|Exit|Interrupt)\b", line)]
    return (errors or lines or [""])[-1][:300]


class Worker(Command):
    """A Python implementation in its own process, asked over JSON lines: a contract object whose
    calls time out, and whose process ending in any way is a fatal Fault."""

    max_line = 1 << 34  # arrays are bulk data here: an --arch network has millions of parameters
    checks_answers = True  # chainrule.sources.ask: the worker checked the answer against the contract (and its arguments)
    echo_stderr = True  # what the implementation prints reaches chainrule's stderr, as it would in-process
    pumps_stdout = not hasattr(select, "poll")  # else _next_line reads its stdout itself: one thread switch less per call

    def _next_line(self, timeout: float | None) -> bytes | None:
        """Its next line on stdout, read here (poll, then os.read) without a thread in between;
        None at its end, queue.Empty after ``timeout`` seconds."""
        if self.pumps_stdout:
            return super()._next_line(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while (end := self._pending.find(b"\n")) < 0 and len(self._pending) < self.max_line:
            if self._poll is None:
                self._poll = select.poll()
                self._poll.register(self._process.stdout.fileno(), select.POLLIN)
            wait = None if deadline is None else max(0.0, deadline - time.monotonic()) * 1000
            if not self._poll.poll(wait):
                raise queue.Empty
            chunk = os.read(self._process.stdout.fileno(), 1 << 20)
            if not chunk:
                return None
            self._pending += chunk
        line = bytes(self._pending[: end + 1]) if end >= 0 else bytes(self._pending)
        del self._pending[: len(line)]
        return line
    _describing = "loading"

    def __init__(self, kind: str, spec: str, timeout: float | None = DEFAULT_TIMEOUT, memory_limit: int | None = None, label: str | None = None):
        """Start the worker for ``spec`` of that kind ("impl" MODULE:ATTR, "entry" an entry point's
        name, "pickle" a file holding a pickled object), with its memory limited to
        ``memory_limit`` bytes (None: the machine's physical memory). ``label`` names it in
        messages (default: ``spec``). Its sys.path is this process's."""
        self.memory_limit = default_memory_limit() if memory_limit is None else int(memory_limit)
        argv = [sys.executable, "-m", "chainrule.sources.serve", kind, spec, "--path", json.dumps(sys.path)]
        if self.memory_limit:
            argv += ["--memory-limit", str(self.memory_limit)]
        self.module: str | None = None
        self._pending = bytearray()  # read from its stdout, not yet a whole line
        self._poll = None
        super().__init__(label or spec, timeout, argv=argv)

    def __repr__(self) -> str:
        return f"Worker({self.spec!r})"

    def _described(self, reply: dict) -> None:
        if "load_error" in reply:
            raise LoadError(str(reply["load_error"]))
        self.module = reply.get("module")
        for attribute in DECLARED:  # as the implementation declares them, for whoever reads them off its source
            if attribute in reply:
                setattr(self, attribute, reply[attribute])
        super()._described(reply)

    def stderr_tail(self) -> str:
        return worker_stderr_summary([line.decode("utf-8", "replace") for line in list(self._stderr)])

    def _ending(self, status: str, what: str) -> str:
        return f"its worker process {status} during {what}"

    def _hung_at(self) -> str:
        """Where the hung call is, as faulthandler in the worker dumps it on SIGUSR1 (even while
        C code holds the GIL); '' if it says nothing within DUMP_WAIT seconds."""
        self._stderr.clear()
        try:
            os.kill(self._process.pid, signal.SIGUSR1)
        except (AttributeError, OSError):  # no SIGUSR1 here, or it is gone
            return ""
        deadline = time.monotonic() + DUMP_WAIT
        while time.monotonic() < deadline:
            lines = [line.decode("utf-8", "replace").strip() for line in list(self._stderr)]
            if any(line.endswith(_ASKED) for line in lines):
                time.sleep(0.05)  # the rest of the dump
                break
            time.sleep(0.01)
        return _frames([line.decode("utf-8", "replace").strip() for line in list(self._stderr)])

    def _timed_out(self, timeout: float, what: str) -> Fault:
        message = f"did not answer within {timeout:g} s ({what}): its worker process was killed"
        where = self._hung_at()
        return Fault("timeout", f"{message}; it was at {where}" if where else message)

    def loss_and_gradients(self, arch, params, X, Y, timeout=_OWN, precision="float64"):
        """The contract's question, asked in the worker; ``timeout`` overrides its own limit."""
        timeout = self.timeout if timeout is _OWN else timeout
        return self._answer(encode_request(arch, params, X, Y, precision=precision), arch, timeout)

    def loss_and_gradients_twice(self, arch, params, X, Y, timeout=_OWN, precision="float64"):
        """The question asked twice in one request (chainrule.sources.ask: the stateful check):
        the worker answers the first call, then makes and answers the second unless the first
        was a fault. One round trip instead of two, each call with its own time limit."""
        timeout = self.timeout if timeout is _OWN else timeout
        first = self._answer(encode_request(arch, params, X, Y, twice=True, precision=precision), arch, timeout)
        return first, self._answer(None, arch, timeout)

    def vjp(self, layer, config, inputs, dy, timeout=_OWN, precision="float64"):
        """The layer contract's question, asked in the worker; Unsupported when the source declines."""
        timeout = self.timeout if timeout is _OWN else timeout
        return self._answer(encode_layer_request(layer, config, inputs, dy, precision=precision), None, timeout)

    def vjp_twice(self, layer, config, inputs, dy, timeout=_OWN, precision="float64"):
        """The layer question asked twice in one request, as loss_and_gradients_twice."""
        timeout = self.timeout if timeout is _OWN else timeout
        first = self._answer(encode_layer_request(layer, config, inputs, dy, twice=True, precision=precision), None, timeout)
        return first, self._answer(None, None, timeout)

    def _answer(self, request: str | None, arch, timeout: float | None):
        """The answer to ``request`` (None: the next line) about ``arch`` (None: a layer), a Fault as
        the worker found it, or a fatal one; Unsupported as the worker found it."""
        self.requests += 1
        what = f"call {self.requests}"
        reply = self._read(request, timeout, what)
        if isinstance(reply, dict) and isinstance(reply.get("fault"), dict):
            kind, message = reply["fault"].get("kind"), reply["fault"].get("message")
            if kind in FAULT_KINDS and isinstance(message, str):
                fault = Fault(kind, message)
                raise self._retire(fault) if fault.fatal else fault
        try:
            return decode_answer(reply, arch) if arch is not None else decode_layer_answer(reply)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise self._retire(Fault("protocol", f"its worker process answered {what} with something unreadable ({type(error).__name__}: {error})")) from None


def worker(
    kind: str, spec: str, timeout: float | None = DEFAULT_TIMEOUT, memory_limit: int | None = None,
    startup_timeout: float | None = STARTUP_TIMEOUT, label: str | None = None,
) -> Implementation:
    """Start a worker for ``spec`` and ask it to describe the implementation: an Implementation
    whose calls run there. LoadError (exit code 2) when it cannot be loaded; close it with
    ``implementation.close()`` (else it is stopped when collected, or at exit)."""
    process = Worker(kind, spec, timeout, memory_limit, label)
    try:
        process.describe(startup_timeout)
        implementation = wrap(process, name=process.spec, isolation=WORKER)
    except LoadError:
        process.close()
        raise
    return with_timeout(implementation, timeout)
