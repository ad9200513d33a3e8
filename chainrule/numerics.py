"""The numerical-range verdict: where an implementation stops being finite or within rounding.

A deliberate sweep, apart from the chain-rule verdict: for every activation the implementation
declares (as the output layer under mse) and for each log loss with its output activation, the
pre-activation z climbs a ladder of magnitudes up to LADDER[-1], both signs. Each rung is judged
against the oracles as any case is — within the case's noise floor where the article's formulas
stay finite in the implementation's precision, within that precision's rounding of the judges'
answer beyond (chainrule.tolerances.sensitivity) — and the first rung that fails
(a fault, or an answer beyond the floor) ends the probe with a finding a user can act on.
The judges themselves are stable over the whole ladder (tests/test_numerics.py holds them to it).
"""

from __future__ import annotations

import numpy as np

from chainrule.case import Case
from chainrule.findings import RangeFinding, advice
from chainrule.judge import ask_oracles, judge
from chainrule.oracles.registry import Registered
from chainrule.reference import Architecture
from chainrule.sources.implementation import Implementation
from chainrule.tolerances import sensitivity

__all__ = ["LADDER", "RangeFinding", "numerical_range", "probes"]

LADDER = (1.0, 8.0, 16.0, 30.0, 36.0, 40.0, 100.0, 400.0, 720.0, 800.0)
_TARGETS = {"mse": 0.25, "binary_cross_entropy": 0.3}
def probes(implementation: Implementation) -> list[tuple[str, Architecture]]:
    """(name, architecture) of each probe the implementation declares support for."""
    found = []
    for name in implementation.activations:
        arch = Architecture((1, 1), (name,), "mse") if name != "softmax" else Architecture((1, 2), ("softmax",), "mse")
        if implementation.supports(arch):
            found.append((f"{name} (output, mse)", arch))
    for loss, arch in (("binary_cross_entropy", Architecture((1, 1), ("sigmoid",), "binary_cross_entropy")),
                       ("cross_entropy", Architecture((1, 2), ("softmax",), "cross_entropy"))):
        if implementation.supports(arch):
            found.append((f"{loss} after {arch.activations[-1]}", arch))
    return found


def _rung(arch: Architecture, z: float) -> Case:
    """The probe's network with pre-activation z (softmax: logits z/2 and -z/2)."""
    X = np.array([[z]])
    if arch.sizes[-1] == 2:
        params = [(np.array([[0.5], [-0.5]]), np.zeros(2))]
        Y = np.array([[0.3, 0.7]])
    else:
        params = [(np.ones((1, 1)), np.zeros(1))]
        Y = np.array([[_TARGETS.get(arch.loss, 0.25)]])
    return Case(arch, params, X, Y)


def _failure(verdict) -> str:
    if verdict.fault is not None:
        return f"{verdict.fault.kind}: {verdict.fault.message}"
    worst = max((c for c in verdict.comparisons), key=lambda c: c.worst_error)
    bad = worst.disagreeing
    if bad:
        return f"{bad[0].name} is off by {bad[0].error:.2g} of its scale (against {worst.oracle})"
    return f"the loss is off by {worst.loss_error:.2g} (got {worst.loss_got!r}, expected {worst.loss_expected!r}; {worst.oracle})"


def numerical_range(implementation: Implementation, judges: list[Registered]) -> tuple[RangeFinding, ...]:
    """Every probe's finding, in probe order; probes that pass the whole ladder give none. The
    exact oracles judge (finite differences only when no exact one is available)."""
    judges = [r for r in judges if r.info.exact] or judges
    findings = []
    for probe, arch in probes(implementation):
        for sign in (1.0, -1.0):
            passed = 0.0
            for magnitude in LADDER:
                if implementation.retired is not None:
                    return tuple(findings)
                case = _rung(arch, sign * magnitude).in_precision(implementation.precision)
                bounds = sensitivity(case.arch, case.params, case.X, case.Y, implementation.precision)
                verdict = judge(implementation, case, judges, ask_oracles(case, judges), bounds.within_judges())
                if verdict.failed or verdict.explanation:  # wrong, or off within its own functions' range: either ends the probe
                    told = advice(probe) if verdict.fault is None or verdict.fault.kind in ("non-finite", "raised") else ""
                    side = "z > 0" if sign > 0 else "z < 0"
                    findings.append(RangeFinding(f"{probe}, {side}", passed, sign * magnitude, _failure(verdict), told))
                    break
                passed = magnitude
    return tuple(findings)
