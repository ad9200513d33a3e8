"""Float64 implementations with one float32 rounding in them, for the float32 diagnosis.

Each is the article's network in numpy float64 with exactly one part rounded to float32, as
such code is written by accident: a constant typed as ``np.float32`` or one activation evaluated
in float32. ``FLOAT32`` names each one's part; ``chainrule.float32`` must name it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

__all__ = ["FLOAT32", "RoundedSomewhere"]

SLOPE32 = float(np.float32(0.01))  # 0.009999999776482582
SQRT2_32 = float(np.float32(math.sqrt(2.0)))  # 1.4142135381698608
INV_SQRT2_32 = float(np.float32(1.0 / math.sqrt(2.0)))  # 0.7071067690849304


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _gelu(k: float):
    """gelu(z) = z Phi(z) with Phi(z) = (1 + erf(k z)) / 2: exact for k = 1/sqrt 2; and its derivative."""
    Phi = lambda z: 0.5 * (1.0 + erf(k * z))  # noqa: E731
    return (lambda z: z * Phi(z)), (lambda z: Phi(z) + z * k / math.sqrt(math.pi) * np.exp(-((k * z) ** 2)))


def _sigmoid32(z):
    return (1.0 / (1.0 + np.exp(-z.astype(np.float32)))).astype(np.float64)


SIGMA = {
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
    "leaky_relu": (lambda z: np.where(z > 0, z, 0.01 * z), lambda z: np.where(z > 0, 1.0, 0.01)),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "gelu": _gelu(1.0 / math.sqrt(2.0)),
}

FLOAT32 = {  # its name -> (what is rounded, the activation it replaces, (sigma, sigma'))
    "leaky_slope": ("leaky_relu's slope is np.float32(0.01)", "leaky_relu",
                    (lambda z: np.where(z > 0, z, SLOPE32 * z), lambda z: np.where(z > 0, 1.0, SLOPE32))),
    "gelu_sqrt2": ("gelu divides by np.float32(sqrt 2)", "gelu", _gelu(1.0 / SQRT2_32)),
    "gelu_inv_sqrt2": ("gelu multiplies by np.float32(1/sqrt 2)", "gelu", _gelu(INV_SQRT2_32)),
    "sigmoid_float32": ("sigmoid is evaluated in float32", "sigmoid",
                        (_sigmoid32, lambda z: _sigmoid32(z) * (1.0 - _sigmoid32(z)))),
}


class RoundedSomewhere:
    """The article's network in float64 (mse only), with FLOAT32[part] in place of one activation."""

    losses = ("mse",)
    activations = tuple(SIGMA)

    def __init__(self, part: str | None = None):
        self.part = part
        self.name = f"float64 with {FLOAT32[part][0]}" if part else "float64, nothing rounded"
        self.sigma = dict(SIGMA)
        if part:
            self.sigma[FLOAT32[part][1]] = FLOAT32[part][2]

    def loss_and_gradients(self, arch, params, X, Y):
        zs, As = [], [X]
        for (W, b), name in zip(params, arch.activations):
            zs.append(As[-1] @ W.T + b)
            As.append(self.sigma[name][0](zs[-1]))
        N = len(X)
        dA = 2.0 * (As[-1] - Y) / N
        grads = [None] * len(params)
        for l in reversed(range(len(params))):
            dZ = dA * self.sigma[arch.activations[l]][1](zs[l])
            grads[l] = (dZ.T @ As[l], dZ.sum(axis=0))
            dA = dZ @ params[l][0]
        return float(np.sum((As[-1] - Y) ** 2) / N), grads
