"""attention: F.scaled_dot_product_attention, q (N, H, Lq, E), k (N, H, Lk, E), v (N, H, Lk, Ev).

A (Lq, Lk) boolean "allowed" is the mask (True = attend; all True when absent) AND, when causal,
j <= i (top-left aligned, also when Lq != Lk). Every query is allowed at least one key.

    S = q k^T * scale            scale: config["scale"], or 1 / sqrt(E)
    S[i, j] = -inf where not allowed
    P = softmax(S) over the keys (the row max subtracted first: exp(-inf) = 0, no overflow)
    y = P v

    dv = P^T dy      dP = dy v^T      dS = P * (dP - sum_j dP * P)      dq = dS k * scale      dk = dS^T q * scale

A masked entry has P = 0, hence dS = 0: it gets exactly no gradient. The cache is (q, k, v, P, scale).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["attention_backward", "attention_forward"]


def _allowed(mask, causal, lq, lk):
    """(Lq, Lk) bool: query i may attend to key j."""
    allowed = np.ones((lq, lk), dtype=bool) if mask is None else mask.copy()
    if causal:
        allowed &= np.arange(lk) <= np.arange(lq).reshape(-1, 1)  # key j <= query i (integer comparison)
    return allowed


def attention_forward(config, q, k, v, mask=None):
    scale = 1.0 / math.sqrt(q.shape[-1]) if config["scale"] is None else config["scale"]
    s = (q @ k.swapaxes(-1, -2)) * scale                           # S = q k^T * scale
    s = np.where(_allowed(mask, config["causal"], q.shape[-2], k.shape[-2]), s, -np.inf)
    e = np.exp(s - s.max(axis=-1, keepdims=True))                  # stable: the row max subtracted
    p = e / e.sum(axis=-1, keepdims=True)                          # P = softmax(S)
    return p @ v, (q, k, v, p, scale)                              # y = P v


def attention_backward(dy, cache):
    q, k, v, p, scale = cache
    dv = p.swapaxes(-1, -2) @ dy                                   # dv = P^T dy
    dp = dy @ v.swapaxes(-1, -2)                                   # dP = dy v^T
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))           # dS = P * (dP - sum dP * P)
    return {
        "q": (ds @ k) * scale,                                     # dq = dS k * scale
        "k": (ds.swapaxes(-1, -2) @ q) * scale,                    # dk = dS^T q * scale
        "v": dv,
    }
