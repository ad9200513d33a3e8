"""HIPS autograd with sigmoid written as autograd's README writes it (its logistic regression):
``0.5 * (np.tanh(z / 2) + 1)``; silu and binary cross-entropy built on that sigmoid
(``z * sigmoid(z)``; ``-(Y log a + (1 - Y) log(1 - a))`` of the sigmoid output a). The rest as
tests/gallery/autograd_net.py: relu as ``np.maximum(z, 0)`` (autograd's 0.5 at a tie: declared
there), cross-entropy through log-softmax.

    chainrule check tests.gallery.autograd_tanh_sigmoid:AutogradTanhSigmoid
    chainrule check tests.gallery.autograd_tanh_sigmoid:AutogradTanhSigmoidWrongSigmoid
"""

import autograd.numpy as np
import numpy as onp
from autograd.extend import defvjp, primitive

from tests.gallery.autograd_net import ACTIVATIONS, AutogradNet

__all__ = ["AutogradTanhSigmoid", "AutogradTanhSigmoidWrongSigmoid"]


def sigmoid(z):
    return 0.5 * (np.tanh(z / 2.0) + 1.0)


class AutogradTanhSigmoid(AutogradNet):
    name = "autograd-tanh-sigmoid"
    sigma = {**ACTIVATIONS, "sigmoid": sigmoid, "silu": lambda z: z * sigmoid(z)}


@primitive
def tanh_sigmoid(z):
    return 0.5 * (onp.tanh(z / 2.0) + 1.0)


# The bug: sigmoid'(z) = 0.5 (1 - tanh(z/2)^2) / 2; this vjp leaves out the inner 1/2 of z/2.
defvjp(tanh_sigmoid, lambda ans, z: lambda g: g * 0.5 * (1.0 - onp.tanh(z / 2.0) ** 2))


class AutogradTanhSigmoidWrongSigmoid(AutogradTanhSigmoid):
    """The bug: sigmoid as a primitive whose hand-written vjp is twice sigmoid' (the chain rule's
    factor 1/2 from tanh(z/2) left out)."""

    name = "autograd-tanh-sigmoid (bug: sigmoid' doubled)"
    sigma = {**AutogradTanhSigmoid.sigma, "sigmoid": tanh_sigmoid}
