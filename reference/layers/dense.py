"""The dense layers: linear, and the elementwise activations of the network contract.

Rows of x are examples, as in the article.

    linear:       y = x weight^T + bias    dx = dy weight    dweight = dy^T x    dbias = dy^T 1
    elementwise:  y = sigma(x)             dx = dy * sigma'(x)     (ACTIVATIONS' pairs and kink conventions)
    identity:     y = x                    dx = dy                 (copies: a layer never returns its input)

The cache of linear is (x, weight); that of an elementwise layer is x.
"""

from __future__ import annotations

from ..activations import ACTIVATIONS

__all__ = ["elementwise", "identity_backward", "identity_forward", "linear_backward", "linear_forward"]


def linear_forward(config, x, weight, bias):
    """y = x weight^T + bias."""
    return x @ weight.T + bias, (x, weight)


def linear_backward(dy, cache):
    """The article's three steps for one dense layer."""
    x, weight = cache
    return {
        "x": dy @ weight,         # dA(l-1) = dZ(l) W(l)
        "weight": dy.T @ x,       # dW(l) = dZ(l)^T A(l-1)
        "bias": dy.sum(axis=0),   # db(l) = dZ(l)^T 1
    }


def identity_forward(config, x):
    return x.copy(), None


def identity_backward(dy, cache):
    return {"x": dy.copy()}


def elementwise(name: str):
    """(forward, backward) of the elementwise layer ``name``, from its (sigma, sigma') in ACTIVATIONS."""
    activation = ACTIVATIONS[name]

    def forward(config, x):
        return activation.sigma(x), x

    def backward(dy, x):
        return {"x": dy * activation.sigma_prime(x)}  # dx = dy * sigma'(x)

    return forward, backward
