"""What every oracle hands back, and how an oracle describes itself.

An oracle is a contract object (``name``, ``loss_and_gradients``) that also says how much of
its answer is evidence. ``trusted`` marks the gradient entries the oracle vouches for: a
finite-difference entry whose step crosses a relu/leaky_relu kink is not evidence, and is
False there. ``kink_derivatives`` states the oracle's own derivative at z = 0 for each kinked
activation (the contract's is relu'(0) = 0, leaky_relu'(0) = 0.01); a different value is a
convention, reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from chainrule.contract import KINK_DERIVATIVES

__all__ = ["OracleGradients", "OracleInfo"]

Params = list[tuple[np.ndarray, np.ndarray]]



@dataclass(frozen=True)
class OracleGradients:
    """An oracle's answer: the loss, (dL/dW, dL/db) per layer, and which entries are evidence."""

    loss: float
    grads: Params
    trusted: list[tuple[np.ndarray, np.ndarray]] | None = None  # None: every entry is evidence
    kinks: frozenset[str] = frozenset()  # kinked activations with a pre-activation exactly 0 here

    def trusted_mask(self, layer: int, which: int) -> np.ndarray:
        """Boolean mask of the entries of grads[layer][which] (0: W, 1: b) that are evidence."""
        if self.trusted is None:
            return np.ones(self.grads[layer][which].shape, dtype=bool)
        return self.trusted[layer][which]


@dataclass(frozen=True)
class OracleInfo:
    """How an oracle introduces itself in the registry and in reports."""

    name: str
    framework: str
    version: str
    available: bool
    reason: str = ""  # why it is unavailable
    exact: bool = True  # exact to rounding (autodiff), or approximate (finite differences)
    kink_derivatives: dict[str, float | None] = field(default_factory=lambda: dict(KINK_DERIVATIVES))
    honours_declarations: bool = False  # gradients(..., kink_derivatives=) computes with a declared convention
    plugged: bool = False  # plugged in by the user (chainrule.plugged): judges once qualified, never over the built-in ones
    activations: tuple[str, ...] | None = None  # what it judges (None: everything); a case outside it is not its to judge
    losses: tuple[str, ...] | None = None

    def supports(self, arch) -> bool:
        """Whether it judges a case of this architecture: every activation and the loss declared."""
        return (self.losses is None or arch.loss in self.losses) and (
            self.activations is None or all(name in self.activations for name in arch.activations))
