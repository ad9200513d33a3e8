"""softmax and log_softmax over config["axis"]: any axis of an x of rank >= 1, negative from the end.

    softmax:      s = exp(x - max) / sum exp(x - max)      dx = s * (dy - sum(dy * s))
    log_softmax:  y = (x - max) - log sum exp(x - max)     dx = dy - softmax(x) * sum(dy)

Every sum runs over the axis and keeps it, so that it broadcasts back; subtracting the max keeps
exp from overflowing. The cache is (s, axis), resp. (y, axis): softmax(x) = exp(y).
"""

from __future__ import annotations

import numpy as np

__all__ = ["log_softmax", "log_softmax_backward", "log_softmax_forward", "softmax_backward", "softmax_forward"]


def log_softmax(x, axis):
    """log softmax(x) = (x - max) - log sum exp(x - max) over ``axis``."""
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax_forward(config, x):
    axis = config["axis"]
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    s = e / e.sum(axis=axis, keepdims=True)
    return s, (s, axis)


def softmax_backward(dy, cache):
    s, axis = cache
    return {"x": s * (dy - (dy * s).sum(axis=axis, keepdims=True))}  # dx = s * (dy - <dy, s>)


def log_softmax_forward(config, x):
    y = log_softmax(x, config["axis"])
    return y, (y, config["axis"])


def log_softmax_backward(dy, cache):
    y, axis = cache
    return {"x": dy - np.exp(y) * dy.sum(axis=axis, keepdims=True)}  # dx = dy - softmax * sum(dy)
