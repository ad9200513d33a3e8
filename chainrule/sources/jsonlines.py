"""Gradient sources in any language: a command speaking JSON lines on stdin and stdout.

The command is started once and asked one question per line (docs/contract.md, "Plugging in"):

    -> {"describe": true}
    <- {"name": "...", "activations": [...], "losses": [...]}        (each field optional)
    -> {"sizes": [...], "activations": [...], "loss": "...", "params": [{"W": [[...]], "b": [...]}, ...], "X": [[...]], "Y": [[...]]}
    <- {"loss": number, "grads": [{"W": [[...]], "b": [...]}, ...]}  or  {"error": "message"}

until its stdin closes. A layer source (docs/layers.md) lists ``"layers": [...]`` (and perhaps
``"layer_configs": {...}``) in its describe reply, and is asked

    -> {"layer": "conv2d", "config": {...}, "inputs": {"x": [[...]], ...}, "dy": [...]}
    <- {"y": [...], "grads": {"x": [...], ...}}  or  {"error": "message"}  or  {"unsupported": "why"}

with index arrays as JSON integers, masks as true/false and 0-d arrays as plain numbers. A
describe reply that lists layers answers networks only if it also lists activations or losses
(or says ``"networks": true``); one without layers answers networks, as before.

Numbers go out in Python's shortest round-trip form and come back as
float64, so nothing is lost on the way. The command line is split as a shell would split it
(``shlex``) but not run by one. Its stderr is kept (the last lines) for the messages.

Every way a command can go wrong is a Fault (see ``chainrule.sources.faults.FAULT_KINDS``): an
``{"error": ...}`` answer, a malformed answer (wrong layers, shapes, types, null for NaN), and
the fatal ones after which its process is killed and it is not asked again: no answer within
the time limit, the process exiting or killed by a signal, or a line on stdout that is not a
response (a debug print, broken or truncated JSON). A command that cannot be started, or that does not answer
the describe request properly, is a LoadError (exit code 2).
"""

from __future__ import annotations

import collections
import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import weakref

import numpy as np

from chainrule.sources.faults import Fault, LoadError, Unsupported
from chainrule.sources.implementation import DEFAULT_TIMEOUT, Implementation, with_timeout, wrap

__all__ = [
    "STARTUP_TIMEOUT", "Command", "command", "decode_layer_response", "decode_response", "encode_layer_request", "encode_request",
    "signal_meaning",
]

STARTUP_TIMEOUT = 30.0  # seconds for the first answer: an interpreter or a JIT may start slowly
MAX_LINE = 1 << 24  # bytes; a longer line is a protocol fault
STDERR_LINES = 40  # last lines of the command's stderr kept for messages
SHOWN = 80  # characters of an offending stdout line quoted in a message
_OWN = object()  # "the command's own time limit"
_STDOUT_RULE = "stdout must carry one JSON response per line and nothing else (write logs to stderr)"
_NULL = "null (JSON has no NaN or Infinity: JSON.stringify writes them as null)"
_NETWORKS, _LAYERS = frozenset({"loss_and_gradients"}), frozenset({"vjp"})  # what a command answers (Command.answers)


# What the signals a process most often dies of mean, for the messages.
_SIGNALS = {
    "SIGSEGV": "a segmentation fault: an invalid memory access, e.g. in C code",
    "SIGBUS": "a bus error: an invalid memory access, e.g. in C code",
    "SIGABRT": "aborted, e.g. by a failed check in C or C++ code, or memory exhausted there",
    "SIGFPE": "a floating-point or integer-division trap in C code",
    "SIGILL": "an illegal instruction",
    "SIGKILL": "sent by itself, another process, or the kernel's out-of-memory killer",
    "SIGTERM": "sent by itself or another process",
}


def signal_meaning(number: int) -> str:
    """``SIGSEGV, a segmentation fault: ...`` for 11, as far as this platform names it."""
    try:
        name = signal.Signals(number).name
    except ValueError:
        return "an unknown signal"
    return f"{name}, {_SIGNALS[name]}" if name in _SIGNALS else name


def _shown(text: str) -> str:
    """An offending line, quoted and cut short."""
    return repr(text[:SHOWN]) + ("..." if len(text) > SHOWN else "")


def encode_request(arch, params, X, Y) -> str:
    """One request line (with its newline): every float in its shortest round-trip form."""
    request = {
        "sizes": [int(n) for n in arch.sizes],
        "activations": list(arch.activations),
        "loss": arch.loss,
        "params": [{"W": np.asarray(W, dtype=np.float64).tolist(), "b": np.asarray(b, dtype=np.float64).tolist()} for W, b in params],
        "X": np.asarray(X, dtype=np.float64).tolist(),
        "Y": np.asarray(Y, dtype=np.float64).tolist(),
    }
    return json.dumps(request, allow_nan=False, separators=(",", ":")) + "\n"


def _contains_null(value) -> bool:
    if value is None:
        return True
    return isinstance(value, list) and any(_contains_null(v) for v in value)


def encode_layer_request(layer: str, config: dict, inputs: dict[str, np.ndarray], dy: np.ndarray) -> str:
    """One layer request line (with its newline): floats in their shortest round-trip form, index
    arrays as integers, masks as true/false, 0-d arrays as plain numbers."""
    request = {"layer": layer, "config": config, "inputs": {name: np.asarray(array).tolist() for name, array in inputs.items()},
               "dy": np.asarray(dy, dtype=np.float64).tolist()}
    return json.dumps(request, allow_nan=False, separators=(",", ":")) + "\n"


def decode_layer_response(response: dict) -> tuple[object, dict[str, object]]:
    """(y, grads) as JSON gave them (chainrule.sources.ask_layer checks the numbers, names and
    shapes); a Fault for an error or a null, Unsupported for ``{"unsupported": "why"}``."""
    if "error" in response:
        raise Fault("raised", f"answered with an error: {response['error']}")
    if "unsupported" in response:
        raise Unsupported(str(response["unsupported"]))
    y, grads = response["y"], response["grads"]
    if not isinstance(grads, dict):
        raise Fault("type", f'"grads" is {type(grads).__name__}, expected an object of arrays by input name')
    arrays = {"y": y} | {f"grads[{n!r}]": g for n, g in grads.items()}
    for name, value in arrays.items():
        if _contains_null(value):
            raise Fault("non-finite", f"{name} contains {_NULL}")
    return y, grads


def decode_response(response: dict) -> tuple[object, list[tuple[object, object]]]:
    """(loss, [(dW, db)]) as JSON gave them (plugins.answer checks the numbers and shapes), or a Fault."""
    if "error" in response:
        raise Fault("raised", f"answered with an error: {response['error']}")
    loss, grads = response["loss"], response["grads"]
    null = _NULL
    if loss is None:
        raise Fault("non-finite", f"loss is {null}")
    if not isinstance(grads, list):
        raise Fault("type", f'"grads" is {type(grads).__name__}, expected a list of {{"W": ..., "b": ...}}, one per layer')
    pairs = []
    for l, layer in enumerate(grads, start=1):
        if not isinstance(layer, dict) or "W" not in layer or "b" not in layer:
            raise Fault("type", f'"grads" entry {l} is {json.dumps(layer)[:SHOWN]}, expected {{"W": [[...]], "b": [...]}}')
        for kind in ("W", "b"):
            if _contains_null(layer[kind]):
                raise Fault("non-finite", f"dL/d{kind}[layer {l}] contains {null}")
        pairs.append((layer["W"], layer["b"]))
    return loss, pairs


def _pump_lines(stream, lines: queue.Queue, max_line: int = MAX_LINE) -> None:
    """Every line of the command's stdout into ``lines``, then None for end of file."""
    try:
        while line := stream.readline(max_line):
            lines.put(line)
    except (OSError, ValueError):
        pass
    finally:
        lines.put(None)


def _pump_tail(stream, tail: collections.deque, echo: bool = False) -> None:
    """The command's stderr, drained as it comes (a full pipe would stall it), its last lines kept;
    with ``echo``, also written to this process's stderr as it comes."""
    try:
        while line := stream.readline(MAX_LINE):
            tail.append(line)
            if echo:
                sys.stderr.write(line.decode("utf-8", "replace"))
                sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # a pipe or a stderr closed (or None) under it
        pass


def _stop(process: subprocess.Popen, threads: list[threading.Thread], graceful: bool) -> None:
    """End the process (closing its stdin first when ``graceful``), then release every pipe."""
    if graceful and process.poll() is None:
        try:
            process.stdin.close()
            process.wait(2.0)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
    if os.name == "posix":
        try:  # the whole process group: whatever a shell or launcher started goes too
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
    if process.poll() is None:
        process.kill()
    process.wait()
    for thread in threads:
        thread.join(2.0)
    for pipe in (process.stdin, process.stdout, process.stderr):
        try:
            pipe.close()
        except (OSError, ValueError):
            pass


class Command:
    """A running command, asked over JSON lines; a contract object whose calls can time out."""

    enforces_timeout = True  # plugins.answer passes the time limit instead of running it in a thread

    max_line = MAX_LINE  # bytes in one line on its stdout, at most
    _describing = 'the first request, {"describe": true}'  # the describe request, in messages
    echo_stderr = False  # its stderr is only kept for the messages, not shown
    pumps_stdout = True  # a thread reads its stdout into a queue (see _next_line)

    def __init__(self, spec: str, timeout: float | None = DEFAULT_TIMEOUT, argv: list[str] | None = None):
        """Start ``spec`` (split into ``argv`` as a shell would, unless ``argv`` is given)."""
        self.spec = spec
        self.timeout = timeout
        self.name: str | None = None
        self.activations: tuple[str, ...] | None = None
        self.losses: tuple[str, ...] | None = None
        self.layers: tuple[str, ...] | None = None
        self.layer_configs: dict | None = None
        self.answers = _NETWORKS  # what the describe reply promised (chainrule.sources.implementation.declarations)
        self.requests = 0  # questions asked so far (the describe request not counted)
        self._dead: Fault | None = None
        if argv is None:
            try:
                argv = shlex.split(spec)
            except ValueError as error:
                raise LoadError(f"{spec!r}: cannot split the command line: {error}") from None
        if not argv:
            raise LoadError("--cmd: got an empty command")
        try:
            self._process = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=os.name == "posix"
            )
        except OSError as error:
            raise LoadError(f"{spec}: cannot start {argv[0]!r}: {error.strerror or error}") from None
        self._lines: queue.Queue = queue.Queue()
        self._stderr: collections.deque = collections.deque(maxlen=STDERR_LINES)
        self._stderr_thread = threading.Thread(
            target=_pump_tail, args=(self._process.stderr, self._stderr, self.echo_stderr), daemon=True, name=f"chainrule stderr: {spec}"
        )
        threads = [self._stderr_thread]
        if self.pumps_stdout:
            threads.append(threading.Thread(
                target=_pump_lines, args=(self._process.stdout, self._lines, self.max_line), daemon=True, name=f"chainrule stdout: {spec}"
            ))
        for thread in threads:
            thread.start()
        self._threads = threads
        # a command nobody closed is still stopped, at garbage collection or at exit at the latest
        self._finalizer = weakref.finalize(self, _stop, self._process, threads, True)

    def __repr__(self) -> str:
        return f"Command({self.spec!r})"

    def close(self) -> None:
        """Close its stdin (the protocol's end), give it a moment to exit, then stop it for good."""
        self._finalizer()

    def __enter__(self) -> "Command":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _kill(self) -> None:
        if self._finalizer.alive:
            self._finalizer.detach()
            _stop(self._process, self._threads, graceful=False)

    def stderr_tail(self) -> str:
        """The last line of its stderr that names an error (else its last line), or ''."""
        lines = [line.decode("utf-8", "replace").strip() for line in list(self._stderr)]
        lines = [line for line in lines if line]
        errors = [line for line in lines if re.match(r"^[\w.$]*(Error|Exception|Exit|Interrupt|Panic|panic)\b", line)]
        return (errors or lines or [""])[-1][:200]

    def _ended(self, what: str) -> Fault:
        """Its stdout closed: the fault saying how it ended ("exited" with its status, "crashed" by
        a signal), with the last of its stderr (read to its end when it has exited)."""
        try:
            code = self._process.wait(2.0)
        except subprocess.TimeoutExpired:
            return Fault("exited", self._with_stderr(self._ending("closed its stdout", what)))
        self._stderr_thread.join(1.0)  # the rest of its stderr
        if code >= 0:
            return Fault("exited", self._with_stderr(self._ending(f"exited with status {code}", what)))
        return Fault("crashed", self._with_stderr(self._ending(f"was killed by signal {-code} ({signal_meaning(-code)})", what)))

    def _next_line(self, timeout: float | None) -> bytes | None:
        """Its next line on stdout (None at its end; queue.Empty after ``timeout`` seconds)."""
        return self._lines.get(timeout=timeout)

    def _ending(self, status: str, what: str) -> str:
        return f"{status} before answering {what}"

    def _timed_out(self, timeout: float, what: str) -> Fault:
        return Fault("timeout", self._with_stderr(f"did not answer {what} within {timeout:g} s: killed"))

    def _with_stderr(self, message: str) -> str:
        tail = self.stderr_tail()
        return f"{message}; its stderr: {tail}" if tail else message

    def _retire(self, fault: Fault) -> Fault:
        """Kill the process; every later request fails at once with this fault."""
        self._kill()
        self._dead = fault
        return fault

    def _read(self, request: str | None, timeout: float | None, what: str) -> object:
        """Send one request line (None: none, read the next line) and read one line back, parsed;
        a fatal Fault for no answer or no JSON."""
        if self._dead is not None:
            raise Fault("stopped", f"not asked: the command was stopped earlier ({self._dead.kind}: {self._dead.message})")
        try:
            if request is not None:
                self._process.stdin.write(request.encode())
                self._process.stdin.flush()
            line = self._next_line(timeout)
        except (OSError, ValueError):
            line = None  # it is gone: say how below
        except queue.Empty:
            raise self._retire(self._timed_out(timeout, what)) from None
        if line is None:
            raise self._retire(self._ended(what))
        if len(line) >= self.max_line and not line.endswith(b"\n"):
            raise self._retire(Fault("protocol", f"wrote a line longer than {self.max_line} bytes on stdout while answering {what}"))
        text = line.decode("utf-8", "replace").strip()
        try:
            return json.loads(text)
        except ValueError as error:
            shown = _shown(text)
            if text.startswith("{") and getattr(error, "pos", 0) >= len(text):
                problem = f"wrote a truncated response {shown} (the JSON ends early)"
            else:
                problem = f"wrote {shown} on stdout, which is not JSON ({error})"
            raise self._retire(Fault("protocol", self._with_stderr(f"{problem} while answering {what}; {_STDOUT_RULE}"))) from None

    def _exchange(self, request: str, timeout: float | None, what: str, layer: bool = False) -> dict:
        """A response: a dict with "error", or with "loss" and "grads" (a layer's: "y" and "grads",
        or "unsupported"); anything else is fatal."""
        response = self._read(request, timeout, what)
        answered = ({"y", "grads"}, {"unsupported"}) if layer else ({"loss", "grads"},)
        if not isinstance(response, dict) or not ("error" in response or any(fields <= response.keys() for fields in answered)):
            expected = ('expected {"y": ..., "grads": {...}}, {"unsupported": "..."} or {"error": "..."}' if layer
                        else 'expected {"loss": ..., "grads": [...]} or {"error": "..."}')
            raise self._retire(Fault("protocol", f"wrote {_shown(json.dumps(response))} while answering {what}: {expected}; {_STDOUT_RULE}"))
        return response

    def describe(self, timeout: float | None = STARTUP_TIMEOUT) -> None:
        """Ask ``{"describe": true}``: its name and the activations and losses it supports (LoadError if it cannot say)."""
        what = self._describing
        try:
            reply = self._read('{"describe":true}\n', timeout, what)
            if not isinstance(reply, dict):
                raise self._retire(Fault("protocol", f"answered {what} with {_shown(json.dumps(reply))}: expected an object"))
        except Fault as fault:
            raise LoadError(f"{self.spec}: {fault.message}") from None
        self._described(reply)

    def _described(self, reply: dict) -> None:
        """Takes its name, what it supports, its kink conventions and precision from the describe reply (LoadError
        if they make no sense)."""
        if "error" in reply:
            return  # no name given, everything supported
        name, activations, losses = reply.get("name"), reply.get("activations"), reply.get("losses")
        if name is not None and not isinstance(name, str):
            raise LoadError(f'{self.spec}: "name" in the describe reply is {name!r}, expected a string')
        layers, configs, networks = reply.get("layers"), reply.get("layer_configs"), reply.get("networks")
        for kind, names in (("activations", activations), ("losses", losses), ("layers", layers)):
            if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
                raise LoadError(f'{self.spec}: "{kind}" in the describe reply is {names!r}, expected a list of names')
        if networks is not None and not isinstance(networks, bool):
            raise LoadError(f'{self.spec}: "networks" in the describe reply is {networks!r}, expected true or false')
        self.name = name
        self.activations = tuple(activations) if activations is not None else None
        self.losses = tuple(losses) if losses is not None else None
        self.layers = tuple(layers) if layers is not None else None
        self.layer_configs = configs  # checked as any declaration is, when wrapped
        if networks is None:  # listing layers, it answers networks only if it says what of them it supports
            networks = layers is None or activations is not None or losses is not None
        self.answers = (_NETWORKS if networks else frozenset()) | (_LAYERS if layers is not None else frozenset())
        for declared in ("kink_derivatives", "precision", "version"):  # checked as any declaration is, when wrapped (a version only shown)
            if reply.get(declared) is not None:
                setattr(self, declared, reply[declared])

    def loss_and_gradients(self, arch, params, X, Y, timeout=_OWN):
        """The contract's question, over the pipe; ``timeout`` overrides the command's own limit."""
        timeout = self.timeout if timeout is _OWN else timeout
        self.requests += 1
        return decode_response(self._exchange(encode_request(arch, params, X, Y), timeout, f"request {self.requests}"))

    def vjp(self, layer, config, inputs, dy, timeout=_OWN):
        """The layer contract's question, over the pipe; Unsupported when it declines."""
        timeout = self.timeout if timeout is _OWN else timeout
        self.requests += 1
        request = encode_layer_request(layer, config, inputs, dy)
        return decode_layer_response(self._exchange(request, timeout, f"request {self.requests}", layer=True))


def command(spec: str, timeout: float | None = DEFAULT_TIMEOUT, startup_timeout: float | None = STARTUP_TIMEOUT) -> Implementation:
    """Start ``spec`` once and ask it to describe itself: an Implementation whose source speaks JSON lines.

    LoadError (exit code 2) when it cannot be started or does not answer the describe request.
    ``timeout`` limits every later call; close it with ``implementation.close()``.
    """
    process = Command(spec, timeout)
    try:
        process.describe(startup_timeout)
        implementation = wrap(process, name=spec, isolation="a process of its own (a command)")
    except LoadError:
        process.close()
        raise
    return with_timeout(implementation, timeout)
