"""Loading a gradient source and asking it one question, turning every misbehaviour into a Fault.

A source is loaded from ``package.module:attribute`` (an instance, or a class constructible
with no arguments). Its answer is checked against the contract before any gradient is judged:
a float loss, one (dW, db) pair per layer with the shapes of (W, b), finite numbers, arguments
left untouched, and the same answer when asked the same question twice.
"""

from __future__ import annotations

import importlib
import math
import sys
from dataclasses import dataclass

import numpy as np

from reference.architecture import ACTIVATION_NAMES, LOSS_NAMES, Architecture

__all__ = ["Fault", "LoadError", "Implementation", "load", "wrap", "answer"]

Params = list[tuple[np.ndarray, np.ndarray]]


class LoadError(Exception):
    """The source cannot be loaded or started (exit code 2)."""


@dataclass(frozen=True)
class Fault(Exception):
    """The source answered, but not as the contract requires."""

    kind: str  # short tag: "raised", "shape", "type", "non-finite", "modified-arguments", "stateful", ...
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Implementation:
    """A contract object with its name and the activations and losses it declares it supports."""

    name: str
    source: object
    activations: tuple[str, ...] = ACTIVATION_NAMES
    losses: tuple[str, ...] = LOSS_NAMES

    def supports(self, arch: Architecture) -> bool:
        return arch.loss in self.losses and all(name in self.activations for name in arch.activations)


def wrap(source: object, name: str | None = None) -> Implementation:
    """An Implementation around any contract object (optional ``activations``/``losses`` attributes)."""
    if not callable(getattr(source, "loss_and_gradients", None)):
        raise LoadError(f"{name or source!r} has no loss_and_gradients method")
    activations = tuple(getattr(source, "activations", None) or ACTIVATION_NAMES)
    losses = tuple(getattr(source, "losses", None) or LOSS_NAMES)
    for kind, names, known in (("activations", activations, ACTIVATION_NAMES), ("losses", losses, LOSS_NAMES)):
        unknown = [n for n in names if n not in known]
        if unknown:
            raise LoadError(f"{name or source!r} declares unknown {kind} {unknown}; known: {', '.join(known)}")
    return Implementation(str(getattr(source, "name", None) or name or type(source).__name__), source, activations, losses)


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
    if isinstance(target, type):
        try:
            target = target()
        except Exception as error:
            raise LoadError(f"{spec}: cannot construct {attribute}(): {type(error).__name__}: {error}") from None
    return wrap(target, spec)


def _validated(arch: Architecture, result: object) -> tuple[float, Params]:
    """The answer as (float, [(dW, db)]) float64 arrays, or a Fault saying what is wrong."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Fault("type", f"returned {type(result).__name__}, expected a (loss, grads) pair")
    loss, grads = result
    try:
        loss = float(loss)
    except (TypeError, ValueError):
        raise Fault("type", f"loss is {type(loss).__name__}, expected a float") from None
    if not math.isfinite(loss):
        raise Fault("non-finite", f"loss is {loss}")
    if not isinstance(grads, (list, tuple)) or len(grads) != arch.depth:
        count = len(grads) if isinstance(grads, (list, tuple)) else type(grads).__name__
        raise Fault("layers", f"returned gradients for {count} layers, the network has {arch.depth}")
    checked = []
    for l, (pair, n_in, n_out) in enumerate(zip(grads, arch.sizes, arch.sizes[1:]), start=1):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise Fault("type", f"layer {l}: expected a (dW, db) pair, got {type(pair).__name__}")
        arrays = []
        for value, kind, shape in ((pair[0], "W", (n_out, n_in)), (pair[1], "b", (n_out,))):
            try:
                array = np.array(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise Fault("type", f"dL/d{kind}[layer {l}] is {type(value).__name__}, not an array of numbers") from None
            if array.shape != shape:
                raise Fault("shape", f"dL/d{kind}[layer {l}] has shape {array.shape}, expected {shape}")
            if not np.isfinite(array).all():
                raise Fault("non-finite", f"dL/d{kind}[layer {l}] contains NaN or Inf")
            arrays.append(array)
        checked.append((arrays[0], arrays[1]))
    return loss, checked


def _ask(implementation: Implementation, arch, params: Params, X: np.ndarray, Y: np.ndarray) -> tuple[float, Params]:
    copies = [(W.copy(), b.copy()) for W, b in params], X.copy(), Y.copy()
    try:
        result = implementation.source.loss_and_gradients(arch, copies[0], copies[1], copies[2])
    except Exception as error:
        raise Fault("raised", f"raised {type(error).__name__}: {error}") from None
    modified = [f"W[layer {l}]" for l, (W, _) in enumerate(copies[0], 1) if not np.array_equal(W, params[l - 1][0])]
    modified += [f"b[layer {l}]" for l, (_, b) in enumerate(copies[0], 1) if not np.array_equal(b, params[l - 1][1])]
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
            if not np.allclose(a, b, rtol=1e-12, atol=0.0):
                raise Fault("stateful", "returned different gradients for the same input on a second call (state kept between calls)")
    if not math.isclose(first[0], second[0], rel_tol=1e-12):
        raise Fault("stateful", "returned a different loss for the same input on a second call (state kept between calls)")
    return first
