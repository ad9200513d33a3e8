"""Comparing a gradient source's answer with an oracle's, tensor by tensor.

Layers are numbered as in the article: layer 1 is the first layer with parameters.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import Enum

import numpy as np

from .base import CONTRACT_KINK_DERIVATIVES, OracleGradients, OracleInfo
from .tolerances import ABSOLUTE_SCALE, Tolerance, tolerance_for

__all__ = ["Status", "TensorComparison", "Comparison", "compare", "tensor_name"]

Params = list[tuple[np.ndarray, np.ndarray]]


class Status(Enum):
    """Outcome of one comparison; every record starts PENDING until a check decides it."""

    PENDING = "pending"
    AGREE = "agree"
    DISAGREE = "disagree"
    CONVENTION = "convention"  # differs only at a kink where the oracle's convention is not the contract's
    NO_EVIDENCE = "no evidence"  # the oracle vouches for no entry (finite differences across kinks)
    SKIPPED = "skipped"  # outside what the implementation declares it supports
    ERROR = "error"  # the implementation failed to answer properly


def tensor_name(layer: int, kind: str) -> str:
    """``dL/dW[layer 1]``: layer counted from 1 as in the article."""
    return f"dL/d{kind}[layer {layer}]"


@dataclass(frozen=True)
class TensorComparison:
    """One gradient tensor: the worst relative error over the entries the oracle vouches for."""

    layer: int
    kind: str  # "W" or "b"
    got: np.ndarray
    expected: np.ndarray
    trusted: np.ndarray  # bool, entries compared
    scale: float
    tolerance: float

    @property
    def name(self) -> str:
        return tensor_name(self.layer, self.kind)

    @functools.cached_property
    def errors(self) -> np.ndarray:
        """|got - expected| / scale per entry, 0 where not compared."""
        return np.where(self.trusted, np.abs(self.got - self.expected), 0.0) / self.scale

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

    @property
    def worst_error(self) -> float:
        return max([t.error for t in self.tensors] + [self.loss_error])

    @property
    def disagreeing(self) -> list[TensorComparison]:
        """The tensors beyond tolerance, from the output layer back."""
        return sorted((t for t in self.tensors if not t.agrees), key=lambda t: (-t.layer, t.kind))


def _convention_differs(expected: OracleGradients, infos: list[OracleInfo]) -> bool:
    """True when the case sits on a kink where one side's derivative is not the contract's."""
    return any(
        info.kink_derivatives.get(name) is not None and info.kink_derivatives[name] != CONTRACT_KINK_DERIVATIVES[name]
        for name in expected.kinks
        for info in infos
    )


def compare(
    loss: float,
    grads: Params,
    expected: OracleGradients,
    info: OracleInfo,
    tolerance: Tolerance | None = None,
    source: OracleInfo | None = None,
) -> Comparison:
    """Judge (loss, grads) against an oracle's answer with the tolerance of its kind.

    ``source`` describes the judged side when it is itself an oracle with a stated kink
    convention (oracles judged against each other).
    """
    tolerance = tolerance or tolerance_for(info)
    G = max(float(np.abs(g).max(initial=0.0)) for pair in expected.grads for g in pair)
    tensors = []
    for l, pair in enumerate(expected.grads):
        for which, kind in enumerate(("W", "b")):
            got = np.asarray(grads[l][which], dtype=np.float64)
            want = pair[which]
            trusted = expected.trusted_mask(l, which)
            M = float(np.abs(expected.sensitivity.grads[l][which]).max(initial=0.0)) if expected.sensitivity else 0.0
            scale = max(
                float(np.abs(got[trusted]).max(initial=0.0)),
                float(np.abs(want[trusted]).max(initial=0.0)),
                tolerance.floor * max(G, M),
                tolerance.loss_floor * abs(expected.loss),
                ABSOLUTE_SCALE,
            )
            tensors.append(TensorComparison(l + 1, kind, got, want, trusted, scale, tolerance.rtol))
    # the loss's rounding sensitivity S_L (oracles/tolerances.py) as a floor of its scale: |error| <= S_L at least
    rounding = expected.sensitivity.loss / tolerance.loss_rtol if expected.sensitivity else 0.0
    loss_error = abs(loss - expected.loss) / max(abs(expected.loss), abs(loss), 1e-3, rounding)
    compared = sum(t.compared for t in tensors)
    agrees = all(t.agrees for t in tensors) and loss_error <= tolerance.loss_rtol
    if agrees:
        status = Status.AGREE if compared else Status.NO_EVIDENCE
    elif loss_error <= tolerance.loss_rtol and _convention_differs(expected, [info] + ([source] if source else [])):
        status = Status.CONVENTION
    else:
        status = Status.DISAGREE
    return Comparison(info.name, status, float(loss), float(expected.loss), loss_error, tuple(tensors))
