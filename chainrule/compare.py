"""Comparing a gradient source's answer with an oracle's, tensor by tensor.

Layers are numbered as in the article: layer 1 is the first layer with parameters.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from chainrule.contract import KINK_DERIVATIVES, TensorId
from chainrule.oracles.base import OracleGradients, OracleInfo
from chainrule.status import Status
from chainrule.tolerances import ABSOLUTE_SCALE, Sensitivity, Tolerance, tolerance_for

__all__ = ["TensorComparison", "Comparison", "compare", "loss_error"]

Params = list[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class TensorComparison:
    """One gradient tensor: the worst relative error over the entries the oracle vouches for."""

    tensor: TensorId
    got: np.ndarray
    expected: np.ndarray
    trusted: np.ndarray  # bool, entries compared
    scale: float
    tolerance: float
    floor: np.ndarray | None = None  # per entry, absolute: the case's noise floor (chainrule.noise)

    @property
    def name(self) -> str:
        return self.tensor.name

    @property
    def layer(self) -> int:
        return self.tensor.layer

    @property
    def kind(self) -> str:
        return self.tensor.kind

    @functools.cached_property
    def errors(self) -> np.ndarray:
        """|got - expected| / scale per entry, 0 where not compared; where the noise floor exceeds
        tolerance * scale, relative to floor / tolerance instead, so that an error within the
        floor is within tolerance."""
        scale = self.scale if self.floor is None else np.maximum(self.scale, self.floor / self.tolerance)
        return np.where(self.trusted, np.abs(self.got - self.expected), 0.0) / scale

    @functools.cached_property
    def error(self) -> float:
        return float(self.errors.max(initial=0.0))

    @property
    def bad(self) -> list[tuple[int, ...]]:
        """Indices of the entries beyond tolerance, worst first."""
        errors = self.errors
        order = np.argsort(-errors, axis=None, kind="stable")
        return [np.unravel_index(i, errors.shape) for i in order if errors.flat[i] > self.tolerance]

    @property
    def agrees(self) -> bool:
        return self.error <= self.tolerance

    @property
    def compared(self) -> int:
        return int(self.trusted.sum())


@dataclass(frozen=True)
class Comparison:
    """A source's whole answer against one oracle."""

    oracle: str
    status: Status
    loss_got: float
    loss_expected: float
    loss_error: float
    tensors: tuple[TensorComparison, ...]
    note: str = ""
    loss_agrees: bool = True  # the loss is within the judge's tolerance
    loss_tolerance: float = 1.0  # what loss_error is allowed to be

    @property
    def worst_error(self) -> float:
        return max([t.error for t in self.tensors] + [self.loss_error])

    @property
    def worst_allowance(self) -> float:
        """The worst error in units of what was allowed: |got - expected| over max(rtol scale(T),
        the entry's noise floor) at its worst entry, and the loss's likewise; above 1 disagrees."""
        ratio = lambda error, allowed: error / allowed if allowed else (math.inf if error else 0.0)  # noqa: E731
        return max([ratio(t.error, t.tolerance) for t in self.tensors] + [ratio(self.loss_error, self.loss_tolerance)])

    @property
    def disagreeing(self) -> list[TensorComparison]:
        """The tensors beyond tolerance, from the output layer back."""
        return sorted((t for t in self.tensors if not t.agrees), key=lambda t: (-t.layer, t.kind))


def _convention_differs(expected: OracleGradients, infos: list[OracleInfo]) -> bool:
    """True when the case sits on a kink where one side's derivative is not the contract's."""
    return any(
        info.kink_derivatives.get(name) is not None and info.kink_derivatives[name] != KINK_DERIVATIVES[name]
        for name in expected.kinks
        for info in infos
    )


def compare(
    loss: float,
    grads: Params,
    expected: OracleGradients,
    info: OracleInfo,
    bounds: Sensitivity,
    tolerance: Tolerance | None = None,
    source: OracleInfo | None = None,
) -> Comparison:
    """Judge (loss, grads) against an oracle's answer with the tolerance of its kind, the case's
    floors ``bounds`` (chainrule.tolerances.sensitivity) raising every scale, and its rtol no
    tighter than the rounding of the source's precision.

    ``source`` describes the judged side when it is itself an oracle with a stated kink
    convention (oracles judged against each other).
    """
    tolerance = (tolerance or tolerance_for(info)).at_least(bounds.rounding)
    G = max(float(np.abs(g).max(initial=0.0)) for pair in expected.grads for g in pair)
    tensors = []
    for l, pair in enumerate(expected.grads):
        for which, kind in enumerate(("W", "b")):
            got = np.asarray(grads[l][which], dtype=np.float64)
            want = pair[which]
            trusted = expected.trusted_mask(l, which)
            M = float(np.abs(bounds.grads[l][which]).max(initial=0.0))
            scale = max(
                float(np.abs(got[trusted]).max(initial=0.0)),
                float(np.abs(want[trusted]).max(initial=0.0)),
                tolerance.floor * max(G, M),
                tolerance.loss_floor * abs(expected.loss),
                ABSOLUTE_SCALE,
            )
            tensors.append(TensorComparison(TensorId(l + 1, kind), got, want, trusted, scale, tolerance.rtol, bounds.noise[l][which]))
    error = loss_error(loss, expected.loss, bounds.loss, tolerance)
    compared = sum(t.compared for t in tensors)
    agrees = all(t.agrees for t in tensors) and error <= tolerance.loss_rtol
    if agrees:
        status = Status.AGREE if compared else Status.NO_EVIDENCE
    elif error <= tolerance.loss_rtol and _convention_differs(expected, [info] + ([source] if source else [])):
        status = Status.CONVENTION
    else:
        status = Status.DISAGREE
    return Comparison(info.name, status, float(loss), float(expected.loss), error, tuple(tensors), loss_agrees=error <= tolerance.loss_rtol,
                      loss_tolerance=tolerance.loss_rtol)


def loss_error(got: float, expected: float, floor: float, tolerance: Tolerance) -> float:
    """|got - expected| relative to max(|L|, 1e-3), where the loss's noise floor (``floor``,
    absolute) raises the scale so that an error within the floor is within tolerance."""
    return abs(got - expected) / max(abs(expected), abs(got), 1e-3, floor / tolerance.loss_rtol)
