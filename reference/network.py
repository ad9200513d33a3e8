"""Forward and backward passes of a dense network, in the article's matrix form.

Rows are examples (k), columns are neurons (j). For layer l = 1..L:

    forward:   Z(l) = A(l-1) W(l)^T + b(l)        A(l) = sigma(Z(l))         A(0) = X
    backward:  dZ(L) from the loss, then for l = L..1:
               dW(l)     = dZ(l)^T A(l-1)
               db(l)     = dZ(l)^T 1
               dA(l-1)   = dZ(l) W(l)
               dZ(l-1)   = dA(l-1) * sigma'(Z(l-1))

The network is a composition of chainrule.reference.layers: Z(l) and its three gradients are the
``linear`` layer's forward and VJP, A(l) and dZ(l-1) the activation layer's (hidden activations are
elementwise); dZ(L) comes from the network contract's loss (reference/losses.py).
Everything is vectorised over the batch; there is no loop over examples or neurons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chainrule.layers.contract import full_config

from .activations import ACTIVATIONS
from .architecture import Architecture
from .layers import PAIRS
from .layers import vjp as layer_vjp
from .losses import LOSSES

__all__ = ["Layer", "Gradients", "forward", "backward", "update", "Reference"]

Params = list[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Layer:
    """What the forward pass caches for one layer: pre-activation z and activation a."""

    z: np.ndarray
    a: np.ndarray


@dataclass(frozen=True)
class Gradients:
    """The loss, (dL/dW, dL/db) per layer, and dL/dX."""

    loss: float
    grads: Params
    dX: np.ndarray


def forward(arch: Architecture, params: Params, X: np.ndarray) -> list[Layer]:
    """Z(l) = A(l-1) W(l)^T + b(l), A(l) = sigma(Z(l)); returns the cache, one Layer per layer."""
    cache = []
    a = X
    for (W, b), name in zip(params, arch.activations):
        z, _ = PAIRS["linear"].forward({}, x=a, weight=W, bias=b)   # Z(l) = A(l-1) W(l)^T + b(l)
        a, _ = PAIRS[name].forward(full_config(name, {}), x=z)       # A(l) = sigma(Z(l))
        cache.append(Layer(z, a))
    return cache


def backward(arch: Architecture, params: Params, X: np.ndarray, Y: np.ndarray, cache: list[Layer]) -> Gradients:
    """The chain rule, layer by layer from the output back to the input."""
    output = cache[-1]
    loss = LOSSES[arch.loss]
    dZ = loss.output_dZ(output.z, output.a, Y, ACTIVATIONS[arch.activations[-1]])
    grads: Params = []
    for l in reversed(range(arch.depth)):
        A_prev = cache[l - 1].a if l > 0 else X
        linear = PAIRS["linear"].backward(dZ, (A_prev, params[l][0]))  # linear's cache: (x, weight)
        dW = linear["weight"]                   # dW(l) = dZ(l)^T A(l-1)
        db = linear["bias"]                     # db(l) = dZ(l)^T 1
        dA_prev = linear["x"]                   # dA(l-1) = dZ(l) W(l)
        grads.append((dW, db))
        if l > 0:                               # dZ(l-1) = dA(l-1) * sigma'(Z(l-1)); an elementwise layer's cache is Z
            dZ = PAIRS[arch.activations[l - 1]].backward(dA_prev, cache[l - 1].z)["x"]
    grads.reverse()
    return Gradients(loss.value(output.z, output.a, Y), grads, dA_prev)


def update(params: Params, grads: Params, alpha: float) -> Params:
    """One gradient-descent step: theta <- theta - alpha dL/dtheta (new arrays)."""
    return [(W - alpha * dW, b - alpha * db) for (W, b), (dW, db) in zip(params, grads)]


class Reference:
    """The from-scratch reference, as a contract object: networks (docs/contract.md) and layers (docs/layers.md)."""

    name = "reference"

    def gradients(self, arch, params, X, Y) -> Gradients:
        arch = arch if isinstance(arch, Architecture) else Architecture(arch.sizes, arch.activations, arch.loss)
        return backward(arch, params, X, Y, forward(arch, params, X))

    def loss_and_gradients(self, arch, params, X, Y) -> tuple[float, Params]:
        result = self.gradients(arch, params, X, Y)
        return result.loss, result.grads

    def vjp(self, layer: str, config: dict, inputs: dict[str, np.ndarray], dy: np.ndarray):
        """(y, grads) of one layer: chainrule.reference.layers.vjp, the config's defaults filled in."""
        return layer_vjp(layer, full_config(layer, config), inputs, dy)
