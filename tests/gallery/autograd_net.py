"""The contract's network as a user of HIPS autograd writes it: the forward pass and the loss in
``autograd.numpy``, the gradients from ``value_and_grad``. The library's own functions where it
has them (``expit``, ``erf``, ``logsumexp`` from ``autograd.scipy.special``; cross-entropy from
log-softmax, as autograd's own examples/neural_net.py does), the formula plainly where it has not.

relu is ``np.maximum(z, 0)``, which autograd differentiates as 0.5 at a tie: declared below.

    chainrule check tests.gallery.autograd_net:AutogradNet
"""

import autograd.numpy as np
import numpy as onp
from autograd import value_and_grad
from autograd.extend import defvjp, primitive
from autograd.scipy.special import erf, expit, logsumexp

__all__ = ["AutogradNet", "AutogradNetWrongSoftplus"]


def log_softmax(z):
    return z - logsumexp(z, axis=1, keepdims=True)


ACTIVATIONS = {
    "identity": lambda z: z,
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "sigmoid": expit,
    "tanh": np.tanh,
    "softplus": lambda z: np.log(1.0 + np.exp(z)),
    "elu": lambda z: np.where(z > 0, z, np.exp(z) - 1.0),
    "gelu": lambda z: 0.5 * z * (1.0 + erf(z / np.sqrt(2.0))),
    "silu": lambda z: z * expit(z),
    "softmax": lambda z: np.exp(log_softmax(z)),
}


class AutogradNet:
    name = "autograd"
    kink_derivatives = {"relu": 0.5}  # np.maximum(z, 0) splits the gradient at a tie
    sigma = ACTIVATIONS

    def loss_and_gradients(self, arch, params, X, Y):
        N = X.shape[0]

        def objective(params):
            a = X
            for (W, b), activation in zip(params, arch.activations):
                z = np.dot(a, W.T) + b
                a = self.sigma[activation](z)
            if arch.loss == "mse":
                return np.sum((a - Y) ** 2) / N
            if arch.loss == "cross_entropy":  # from the logits, through log-softmax
                return -np.sum(Y * log_softmax(z)) / N
            if arch.loss == "binary_cross_entropy":
                return -np.sum(Y * np.log(a) + (1 - Y) * np.log(1 - a)) / N
            raise ValueError(f"unknown loss {arch.loss!r}")

        loss, grads = value_and_grad(objective)(params)
        return float(loss), grads


@primitive
def softplus(z):
    return onp.log(1.0 + onp.exp(z))


# The bug: softplus' is sigmoid(z); this vjp multiplies by softplus(z) itself.
defvjp(softplus, lambda ans, z: lambda g: g * ans)


class AutogradNetWrongSoftplus(AutogradNet):
    """The bug: softplus as a primitive whose hand-written vjp is g · softplus(z)."""

    name = "autograd (bug: softplus' = softplus)"
    sigma = {**ACTIVATIONS, "softplus": softplus}
