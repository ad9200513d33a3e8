"""The article's formulas in numpy float32: what a reader of the article writes for a float32 net.

The inputs are cast to float32 once; every array after that stays float32 (constants are float32
scalars, so nothing is promoted back to float64) and the gradients come back as float32 arrays.
The formulas are article_numpy's: no stability tricks, σ(z) = 1/(1 + e^−z), softplus =
log(1 + e^z), the losses from the output activation a, the four steps of the backward pass.

At the kinks it takes the derivative of the z ≤ 0 branch: relu'(0) = 0, leaky_relu'(0) = 0.01.

    chainrule check tests.gallery.article_float32:ArticleFloat32
"""

import numpy as np
from scipy.special import erf

__all__ = ["ArticleFloat32", "ArticleFloat32WrongSigmoid"]

f32 = np.float32
ONE, HALF, TWO = f32(1.0), f32(0.5), f32(2.0)
SLOPE = f32(0.01)
SQRT2 = f32(np.sqrt(2.0))
SQRT_2PI = f32(np.sqrt(2.0 * np.pi))


def sigmoid(z):
    return ONE / (ONE + np.exp(-z))


def Phi(z):
    """The standard normal CDF (scipy's erf keeps float32 in, float32 out)."""
    return HALF * (ONE + erf(z / SQRT2))


def phi(z):
    """The standard normal density."""
    return np.exp(-HALF * z * z) / SQRT_2PI


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# σ for every activation but softmax, and σ' beside it
SIGMA = {
    "identity": lambda z: z,
    "relu": lambda z: np.maximum(z, f32(0)),
    "leaky_relu": lambda z: np.where(z > 0, z, SLOPE * z),
    "sigmoid": sigmoid,
    "tanh": np.tanh,
    "softplus": lambda z: np.log(ONE + np.exp(z)),
    "elu": lambda z: np.where(z > 0, z, np.exp(z) - ONE),
    "gelu": lambda z: z * Phi(z),
    "silu": lambda z: z * sigmoid(z),
}
SIGMA_PRIME = {
    "identity": lambda z: np.ones_like(z),
    "relu": lambda z: np.where(z > 0, ONE, f32(0)),
    "leaky_relu": lambda z: np.where(z > 0, ONE, SLOPE),
    "sigmoid": lambda z: sigmoid(z) * (ONE - sigmoid(z)),
    "tanh": lambda z: ONE - np.tanh(z) ** 2,
    "softplus": sigmoid,
    "elu": lambda z: np.where(z > 0, ONE, np.exp(z)),
    "gelu": lambda z: Phi(z) + z * phi(z),
    "silu": lambda z: sigmoid(z) * (ONE + z * (ONE - sigmoid(z))),
}


def loss(name, a, Y):
    N = f32(len(Y))
    if name == "mse":  # (1/N) Σ ‖a − y‖²
        return np.sum((a - Y) ** 2) / N
    if name == "cross_entropy":  # −(1/N) Σ y log a
        return -np.sum(Y * np.log(a)) / N
    if name == "binary_cross_entropy":  # −(1/N) Σ [y log a + (1 − y) log(1 − a)]
        return -np.sum(Y * np.log(a) + (ONE - Y) * np.log(ONE - a)) / N
    raise ValueError(f"unknown loss {name!r}")


def loss_prime(name, a, Y):
    """dL/da."""
    N = f32(len(Y))
    if name == "mse":
        return TWO * (a - Y) / N
    if name == "cross_entropy":
        return -Y / (N * a)
    if name == "binary_cross_entropy":
        return (a - Y) / (N * a * (ONE - a))
    raise ValueError(f"unknown loss {name!r}")


class ArticleFloat32:
    name = "article-float32"
    precision = "float32"
    sigma_prime = SIGMA_PRIME

    def through(self, activation, z, a, dA):
        """dZ = dA ⊙ σ'(z); for softmax, its Jacobian-vector product."""
        if activation == "softmax":
            return a * (dA - np.sum(dA * a, axis=1, keepdims=True))
        return dA * self.sigma_prime[activation](z)

    def loss_and_gradients(self, arch, params, X, Y):
        X, Y = X.astype(f32), Y.astype(f32)
        params = [(W.astype(f32), b.astype(f32)) for W, b in params]
        # forward: Z(l) = A(l-1) W(l)ᵀ + b(l), A(l) = σ(Z(l)); cache z and a per layer
        zs, As = [], [X]
        for (W, b), activation in zip(params, arch.activations):
            z = As[-1] @ W.T + b
            zs.append(z)
            As.append(softmax(z) if activation == "softmax" else SIGMA[activation](z))
        L = len(params)
        a = As[-1]
        dZ = self.through(arch.activations[-1], zs[-1], a, loss_prime(arch.loss, a, Y))
        grads = [None] * L
        for l in reversed(range(L)):
            W, b = params[l]
            dW = dZ.T @ As[l]                          # dW = dZᵀ·A_prev
            db = dZ.T @ np.ones(len(X), dtype=f32)     # db = dZᵀ·1
            grads[l] = (dW, db)
            if l > 0:
                dA = dZ @ W                            # dA_prev = dZ·W
                dZ = self.through(arch.activations[l - 1], zs[l - 1], As[l], dA)  # dZ_prev = dA_prev ⊙ σ'(Z_prev)
        return float(loss(arch.loss, a, Y)), grads


class ArticleFloat32WrongSigmoid(ArticleFloat32):
    """The bug: sigmoid'(z) = σ(z)(1 − z) (z where σ(z) belongs in the second factor)."""

    name = "article-float32 (bug: sigmoid' = s(1 - z))"
    sigma_prime = {**SIGMA_PRIME, "sigmoid": lambda z: sigmoid(z) * (ONE - z)}
