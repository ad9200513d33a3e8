"""Whether a case is evidence about the chain rule, and its floors when it is.

A case is set aside (never judged, counted apart) when a kinked pre-activation lies within
rounding of 0 (chainrule.kinks: two correct implementations may land on either side), or when
the article's formulas, evaluated plainly in the source's precision, leave its range or
resolution there (chainrule.tolerances.sensitivity): such cases belong to the numerical-range
verdict. The case must already be exactly representable in that precision (Case.in_precision).
"""

from __future__ import annotations

from dataclasses import dataclass

from chainrule.case import Case
from chainrule.kinks import rounding_ambiguous
from chainrule.precision import FLOAT64, Precision
from chainrule.tolerances import Sensitivity, sensitivity

__all__ = ["KINK", "Evidence", "evidence"]

KINK = "a kinked pre-activation lies within rounding of 0"


@dataclass(frozen=True)
class Evidence:
    bounds: Sensitivity | None  # the case's floors (None when set aside at a kink)
    set_aside: str = ""  # why it is no evidence ("" when it is)


def evidence(case: Case, precision: Precision = FLOAT64) -> Evidence:
    if rounding_ambiguous(case.arch, case.params, case.X, precision):
        return Evidence(None, KINK)
    bounds = sensitivity(case.arch, case.params, case.X, case.Y, precision)
    return Evidence(bounds, bounds.outside)
