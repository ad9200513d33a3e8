"""A layer source as docs/layers.md describes it: linear, relu, softmax and layer_norm in numpy,
each backward the chain rule of its forward. ``WrongSoftmax`` keeps only the diagonal of the
softmax Jacobian, the classic mistake.

    chainrule check layers:Layers                 # exit 0
    chainrule check layers:WrongSoftmax           # exit 1, the smallest case and the wrong gradient
"""

import numpy as np


class Layers:
    name = "example-layers"
    layers = ("linear", "relu", "softmax", "layer_norm")
    layer_configs = {"layer_norm": {"normalized_shape": [[1], [2], [3], [4]]}}  # over the last axis only, up to 4 features

    def vjp(self, layer, config, inputs, dy):
        return getattr(self, layer)(config, dy, **inputs)

    def linear(self, config, dy, x, weight, bias):
        return x @ weight.T + bias, {"x": dy @ weight, "weight": dy.T @ x, "bias": dy.sum(axis=0)}

    def relu(self, config, dy, x):
        return np.maximum(x, 0.0), {"x": dy * (x > 0)}

    def softmax(self, config, dy, x):
        axis = config["axis"]
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        s = e / e.sum(axis=axis, keepdims=True)
        return s, {"x": self.softmax_backward(s, dy, axis)}

    def softmax_backward(self, s, dy, axis):
        return s * (dy - (dy * s).sum(axis=axis, keepdims=True))

    def layer_norm(self, config, dy, x, weight, bias):
        mean = x.mean(axis=-1, keepdims=True)
        inv_std = 1.0 / np.sqrt(x.var(axis=-1, keepdims=True) + config["eps"])
        xhat = (x - mean) * inv_std
        dxhat = dy * weight
        dx = inv_std * (dxhat - dxhat.mean(axis=-1, keepdims=True) - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
        rows = tuple(range(x.ndim - 1))
        return xhat * weight + bias, {"x": dx, "weight": (dy * xhat).sum(axis=rows), "bias": dy.sum(axis=rows)}


class WrongSoftmax(Layers):
    name = "example-layers (bug: softmax diagonal only)"

    def softmax_backward(self, s, dy, axis):
        return dy * s * (1.0 - s)
