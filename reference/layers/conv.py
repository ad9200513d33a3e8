"""conv1d and conv2d (one implementation for any number of spatial axes): F.conv*d's cross-correlation.

x (N, C_in, *L), weight (C_out, C_in/G, *K), bias (C_out,); per spatial axis a stride s, a zero
padding p and a dilation d; G groups, output channel group g seeing only input channel group g.
With the windows of the padded x as columns (reference/layers/windows.py), each group is a matrix
product, and its VJP two more:

    y[n, g]  = W[g] X[n, g] + b        W[g] (C_out/G, C_in/G * prod K), X[n, g] (C_in/G * prod K, prod O)
    dW[g]    = sum_n dy[n, g] X[n, g]^T          db = dy summed over N and the spatial axes
    dx       = the transposed convolution of dy:
               dy dilated by s (s - 1 zeros between neighbours), padded by d (K - 1) - p on each side
               (plus, after, the r = (L + 2p - d (K - 1) - 1) mod s entries the forward never reached;
               a negative pad, where p > d (K - 1), crops),
               correlated (stride 1, dilation d) with W flipped in every spatial axis, its in and out
               channels swapped within each group.

Why the flip: x[i] met W[k] in y[o] wherever i = o s + k d - p, so dx[i] = sum_k dy[(i + p - k d) / s] W[k];
the taps run backwards over the dilated dy, i.e. forwards over the flipped kernel.
The cache is (X, weight, x's shape, stride, padding, dilation).
"""

from __future__ import annotations

import numpy as np

from .windows import pad, per_axis, windows

__all__ = ["conv_backward", "conv_forward"]


def _geometry(config, rank):
    return tuple(per_axis(config[key], rank) for key in ("stride", "padding", "dilation"))


def _dilate(dy, stride):
    """dy (N, C, *O) with s - 1 zeros between neighbours along each spatial axis: (N, C, *((O - 1) s + 1))."""
    shape = (*dy.shape[:2], *((o - 1) * s + 1 for o, s in zip(dy.shape[2:], stride)))
    dilated = np.zeros_like(dy, shape=shape)  # dy's array type
    dilated[(slice(None), slice(None), *(slice(None, None, s) for s in stride))] = dy
    return dilated


def _flipped(weight, groups):
    """weight (C_out, C_in/G, *K) as G matrices (C_in/G, C_out/G * prod K): every spatial axis reversed,
    in and out channels swapped within each group."""
    c_out, c_in_group, *kernel = weight.shape
    per_group = weight.reshape(groups, c_out // groups, c_in_group, *kernel)
    reversed_taps = per_group[(Ellipsis, *(slice(None, None, -1),) * len(kernel))]
    return reversed_taps.swapaxes(1, 2).reshape(groups, c_in_group, -1)


def conv_forward(config, x, weight, bias):
    """y = the cross-correlation of the zero-padded x with weight, per group, plus bias."""
    n, groups, rank = x.shape[0], config["groups"], x.ndim - 2
    stride, padding, dilation = _geometry(config, rank)
    kernel = weight.shape[2:]
    columns = windows(pad(x, padding, padding), kernel, stride, dilation)  # (N, C_in, prod K, *O)
    out = columns.shape[3:]
    columns = columns.reshape(n, groups, -1, int(np.prod(out)))  # X[n, g]: (C_in/G * prod K, prod O)
    y = weight.reshape(groups, weight.shape[0] // groups, -1) @ columns  # W[g] X[n, g]: (N, G, C_out/G, prod O)
    y = y.reshape(n, weight.shape[0], *out) + bias.reshape(-1, *(1,) * rank)
    return y, (columns, weight, x.shape, stride, padding, dilation)


def conv_backward(dy, cache):
    columns, weight, x_shape, stride, padding, dilation = cache
    n, groups, rank = dy.shape[0], columns.shape[1], dy.ndim - 2
    kernel = weight.shape[2:]
    dy_groups = dy.reshape(n, groups, weight.shape[0] // groups, -1)  # (N, G, C_out/G, prod O)
    dweight = (dy_groups @ columns.swapaxes(-1, -2)).sum(axis=0)      # dW[g] = sum_n dy[n, g] X[n, g]^T
    dbias = dy.sum(axis=(0, *range(2, dy.ndim)))                      # db = dy summed over N and space
    reached = [(l + 2 * p - d * (k - 1) - 1) % s for l, p, d, k, s in zip(x_shape[2:], padding, dilation, kernel, stride)]
    before = [d * (k - 1) - p for d, k, p in zip(dilation, kernel, padding)]
    spread = pad(_dilate(dy, stride), before, [b + r for b, r in zip(before, reached)])  # dilated by s, padded
    dy_columns = windows(spread, kernel, (1,) * rank, dilation).reshape(n, groups, -1, int(np.prod(x_shape[2:])))
    dx = _flipped(weight, groups) @ dy_columns                        # correlated with the flipped kernel
    return {"x": dx.reshape(x_shape), "weight": dweight.reshape(weight.shape), "bias": dbias}
