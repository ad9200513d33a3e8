"""max_pool2d and avg_pool2d: F.max_pool2d / F.avg_pool2d with ceil_mode False and dilation 1.

x (N, C, H, W); a kernel (kh, kw) placed every (sh, sw) (stride None: the kernel) over x padded by
(ph, pw) on each side, with -inf for max (padding never wins), zeros for avg. With the windows of the
padded x (reference/layers/windows.py), W[n, c, k, o] = tap k of window o:

    max:  y[o] = W[k*(o), o],  k*(o) = argmax_k W[k, o]   the first maximum in row-major window order
          dx   = dy[o] sent to tap k*(o) of window o, scattered back (overlapping windows add up)
    avg:  y[o] = sum_k W[k, o] / D[o]                    D = kh kw (count_include_pad), else the window's real entries
          dx   = dy[o] / D[o] sent to every tap of window o, scattered back

The max is selected by np.argmax and gathered by np.take_along_axis, never by comparing floats, so
that it stays exact under perturbed arithmetic (chainrule/layers/floors.py) and its ties follow the
contract's rule. ``max_pool2d_dx`` gives the gradient under the other tie rules a source may declare.
"""

from __future__ import annotations

import numpy as np

from chainrule.layers.contract import TIE_RULES

from .windows import pad, per_axis, scatter, windows

__all__ = ["avg_pool2d_backward", "avg_pool2d_forward", "max_pool2d_backward", "max_pool2d_dx", "max_pool2d_forward"]

_DILATION = (1, 1)


def _geometry(config, shape):
    """(kernel, stride, padding, the padded spatial shape), each per spatial axis."""
    kernel = per_axis(config["kernel_size"], 2)
    stride = kernel if config["stride"] is None else per_axis(config["stride"], 2)
    padding = per_axis(config["padding"], 2)
    return kernel, stride, padding, tuple(n + 2 * p for n, p in zip(shape[2:], padding))


def _max_windows(config, x):
    """The windows (N, C, kh kw, *O) of x padded with -inf, and the geometry."""
    kernel, stride, padding, padded = _geometry(config, x.shape)
    return windows(pad(x, padding, padding, -np.inf), kernel, stride, _DILATION), (kernel, stride, padding, padded)


def _scatter_back(dwindows, geometry):
    """The window entries' gradients added back to x, the padding cropped."""
    kernel, stride, padding, padded = geometry
    return pad(scatter(dwindows, padded, kernel, stride, _DILATION), [-p for p in padding], [-p for p in padding])


def _one_hot(tap, taps):
    """(N, C, taps, *O) bool from tap (N, C, *O): True at the chosen tap of each window (an integer comparison)."""
    return np.arange(taps).reshape(-1, 1, 1) == tap[:, :, None]


def _first(w):
    return _one_hot(np.argmax(w, axis=2), w.shape[2])  # np.argmax: the first maximum


def _last(w):
    return _one_hot(w.shape[2] - 1 - np.argmax(w[:, :, ::-1], axis=2), w.shape[2])  # the first from the end


def _split(w):
    tied = w == w.max(axis=2, keepdims=True)
    return tied / tied.sum(axis=2, keepdims=True)  # equal shares among the maxima


_SHARES = dict(zip(TIE_RULES, (_first, _last, _split)))  # each window entry's share of the window's dy


def max_pool2d_forward(config, x):
    w, geometry = _max_windows(config, x)
    tap = np.argmax(w, axis=2)  # the first maximum of each window in row-major order: the contract's tie rule
    y = np.take_along_axis(w, tap[:, :, None], axis=2)[:, :, 0]
    return y, (_one_hot(tap, w.shape[2]), geometry)


def max_pool2d_backward(dy, cache):
    chosen, geometry = cache
    return {"x": _scatter_back(dy[:, :, None] * chosen, geometry)}  # dy of each window to its first maximum


def max_pool2d_dx(config, x, dy, rule):
    """The gradient for x of <max_pool2d(x), dy> when a tied window's dy goes to its "first" maximum
    (row-major window order; the contract's rule and the VJP's), its "last", or is "split" equally among
    its maxima. Plain numpy: it compares floats, so it is never run under perturbed arithmetic."""
    w, geometry = _max_windows(config, x)
    return _scatter_back(dy[:, :, None] * _SHARES[rule](w), geometry)


def _divisor(config, x_shape, geometry):
    """D[o]: the kernel's area, or (count_include_pad False) the count of real entries in window o."""
    kernel, stride, padding, padded = geometry
    if config["count_include_pad"]:
        return kernel[0] * kernel[1]
    real = pad(np.ones((1, 1, *x_shape[2:])), padding, padding)  # 1 on x, 0 on the padding
    return windows(real, kernel, stride, _DILATION).sum(axis=2)   # (1, 1, *O), plain constants


def avg_pool2d_forward(config, x):
    kernel, stride, padding, padded = geometry = _geometry(config, x.shape)
    divisor = _divisor(config, x.shape, geometry)
    return windows(pad(x, padding, padding), kernel, stride, _DILATION).sum(axis=2) / divisor, (divisor, geometry)


def avg_pool2d_backward(dy, cache):
    divisor, geometry = cache
    return {"x": _scatter_back((dy / divisor)[:, :, None], geometry)}  # dy / D to every tap of its window
