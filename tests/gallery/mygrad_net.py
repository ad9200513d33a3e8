"""The contract's network as a user of mygrad writes it: parameters as ``mygrad.Tensor``, the
forward pass and the loss in mygrad, ``loss.backward()``, gradients from ``.grad``. The library's
own functions where it has them (``mygrad.nnet``'s relu, sigmoid, tanh, elu, softmax and
logsoftmax for cross-entropy from the logits), the formula plainly where it has not.

mygrad has no erf, so gelu is a mygrad ``Operation`` of its own (forward and backward_var),
the way mygrad's documentation shows to add one.

leaky_relu is written with ``mg.where``: ``mygrad.nnet.leaky_relu`` is max(z, 0) + slope·min(z, 0),
and mygrad's max and min both send a tie's gradient nowhere, so its derivative at 0 is 0, outside
the subdifferential [0.01, 1] the contract allows.

    chainrule check tests.gallery.mygrad_net:MygradNet
"""

import math

import mygrad as mg
import numpy as np
from mygrad.nnet import elu, logsoftmax, relu, sigmoid, softmax, tanh
from mygrad.operation_base import Operation
from scipy.special import erf

__all__ = ["MygradNet", "MygradNetWrongGelu"]


class GELU(Operation):
    """gelu(z) = z Φ(z), Φ(z) = (1 + erf(z/√2)) / 2; gelu'(z) = Φ(z) + z φ(z)."""

    def __call__(self, z):
        self.variables = (z,)
        x = z.data
        self.cdf = 0.5 * (1.0 + erf(x / math.sqrt(2.0)))
        return x * self.cdf

    def backward_var(self, grad, index, **kwargs):
        x = self.variables[index].data
        return grad * (self.cdf + x * np.exp(-0.5 * x**2) / math.sqrt(2.0 * math.pi))


class GELUForgettingTheDensity(GELU):
    """The bug: gelu'(z) = Φ(z), the product rule's z φ(z) term left out."""

    def backward_var(self, grad, index, **kwargs):
        return grad * self.cdf


class MygradNet:
    name = "mygrad"
    gelu = GELU

    def activate(self, activation, z):
        if activation == "identity":
            return z
        if activation == "relu":
            return relu(z)
        if activation == "leaky_relu":
            return mg.where(z > 0, z, 0.01 * z)
        if activation == "sigmoid":
            return sigmoid(z)
        if activation == "tanh":
            return tanh(z)
        if activation == "softplus":
            return mg.log1p(mg.exp(z))
        if activation == "elu":
            return elu(z, alpha=1.0)
        if activation == "gelu":
            return mg.Tensor._op(self.gelu, z)
        if activation == "silu":
            return z * sigmoid(z)
        if activation == "softmax":
            return softmax(z)
        raise ValueError(f"unknown activation {activation!r}")

    def loss_and_gradients(self, arch, params, X, Y):
        N = len(X)
        tensors = [(mg.tensor(W), mg.tensor(b)) for W, b in params]
        a = X
        for (W, b), activation in zip(tensors, arch.activations):
            z = mg.matmul(a, W.T) + b
            a = self.activate(activation, z)
        if arch.loss == "mse":
            loss = mg.sum((a - Y) ** 2) / N
        elif arch.loss == "cross_entropy":  # from the logits, through log-softmax
            loss = -mg.sum(Y * logsoftmax(z)) / N
        elif arch.loss == "binary_cross_entropy":
            loss = -mg.sum(Y * mg.log(a) + (1 - Y) * mg.log(1 - a)) / N
        else:
            raise ValueError(f"unknown loss {arch.loss!r}")
        loss.backward()
        return loss.item(), [(W.grad, b.grad) for W, b in tensors]


class MygradNetWrongGelu(MygradNet):
    """The bug: gelu's backward_var forgets the z φ(z) term."""

    name = "mygrad (bug: gelu' = Phi)"
    gelu = GELUForgettingTheDensity
