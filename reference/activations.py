"""Every activation of the contract as a pair (sigma, sigma').

``sigma_prime(z)`` is the elementwise derivative at the pre-activation z. At the kinks the
reference follows the article's x <= 0 branch: relu'(0) = 0, leaky_relu'(0) = 0.01.
Softmax is not elementwise: its backward step is the vector-Jacobian product
dZ = A * (dA - sum_j dA_j A_j), so it carries ``vjp`` instead of ``sigma_prime``.
Every formula is written to stay finite and warning-free in float64 for any z.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import ndtr

from chainrule.contract import LEAKY_SLOPE

__all__ = ["Activation", "ACTIVATIONS", "LEAKY_SLOPE"]

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)

Array = np.ndarray


@dataclass(frozen=True)
class Activation:
    """sigma and its backward step: dZ = dA * sigma'(Z), or a vector-Jacobian product."""

    sigma: Callable[[Array], Array]
    sigma_prime: Callable[[Array], Array] | None = None
    vjp: Callable[[Array, Array, Array], Array] | None = None

    def backward(self, z: Array, a: Array, dA: Array) -> Array:
        """dL/dZ from dL/dA for this layer."""
        if self.vjp is not None:
            return self.vjp(z, a, dA)
        return dA * self.sigma_prime(z)


def _sigmoid(z: Array) -> Array:
    e = np.exp(-np.abs(z))  # never overflows
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_prime(z: Array) -> Array:
    s = _sigmoid(z)
    return s * (1.0 - s)


def _softplus(z: Array) -> Array:
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def _elu(z: Array) -> Array:
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))


def _elu_prime(z: Array) -> Array:
    return np.where(z > 0, 1.0, np.exp(np.minimum(z, 0.0)))


def _gelu_prime(z: Array) -> Array:
    # d/dz z*Phi(z) = Phi(z) + z*phi(z)
    return ndtr(z) + z * _INV_SQRT_2PI * np.exp(-0.5 * z * z)


def _silu_prime(z: Array) -> Array:
    s = _sigmoid(z)
    return s * (1.0 + z * (1.0 - s))


def _softmax(z: Array) -> Array:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _softmax_vjp(z: Array, a: Array, dA: Array) -> Array:
    return a * (dA - (dA * a).sum(axis=1, keepdims=True))


ACTIVATIONS: dict[str, Activation] = {
    "identity": Activation(lambda z: z, lambda z: np.ones_like(z)),
    "relu": Activation(lambda z: np.where(z > 0, z, 0.0), lambda z: (z > 0).astype(z.dtype)),
    "leaky_relu": Activation(
        lambda z: np.where(z > 0, z, LEAKY_SLOPE * z),
        lambda z: np.where(z > 0, 1.0, LEAKY_SLOPE),
    ),
    "sigmoid": Activation(_sigmoid, _sigmoid_prime),
    "tanh": Activation(np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "softplus": Activation(_softplus, _sigmoid),
    "elu": Activation(_elu, _elu_prime),
    "gelu": Activation(lambda z: z * ndtr(z), _gelu_prime),
    "silu": Activation(lambda z: z * _sigmoid(z), _silu_prime),
    "softmax": Activation(_softmax, vjp=_softmax_vjp),
}
