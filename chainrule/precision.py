"""The precisions a gradient source may declare, and what judging it in each one means.

A source that declares a precision (docs/contract.md, "Precision") is sent only cases whose every
value is exactly representable in it (``Precision.representable``), so that rounding its inputs
is never counted against it, and is judged against the exact float64 answer within the noise of
its own precision: chainrule.noise evaluates the article's formulas with every result rounded to
the precision's grid (``Precision.round``), perturbed by its ``eps``. Where that noise reaches
``domain_fraction`` of a tensor's scale, or a kinked pre-activation lies within ``kink_radius``
of 0, a case is no evidence and is set aside. Measurements behind the numbers: docs/tolerances.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np

from chainrule.contract import PRECISION_NAMES

__all__ = ["FLOAT64", "Precision", "precision"]


@dataclass(frozen=True)
class Precision:
    name: str  # one of contract.PRECISION_NAMES
    eps: float  # the grid's spacing at 1 (machine epsilon)
    mantissa_bits: int  # significand bits, the implicit one included: sums of multiples of 2^k fitting in them are exact
    domain_fraction: float  # a case is evidence only where the noise floors stay below this fraction of every scale
    kink_radius: float  # |z| <= kink_radius * (|a||W| + |b|): z is within this precision's rounding of 0
    catches: str  # which bugs its noise leaves visible (README, reports)

    @cached_property  # asked for every rounded result of the noise model
    def dtype(self) -> np.dtype:
        if self.name == "bfloat16":
            import ml_dtypes

            return np.dtype(ml_dtypes.bfloat16)
        return np.dtype(self.name)

    @property
    def is_float64(self) -> bool:
        return self.name == "float64"

    def round(self, x: np.ndarray) -> np.ndarray:
        """Each value rounded to the nearest one of this precision (±inf beyond its range), as float64."""
        if self.is_float64:
            return x
        with np.errstate(over="ignore"):
            return np.asarray(x, dtype=np.float64).astype(self.dtype).astype(np.float64)

    def representable(self, x: np.ndarray) -> bool:
        """Every value of ``x`` is exactly one of this precision's."""
        return self.is_float64 or bool(np.array_equal(self.round(x), x))

    def __str__(self) -> str:
        return self.name


_TABLE = {
    "float64": Precision(
        "float64", float(np.finfo(np.float64).eps), 53, 1e-4, 1e-10,
        "every bug of the catalogue: floors are ~1e-13 of the scale, a classic bug's error is 1e-3 (gelu's tanh form) to 1",
    ),
    # float32: floors ~1e-6 of the scale; cases whose floors pass 1e-4 (ten times below the
    # smallest classic bug) are set aside as in float64. Kinks: ~840 eps, as 1e-10 is in float64
    # comfortably above the growth of a 129-term sum's rounding through ten layers.
    "float32": Precision(
        "float32", float(np.finfo(np.float32).eps), 24, 1e-4, 1e-4,
        "every bug of the catalogue, gelu's tanh form (1e-3) included; not a constant rounded to float32 (1e-8), which float64 mode names",
    ),
    # The 16-bit formats: floors are a few percent (float16) to tens of percent (bfloat16) of the
    # scale, so only errors of the scale's own size stay visible: a case is evidence while its
    # floors stay below a quarter (float16) or half (bfloat16) of every scale; a sign, a factor of
    # 2 or N, a missing sigma' (<= 1/4 for sigmoid) err by the scale itself or more.
    "float16": Precision(
        "float16", float(np.finfo(np.float16).eps), 11, 0.25, 0.1,
        "errors of the gradient's own size (a sign, a missing or extra factor, a transpose, a missing sigma'); "
        "not gelu's tanh form or any error below ~5% of the scale; e^z overflows at z > 11, so cases beyond are set aside",
    ),
    "bfloat16": Precision(
        "bfloat16", 2.0**-7, 8, 0.5, 0.5,
        "errors of the gradient's own size (a sign, a missing or extra factor, a transpose, a missing sigma'); "
        "not gelu's tanh form or any error below ~50% of the scale; three in four generated cases are set aside, "
        "so it takes about four times the examples (--examples 800) to catch what float16 catches at 200",
    ),
}
assert set(_TABLE) == set(PRECISION_NAMES)

FLOAT64 = _TABLE["float64"]


@cache
def precision(name: str | Precision | None) -> Precision:
    """The Precision of a contract name (None: float64); ValueError for any other."""
    if isinstance(name, Precision):
        return name
    if name is None:
        return FLOAT64
    if name not in _TABLE:
        raise ValueError(f"precision: got {name!r}, expected one of {', '.join(PRECISION_NAMES)}")
    return _TABLE[name]
