"""Asking a layer source one question (docs/layers.md) and checking its answer against the contract.

``vjp(layer, config, inputs, dy) -> (y, grads)``: y with dy's shape, grads with exactly the
layer's differentiable inputs, each with its input's shape, float64 numbers (or the declared
precision's), all finite; inputs, dy and config left untouched, no returned array sharing
memory with another or with an input or dy, and the same answer when asked twice. Anything
else is a Fault (chainrule.sources.faults), as for networks (chainrule.sources.ask); a source
that declines the question (NotImplementedError) raises Unsupported instead.
"""

from __future__ import annotations

import copy
import itertools
import warnings
from functools import partial

import numpy as np

from chainrule.layers.contract import LAYERS
from chainrule.precision import Precision
from chainrule.sources.ask import _call, _equal_up_to_rounding, _gradient, _not_retired, _same
from chainrule.sources.faults import Fault, Unsupported
from chainrule.sources.implementation import Implementation
from chainrule.tolerances import TOLERANCES

__all__ = ["Unsupported", "answer_layer"]  # Unsupported lives in chainrule.sources.faults

Grads = dict[str, np.ndarray]


def _where(layer: str, config: dict, inputs: dict[str, np.ndarray]) -> str:
    """``conv2d {'stride': 2} x (2, 3, 9, 9), weight (4, 3, 3, 3), bias (4,)``: the question, for messages."""
    return f"{layer} {config} " + ", ".join(f"{name} {array.shape}" for name, array in inputs.items())


def _names(layer: str, grads: object) -> None:
    """grads must be a dict holding the layer's differentiable inputs, no more, no fewer."""
    if not isinstance(grads, dict):
        raise Fault("type", f"grads is {type(grads).__name__}, expected a dict of arrays by input name")
    expected = LAYERS[layer].differentiable
    missing = [name for name in expected if name not in grads]
    extra = [repr(name) for name in grads if name not in expected]
    if missing or extra:
        said = [f"{which} {', '.join(names)}" for which, names in (("missing", [repr(n) for n in missing]), ("extra", extra)) if names]
        raise Fault("names", f"grads names: {'; '.join(said)} ({layer}'s differentiable inputs: {', '.join(expected)})")


def _array(value: object) -> np.ndarray | None:
    try:
        return np.asarray(value)  # a tensor's own memory, where it has numpy's view of it
    except Exception:  # not an array at all: _gradient says so
        return None


def _aliases(returned: dict[str, object], given: dict[str, np.ndarray]) -> None:
    """No returned array may share memory with another one, or with an input or dy it was given."""
    arrays = {name: array for name, value in returned.items() if (array := _array(value)) is not None}
    pairs = [*itertools.combinations(arrays, 2), *((a, b) for a in arrays for b in given)]
    for a, b in pairs:
        other = arrays[b] if b in arrays else given[b]
        if np.may_share_memory(arrays[a], other) and np.shares_memory(arrays[a], other):
            shared = b if b in arrays else "dy" if b == "dy" else f"its input {b!r}"
            raise Fault("aliased", f"returned {a} sharing memory with {shared}: return arrays of their own (a copy)")


def _validated(layer: str, result: object, shapes: dict[str, tuple], dy_shape: tuple, given: dict, precision: Precision) -> tuple:
    """The answer as float64 (y, grads), or a Fault saying what is wrong (arrays narrower than
    ``precision``, the source's, among them). ``given``: what it was handed, by name, for aliasing."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Fault("type", f"returned {type(result).__name__}, expected a (y, grads) pair")
    y, grads = result
    _names(layer, grads)
    _aliases({"y": y} | {f"grads[{name!r}]": value for name, value in grads.items()}, given)
    differentiable = LAYERS[layer].differentiable
    return _gradient(y, "y", dy_shape, precision), {n: _gradient(grads[n], f"grads[{n!r}]", shapes[n], precision) for n in differentiable}


def _ask(implementation: Implementation, layer: str, config: dict, inputs: dict[str, np.ndarray], dy: np.ndarray) -> tuple:
    """One call, on copies (the engine's arrays are never handed out), checked: the answer, a
    Fault, or Unsupported. A worker process checked the answer where the source is."""
    _not_retired(implementation)
    elsewhere = getattr(implementation.source, "checks_answers", False)
    handed = (config, inputs, dy) if elsewhere else (copy.deepcopy(config), {name: a.copy() for name, a in inputs.items()}, dy.copy())
    given = dict(handed[1])
    try:
        result = _call(implementation, (layer, *handed), "vjp")
    except Fault as fault:
        if fault.fatal:
            implementation.health.retired = (fault, _where(layer, config, inputs))
        raise
    if elsewhere:
        return result
    modified = [] if handed[1].keys() == given.keys() and all(handed[1][n] is a for n, a in given.items()) else ["the inputs dict"]
    modified += [f"inputs[{name!r}]" for name, array in given.items() if not _same(array, inputs[name])]
    modified += ["dy"] * (not _same(handed[2], dy)) + ["config"] * (handed[0] != config)
    if modified:
        raise Fault("modified-arguments", f"modified its arguments in place: {', '.join(modified)}")
    shapes = {name: array.shape for name, array in inputs.items()}
    return _validated(layer, result, shapes, dy.shape, given | {"dy": handed[2]}, implementation.precision)


def _again(ask) -> tuple[np.ndarray, Grads]:
    """The second answer, ``ask()``: declining a question it answered the first time is state."""
    try:
        return ask()
    except Unsupported as unsupported:
        raise Fault("stateful", f"answered, then declined the same question on a second call ({unsupported.reason}): "
                                "state kept between calls") from None


def _ask_twice(implementation: Implementation, layer: str, config: dict, inputs: dict[str, np.ndarray], dy: np.ndarray) -> tuple:
    """Two answers: asked one after the other, or of a worker process in one request (it makes the
    second call only after a first that was an answer, as here)."""
    twice = getattr(implementation.source, "vjp_twice", None)
    if twice is None:
        first = _ask(implementation, layer, config, inputs, dy)
        return first, _again(partial(_ask, implementation, layer, config, inputs, dy))
    _not_retired(implementation)
    try:
        return twice(layer, config, inputs, dy, timeout=implementation.timeout, precision=implementation.precision.name)
    except Fault as fault:
        if fault.fatal:
            implementation.health.retired = (fault, _where(layer, config, inputs))
        raise


def answer_layer(
    implementation: Implementation, layer: str, config: dict, inputs: dict[str, np.ndarray], dy: np.ndarray
) -> tuple[np.ndarray, Grads]:
    """(y, grads) as float64 arrays: ``vjp`` asked twice (on fresh copies) with one answer
    insisted on, up to rounding (the exact tolerance of each array's scale). Raises Fault for a
    contract fault (a fatal one retires the source) and Unsupported for a question the source
    declines. Warnings it emits are never faults (as chainrule.sources.ask.answer)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (y, grads), (y2, grads2) = _ask_twice(implementation, layer, config, inputs, dy)
    rtol = TOLERANCES["exact"].rtol
    pairs = {"y": (y, y2)} | {f"grads[{n!r}]": (grads[n], grads2[n]) for n in grads}
    for name, (a, b) in pairs.items():
        if not _equal_up_to_rounding(a, b, rtol, None, None):
            raise Fault("stateful", f"returned a different {name} for the same input on a second call (state kept between calls)")
    return y, grads
