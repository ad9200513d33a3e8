"""Asking a gradient source one question and checking its answer against the contract.

The answer must be a float loss and one (dW, db) pair per layer with the shapes of (W, b),
float64 numbers, all finite, the arguments left untouched, and the same answer when asked the
same question twice. Anything else is a Fault (chainrule.sources.faults); a fatal one retires
the source, which is then never asked again.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from chainrule.reference import Architecture
from chainrule.sources.faults import Fault
from chainrule.sources.implementation import Implementation

__all__ = ["answer"]

Params = list[tuple[np.ndarray, np.ndarray]]


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


def _call(implementation: Implementation, args: tuple) -> object:
    """The source's raw answer; a Fault for anything it raised or a call that timed out."""
    source = implementation.source
    try:
        if getattr(source, "enforces_timeout", False):  # a command: it kills its own process on a hang
            return source.loss_and_gradients(*args, timeout=implementation.timeout)
        if implementation.timeout is None:
            return source.loss_and_gradients(*args)
        return implementation.call_in_worker(args)
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
    """Ask twice (on fresh copies) and insist on one answer: the contract forbids state between calls.
    Warnings it emits are never faults: the host's warning filters (``-W error``, pytest's
    ``filterwarnings``) are set aside for the calls."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = _ask(implementation, arch, params, X, Y)
        second = _ask(implementation, arch, params, X, Y)
    for (dW1, db1), (dW2, db2) in zip(first[1], second[1]):
        for a, b in ((dW1, dW2), (db1, db2)):
            if not (np.array_equal(a, b) or np.allclose(a, b, rtol=1e-12, atol=0.0)):
                raise Fault("stateful", "returned different gradients for the same input on a second call (state kept between calls)")
    if not math.isclose(first[0], second[0], rel_tol=1e-12):
        raise Fault("stateful", "returned a different loss for the same input on a second call (state kept between calls)")
    return first
