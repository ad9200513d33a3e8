"""Every tolerance chainrule uses, with the reason for each number.

A gradient tensor T (one dL/dW or dL/db) agrees when, for every entry it compares,

    |got - expected| <= rtol * scale(T),
    scale(T) = max(||got_T||_inf, ||expected_T||_inf, floor * G, loss_floor * |L|, ABSOLUTE_SCALE)

where G is the largest |entry| of the expected gradient over all tensors of the case and L
the loss (finite differences divide a difference of losses by 2h, so their absolute error
carries |L|). The
scale is the tensor's own magnitude, so the bound never grows with the number of entries;
the floor keeps a tensor that is tiny next to the rest of the gradient (behind a saturated
tanh, where 1 - tanh(z)^2 keeps only about 1e-7 relative precision in every implementation)
from being judged on rounding noise.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import OracleInfo

__all__ = ["ABSOLUTE_SCALE", "Tolerance", "TOLERANCES", "tolerance_for"]

# Generated cases have |X|, |W|, |b| <= 12 and losses of order 1: gradient entries below
# 1e-8 * 1e-9 = 1e-17 in absolute value are rounding noise of the loss itself.
ABSOLUTE_SCALE = 1e-8


@dataclass(frozen=True)
class Tolerance:
    rtol: float  # allowed |got - expected| relative to scale(T)
    floor: float  # scale(T) >= floor * G
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
            "tighter than the smallest classic bug (gelu's tanh approximation, ~1e-3). The floor 1e-4*G "
            "absorbs the absolute error eps*G of 1 - tanh(z)^2 behind saturated units."
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
            "Entries whose step crosses a kink are not compared at all. A disputed "
            "entry is re-estimated by Richardson extrapolation before it counts."
        ),
    ),
    "directional": Tolerance(
        rtol=1e-8,
        floor=1e-4,
        loss_floor=0.0,
        loss_rtol=1e-10,
        reason=(
            "A random direction v on one tensor compares <g, v> with a central difference D(h) "
            "(oracles/directional.py). The difference's own error is bounded separately, by 8 dL/h "
            "with dL the measured rounding of the loss (errors seen: at most 1.1 dL/h) plus the "
            "measured truncation; rtol covers the rest relative to ||g * v||_2, the typical size of "
            "the random sum: summation error in <g, v> (below 1e-11 for a million entries) and the "
            "truncation left at h0 (below 1e-11 measured). A single entry is seen when its error "
            "exceeds 1e-8 ||g * v||_2: the price of a randomized check is that this grows with the "
            "square root of the tensor's size, which localization then pins down entry by entry. The "
            "floor, 1e-4 of the rms gradient entry the differences see, plays the exact comparison's "
            "role behind saturated units; no loss_floor: the rounding of L is the measured 8 dL/h term."
        ),
    ),
}


def tolerance_for(info: OracleInfo) -> Tolerance:
    return TOLERANCES["exact" if info.exact else "finite_differences"]
