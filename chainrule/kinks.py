"""Which kinks can be judged: exact zeros versus zeros that depend on rounding.

A relu/leaky_relu unit whose pre-activation z lies within rounding of 0 has a derivative that
depends on the last bit of z: two correct implementations that sum in a different order may
land on different sides of the kink. Such a case proves nothing about either and is set aside.
A kink is judged only where z is computed exactly whatever the order, in the source's precision
(chainrule.precision): the layer's inputs are exact, every product w*a is exactly representable,
and all the terms are multiples of one power of two whose sum fits in its significand (53 bits
in float64, 24 in float32). The strategies' grid values and zeroed weight
rows meet that, so kinks are reached on purpose and judged.
"""

from __future__ import annotations

import numpy as np

from chainrule.contract import KINK_DERIVATIVES, KINKED, SUBDIFFERENTIAL
from chainrule.oracles.finite_differences import ACTIVATIONS  # the judges' own sigma table, not the reference's
from chainrule.precision import FLOAT64, Precision

__all__ = ["RADIUS", "convention_note", "rounding_ambiguous", "tie_note"]

# |z| <= RADIUS * (|A_prev| |W|^T + |b|) counts as "within rounding of 0": float64 sums and the
# activations upstream carry relative errors of a few eps (~1e-15); 1e-10 leaves room for their
# growth through five layers. Other precisions: Precision.kink_radius.
RADIUS = FLOAT64.kink_radius
_MANTISSA_BITS = 53  # of the float64 values the engine holds


def _bits(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(significant bits, exponent of the lowest set bit) of each float; zeros: (0, +inf)."""
    fraction, exponent = np.frexp(x)
    mantissa = np.abs(fraction * 2.0**_MANTISSA_BITS).astype(np.int64)
    trailing = np.zeros(x.shape, dtype=np.int64)
    nonzero = mantissa != 0
    low = mantissa & -mantissa  # lowest set bit
    trailing[nonzero] = np.log2(low[nonzero]).astype(np.int64)
    significant = np.where(nonzero, _MANTISSA_BITS - trailing, 0)
    lowest = np.where(nonzero, exponent - _MANTISSA_BITS + trailing, np.inf)
    return significant, lowest


def _exact_sums(A_prev: np.ndarray, inputs_exact: np.ndarray, W: np.ndarray, b: np.ndarray, bits: int) -> np.ndarray:
    """Per (example k, unit j): is z = sum_i A[k,i] W[j,i] + b[j] the same float in every order?

    Each term must be exact: a zero weight, or an exact input whose product with the weight
    fits in ``bits``; and all terms must be multiples of one power of two whose sum fits in ``bits``.
    """
    sig_a, low_a = _bits(A_prev)
    sig_w, low_w = _bits(W)
    _, low_b = _bits(b)
    zero_weight = (W == 0)[None, :, :]
    product_exact = zero_weight | (inputs_exact[:, None, :] & (sig_a[:, None, :] + sig_w[None, :, :] <= bits))
    lowest = np.minimum(np.where(zero_weight, np.inf, low_a[:, None, :] + low_w[None, :, :]).min(axis=2), low_b[None, :])
    total = np.abs(A_prev) @ np.abs(W).T + np.abs(b)
    fits = (total == 0) | (total * (1 + 1e-12) < np.exp2(np.minimum(lowest + bits, 1000.0)))
    return product_exact.all(axis=2) & fits


def rounding_ambiguous(arch, params, X: np.ndarray, precision: Precision = FLOAT64) -> bool:
    """True when some kinked pre-activation is within ``precision``'s rounding of 0 without being exact there."""
    kinked = [l for l, name in enumerate(arch.activations) if name in KINKED]
    if not kinked:
        return False
    A_prev, inputs_exact = X, np.ones(X.shape, dtype=bool)
    for (W, b), name in zip(params[: kinked[-1] + 1], arch.activations):  # up to the last kinked layer
        Z = A_prev @ W.T + b
        exact = _exact_sums(A_prev, inputs_exact, W, b, precision.mantissa_bits)
        near = np.abs(Z) <= precision.kink_radius * (np.abs(A_prev) @ np.abs(W).T + np.abs(b))
        if name in KINKED and (near & ~exact).any():
            return True
        if name == "identity":
            inputs_exact = exact
        elif name == "relu":  # relu of an exact z, or of a z clearly below 0, is exact
            inputs_exact = exact | ((Z < 0) & ~near)
        elif name == "leaky_relu":  # 0.01 z is rounded: exact only where z >= 0 exactly
            inputs_exact = exact & (Z >= 0)
        else:
            inputs_exact = np.zeros(Z.shape, dtype=bool)
        A_prev = ACTIVATIONS[name](Z)
    return False


def convention_note(name: str, value: float) -> str:
    """What an answer that agrees once d sigma/dz at the exact kinks of ``name`` is ``value``
    means: a convention to declare when value lies between the one-sided slopes, else wrong."""
    low, high = SUBDIFFERENTIAL[name]
    if low <= value <= high:
        return (f"kink convention: {name}'(0) = {value:g} here, the contract's is {KINK_DERIVATIVES[name]:g}; everything else agrees. "
                f"Declare kink_derivatives = {{{name!r}: {value:g}}} if this is intended")
    return f"{name}'(0) = {value:.10g} here, outside [{low:g}, {high:g}] (the one-sided slopes at 0): wrong, not a convention"


def tie_note(layer: str, rule: str) -> str:
    """What an answer that agrees once a tied window's gradient follows ``rule`` ("last", "split") means."""
    where = "is shared equally among its maxima" if rule == "split" else f"goes to its {rule} maximum"
    return (f"tie convention: a window's gradient {where} here where the window's maxima tie; the contract sends it to the first "
            f"(row-major); everything else agrees. Declare kink_derivatives = {{{layer!r}: {rule!r}}} if this is intended")
