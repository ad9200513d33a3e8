"""A numerical-range finding: where an implementation's own function stops being finite or
within rounding of the contract's, far out in saturation, with what to do about it. Warnings
(a failure under ``--strict-numerics``), never a chain-rule verdict: the numerical-range sweep
(chainrule.numerics) and the chain rule on its own functions (chainrule.local) both find them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ADVICE", "RangeFinding", "advice"]

ADVICE = {  # what to do, by the function's name (the first word of a probe)
    "binary_cross_entropy": "compute the loss and dL/dz from z (log-sigmoid: L = softplus(z) - y z), not from the rounded sigmoid",
    "cross_entropy": "compute the loss from z with log-softmax (z - logsumexp(z)), not log of the rounded softmax",
    "sigmoid": "evaluate e^-|z| only (sigmoid(z) = e^z / (1 + e^z) for z < 0)",
    "silu": "evaluate sigmoid with e^-|z| only",
    "softplus": "use max(z, 0) + log1p(e^-|z|)",
    "elu": "evaluate e^z only where z < 0, and elu'(z) there as e^z itself (a + 1 cancels to a few digits)",
    "gelu": "use the erf or erfc form, which stays finite",
    "tanh": "use the library's tanh and 1 - tanh^2 from it",
}


def advice(probe: str) -> str:
    """The advice for a probe or function named ``probe`` ("softplus'", "sigmoid (output, mse)")."""
    return ADVICE.get(probe.split()[0].rstrip("'"), "")


@dataclass(frozen=True)
class RangeFinding:
    """Where one probe stopped: the largest |z| that passed, the first that failed, and how."""

    probe: str  # e.g. "binary_cross_entropy after sigmoid, z > 0"
    passed_up_to: float  # largest |z| on the ladder that passed (0: none; NaN: not measured, a fault found in a case)
    failed_at: float  # the z that failed first (signed)
    what: str  # how it failed
    advice: str

    def __str__(self) -> str:
        if math.isnan(self.passed_up_to):
            return f"{self.probe}: at z = {self.failed_at:g} {self.what}" + (f": {self.advice}" if self.advice else "")
        within = f"finite and within rounding up to |z| = {self.passed_up_to:g}" if self.passed_up_to else "not within rounding even at |z| = 1"
        return f"{self.probe}: {within}; at z = {self.failed_at:g} {self.what}" + (f": {self.advice}" if self.advice else "")
