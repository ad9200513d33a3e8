"""Every tolerance chainrule uses, with the reason for each number (derived in docs/tolerances.md).

A gradient tensor T (one dL/dW or dL/db) agrees when every entry it compares has

    |got - expected| <= rtol * scale(T),
    scale(T) = max(||got_T||_inf, ||expected_T||_inf, floor * max(G, ||M_T||_inf), loss_floor * |L|, ABSOLUTE_SCALE)

with M_T the tensor's rounding sensitivity (``sensitivity``), G the largest |entry| of the
expected gradient and L the loss; the loss agrees when |got - expected| <= max(loss_rtol *
max(|L|, |got|, 1e-3), S_L). Every term is a magnitude: no bound grows with the number of entries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chainrule.oracles.base import OracleInfo
from chainrule.oracles.finite_differences import ACTIVATIONS  # the judges' sigma table, never the reference's

__all__ = ["ABSOLUTE_SCALE", "LOSS_ROUNDING_ULPS", "SIGMA_PRIME_BOUND", "Sensitivity", "Tolerance", "TOLERANCES", "sensitivity", "tolerance_for", "tolerance_row"]

# Generated cases have |X|, |W|, |b| <= 12 and losses of order 1: gradient entries below
# 1e-8 * 1e-9 = 1e-17 in absolute value are rounding noise of the loss itself.
ABSOLUTE_SCALE = 1e-8
# |sigma'| <= 1.13 for every activation of the contract (gelu's maximum; silu 1.10, the rest <= 1).
SIGMA_PRIME_BOUND = 1.13
# Ulps of rounding in the output activation a that a loss computed from a may carry: sigma(z) as
# 1/(1 + e^-z) or a library's expit is within 2-3 ulps; 8 leaves room (measured: 0.6 at z = 16.6).
LOSS_ROUNDING_ULPS = 8.0
_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Tolerance:
    rtol: float  # allowed |got - expected| relative to scale(T)
    floor: float  # scale(T) >= floor * ||M_T||
    loss_floor: float  # scale(T) >= loss_floor * |L|
    loss_rtol: float  # allowed |got - expected| for the loss, relative to max(|L|, 1e-3)
    reason: str


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
            "The loss may also be off by its rounding sensitivity S_L, as a loss computed from the rounded output "
            "activation is (the textbook binary cross-entropy is e^z eps off at a saturated output)."
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
    """The rounding magnitudes of one case: M_T per gradient tensor, and S_L for the loss."""

    grads: list[tuple[np.ndarray, np.ndarray]]  # (M_dW, M_db) per layer
    loss: float  # S_L, absolute


def sensitivity(arch, params, X: np.ndarray, Y: np.ndarray) -> Sensitivity:
    """|dL/dW|, |dL/db| bounds with no unit saturated: the backward pass in absolute values,

        M_dZ(L) = c (|A(L)| + |Y|) / N       (c = 2 for mse, 1 for the log losses)
        M_dW(l) = M_dZ(l)^T |A(l-1)|,  M_db(l) = M_dZ(l)^T 1,  M_dZ(l-1) = 1.13 M_dZ(l) |W(l)|

    and S_L = LOSS_ROUNDING_ULPS eps sum_kj |dL/da_kj| |a_kj| over the output layer:

        mse: 2 |a - y| |a| / N     cross_entropy: y / N     binary_cross_entropy: |y - (1 - y) e^z| / N

    (for binary cross-entropy a / (1 - a) = e^z), from the judges' own forward pass (never the
    reference's)."""
    A = [np.asarray(X, dtype=np.float64)]
    for (W, b), name in zip(params, arch.activations):
        z = A[-1] @ W.T + b
        A.append(ACTIVATIONS[name](z))
    a, Y, N = A[-1], np.asarray(Y, dtype=np.float64), len(Y)
    if arch.loss == "mse":
        amplified = 2.0 * np.abs(a - Y) * np.abs(a)
    elif arch.loss == "cross_entropy":
        amplified = np.abs(Y)
    else:  # e^z capped below overflow: past z = 37 a rounds to 1 and the textbook loss is infinite anyway
        amplified = np.abs(Y - (1.0 - Y) * np.exp(np.minimum(z, 700.0)))
    dZ = (2.0 if arch.loss == "mse" else 1.0) * (np.abs(a) + np.abs(Y)) / N
    bounds = []
    for l in reversed(range(len(params))):
        bounds.append((dZ.T @ np.abs(A[l]), dZ.sum(axis=0)))
        dZ = SIGMA_PRIME_BOUND * dZ @ np.abs(params[l][0])
    return Sensitivity(bounds[::-1], LOSS_ROUNDING_ULPS * _EPS * float(amplified.sum()) / N)
