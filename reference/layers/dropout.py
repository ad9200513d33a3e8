"""dropout with a given mask (never drawn): the kept entries scaled by 1 / (1 - p).

    y = x * mask / (1 - p)        dx = dy * mask / (1 - p)

The cache is (mask, p).
"""

from __future__ import annotations

__all__ = ["dropout_backward", "dropout_forward"]


def dropout_forward(config, x, mask):
    p = config["p"]
    return x * mask / (1.0 - p), (mask, p)


def dropout_backward(dy, cache):
    mask, p = cache
    return {"x": dy * mask / (1.0 - p)}
