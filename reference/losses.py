"""Every loss of the contract, with dL/dZ of the output layer.

N is the batch size; Z and A are the output layer's pre-activation and activation (A = y-hat).

- mse:                  L = (1/N) sum_k ||a_k - y_k||^2             dL/dA = (2/N)(A - Y), then through sigma'
- cross_entropy:        L = -(1/N) sum_kj y_kj log softmax(z_k)_j   dL/dZ = (A * rowsum(Y) - Y) / N
- binary_cross_entropy: L = -(1/N) sum_kj [y log a + (1-y) log(1-a)], a = sigmoid(z)
                                                                     dL/dZ = (A - Y) / N

The two log losses are evaluated from Z (log softmax = z - logsumexp z; -log sigmoid(z) =
softplus(-z)), and their dL/dZ is the chain rule through softmax / sigmoid written out, so
a saturated output never produces log(0) or 0/0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .activations import ACTIVATIONS, Activation

__all__ = ["Loss", "LOSSES"]

Array = np.ndarray
_softplus = ACTIVATIONS["softplus"].sigma


@dataclass(frozen=True)
class Loss:
    """L(Z, A, Y) and dL/dZ of the output layer."""

    value: Callable[[Array, Array, Array], float]
    output_dZ: Callable[[Array, Array, Array, Activation], Array]


def _mse(z: Array, a: Array, y: Array) -> float:
    return float(((a - y) ** 2).sum() / len(y))


def _mse_dZ(z: Array, a: Array, y: Array, activation: Activation) -> Array:
    dA = 2.0 * (a - y) / len(y)
    return activation.backward(z, a, dA)


def _cross_entropy(z: Array, a: Array, y: Array) -> float:
    shifted = z - z.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-(y * log_softmax).sum() / len(y))


def _cross_entropy_dZ(z: Array, a: Array, y: Array, activation: Activation) -> Array:
    return (a * y.sum(axis=1, keepdims=True) - y) / len(y)


def _binary_cross_entropy(z: Array, a: Array, y: Array) -> float:
    return float((y * _softplus(-z) + (1.0 - y) * _softplus(z)).sum() / len(y))


def _binary_cross_entropy_dZ(z: Array, a: Array, y: Array, activation: Activation) -> Array:
    return (a - y) / len(y)


LOSSES: dict[str, Loss] = {
    "mse": Loss(_mse, _mse_dZ),
    "cross_entropy": Loss(_cross_entropy, _cross_entropy_dZ),
    "binary_cross_entropy": Loss(_binary_cross_entropy, _binary_cross_entropy_dZ),
}
