"""Loading a gradient source and asking it one question, turning every misbehaviour into a Fault.

A source is loaded from ``package.module:attribute`` (an instance, or a class constructible
with no arguments), from an installed entry point in the group ``chainrule.implementations``,
or, in any language, from a command speaking JSON lines (``oracles.jsonlines``). Its answer is
checked against the contract before any gradient is judged: a float loss, one (dW, db) pair
per layer with the shapes of (W, b), float64 numbers, all finite, arguments left untouched,
and the same answer when asked the same question twice.

Every call has a time limit. A hung Python call cannot be stopped, so calls run in a daemon
worker thread (one per implementation, reused) and, once one is past the limit, the
implementation is retired: a fatal fault (a hang, a
command that exited or broke the protocol) is reported once and the source is never asked
again, so that Hypothesis does not wait for it on every shrinking step.
"""

from __future__ import annotations

import contextvars
import dataclasses
import importlib
import importlib.metadata
import math
import queue
import sys
import threading
import weakref
from dataclasses import dataclass, field

import numpy as np

from reference.architecture import ACTIVATION_NAMES, LOSS_NAMES, REQUIRED_OUTPUT, Architecture

__all__ = [
    "DEFAULT_TIMEOUT", "ENTRY_POINT_GROUP", "FAULT_KINDS", "Fault", "LoadError", "Implementation",
    "load", "wrap", "with_timeout", "answer",
    "entry_point_names", "load_entry_point", "entry_point_implementations",
]

Params = list[tuple[np.ndarray, np.ndarray]]

DEFAULT_TIMEOUT = 10.0  # seconds per call before a source counts as hung
ENTRY_POINT_GROUP = "chainrule.implementations"

# Every Fault.kind, with what it means. The fatal ones retire the implementation.
FAULT_KINDS = {
    "raised": "raised an exception (a command: answered {\"error\": ...})",
    "type": "answered with the wrong types: not a float loss and float64 arrays",
    "layers": "answered with gradients for the wrong number of layers",
    "shape": "answered a gradient with the wrong shape",
    "non-finite": "answered a NaN or infinite loss or gradient",
    "modified-arguments": "changed the params, X or Y it was given",
    "stateful": "answered the same question twice, differently (state kept between calls)",
    "timeout": "did not answer within the time limit (fatal: never asked again)",
    "exited": "the command exited or closed its stdout (fatal)",
    "protocol": "the command wrote something on stdout that is not a response (fatal)",
    "stopped": "not asked: retired after an earlier fatal fault",
}
FATAL = frozenset({"timeout", "exited", "protocol", "stopped"})


class LoadError(Exception):
    """The source cannot be loaded or started (exit code 2)."""


@dataclass(frozen=True)
class Fault(Exception):
    """The source answered, but not as the contract requires."""

    kind: str  # one of FAULT_KINDS
    message: str

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # frozen dataclasses cannot be unpickled through Exception's default
        return (Fault, (self.kind, self.message))

    @property
    def fatal(self) -> bool:
        """True when the source cannot be asked again (it hung, exited or broke the protocol)."""
        return self.kind in FATAL


class _Health:
    """Shared by every copy of one Implementation: the fatal fault that retired it, and where."""

    def __init__(self) -> None:
        self.retired: tuple[Fault, str] | None = None


class _Abandoned(Exception):
    """A call still running past its time limit, left behind in its thread."""


class _Worker:
    """The daemon thread that makes an implementation's calls, started on its first call and reused:
    a call costs a queue round-trip, not a new thread. A call past its time limit is abandoned
    there (a hung Python call cannot be stopped) and the next call, if any, gets a new thread.
    A thread ends when its queue gets None: once abandoned, or once its Worker is collected."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _serve(jobs: queue.SimpleQueue) -> None:
        while (job := jobs.get()) is not None:
            context, function, args, done = job
            try:
                done.put(("result", context.run(function, *args)))
            except BaseException as error:  # noqa: B036 - SystemExit in a plug-in is a fault like any other
                done.put(("error", error))

    def call(self, function, args: tuple, timeout: float, name: str) -> object:
        """``function(*args)`` in the worker, in a copy of the caller's context (numpy's errstate
        and the like); _Abandoned after ``timeout`` seconds."""
        with self._lock:  # one call at a time: a call's time limit never counts another's
            if self._jobs is None:
                self._jobs = queue.SimpleQueue()
                threading.Thread(target=self._serve, args=(self._jobs,), name=f"chainrule: {name}", daemon=True).start()
                weakref.finalize(self, self._jobs.put, None)
            done: queue.SimpleQueue = queue.SimpleQueue()
            self._jobs.put((contextvars.copy_context(), function, args, done))
            try:
                kind, value = done.get(timeout=timeout)
            except queue.Empty:  # the thread is stuck in the call: abandoned, it ends if the call does
                self._jobs.put(None)
                self._jobs = None
                raise _Abandoned from None
        if kind == "error":
            raise value
        return value


@dataclass(frozen=True)
class Implementation:
    """A contract object with its name, the activations and losses it declares it supports,
    and the seconds each call may take (None: no limit)."""

    name: str
    source: object
    activations: tuple[str, ...] = ACTIVATION_NAMES
    losses: tuple[str, ...] = LOSS_NAMES
    timeout: float | None = DEFAULT_TIMEOUT
    health: _Health = field(default_factory=_Health, repr=False, compare=False)
    worker: _Worker = field(default_factory=_Worker, repr=False, compare=False)

    def supports(self, arch: Architecture) -> bool:
        return arch.loss in self.losses and all(name in self.activations for name in arch.activations)

    @property
    def unexercised(self) -> tuple[str, ...]:
        """Every activation and loss no check ever draws for it: outside what it declares."""
        activations = tuple(name for name in ACTIVATION_NAMES if name not in self.activations)
        losses = []
        for name in LOSS_NAMES:
            required = REQUIRED_OUTPUT.get(name)
            if name not in self.losses:
                losses.append(name)
            elif required and required not in self.activations:
                losses.append(f"{name} (needs {required})")
        return activations + tuple(losses)

    @property
    def retired(self) -> Fault | None:
        """The fatal fault after which it is no longer asked, if any."""
        return self.health.retired[0] if self.health.retired else None

    def close(self) -> None:
        """Release what the source holds (a command's process); Python sources need nothing."""
        close = getattr(self.source, "close", None)
        if callable(close):
            close()


def _seconds(timeout: float | None) -> float | None:
    if timeout is None or timeout == math.inf:
        return None
    if not timeout > 0:  # also rejects NaN
        raise ValueError(f"timeout: got {timeout!r}, expected a number of seconds > 0")
    return float(timeout)


def with_timeout(implementation: Implementation, timeout: float | None) -> Implementation:
    """The same implementation (same source, same health) with another per-call limit; None or inf: none."""
    return dataclasses.replace(implementation, timeout=_seconds(timeout))


def _declared(source: object, kind: str, label: str) -> tuple[str, ...]:
    declared = getattr(source, kind, None)
    known = ACTIVATION_NAMES if kind == "activations" else LOSS_NAMES
    if declared is None:
        return known
    if isinstance(declared, str) or not all(isinstance(name, str) for name in declared):
        raise LoadError(f"{label}: {kind} must be a tuple of names, got {declared!r}")
    declared = tuple(declared)
    unknown = [name for name in declared if name not in known]
    if unknown:
        raise LoadError(f"{label} declares unknown {kind} {unknown}; known: {', '.join(known)}")
    return declared


def wrap(source: object, name: str | None = None) -> Implementation:
    """An Implementation around any contract object (optional ``activations``/``losses`` attributes)."""
    label = name or repr(source)
    if not callable(getattr(source, "loss_and_gradients", None)):
        raise LoadError(f"{label} has no loss_and_gradients method")
    activations = _declared(source, "activations", label)
    losses = _declared(source, "losses", label)
    from hypothesis.errors import InvalidArgument

    from .strategies import architectures

    try:  # what it declares must leave something to draw
        architectures(activations=activations, losses=losses)
    except InvalidArgument as error:
        raise LoadError(f"{label}: nothing it declares can be checked: {error}") from None
    return Implementation(str(getattr(source, "name", None) or name or type(source).__name__), source, activations, losses)


def _instance(target: object, spec: str, attribute: str) -> object:
    if isinstance(target, type):
        try:
            return target()
        except Exception as error:
            raise LoadError(f"{spec}: cannot construct {attribute}(): {type(error).__name__}: {error}") from None
    return target


def load(spec: str) -> Implementation:
    """``package.module:attribute`` -> Implementation; LoadError with a one-line reason otherwise."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise LoadError(f"{spec!r}: expected MODULE:ATTR, e.g. reference:Reference")
    if "" not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: modules in the working directory can be named
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # any import failure is the plug-in's, reported in one line
        raise LoadError(f"{spec}: cannot import {module_name!r}: {type(error).__name__}: {error}") from None
    try:
        target = getattr(module, attribute)
    except AttributeError:
        raise LoadError(f"{spec}: module {module_name!r} has no attribute {attribute!r}") from None
    return wrap(_instance(target, spec, attribute), spec)


# --- installed plug-ins: entry points in the group chainrule.implementations -------------------


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda point: point.name)


def entry_point_names() -> list[str]:
    """The names of the installed implementations (loads nothing)."""
    return [point.name for point in _entry_points()]


def _load_point(point: importlib.metadata.EntryPoint) -> Implementation:
    spec = f"entry point {point.name} = {point.value}"
    try:
        target = point.load()
    except Exception as error:
        raise LoadError(f"{spec}: cannot load: {type(error).__name__}: {error}") from None
    return wrap(_instance(target, spec, point.attr or point.value), point.name)


def load_entry_point(name: str) -> Implementation:
    """The installed implementation of that entry-point name; LoadError if missing or broken."""
    for point in _entry_points():
        if point.name == name:
            return _load_point(point)
    raise LoadError(f"no entry point {name!r} in group {ENTRY_POINT_GROUP}; installed: {', '.join(entry_point_names()) or 'none'}")


def entry_point_implementations() -> list[tuple[str, Implementation | LoadError]]:
    """Every installed implementation, by entry-point name: loaded, or the LoadError saying why not.
    One that cannot be loaded never stops the others."""
    found: list[tuple[str, Implementation | LoadError]] = []
    for point in _entry_points():
        try:
            found.append((point.name, _load_point(point)))
        except LoadError as error:
            found.append((point.name, error))
    return found


# --- asking ----------------------------------------------------------------------------------


def _loss(value: object) -> float:
    try:
        array = np.asarray(value)
    except Exception:
        raise Fault("type", f"loss is {type(value).__name__}, expected a float") from None
    if array.shape != () or array.dtype.kind not in "fiu":
        raise Fault("type", f"loss is {type(value).__name__} {array.dtype} {array.shape}, expected a float")
    if array.dtype.kind == "f" and array.dtype.itemsize < 8:
        raise Fault("type", f"loss is {array.dtype}, expected float64")
    loss = float(array)
    if not math.isfinite(loss):
        raise Fault("non-finite", f"loss is {loss}")
    return loss


def _gradient(value: object, name: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception as error:
        raise Fault("type", f"{name} is {type(value).__name__}, not an array of numbers ({type(error).__name__}: {error})") from None
    if array.dtype.kind not in "fiu":
        raise Fault("type", f"{name} is {type(value).__name__} of dtype {array.dtype}, expected float64 numbers")
    if array.dtype.kind == "f" and array.dtype.itemsize < 8:
        raise Fault("type", f"{name} is {array.dtype}, expected float64 (float32 cannot meet the 1e-9 tolerance)")
    if array.shape != shape:
        raise Fault("shape", f"{name} has shape {array.shape}, expected {shape}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise Fault("non-finite", f"{name} contains NaN or Inf")
    return array


def _validated(arch, result: object) -> tuple[float, Params]:
    """The answer as (float, [(dW, db)]) float64 arrays, or a Fault saying what is wrong."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Fault("type", f"returned {type(result).__name__}, expected a (loss, grads) pair")
    loss, grads = _loss(result[0]), result[1]
    depth = len(arch.sizes) - 1
    if not isinstance(grads, (list, tuple)) or len(grads) != depth:
        count = len(grads) if isinstance(grads, (list, tuple)) else type(grads).__name__
        raise Fault("layers", f"returned gradients for {count} layers, the network has {depth}")
    checked = []
    for l, (pair, n_in, n_out) in enumerate(zip(grads, arch.sizes, arch.sizes[1:]), start=1):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise Fault("type", f"layer {l}: expected a (dW, db) pair, got {type(pair).__name__}")
        dW = _gradient(pair[0], f"dL/dW[layer {l}]", (n_out, n_in))
        db = _gradient(pair[1], f"dL/db[layer {l}]", (n_out,))
        checked.append((dW, db))
    return loss, checked


def _where(arch, X: np.ndarray) -> str:
    return f"{arch if isinstance(arch, Architecture) else (arch.sizes, arch.activations, arch.loss)}, N={len(X)}"


def _in_worker(implementation: Implementation, args: tuple) -> object:
    """The call in the implementation's worker thread, waited for at most ``timeout`` seconds."""
    try:
        return implementation.worker.call(implementation.source.loss_and_gradients, args, implementation.timeout, implementation.name)
    except _Abandoned:
        raise Fault(
            "timeout",
            f"did not answer within {implementation.timeout:g} s (a hung Python call cannot be stopped: it is not asked again)",
        ) from None


def _call(implementation: Implementation, args: tuple) -> object:
    """The source's raw answer; a Fault for anything it raised or a call that timed out."""
    source = implementation.source
    try:
        if getattr(source, "enforces_timeout", False):  # a command: it kills its own process on a hang
            return source.loss_and_gradients(*args, timeout=implementation.timeout)
        if implementation.timeout is None:
            return source.loss_and_gradients(*args)
        return _in_worker(implementation, args)
    except Fault:
        raise
    except (Exception, SystemExit) as error:
        raise Fault("raised", f"raised {type(error).__name__}: {error}") from None


def _ask(implementation: Implementation, arch, params: Params, X: np.ndarray, Y: np.ndarray) -> tuple[float, Params]:
    if implementation.health.retired is not None:
        fault, where = implementation.health.retired
        raise Fault("stopped", f"not asked: retired after it failed on {where} ({fault.kind}: {fault.message})")
    copies = [(W.copy(), b.copy()) for W, b in params], X.copy(), Y.copy()
    given = list(copies[0])
    try:
        result = _call(implementation, (arch, copies[0], copies[1], copies[2]))
    except Fault as fault:
        if fault.fatal:
            implementation.health.retired = (fault, _where(arch, X))
        raise
    modified = [] if len(copies[0]) == len(given) and all(a is b for a, b in zip(copies[0], given)) else ["the params list"]
    modified += [f"W[layer {l}]" for l, (W, _) in enumerate(given, 1) if not np.array_equal(W, params[l - 1][0])]
    modified += [f"b[layer {l}]" for l, (_, b) in enumerate(given, 1) if not np.array_equal(b, params[l - 1][1])]
    modified += [name for name, (a, b) in (("X", (copies[1], X)), ("Y", (copies[2], Y))) if not np.array_equal(a, b)]
    if modified:
        raise Fault("modified-arguments", f"modified its arguments in place: {', '.join(modified)}")
    return _validated(arch, result)


def answer(implementation: Implementation, arch, params: Params, X: np.ndarray, Y: np.ndarray) -> tuple[float, Params]:
    """Ask twice (on fresh copies) and insist on one answer: the contract forbids state between calls."""
    first = _ask(implementation, arch, params, X, Y)
    second = _ask(implementation, arch, params, X, Y)
    for (dW1, db1), (dW2, db2) in zip(first[1], second[1]):
        for a, b in ((dW1, dW2), (db1, db2)):
            if not (np.array_equal(a, b) or np.allclose(a, b, rtol=1e-12, atol=0.0)):
                raise Fault("stateful", "returned different gradients for the same input on a second call (state kept between calls)")
    if not math.isclose(first[0], second[0], rel_tol=1e-12):
        raise Fault("stateful", "returned a different loss for the same input on a second call (state kept between calls)")
    return first
