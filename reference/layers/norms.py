"""layer_norm, batch_norm and group_norm: standardize x over some axes, then a per-feature affine.

Each norm is the same two steps over different axes (biased variance, as torch):

    standardize:  x_hat = (x - mu) / sqrt(var + eps)        mu, var over the normalized axes
                  dx = (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)) / sqrt(var + eps)
    affine:       y = x_hat * weight + bias
                  dx_hat = dy * weight    dweight = sum dy * x_hat    dbias = sum dy   (sums over the other axes)

- layer_norm:  normalizes the trailing axes of shape normalized_shape; weight and bias have that shape.
- batch_norm:  x (N, C, *spatial): statistics per channel over N and the spatial axes; weight, bias (C,).
- group_norm:  x (N, C, *spatial) viewed as (N, G, C/G * spatial): statistics per (n, g); weight, bias (C,).

The cache holds x_hat, 1 / sqrt(var + eps) (with the normalized axes kept), weight and what the
layer needs to find its axes again.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "batch_norm_backward", "batch_norm_forward", "group_norm_backward", "group_norm_forward",
    "layer_norm_backward", "layer_norm_forward",
]


def _standardize(x, axes, eps):
    """x_hat = (x - mu) / sqrt(var + eps) over ``axes``; returns x_hat and 1 / sqrt(var + eps)."""
    mu = x.mean(axis=axes, keepdims=True)
    centered = x - mu
    var = (centered * centered).mean(axis=axes, keepdims=True)  # biased: divides by the count
    inv_std = 1.0 / np.sqrt(var + eps)
    return centered * inv_std, inv_std


def _standardize_backward(dx_hat, x_hat, inv_std, axes):
    """dx = (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)) / sqrt(var + eps), means over ``axes``."""
    through_mu = dx_hat.mean(axis=axes, keepdims=True)              # the path through mu
    through_var = (dx_hat * x_hat).mean(axis=axes, keepdims=True)   # the path through var
    return (dx_hat - through_mu - x_hat * through_var) * inv_std


def _affine_backward(dy, x_hat, weight, axes):
    """y = x_hat * weight + bias, weight broadcast over ``axes``: (dx_hat, dweight, dbias)."""
    dx_hat = dy * weight                     # dx_hat = dy * gamma
    dweight = (dy * x_hat).sum(axis=axes)    # dgamma = sum dy * x_hat
    dbias = dy.sum(axis=axes)                # dbeta = sum dy
    return dx_hat, dweight, dbias


def _per_channel(param, ndim):
    """A (C,) parameter shaped (C, 1, ...) to broadcast over x (N, C, *spatial)."""
    return param.reshape((-1,) + (1,) * (ndim - 2))


def _all_but_channels(ndim):
    """The axes of x (N, C, *spatial) other than C."""
    return (0, *range(2, ndim))


def layer_norm_forward(config, x, weight, bias):
    shape = config["normalized_shape"]
    count = 1 if isinstance(shape, int) else len(shape)
    axes = tuple(range(x.ndim - count, x.ndim))  # the trailing axes, of shape normalized_shape
    x_hat, inv_std = _standardize(x, axes, config["eps"])
    return x_hat * weight + bias, (x_hat, inv_std, weight, axes)


def layer_norm_backward(dy, cache):
    x_hat, inv_std, weight, axes = cache
    batch_axes = tuple(range(dy.ndim - len(axes)))  # the leading axes, over which weight is shared
    dx_hat, dweight, dbias = _affine_backward(dy, x_hat, weight, batch_axes)
    return {"x": _standardize_backward(dx_hat, x_hat, inv_std, axes), "weight": dweight, "bias": dbias}


def batch_norm_forward(config, x, weight, bias):
    axes = _all_but_channels(x.ndim)
    x_hat, inv_std = _standardize(x, axes, config["eps"])
    return x_hat * _per_channel(weight, x.ndim) + _per_channel(bias, x.ndim), (x_hat, inv_std, weight)


def batch_norm_backward(dy, cache):
    x_hat, inv_std, weight = cache
    axes = _all_but_channels(dy.ndim)
    dx_hat, dweight, dbias = _affine_backward(dy, x_hat, _per_channel(weight, dy.ndim), axes)
    return {"x": _standardize_backward(dx_hat, x_hat, inv_std, axes), "weight": dweight, "bias": dbias}


def group_norm_forward(config, x, weight, bias):
    groups = x.reshape(x.shape[0], config["num_groups"], -1)  # (N, G, C/G * spatial)
    g_hat, inv_std = _standardize(groups, 2, config["eps"])
    x_hat = g_hat.reshape(x.shape)
    return x_hat * _per_channel(weight, x.ndim) + _per_channel(bias, x.ndim), (x_hat, inv_std, weight)


def group_norm_backward(dy, cache):
    x_hat, inv_std, weight = cache
    dx_hat, dweight, dbias = _affine_backward(dy, x_hat, _per_channel(weight, dy.ndim), _all_but_channels(dy.ndim))
    by_group = (*inv_std.shape[:2], -1)  # (N, G, C/G * spatial)
    dx = _standardize_backward(dx_hat.reshape(by_group), x_hat.reshape(by_group), inv_std, 2)
    return {"x": dx.reshape(dy.shape), "weight": dweight, "bias": dbias}
