"""Every tolerance chainrule uses, with the reason for each number.

A gradient tensor T (one dL/dW or dL/db) agrees when, for every entry it compares,

    |got - expected| <= rtol * scale(T),
    scale(T) = max(||got_T||_inf, ||expected_T||_inf, floor * ||M_T||_inf, loss_floor * |L|, ABSOLUTE_SCALE)

M_T is the tensor's *sensitivity* (``sensitivity`` below): the same backward pass in absolute
values with every sigma' taken as 1, the magnitude the gradient would have if no unit were
saturated. Rounding errors of a correct implementation are a few eps * M_T, not eps * |T|:
1 - tanh(z)^2 near z = 9 is 6e-8 computed with an absolute error of eps, so every gradient behind
it is known to about eps/6e-8 = 4e-9 relative, by torch, JAX and the reference alike. L is the
loss (finite differences divide a difference of losses by 2h, so their absolute error carries |L|).
The floor also uses G, the largest |entry| of the whole expected gradient, where no sensitivity is
given. Every term is a magnitude, never a count: the bound does not grow with the number of entries.

The loss agrees when |got - expected| <= loss_rtol * max(|L|, 1e-3) + S_L. S_L is the loss's own
rounding sensitivity: an implementation may compute L from the output activation a = sigma(z), as
the textbook writes it, and a carries a few ulps of rounding, which L(a) amplifies by
|dL/da| |a|: by e^z for -log(1 - sigmoid(z)) at a saturated output (at z = 16.6 the textbook
binary cross-entropy is 2e-9 off, 1e-10 of L, while every gradient is exact). So
S_L = LOSS_ROUNDING_ULPS * eps * sum |dL/da| |a|, from the judges' own forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import OracleInfo

__all__ = ["ABSOLUTE_SCALE", "LOSS_ROUNDING_ULPS", "SIGMA_PRIME_BOUND", "Sensitivity", "Tolerance", "TOLERANCES", "sensitivity", "tolerance_for"]

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
            "Autodiff and hand-written backprop agree to about 1e-15 normwise on ordinary networks "
            "(measured: see the closing notes); 1e-9 leaves six orders of magnitude for cancellation "
            "in long sums and ill-conditioned softmax/sigmoid outputs, and is still ten million times "
            "tighter than the smallest classic bug (gelu's tanh approximation, ~1e-3). The floor 1e-4*M "
            "absorbs the absolute error ~eps*M of 1 - tanh(z)^2 behind saturated units (1e-13*M allowed). "
            "The loss may also be off by its rounding sensitivity S_L: a loss computed from the rounded "
            "output activation, as the textbook writes binary cross-entropy, is e^z eps off at a saturated output."
        ),
    ),
    "finite_differences": Tolerance(
        rtol=1e-6,
        floor=1e-3,
        loss_floor=1e-4,
        loss_rtol=1e-10,
        reason=(
            "Central differences at h = cbrt(eps)*max(1,|theta|) err by h^2*|L'''|/6 + eps*|L|/h, "
            "about 1e-10 relative on ordinary networks and up to ~1e-7 on saturated softmax outputs "
            "where L''' is large. Rounding alone is eps*|L|/h ~ 4e-11*|L| absolute, hence loss_floor 1e-4 "
            "(1e-6 * 1e-4 = 1e-10 of |L|) for gradients far smaller than the loss (saturated units). "
            "Entries whose step crosses a kink are not compared at all. Every disputed "
            "entry is re-estimated by Richardson extrapolation before it counts. The loss floor S_L is as for exact oracles."
        ),
    ),
    "directional": Tolerance(
        rtol=1e-8,
        floor=1e-4,
        loss_floor=0.0,
        loss_rtol=1e-10,
        reason=(
            "A random direction v on one tensor compares <g, v> with a central difference D(h) "
            "(oracles/directional.py), whose own error is bounded separately from measurements: "
            "dL/h, dL eight times how far L moves when its sums are taken in another order (at least "
            "4 eps times its last terms); the outputs' rounding times how far they move along v "
            "(near a perfect fit every gradient is only that good); truncation, measured by "
            "Richardson on a dispute. rtol covers what remains relative to ||g * v||_2, the typical "
            "size of the random sum: summation in <g, v> (below 1e-11 for a million entries) and the "
            "implementation's own rounding. Over 3,000 directions on 300 networks, many near a "
            "perfect fit, errors stayed below 0.27 of the whole bound. One wrong entry is seen when "
            "its error exceeds about 1e-8 ||g * v||_2 (or dL/h): a randomized check's sensitivity "
            "falls with the square root of the tensor's size, never its tolerance per entry. The "
            "floor, 1e-4 of the rms gradient entry the differences see, plays the exact comparison's "
            "role behind saturated units; no loss_floor: the loss is judged within dL."
        ),
    ),
}


def tolerance_for(info: OracleInfo) -> Tolerance:
    return TOLERANCES["exact" if info.exact else "finite_differences"]


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
    from .finite_differences import ACTIVATIONS  # the judges' sigma table

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
