"""The chain rule on an implementation's own functions: what a disagreement beyond the floor is.

Asked only of a failing case (a disagreement beyond its floors, or a NaN, an Inf or an
exception). The article's claim is that every gradient is the chain rule composing local
derivatives, so the verdict asks two things:

1. **Composition.** Its local functions are measured through the contract at the case's own
   pre-activations — each hidden activation's value σ̃(z) and derivative σ̃'(z), the output layer
   with its loss as one function ℓ̃(z, y) with dℓ̃/dz — by probe networks whose every product is
   with 0 or 1, so that the answer carries the functions unrounded (``_activation``,
   ``_output``). The article's forward and backward passes over those measured values give the
   gradient its own functions compose to; its answer must be that, within the case's floors.
2. **The functions themselves**, against the contract's: wrong on ordinary values (|z| <=
   ORDINARY) by more than ORDINARY_RTOL of max(1, |value|) — rounding is far below, a float32
   constant or σ'(a) for σ'(z) far above — or within the search range (|z| <= SEARCH_RANGE) by
   more than RANGE_RTOL (a derivative zeroed above |z| = 10).

Not the composition, or a wrong function: a chain-rule failure, the function and values named.
Otherwise the disagreement is its functions' numerical range (beyond SEARCH_RANGE: torch's
softplus threshold, a tanh-form sigmoid's absolute rounding, σ underflowing to 0) or their
rounding: a numerical-range finding, never a chain-rule failure. A fault is a finding when one
of its functions faults at a point beyond SEARCH_RANGE where the contract's is finite.
Thresholds are never tighter than PRECISION_ULPS units of the source's precision.
Method and measurements: docs/tolerances.md ("The chain rule on its own functions").
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, ndtr, softmax

from chainrule.case import Case
from chainrule.compare import compare
from chainrule.contract import KINK_DERIVATIVES, LEAKY_SLOPE, SUBDIFFERENTIAL
from chainrule.findings import RangeFinding, advice
from chainrule.oracles.base import OracleGradients, OracleInfo
from chainrule.oracles.finite_differences import ACTIVATIONS, LOSSES  # the judges' functions, never the reference's
from chainrule.reference import Architecture
from chainrule.sources.ask import answer
from chainrule.sources.faults import Fault
from chainrule.sources.implementation import Implementation
from chainrule.status import Status
from chainrule.tolerances import Sensitivity
from chainrule.verdict import CaseVerdict

__all__ = ["ORDINARY", "ORDINARY_RTOL", "RANGE_RTOL", "SEARCH_RANGE", "Deviation", "on_own_functions"]

ORDINARY = 4.0  # |z| up to which every function is well conditioned: wrong by more than rounding is wrong
SEARCH_RANGE = 16.0  # |z| up to which the chain-rule verdict holds a function to RANGE_RTOL; beyond, numerical range
ORDINARY_RTOL = 1e-12  # of max(1, |value|): e^z - 1 near 0 is rounding (1e-16), a float32 constant is not (1e-10)
RANGE_RTOL = 1e-8  # of max(1, |value|): softplus' = 1 at z = 20 is 2e-9 off, a derivative zeroed at 10 is 4.5e-5
PRECISION_ULPS = 64.0  # neither is tighter than this many units of the source's precision
CHUNK = 64  # points (hidden) or output entries per probe network: a probe costs about CHUNK^2 multiply-adds
_OWN = OracleInfo("its own functions", "measured through the contract", "", True)

# The contract's derivatives, in forms stable over the whole float64 range (the values: ACTIVATIONS).
_DERIVATIVES = {
    "identity": np.ones_like,
    "relu": lambda z: (z > 0).astype(np.float64),
    "leaky_relu": lambda z: np.where(z > 0, 1.0, LEAKY_SLOPE),
    "sigmoid": lambda z: expit(z) * expit(-z),
    "tanh": lambda z: 1.0 - np.tanh(z) ** 2,
    "softplus": expit,
    "elu": lambda z: np.where(z > 0, 1.0, np.exp(np.minimum(z, 0.0))),
    "gelu": lambda z: ndtr(z) + z * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi),
    "silu": lambda z: expit(z) * (1.0 + z * expit(-z)),
}


@dataclass(frozen=True)
class Deviation:
    """One function's worst point against the contract's: where, got, expected."""

    function: str  # "softplus'", "sigmoid", "binary_cross_entropy after sigmoid: dL/dz"
    z: float
    got: float
    expected: float

    @property
    def error(self) -> float:
        return float(_relative_error(np.float64(self.got), np.float64(self.expected)))

    def __str__(self) -> str:
        return f"{self.function} at z = {self.z:.6g}: got {self.got!r}, the contract's {self.expected!r} (off by {self.error:.2g} of max(1, |value|))"


def _relative_error(got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """|got - expected| / max(1, |expected|), inf where it is not finite."""
    with np.errstate(all="ignore"):
        error = np.abs(got - expected) / np.maximum(1.0, np.abs(expected))
    return np.where(np.isfinite(error), error, np.inf)


class _Unprobed(Exception):
    """Its functions cannot be measured on this case (a probe it does not support, or a fault)."""


@dataclass
class _Measured:
    """Its own functions at the case's points: per function name, (z, got, expected) flat arrays;
    and the points where one faulted (function, z, fault)."""

    points: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = dataclasses.field(default_factory=dict)
    faults: list[tuple[str, float, Fault]] = dataclasses.field(default_factory=list)

    def add(self, function: str, z: np.ndarray, got: np.ndarray, expected: np.ndarray) -> None:
        self.points.setdefault(function, []).append((np.ravel(z), np.ravel(got), np.ravel(expected)))

    def columns(self, function: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(z, got, expected) of every point of ``function``."""
        return tuple(np.concatenate(column) for column in zip(*self.points[function]))

    def deviations(self, within: float) -> list[Deviation]:
        """Per function, its worst point with |z| <= ``within`` (inf: anywhere), worst first."""
        found = []
        for function in self.points:
            z, got, expected = self.columns(function)
            error = np.where(np.abs(z) <= within, _relative_error(got, expected), -1.0)
            if (error >= 0).any():
                k = int(np.argmax(error))
                found.append(Deviation(function, float(z[k]), float(got[k]), float(expected[k])))
        return sorted(found, key=lambda d: -d.error)

    def within_rounding_up_to(self, function: str, beyond: float, rtol: float) -> float:
        """The largest |z| below ``beyond`` up to which ``function`` is within ``rtol`` (NaN: none measured)."""
        z, got, expected = self.columns(function)
        bad = _relative_error(got, expected) > rtol
        worse = np.abs(z)[bad]
        limit = min(float(worse.min(initial=math.inf)), beyond)
        inside = np.abs(z)[(np.abs(z) < limit) & ~bad]
        return float(inside.max()) if inside.size else math.nan  # NaN: no point below it was measured


def _activation(implementation: Implementation, name: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(σ̃(z), σ̃'(z)) at the m points z, from two (m, 1, m) probes (module docstring)."""
    m = len(z)
    arch = Architecture((m, 1, m), (name, "identity"), "mse")
    if not implementation.supports(arch):
        raise _Unprobed(f"its {name} cannot be measured: the probe networks need identity and mse, which it does not declare")
    X, first_layer, zeros = np.eye(m), (z[None, :].copy(), np.zeros(1)), np.zeros(m)
    _, grads = answer(implementation, arch, [first_layer, (np.zeros((m, 1)), zeros)], X, -(m / 2) * np.eye(m))
    u = grads[1][0][:, 0]  # dL/dW2[o] = dZ2[o, o] u_o, dZ2 = 2 (0 - Y) / m = I
    Y = implementation.precision.round(u[:, None] - (m / 2) * np.eye(m))
    _, grads = answer(implementation, arch, [first_layer, (np.ones((m, 1)), zeros)], X, Y)
    dA = (2.0 * (u[:, None] - Y) / m).sum(axis=1)  # dZ2 W2 with W2 = 1: about 1 for every point
    return u, grads[0][0][0] / dA  # dL/dW1[0, k] = dZ1[k] = dA[k] σ̃'(z_k)


def _output(implementation: Implementation, name: str, loss: str, z: np.ndarray, Y: np.ndarray) -> tuple[float, np.ndarray]:
    """(Σ_k ℓ̃(z_k, y_k), dℓ̃/dz per row) for the rows z, from one (r, n) probe: X = I, W = zᵀ."""
    r = len(z)
    total, grads = answer(implementation, Architecture((r, z.shape[1]), (name,), loss), [(z.T.copy(), np.zeros(z.shape[1]))], np.eye(r), Y)
    return total * r, grads[0][0].T * r


def _output_contract(name: str, loss: str, z: np.ndarray, Y: np.ndarray) -> tuple[float, np.ndarray]:
    """The contract's (Σ_k ℓ(z_k, y_k), dℓ/dz per row), in stable forms."""
    total = float(LOSSES[loss](z, ACTIVATIONS[name], Y)) * len(Y)
    if loss == "cross_entropy":
        return total, softmax(z, axis=1) * Y.sum(axis=1, keepdims=True) - Y
    if loss == "binary_cross_entropy":
        return total, expit(z) - Y
    a = ACTIVATIONS[name](z)
    dA = 2.0 * (a - Y)
    if name == "softmax":
        return total, a * (dA - (dA * a).sum(axis=1, keepdims=True))
    return total, dA * _DERIVATIVES[name](z)


def _localised(ask, where: np.ndarray, function: str, measured: _Measured):
    """``ask(slice(None))`` over a chunk of points; where it faults, each point asked alone
    (``ask(slice(k, k + 1))``) and the faulting ones recorded at their z (``where[k]``)."""
    try:
        return ask(slice(None))
    except Fault as fault:
        if not fault.fatal:
            for k in range(len(where)):
                try:
                    ask(slice(k, k + 1))
                except Fault as alone:
                    if alone.fatal:
                        break
                    measured.faults.append((function, float(where[k]), alone))
        raise _Unprobed(f"its {function} faults ({fault.kind}: {fault.message})") from None


def _signed_largest(z: np.ndarray) -> np.ndarray:
    """Per row, its entry of largest magnitude (the row's z, for a row-wise function)."""
    return z[np.arange(len(z)), np.abs(z).argmax(axis=1)]


def _hidden(implementation: Implementation, name: str, z: np.ndarray, measured: _Measured, declared: dict) -> tuple[np.ndarray, np.ndarray]:
    """σ̃ and σ̃' at every entry of z (N, n), in chunks of CHUNK points, recorded against the contract's."""
    flat = z.ravel()
    u, v = np.empty_like(flat), np.empty_like(flat)
    for start in range(0, len(flat), CHUNK):
        part = slice(start, start + CHUNK)
        points = flat[part]
        u[part], v[part] = _localised(lambda k, p=points: _activation(implementation, name, p[k]), points, name, measured)
    kink = (flat == 0) if name in KINK_DERIVATIVES else np.zeros(flat.shape, dtype=bool)
    with np.errstate(all="ignore"):
        measured.add(name, flat, u, ACTIVATIONS[name](flat))
        measured.add(f"{name}'", flat[~kink], v[~kink], _DERIVATIVES[name](flat[~kink]))
    if kink.any():  # at an exact kink its derivative is a convention: the contract's, or the one it declares
        measured.add(f"{name}'(0)", flat[kink], v[kink], np.full(int(kink.sum()), declared.get(name, KINK_DERIVATIVES[name])))
    return u.reshape(z.shape), v.reshape(z.shape)


def _last(implementation: Implementation, name: str, loss: str, z: np.ndarray, Y: np.ndarray, measured: _Measured) -> tuple[float, np.ndarray]:
    """Σ ℓ̃ and dℓ̃/dz over the rows of z (N, n), in chunks of about CHUNK entries."""
    function = f"{loss} after {name}" if loss != "mse" else f"{name} (output) under mse"
    rows = max(1, CHUNK // z.shape[1])
    total, g = 0.0, np.empty_like(z)
    for start in range(0, len(z), rows):
        part = slice(start, start + rows)
        rows_z, rows_y = z[part], Y[part]
        row_z = _signed_largest(rows_z)
        chunk_total, g[part] = _localised(lambda k, p=rows_z, y=rows_y: _output(implementation, name, loss, p[k], y[k]), row_z, function, measured)
        with np.errstate(all="ignore"):
            expected_total, expected_g = _output_contract(name, loss, rows_z, rows_y)
        measured.add(f"{function}: dL/dz", np.broadcast_to(row_z[:, None], g[part].shape) if name == "softmax" else z[part], g[part], expected_g)
        measured.add(f"{function}: the loss", np.array([row_z[np.abs(row_z).argmax()]]), np.array([chunk_total]), np.array([expected_total]))
        total += chunk_total
    return total, g


def _composed(implementation: Implementation, case: Case, measured: _Measured):
    """(loss, grads) that its own functions compose to on the case: the article's passes over them."""
    round_ = implementation.precision.round
    A, sigma_prime = [case.X], []
    for (W, b), name in zip(case.params[:-1], case.arch.activations[:-1]):
        z = round_(A[-1] @ W.T + b)
        if name == "identity":
            u, v = z, np.ones_like(z)
        else:
            u, v = _hidden(implementation, name, z, measured, implementation.kink_derivatives)
        A.append(u)
        sigma_prime.append(v)
    W, b = case.params[-1]
    total, g = _last(implementation, case.arch.activations[-1], case.arch.loss, round_(A[-1] @ W.T + b), case.Y, measured)
    N = case.batch_size
    dZ, grads = g / N, []
    for l in reversed(range(len(case.params))):
        grads.append((dZ.T @ A[l], dZ.sum(axis=0)))  # dW = dZᵀ A_prev, db = dZᵀ 1
        if l:
            dZ = (dZ @ case.params[l][0]) * sigma_prime[l - 1]  # dZ_prev = (dZ W) ⊙ σ̃'(z_prev)
    return total / N, grads[::-1]


_CALIBRATION = np.array([0.75, -1.5, 2.0])  # identity's points: σ̃ = z and σ̃' = 1 exactly, in any precision


def _probe_is_chain_rule(implementation: Implementation) -> str:
    """Why the probe networks themselves are not differentiated by the chain rule ("" when they
    are): with identity for σ, the probe must give back z and 1 (a dropped layer, a transposed or
    mis-scaled step shows here, so it is never read as a wrong function of its own)."""
    try:
        u, v = _activation(implementation, "identity", _CALIBRATION)
    except (Fault, _Unprobed):
        return ""
    if np.allclose(u, _CALIBRATION, rtol=1e-12, atol=0.0) and np.allclose(v, 1.0, rtol=1e-12, atol=0.0):
        return ""
    return (f"not the chain rule: on the probe network {len(_CALIBRATION)}-identity-1-identity-{len(_CALIBRATION)}:mse, whose gradients any chain rule "
            f"gives exactly, it answers identity(z) = {u.tolist()} and identity'(z) = {v.tolist()} at z = {_CALIBRATION.tolist()} "
            "(expected z and 1): a chain-rule error")


def _thresholds(implementation: Implementation) -> tuple[float, float]:
    floor = PRECISION_ULPS * implementation.precision.eps
    return max(ORDINARY_RTOL, floor), max(RANGE_RTOL, floor)


def _wrong_function(measured: _Measured, implementation: Implementation) -> str:
    """Why a function of its own is wrong ("" when none is): on ordinary values, or in the search range."""
    ordinary_rtol, range_rtol = _thresholds(implementation)
    kinks = [d for d in measured.deviations(0.0) if d.function.endswith("'(0)") and d.error > ordinary_rtol]
    if kinks:
        name = kinks[0].function[: -len("'(0)")]
        low, high = SUBDIFFERENTIAL[name]
        kind = "a kink convention (declare kink_derivatives if it is intended)" if low <= kinks[0].got <= high else f"outside [{low:g}, {high:g}], the one-sided slopes: wrong"
        return f"its own {name}'(0) = {kinks[0].got:g} at an exact kink, the contract's (or declared) {kinks[0].expected:g}: {kind}"
    for within, rtol, where in ((ORDINARY, ordinary_rtol, "on ordinary values"), (SEARCH_RANGE, range_rtol, f"within |z| <= {SEARCH_RANGE:g}")):
        wrong = [d for d in measured.deviations(within) if d.error > rtol]
        if wrong:
            names = " and ".join(dict.fromkeys(d.function.split(":")[0] for d in wrong))
            verb = "is" if len({d.function.split(":")[0] for d in wrong}) == 1 else "are"
            return f"its own {names} {verb} wrong {where} (more than {rtol:.0e} of max(1, |value|)): " + "; ".join(map(str, wrong))
    return ""


def _finding(measured: _Measured, implementation: Implementation, case: Case, fault: Fault | None) -> RangeFinding | None:
    """The numerical-range finding that explains the disagreement: its worst function beyond the
    search range (None when every function is within rounding everywhere)."""
    ordinary_rtol, _ = _thresholds(implementation)
    if fault is not None:
        function, z, own = measured.faults[0]
        return RangeFinding(function, math.nan, z, f"{own.kind}: {own.message} (on {case.describe()}: {fault.kind}: {fault.message})", advice(function))
    beyond = [d for d in measured.deviations(math.inf) if d.error > ordinary_rtol]
    if not beyond:
        return None
    worst = beyond[0]
    passed = measured.within_rounding_up_to(worst.function, abs(worst.z), ordinary_rtol)
    what = f"off by {worst.error:.2g} of max(1, |value|) (got {worst.got!r}, the contract's {worst.expected!r}; on {case.describe()})"
    return RangeFinding(worst.function, passed, worst.z, what, advice(worst.function))


def on_own_functions(implementation: Implementation, verdict: CaseVerdict, bounds: Sensitivity, answer_: tuple | None = None) -> CaseVerdict:
    """The failing ``verdict`` (a disagreement, with its ``answer_`` (loss, grads), or a raised or
    non-finite fault) judged on the implementation's own functions (module docstring): itself
    with a note saying why it is a chain-rule failure, or with ``explanation`` and ``finding``
    set when its functions' numerical range explains it (then it no longer fails)."""
    broken = _probe_is_chain_rule(implementation)
    if broken:
        return dataclasses.replace(verdict, notes=verdict.notes + (broken,))
    measured = _Measured()
    try:
        own_loss, own_grads = _composed(implementation, verdict.case, measured)
    except _Unprobed as unprobed:
        beyond = [f for f in measured.faults if abs(f[1]) > SEARCH_RANGE]
        if verdict.fault is not None and beyond and len(beyond) == len(measured.faults) and not _wrong_function(measured, implementation):
            finding = _finding(measured, implementation, verdict.case, verdict.fault)
            explanation = f"its own {finding.probe} faults beyond |z| = {SEARCH_RANGE:g}, where the contract's is finite: numerical range"
            return dataclasses.replace(verdict, explanation=explanation, finding=finding)
        return dataclasses.replace(verdict, notes=verdict.notes + (f"not judged on its own functions: {unprobed}",))
    wrong = _wrong_function(measured, implementation)
    if wrong:
        return dataclasses.replace(verdict, notes=verdict.notes + (wrong,))
    if verdict.fault is not None:
        return dataclasses.replace(verdict, notes=verdict.notes + (
            "its own functions, measured at this case's pre-activations, are finite and right: the fault is not theirs",))
    loss, grads = answer_
    composed = compare(loss, grads, OracleGradients(own_loss, own_grads), _OWN, bounds)
    if composed.status is Status.DISAGREE:
        worst = composed.disagreeing[0] if composed.disagreeing else None
        what = f"{worst.name} off by {worst.error:.3g} of its scale" if worst is not None else f"the loss off by {composed.loss_error:.3g}"
        return dataclasses.replace(verdict, notes=verdict.notes + (
            f"not the chain rule of its own functions: measured at this case's pre-activations, they compose to another gradient ({what}): "
            "a chain-rule error",))
    finding = _finding(measured, implementation, verdict.case, None)
    if finding is None:
        explanation = "its answer is the chain rule of its own functions, which are within rounding of the contract's everywhere here"
    else:
        explanation = f"its answer is the chain rule of its own functions; its {finding.probe} departs from the contract's only in numerical range"
    return dataclasses.replace(verdict, explanation=explanation, finding=finding)
