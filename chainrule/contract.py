"""The gradient-source contract's vocabulary (docs/contract.md), shared by every layer.

Names and constants only, no arithmetic: the reference, each oracle and the engine import them
from here, so a judge shares the defendant's words but never its code.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ACTIVATION_NAMES", "KINKED", "KINK_DERIVATIVES", "LEAKY_SLOPE", "LOSS_NAMES", "PRECISION_NAMES", "REQUIRED_OUTPUT", "SUBDIFFERENTIAL",
    "TensorId",
]

ACTIVATION_NAMES = (
    "identity", "relu", "leaky_relu", "sigmoid", "tanh",
    "softplus", "elu", "gelu", "silu", "softmax",
)
LOSS_NAMES = ("mse", "cross_entropy", "binary_cross_entropy")
# Losses that are only defined after one output activation.
REQUIRED_OUTPUT = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}
LEAKY_SLOPE = 0.01  # leaky_relu(z) = z for z > 0, LEAKY_SLOPE * z otherwise
# The precisions a source may declare (docs/contract.md, "Precision"); the first is the default.
PRECISION_NAMES = ("float64", "float32", "bfloat16", "float16")
# Activations with a non-differentiable point at z = 0, and the contract's derivative there
# (the article's z <= 0 branch). Another value is a convention, never a wrong gradient.
KINKED = ("relu", "leaky_relu")
KINK_DERIVATIVES = {"relu": 0.0, "leaky_relu": LEAKY_SLOPE}
# The one-sided slopes at 0: a declared derivative there must lie between them (the subdifferential).
SUBDIFFERENTIAL = {"relu": (0.0, 1.0), "leaky_relu": (LEAKY_SLOPE, 1.0)}


@dataclass(frozen=True, order=True)
class TensorId:
    """One gradient tensor: dL/dW or dL/db of a layer counted from 1, as in the article."""

    layer: int
    kind: str  # "W" or "b"

    @property
    def name(self) -> str:
        """``dL/dW[layer 1]``"""
        return f"dL/d{self.kind}[layer {self.layer}]"

    @property
    def slot(self) -> tuple[int, int]:
        """Where it sits in ``params`` and ``grads``: (list index from 0, 0 for W or 1 for b)."""
        return self.layer - 1, 0 if self.kind == "W" else 1

    @classmethod
    def every(cls, depth: int) -> list["TensorId"]:
        """dL/dW and dL/db of layers 1..depth, in the order of ``grads``."""
        return [cls(layer, kind) for layer in range(1, depth + 1) for kind in ("W", "b")]
