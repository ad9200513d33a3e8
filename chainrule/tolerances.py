"""Every tolerance chainrule uses, with the reason for each number (derived in docs/tolerances.md).

A gradient tensor T (one dL/dW or dL/db) agrees when every entry it compares has

    |got - expected| <= max(rtol * scale(T), noise(entry)),
    scale(T) = max(||got_T||_inf, ||expected_T||_inf, floor * max(G, ||M_T||_inf), loss_floor * |L|, ABSOLUTE_SCALE)

with M_T the tensor's rounding sensitivity, G the largest |entry| of the expected gradient, L
the loss and noise the case's noise floor (chainrule.noise: what a plain float64 evaluation of
the article's formulas may be off by); the loss agrees when |got - expected| <=
max(loss_rtol * max(|L|, |got|, 1e-3), noise(L)). Every term is a magnitude: no bound grows with
the number of entries.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from chainrule.contract import TensorId
from chainrule.noise import SAFETY, Noise, noise
from chainrule.oracles.base import OracleInfo
from chainrule.oracles.finite_differences import ACTIVATIONS  # the judges' sigma table, never the reference's
from chainrule.precision import FLOAT64, Precision

__all__ = ["ABSOLUTE_SCALE", "SIGMA_PRIME_BOUND", "Sensitivity", "Tolerance", "TOLERANCES", "sensitivity", "tolerance_for", "tolerance_row"]

# Generated cases have |X|, |W|, |b| <= 12 and losses of order 1: gradient entries below
# 1e-8 * 1e-9 = 1e-17 in absolute value are rounding noise of the loss itself.
ABSOLUTE_SCALE = 1e-8
# |sigma'| <= 1.13 for every activation of the contract (gelu's maximum; silu 1.10, the rest <= 1).
SIGMA_PRIME_BOUND = 1.13


@dataclass(frozen=True)
class Tolerance:
    rtol: float  # allowed |got - expected| relative to scale(T)
    floor: float  # scale(T) >= floor * ||M_T||
    loss_floor: float  # scale(T) >= loss_floor * |L|
    loss_rtol: float  # allowed |got - expected| for the loss, relative to max(|L|, 1e-3)
    reason: str

    def at_least(self, rounding: float) -> "Tolerance":
        """The same tolerance, with rtol and loss_rtol no tighter than ``rounding`` (Sensitivity.rounding)."""
        return dataclasses.replace(self, rtol=max(self.rtol, rounding), loss_rtol=max(self.loss_rtol, rounding))


TOLERANCES = {
    "exact": Tolerance(
        rtol=1e-9,
        floor=1e-4,
        loss_floor=0.0,
        loss_rtol=1e-10,
        reason=(
            "Two exact computations of one gradient differ only by rounding, measured below 1e-12 of scale(T) "
            "on generated networks: rtol 1e-9 leaves room for cancellation in long sums and ill-conditioned "
            "softmax/sigmoid outputs, and is still a million times tighter than gelu's tanh approximation (~1e-3). "
            "The floor 1e-4*M absorbs the absolute rounding ~eps*M behind saturated units (1e-13*M allowed). "
            "Beyond that, every entry and the loss may be off by the case's noise floor: what the article's formulas, "
            "evaluated plainly in float64, drift by on this case (the textbook binary cross-entropy is e^z eps off at a "
            "saturated output)."
        ),
    ),
    "finite_differences": Tolerance(
        rtol=1e-6,
        floor=1e-3,
        loss_floor=1e-4,
        loss_rtol=1e-10,
        reason=(
            "Central differences at h = cbrt(eps)*max(1,|theta|) err by h^2*|L'''|/6 + eps*|L|/h: about 1e-10 "
            "relative on ordinary networks, up to ~1e-7 on saturated softmax outputs, hence rtol 1e-6; the rounding "
            "part, ~4e-11*|L| absolute, sets loss_floor 1e-4 (1e-10*|L| allowed) for gradients far smaller than "
            "the loss. Entries whose step crosses a kink are not compared, and every disputed entry is re-estimated "
            "by Richardson extrapolation before it counts. The loss is judged as for exact oracles."
        ),
    ),
    "directional": Tolerance(
        rtol=1e-8,
        floor=1e-4,
        loss_floor=0.0,
        loss_rtol=1e-10,
        reason=(
            "A random direction v on one tensor compares <g, v> with a central difference D of the loss; D's "
            "rounding (dL/h, measured on the case), the outputs' own rounding and its truncation are bounded "
            "separately, and rtol covers what remains relative to ||g * v||_2, the typical size of the random sum. "
            "One wrong entry is seen once its error exceeds about 1e-8 ||g * v||_2: the sensitivity falls with the "
            "square root of the tensor's size, never the tolerance per entry. The floor, 1e-4 of the rms gradient "
            "entry, plays the exact comparison's role behind saturated units; no loss_floor: the loss is judged within dL."
        ),
    ),
}


def tolerance_row(info: OracleInfo) -> str:
    """The row of TOLERANCES that judges with this oracle."""
    return "exact" if info.exact else "finite_differences"


def tolerance_for(info: OracleInfo) -> Tolerance:
    return TOLERANCES[tolerance_row(info)]


@dataclass(frozen=True)
class Sensitivity:
    """The floors of one case: M_T per gradient tensor (its size with no unit saturated), what a
    plain evaluation of the article's formulas in the source's precision may be off by per entry
    and for the loss (chainrule.noise), why the case is no evidence about the chain rule ("" when
    it is), and ``rounding``: SAFETY eps of the precision, the least relative error any comparison
    allows (an answer rounded to that precision; far below every rtol in float64)."""

    grads: list[tuple[np.ndarray, np.ndarray]]  # (M_dW, M_db) per layer
    loss: float  # the loss's noise floor, absolute
    noise: list[tuple[np.ndarray, np.ndarray]]  # per-entry noise floors, absolute
    outside: str = ""
    rounding: float = SAFETY * FLOAT64.eps

    def within_judges(self) -> "Sensitivity":
        """The same floors for judging outside the chain rule's domain too (the numerical-range
        sweep): beyond the plain formulas' range the floors are the judges' own rounding."""
        return dataclasses.replace(self, outside="")


def sensitivity(arch, params, X: np.ndarray, Y: np.ndarray, precision: Precision = FLOAT64) -> Sensitivity:
    """The case's floors. M_T bounds |dL/dW|, |dL/db| with no unit saturated: the backward pass
    in absolute values, from the judges' own forward pass (never the reference's),

        M_dZ(L) = c (|A(L)| + |Y|) / N       (c = 2 for mse, 1 for the log losses)
        M_dW(l) = M_dZ(l)^T |A(l-1)|,  M_db(l) = M_dZ(l)^T 1,  M_dZ(l-1) = 1.13 M_dZ(l) |W(l)|.

    The case lies outside the chain rule's domain where the plain formulas overflow ``precision``,
    or where their rounding exceeds its domain_fraction of a tensor's scale max(|plain|, 1e-4 M_T)
    or of max(|L|, 1e-3): there no implementation written from the article in that precision can
    be judged. Beyond the plain formulas' range the floors are SAFETY eps M_T (the judges compare there)."""
    A = [np.asarray(X, dtype=np.float64)]
    for (W, b), name in zip(params, arch.activations):
        A.append(ACTIVATIONS[name](A[-1] @ W.T + b))
    a, Y, N = A[-1], np.asarray(Y, dtype=np.float64), len(Y)
    dZ = (2.0 if arch.loss == "mse" else 1.0) * (np.abs(a) + np.abs(Y)) / N
    bounds = []
    for l in reversed(range(len(params))):
        bounds.append((dZ.T @ np.abs(A[l]), dZ.sum(axis=0)))
        dZ = SIGMA_PRIME_BOUND * dZ @ np.abs(params[l][0])
    bounds = bounds[::-1]
    floors = noise(arch, params, X, Y, precision=precision)
    rounding = SAFETY * precision.eps
    if floors.outside:  # no plain evaluation to measure: only the judges, stable everywhere, compare here
        judged = [(rounding * M_W, rounding * M_b) for M_W, M_b in bounds]
        return Sensitivity(bounds, 0.0, judged, floors.outside, rounding)
    return Sensitivity(bounds, floors.loss, floors.grads, _imprecise(floors, bounds, precision.domain_fraction), rounding)


def _imprecise(floors: Noise, bounds, fraction: float) -> str:
    """Which quantity the plain formulas cannot resolve to ``fraction``, or ""."""
    if floors.loss > fraction * max(abs(floors.plain_loss), 1e-3):
        return f"the plain formulas' rounding reaches {floors.loss / max(abs(floors.plain_loss), 1e-3):.1g} of the loss"
    for tensor, floor, plain, M in zip(TensorId.every(len(bounds)), _flat(floors.grads), _flat(floors.plain_grads), _flat(bounds)):
        scale = max(float(np.abs(plain).max(initial=0.0)), 1e-4 * float(M.max(initial=0.0)), ABSOLUTE_SCALE)
        if floor.max(initial=0.0) > fraction * scale:
            return f"the plain formulas' rounding reaches {floor.max() / scale:.1g} of {tensor.name}"
    return ""


def _flat(pairs) -> list[np.ndarray]:
    return [t for pair in pairs for t in pair]
