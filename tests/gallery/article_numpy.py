"""The article's formulas, literally, in numpy float64: what a reader of the article writes.

No stability tricks: σ(z) = 1/(1 + e^−z), softplus = log(1 + e^z), the losses computed from the
output activation a (log a, log(1 − a)), dL/da the textbook way and then ⊙ σ'(z). The backward
pass is the article's four steps: dW = dZᵀ·A_prev, db = dZᵀ·1, dA_prev = dZ·W,
dZ_prev = dA_prev ⊙ σ'(Z_prev). Softmax goes through its Jacobian-vector product.

At the kinks it takes the derivative of the z ≤ 0 branch: relu'(0) = 0, leaky_relu'(0) = 0.01.

    chainrule check tests.gallery.article_numpy:ArticleNumpy
"""

import math

import numpy as np
from scipy.special import erf

__all__ = ["ArticleNumpy", "ArticleNumpyWrongTanh"]


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def Phi(z):
    """The standard normal CDF."""
    return 0.5 * (1.0 + erf(z / math.sqrt(2.0)))


def phi(z):
    """The standard normal density."""
    return np.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# σ for every activation but softmax, and σ' beside it
SIGMA = {
    "identity": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "sigmoid": sigmoid,
    "tanh": np.tanh,
    "softplus": lambda z: np.log(1.0 + np.exp(z)),
    "elu": lambda z: np.where(z > 0, z, np.exp(z) - 1.0),
    "gelu": lambda z: z * Phi(z),
    "silu": lambda z: z * sigmoid(z),
}
SIGMA_PRIME = {
    "identity": lambda z: np.ones_like(z),
    "relu": lambda z: np.where(z > 0, 1.0, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, 1.0, 0.01),
    "sigmoid": lambda z: sigmoid(z) * (1.0 - sigmoid(z)),
    "tanh": lambda z: 1.0 - np.tanh(z) ** 2,
    "softplus": sigmoid,
    "elu": lambda z: np.where(z > 0, 1.0, np.exp(z)),
    "gelu": lambda z: Phi(z) + z * phi(z),
    "silu": lambda z: sigmoid(z) * (1.0 + z * (1.0 - sigmoid(z))),
}


def loss(name, a, Y):
    N = len(Y)
    if name == "mse":  # (1/N) Σ ‖a − y‖²
        return np.sum((a - Y) ** 2) / N
    if name == "cross_entropy":  # −(1/N) Σ y log a
        return -np.sum(Y * np.log(a)) / N
    if name == "binary_cross_entropy":  # −(1/N) Σ [y log a + (1 − y) log(1 − a)]
        return -np.sum(Y * np.log(a) + (1.0 - Y) * np.log(1.0 - a)) / N
    raise ValueError(f"unknown loss {name!r}")


def loss_prime(name, a, Y):
    """dL/da."""
    N = len(Y)
    if name == "mse":
        return 2.0 * (a - Y) / N
    if name == "cross_entropy":
        return -Y / (N * a)
    if name == "binary_cross_entropy":
        return (a - Y) / (N * a * (1.0 - a))
    raise ValueError(f"unknown loss {name!r}")


class ArticleNumpy:
    name = "article-numpy"
    sigma = SIGMA
    sigma_prime = SIGMA_PRIME

    def through(self, activation, z, a, dA):
        """dZ = dA ⊙ σ'(z); for softmax, its Jacobian-vector product."""
        if activation == "softmax":
            return a * (dA - np.sum(dA * a, axis=1, keepdims=True))
        return dA * self.sigma_prime[activation](z)

    def loss_and_gradients(self, arch, params, X, Y):
        # forward: Z(l) = A(l-1) W(l)ᵀ + b(l), A(l) = σ(Z(l)); cache z and a per layer
        zs, As = [], [X]
        for (W, b), activation in zip(params, arch.activations):
            z = As[-1] @ W.T + b
            zs.append(z)
            As.append(softmax(z) if activation == "softmax" else self.sigma[activation](z))
        L = len(params)
        a = As[-1]
        dZ = self.through(arch.activations[-1], zs[-1], a, loss_prime(arch.loss, a, Y))
        grads = [None] * L
        for l in reversed(range(L)):
            W, b = params[l]
            dW = dZ.T @ As[l]                   # dW = dZᵀ·A_prev
            db = dZ.T @ np.ones(len(X))         # db = dZᵀ·1
            grads[l] = (dW, db)
            if l > 0:
                dA = dZ @ W                     # dA_prev = dZ·W
                dZ = self.through(arch.activations[l - 1], zs[l - 1], As[l], dA)  # dZ_prev = dA_prev ⊙ σ'(Z_prev)
        return float(loss(arch.loss, a, Y)), grads


class ArticleNumpyWrongTanh(ArticleNumpy):
    """The bug: tanh'(z) = 1 − z² (z where tanh z belongs)."""

    name = "article-numpy (bug: tanh' = 1 - z^2)"
    sigma_prime = {**SIGMA_PRIME, "tanh": lambda z: 1.0 - z**2}
