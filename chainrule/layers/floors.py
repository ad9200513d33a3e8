"""A layer case's noise floors: the reference's own VJP under Monte Carlo arithmetic.

One reference (chainrule.reference.layers), evaluated plainly or perturbed. Perturbed, every
float array it computes with is a ``_Perturbed`` view whose ``__array_ufunc__`` makes each
elementary operation inexact, as Parker's full Monte Carlo arithmetic does: each float operand
and each float result r becomes round(r (1 + eps u)), u uniform in [-1, 1], rounded to the
precision's grid. A perturbed operand of a sum or a matrix product carries the rounding of that
sum (eps times its terms, not its result: cancellation included). The spread of SAMPLES
perturbed runs around the plain one, times SAFETY, is what a correct implementation in that
precision may be off by, per entry of y and of each gradient. Method: docs/layers.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chainrule.layers.case import LayerCase
from chainrule.noise import SAFETY
from chainrule.precision import FLOAT64, Precision
from chainrule.reference.layers import vjp as reference_vjp

__all__ = ["SAMPLES", "Floors", "floors"]

SAMPLES = 4  # perturbed runs besides the plain one


class _Perturbed(np.ndarray):
    """A float array whose every ufunc (operators, @, reductions, np.add.at) is evaluated inexactly
    (the run's generator and precision: ``_STATE``)."""

    def __array_ufunc__(self, ufunc, method, *operands, **kwargs):
        plain = [np.asarray(a) if isinstance(a, _Perturbed) else a for a in operands]
        if "out" in kwargs:
            kwargs["out"] = tuple(np.asarray(o) if isinstance(o, _Perturbed) else o for o in kwargs["out"])
        if method == "at":  # np.add.at(target, indices, values): the target is updated in place
            plain[2:] = [_inexact(np.asarray(v)) for v in plain[2:]]
            return getattr(ufunc, method)(*plain, **kwargs)
        result = getattr(ufunc, method)(*[_inexact(a) for a in plain], **kwargs)
        if isinstance(result, tuple):
            return tuple(_perturbed(_inexact(r)) for r in result)
        return _perturbed(_inexact(result))

    def __array_function__(self, func, types, args, kwargs):
        """Other numpy functions (np.where, np.zeros_like, ...) run plainly, and keep the result perturbable."""
        plain = lambda a: np.asarray(a) if isinstance(a, _Perturbed) else a  # noqa: E731
        args = [plain(a) if not isinstance(a, (list, tuple)) else type(a)(plain(b) for b in a) for a in args]
        result = func(*args, **{k: plain(v) for k, v in kwargs.items()})
        return _perturbed(result)


_STATE: dict[str, object] = {}  # the run's generator and precision, set by _evaluated


def _inexact(a):
    """A float array or scalar times (1 + eps u), rounded to the precision; anything else as it is."""
    if not isinstance(a, (np.ndarray, np.floating, float)) or np.asarray(a).dtype.kind != "f":
        return a
    a = np.asarray(a)
    rng, precision = _STATE["rng"], _STATE["precision"]
    return precision.round(a * (1.0 + precision.eps * rng.uniform(-1.0, 1.0, a.shape)))


def _perturbed(a):
    return a.view(_Perturbed) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a


def _evaluated(case: LayerCase, rng: np.random.Generator | None, precision: Precision) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The reference's (y, grads) on the case: plain (rng None) or under Monte Carlo arithmetic."""
    if rng is None:
        return reference_vjp(case.layer, case.config, case.inputs, case.dy)
    _STATE.update(rng=rng, precision=precision)
    try:
        inputs = {n: _perturbed(np.array(a)) for n, a in case.inputs.items()}
        with np.errstate(all="ignore"):
            y, grads = reference_vjp(case.layer, case.config, inputs, _perturbed(np.array(case.dy)))
    finally:
        _STATE.clear()
    return np.array(y, dtype=np.float64), {n: np.array(g, dtype=np.float64) for n, g in grads.items()}


@dataclass(frozen=True, eq=False)
class Floors:
    """The reference's plain answer on a case, and the absolute floor of each entry of y and of
    each gradient (SAFETY times the largest deviation of a perturbed run)."""

    y: np.ndarray
    grads: dict[str, np.ndarray]
    y_floor: np.ndarray
    floors: dict[str, np.ndarray]


def floors(case: LayerCase, precision: Precision = FLOAT64, seed: int = 0) -> Floors:
    """The case's floors in ``precision`` (the case already representable there)."""
    y, grads = _evaluated(case, None, precision)
    rng = np.random.default_rng(seed)
    runs = [_evaluated(case, rng, precision) for _ in range(SAMPLES)]
    spread = lambda plain, values: SAFETY * np.max([np.abs(v - plain) for v in values], axis=0)  # noqa: E731
    with np.errstate(invalid="ignore"):
        return Floors(
            np.asarray(y, dtype=np.float64), {n: np.asarray(g, dtype=np.float64) for n, g in grads.items()},
            spread(y, [r[0] for r in runs]), {n: spread(g, [r[1][n] for r in runs]) for n, g in grads.items()},
        )
