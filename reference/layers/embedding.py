"""embedding: a lookup of rows of weight (V, D) by integer indices of any shape, 0-d included.

    y = weight[indices]                          (indices.shape + (D,))
    dweight[v] = sum of dy[i] over every i with indices[i] = v   (repeated indices accumulate)

The cache is (indices, weight's shape).
"""

from __future__ import annotations

import numpy as np

__all__ = ["embedding_backward", "embedding_forward"]


def embedding_forward(config, indices, weight):
    return weight[indices], (indices, weight.shape)  # an integer array index copies, even a 0-d one


def embedding_backward(dy, cache):
    indices, shape = cache
    dweight = np.zeros_like(dy, shape=shape)  # zeros of dy's dtype and array type
    np.add.at(dweight, indices, dy)           # dweight[indices] += dy, unbuffered: repeats add up
    return {"weight": dweight}
