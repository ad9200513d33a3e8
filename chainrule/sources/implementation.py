"""A loaded gradient source: its name, what it declares it supports, its time limit, and where
its calls run: a worker thread of this process (``--in-process``), or a process of its own (a
command, or a Python implementation's worker process: chainrule.sources.worker).

A source answers networks (``loss_and_gradients``, docs/contract.md), layers (``vjp``,
docs/layers.md) or both; it declares what it supports with optional attributes: ``activations``
and ``losses`` for networks, ``layers`` and ``layer_configs`` for layers, ``precision`` and
``kink_derivatives`` (the kinks' derivatives, and max_pool2d's tie rule) for both."""

from __future__ import annotations

import contextvars
import dataclasses
import math
import queue
import threading
import weakref
from dataclasses import dataclass, field

from chainrule.contract import ACTIVATION_NAMES, LOSS_NAMES, PRECISION_NAMES, REQUIRED_OUTPUT, SUBDIFFERENTIAL
from chainrule.layers.contract import LAYER_NAMES, LAYERS, TIE_RULES
from chainrule.precision import FLOAT64, Precision, precision
from chainrule.reference import Architecture
from chainrule.sources.faults import Fault, LoadError

__all__ = ["DEFAULT_TIMEOUT", "IN_PROCESS", "Implementation", "declarations", "with_precision", "with_timeout", "wrap"]

DEFAULT_TIMEOUT = 10.0  # seconds per call before a source counts as hung
IN_PROCESS = "in chainrule's own process"  # Implementation.isolation of one whose calls run in a thread here
TIED = "max_pool2d"  # the layer whose tie rule kink_derivatives may declare (one of TIE_RULES)


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
    the seconds each call may take (None: no limit), and the precision it works in; whether it
    answers networks, and the layers (with the config values) it answers."""

    name: str
    source: object
    activations: tuple[str, ...] = ACTIVATION_NAMES
    losses: tuple[str, ...] = LOSS_NAMES
    timeout: float | None = DEFAULT_TIMEOUT
    health: _Health = field(default_factory=_Health, repr=False, compare=False)
    worker: _Worker = field(default_factory=_Worker, repr=False, compare=False)
    isolation: str = IN_PROCESS  # where its calls run: IN_PROCESS (perhaps with why), or in its own process
    kink_derivatives: dict[str, float] = field(default_factory=dict, compare=False)  # its declared conventions at z = 0
    precision: Precision = FLOAT64  # declared, or set by check --precision (with_precision)
    networks: bool = True  # it has loss_and_gradients
    layers: tuple[str, ...] = ()  # the layers its vjp answers
    layer_configs: dict[str, dict[str, list]] = field(default_factory=dict, compare=False)  # per layer, the values a config key may take
    tie_rules: dict[str, str] = field(default_factory=dict, compare=False)  # declared in kink_derivatives: {"max_pool2d": "last"}

    @property
    def isolated(self) -> bool:
        """True when its calls run in a process of their own (a worker or a command)."""
        return not self.isolation.startswith(IN_PROCESS)

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

    def call_in_worker(self, args: tuple, method: str = "loss_and_gradients") -> object:
        """``loss_and_gradients(*args)`` (or another ``method``) in its worker thread; a timeout Fault past the limit."""
        try:
            return self.worker.call(getattr(self.source, method), args, self.timeout, self.name)
        except _Abandoned:
            raise Fault(
                "timeout", f"did not answer within {self.timeout:g} s (a hung Python call cannot be stopped: it is not asked again)"
            ) from None

    def call_vjp(self, layer: str, config: dict, inputs: dict, dy) -> object:
        """``vjp(layer, config, inputs, dy)`` in its worker thread; a timeout Fault past the limit."""
        return self.call_in_worker((layer, config, inputs, dy), "vjp")

    def close(self) -> None:
        """Release what the source holds (a command's or a worker's process); Python sources in this process need nothing."""
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


def with_precision(implementation: Implementation, name: str | None) -> Implementation:
    """The same implementation judged in another precision (None: the one it declares); ValueError for an unknown name."""
    return implementation if name is None else dataclasses.replace(implementation, precision=precision(name))


def _precision(source: object, label: str) -> Precision:
    """Its declared precision (docs/contract.md, "Precision"); LoadError for an unknown one."""
    declared = getattr(source, "precision", None)
    if declared is None:
        return FLOAT64
    if declared not in PRECISION_NAMES:
        raise LoadError(f"{label}: precision must be one of {', '.join(PRECISION_NAMES)}, got {declared!r}")
    return precision(declared)


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


def _kink_derivatives(source: object, label: str) -> tuple[dict[str, float], dict[str, str]]:
    """Its declared d sigma/dz at z = 0 (docs/contract.md, "Non-differentiable points") and its
    tie rules (docs/layers.md, "Kinks and ties": ``{"max_pool2d": "last"}``); LoadError for a name
    without a kink, a value that is not a number, one outside the subdifferential, or an unknown tie rule."""
    declared = getattr(source, "kink_derivatives", None)
    if declared is None:
        return {}, {}
    if not isinstance(declared, dict):
        raise LoadError(f"{label}: kink_derivatives must be a dict such as {{'relu': 0.5}}, got {declared!r}")
    checked, ties = {}, {}
    for name, value in declared.items():
        if name == TIED:
            if value not in TIE_RULES:
                raise LoadError(f"{label}: kink_derivatives[{name!r}] must be one of {', '.join(map(repr, TIE_RULES))}, got {value!r}")
            ties[name] = value
            continue
        if name not in SUBDIFFERENTIAL:
            raise LoadError(f"{label}: kink_derivatives names {name!r}, which has no kink (kinked: {', '.join(SUBDIFFERENTIAL)}; "
                            f"tied: {TIED})")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LoadError(f"{label}: kink_derivatives[{name!r}] must be a number, got {value!r}")
        low, high = SUBDIFFERENTIAL[name]
        if not low <= value <= high:
            raise LoadError(f"{label}: kink_derivatives[{name!r}] = {value!r} is outside [{low:g}, {high:g}], the one-sided slopes at 0")
        checked[name] = float(value)
    return checked, ties


def _answers(source: object, method: str) -> bool:
    """Whether it has ``method``: a process (a command, a worker) says which its describe reply promised."""
    promised = getattr(source, "answers", None)
    return method in promised if isinstance(promised, frozenset) else callable(getattr(source, method, None))


def _layers(source: object, label: str) -> tuple[str, ...]:
    """The layers it declares (default: every layer); LoadError for names the contract does not know."""
    declared = getattr(source, "layers", None)
    if declared is None:
        return LAYER_NAMES
    if isinstance(declared, str) or not all(isinstance(name, str) for name in declared):
        raise LoadError(f"{label}: layers must be a tuple of names, got {declared!r}")
    unknown = [name for name in declared if name not in LAYERS]
    if unknown:
        raise LoadError(f"{label} declares unknown layers {unknown}; known: {', '.join(LAYER_NAMES)}")
    return tuple(declared)


def _layer_configs(source: object, label: str, layers: tuple[str, ...]) -> dict[str, dict[str, list]]:
    """The config values it declares per layer (docs/layers.md, "What a source supports"), such as
    ``{"conv2d": {"dilation": [1]}}``; LoadError for a layer it does not declare, a key the layer
    does not have, or values that are not a non-empty list."""
    declared = getattr(source, "layer_configs", None)
    if declared is None:
        return {}
    if not isinstance(declared, dict):
        raise LoadError(f"{label}: layer_configs must be a dict such as {{'conv2d': {{'dilation': [1]}}}}, got {declared!r}")
    checked = {}
    for layer, keys in declared.items():
        if layer not in layers:
            raise LoadError(f"{label}: layer_configs names {layer!r}, which is not one of its layers ({', '.join(layers) or 'none'})")
        if not isinstance(keys, dict):
            raise LoadError(f"{label}: layer_configs[{layer!r}] must be a dict of config key -> values, got {keys!r}")
        unknown = sorted(set(keys) - set(LAYERS[layer].defaults))
        if unknown:
            raise LoadError(f"{label}: layer_configs[{layer!r}] names {', '.join(map(repr, unknown))}, not a config key of {layer} "
                            f"(its keys: {', '.join(LAYERS[layer].defaults) or 'none'})")
        for key, values in keys.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values:
                raise LoadError(f"{label}: layer_configs[{layer!r}][{key!r}] must be a non-empty list of values, got {values!r}")
        checked[layer] = {key: list(values) for key, values in keys.items()}
    return checked


def declarations(source: object, name: str | None = None, isolation: str = IN_PROCESS) -> Implementation:
    """An Implementation of a contract object as it declares itself (nothing drawn yet); LoadError
    if it has neither loss_and_gradients nor vjp, or declares what the contract does not know.
    The network declarations (activations, losses) are read only when it has loss_and_gradients."""
    label = name or repr(source)
    networks, layered = _answers(source, "loss_and_gradients"), _answers(source, "vjp")
    if not networks and not layered:
        raise LoadError(f"{label} has no loss_and_gradients method (networks) and no vjp method (layers)")
    if not layered and getattr(source, "layers", None):
        raise LoadError(f"{label} declares layers but has no vjp method")
    activations = _declared(source, "activations", label) if networks else ()
    losses = _declared(source, "losses", label) if networks else ()
    layers = _layers(source, label) if layered else ()
    kinks, ties = _kink_derivatives(source, label)
    return Implementation(
        str(getattr(source, "name", None) or name or type(source).__name__), source, activations, losses, isolation=isolation,
        kink_derivatives=kinks, precision=_precision(source, label), networks=networks, layers=layers,
        layer_configs=_layer_configs(source, label, layers), tie_rules=ties,
    )


def wrap(source: object, name: str | None = None, isolation: str = IN_PROCESS) -> Implementation:
    """An Implementation around any contract object (its optional declarations checked): one that
    answers networks must leave an architecture to draw, one that answers only layers a layer."""
    label = name or repr(source)
    implementation = declarations(source, name, isolation)
    if not implementation.networks:
        if not implementation.layers:
            raise LoadError(f"{label}: nothing it declares can be checked: it declares no layers")
        return implementation
    from hypothesis.errors import InvalidArgument

    from chainrule.strategies import architectures

    try:  # what it declares must leave something to draw
        architectures(activations=implementation.activations, losses=implementation.losses)
    except InvalidArgument as error:
        raise LoadError(f"{label}: nothing it declares can be checked: {error}") from None
    return implementation
