"""Asking a gradient source one question and checking its answer against the contract.

The answer must be a float loss and one (dW, db) pair per layer with the shapes of (W, b),
float64 numbers, all finite, the arguments left untouched, and the same answer when asked the
same question twice. Anything else is a Fault (chainrule.sources.faults); a fatal one retires
the source, which is then never asked again.
"""

from __future__ import annotations

import math
import os
import traceback
import warnings

import numpy as np

from chainrule.precision import Precision
from chainrule.reference import Architecture
from chainrule.sources.faults import Fault, Unsupported
from chainrule.sources.implementation import Implementation
from chainrule.tolerances import ABSOLUTE_SCALE, TOLERANCES, Sensitivity

__all__ = ["answer"]

Params = list[tuple[np.ndarray, np.ndarray]]


def _narrower(dtype: np.dtype, precision: Precision) -> bool:
    """A float dtype narrower than the precision an answer may come back in."""
    return dtype.kind in "fV" and dtype.itemsize < precision.dtype.itemsize


def _expected(precision: Precision) -> str:
    return "float64" if precision.is_float64 else f"float64 or {precision} (its declared precision)"


def _hint(precision: Precision) -> str:
    return ' (declare precision = "float32" if it works in float32)' if precision.is_float64 else ""


def _loss(value: object, precision: Precision) -> float:
    try:
        array = np.asarray(value)
    except Exception:
        raise Fault("type", f"loss is {type(value).__name__}, expected a float") from None
    if array.shape != () or not _numbers(array.dtype, precision):
        raise Fault("type", f"loss is {type(value).__name__} {array.dtype} {array.shape}, expected a float")
    if _narrower(array.dtype, precision):
        raise Fault("type", f"loss is {array.dtype}, expected {_expected(precision)}{_hint(precision)}")
    loss = float(array.astype(np.float64))
    if not math.isfinite(loss):
        raise Fault("non-finite", f"loss is {loss}")
    return loss


def _numbers(dtype: np.dtype, precision: Precision) -> bool:
    """Integers or floats (bfloat16 is a numpy void type: numbers only when declared)."""
    return dtype.kind in "fiu" or (dtype == precision.dtype and not precision.is_float64)


def _gradient(value: object, name: str, shape: tuple[int, ...], precision: Precision) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception as error:
        raise Fault("type", f"{name} is {type(value).__name__}, not an array of numbers ({type(error).__name__}: {error})") from None
    if not _numbers(array.dtype, precision):
        raise Fault("type", f"{name} is {type(value).__name__} of dtype {array.dtype}, expected float64 numbers")
    if _narrower(array.dtype, precision):
        raise Fault("type", f"{name} is {array.dtype}, expected {_expected(precision)}{_hint(precision)}")
    if array.shape != shape:
        raise Fault("shape", f"{name} has shape {array.shape}, expected {shape}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise Fault("non-finite", f"{name} contains NaN or Inf")
    return array


def _validated(arch, result: object, precision: Precision) -> tuple[float, Params]:
    """The answer as (float, [(dW, db)]) float64 arrays, or a Fault saying what is wrong (arrays
    narrower than ``precision``, the source's, among them)."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Fault("type", f"returned {type(result).__name__}, expected a (loss, grads) pair")
    loss, grads = _loss(result[0], precision), result[1]
    depth = len(arch.sizes) - 1
    if not isinstance(grads, (list, tuple)) or len(grads) != depth:
        count = len(grads) if isinstance(grads, (list, tuple)) else type(grads).__name__
        raise Fault("layers", f"returned gradients for {count} layers, the network has {depth}")
    checked = []
    for l, (pair, n_in, n_out) in enumerate(zip(grads, arch.sizes, arch.sizes[1:]), start=1):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise Fault("type", f"layer {l}: expected a (dW, db) pair, got {type(pair).__name__}")
        dW = _gradient(pair[0], f"dL/dW[layer {l}]", (n_out, n_in), precision)
        db = _gradient(pair[1], f"dL/db[layer {l}]", (n_out,), precision)
        checked.append((dW, db))
    return loss, checked


def _same(copy: np.ndarray, original: np.ndarray) -> bool:
    """The copy handed out still equals the original (the bytes first: a call's worth of time saved)."""
    return (copy.shape == original.shape and copy.tobytes() == original.tobytes()) or np.array_equal(copy, original)


def _where(arch, X: np.ndarray) -> str:
    return f"{arch if isinstance(arch, Architecture) else (arch.sizes, arch.activations, arch.loss)}, N={len(X)}"


def _call(implementation: Implementation, args: tuple, method: str = "loss_and_gradients") -> object:
    """The source's raw answer to ``method(*args)``; a Fault for anything it raised or a call that
    timed out. A layer source (method "vjp") may decline with NotImplementedError: Unsupported,
    and a layer's "raised" message names where it raised (a table of layers has many functions)."""
    source = implementation.source
    function = getattr(source, method)
    try:
        if getattr(source, "checks_answers", False):  # a worker process: it checks answers in the source's precision
            return function(*args, timeout=implementation.timeout, precision=implementation.precision.name)
        if getattr(source, "enforces_timeout", False):  # a command: it kills its own process on a hang
            return function(*args, timeout=implementation.timeout)
        if implementation.timeout is None:
            return function(*args)
        return implementation.call_vjp(*args) if method == "vjp" else implementation.call_in_worker(args)
    except (Fault, Unsupported):
        raise
    except MemoryError as error:  # fatal: chainrule.sources.serve adds the worker's limit
        detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise Fault("memory", f"ran out of memory; {detail}") from None
    except (Exception, SystemExit) as error:
        if method == "vjp" and isinstance(error, NotImplementedError):
            raise Unsupported(str(error) or "raised NotImplementedError") from None
        where = f" ({_frame(error)})" if method == "vjp" else ""
        raise Fault("raised", f"raised {type(error).__name__}: {error}{where}") from None


def _frame(error: BaseException) -> str:
    """Where it was raised: the traceback's last frame, ``at conv.py:12 in vjp``."""
    frames = traceback.extract_tb(error.__traceback__)
    return f"at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno} in {frames[-1].name}" if frames else "no traceback"


def _not_retired(implementation: Implementation) -> None:
    if implementation.health.retired is not None:
        fault, where = implementation.health.retired
        raise Fault("stopped", f"not asked: retired after it failed on {where} ({fault.kind}: {fault.message})")


def _ask_twice(implementation: Implementation, arch, params: Params, X: np.ndarray, Y: np.ndarray) -> tuple[tuple, tuple]:
    """Two answers to the same question: asked one after the other, or of a worker process in one
    request (it makes the second call only after a first that did not fault, as here)."""
    twice = getattr(implementation.source, "loss_and_gradients_twice", None)
    if twice is None:
        return _ask(implementation, arch, params, X, Y), _ask(implementation, arch, params, X, Y)
    _not_retired(implementation)
    try:
        return twice(arch, params, X, Y, timeout=implementation.timeout, precision=implementation.precision.name)
    except Fault as fault:
        if fault.fatal:
            implementation.health.retired = (fault, _where(arch, X))
        raise


def _ask(implementation: Implementation, arch, params: Params, X: np.ndarray, Y: np.ndarray) -> tuple[float, Params]:
    _not_retired(implementation)
    elsewhere = getattr(implementation.source, "checks_answers", False)  # a worker process: it checked there
    copies = ([(W.copy(), b.copy()) for W, b in params], X.copy(), Y.copy()) if not elsewhere else (params, X, Y)
    given = list(copies[0])
    try:
        result = _call(implementation, (arch, copies[0], copies[1], copies[2]))
    except Fault as fault:
        if fault.fatal:
            implementation.health.retired = (fault, _where(arch, X))
        raise
    if elsewhere:
        return result
    modified = [] if len(copies[0]) == len(given) and all(a is b for a, b in zip(copies[0], given)) else ["the params list"]
    modified += [f"W[layer {l}]" for l, (W, _) in enumerate(given, 1) if not _same(W, params[l - 1][0])]
    modified += [f"b[layer {l}]" for l, (_, b) in enumerate(given, 1) if not _same(b, params[l - 1][1])]
    modified += [name for name, (a, b) in (("X", (copies[1], X)), ("Y", (copies[2], Y))) if not _same(a, b)]
    if modified:
        raise Fault("modified-arguments", f"modified its arguments in place: {', '.join(modified)}")
    return _validated(arch, result, implementation.precision)


def answer(implementation: Implementation, arch, params: Params, X: np.ndarray, Y: np.ndarray, bounds: Sensitivity | None = None) -> tuple[float, Params]:
    """Ask twice (on fresh copies) and insist on one answer: the contract forbids state between calls.
    The two may differ by rounding (a summation order that varies from call to call is not state):
    by the exact tolerance, or by the case's noise floors ``bounds`` where given. Warnings it emits
    are never faults: the host's warning filters (``-W error``, pytest's ``filterwarnings``) are
    set aside for the calls."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first, second = _ask_twice(implementation, arch, params, X, Y)
    exact = TOLERANCES["exact"] if bounds is None else TOLERANCES["exact"].at_least(bounds.rounding)
    for l, ((dW1, db1), (dW2, db2)) in enumerate(zip(first[1], second[1])):
        for which, (a, b) in enumerate(((dW1, dW2), (db1, db2))):
            M, noise = (bounds.grads[l][which], bounds.noise[l][which]) if bounds is not None else (None, None)
            if not _equal_up_to_rounding(a, b, exact.rtol, M, noise):
                raise Fault("stateful", "returned different gradients for the same input on a second call (state kept between calls)")
    loss_allowed = max(exact.loss_rtol * max(abs(first[0]), 1e-3), bounds.loss if bounds is not None else 0.0)
    if abs(first[0] - second[0]) > loss_allowed:
        raise Fault("stateful", "returned a different loss for the same input on a second call (state kept between calls)")
    return first


def _equal_up_to_rounding(a: np.ndarray, b: np.ndarray, rtol: float, M: np.ndarray | None, noise: np.ndarray | None) -> bool:
    """Equal up to rounding: rtol of the tensor's scale (its largest entry, its sensitivity M),
    or the entry's noise floor."""
    if np.array_equal(a, b):
        return True
    scale = max(float(np.abs(a).max(initial=0.0)), float(np.abs(b).max(initial=0.0)), ABSOLUTE_SCALE,
                1e-4 * float(M.max(initial=0.0)) if M is not None else 0.0)
    allowed = rtol * scale if noise is None else np.maximum(rtol * scale, noise)
    return bool((np.abs(a - b) <= allowed).all())
