"""The reference for the layer contract (docs/layers.md): one (forward, backward) pair per layer.

    forward(config, **inputs) -> (y, cache)       backward(dy, cache) -> grads

``grads`` holds one array per differentiable input of the layer, the gradient of <y, dy>; each
backward is the layer's chain rule, one step a line (the formulas are in each module's docstring).
Only numpy ufuncs, their methods, and indexing touch the arrays, so that an ndarray subclass
which overrides ``__array_ufunc__`` passes through every arithmetic step (Monte Carlo arithmetic)
and comes out as the grads' type. No array returned aliases an input or another one returned.

The only functions intended for use outside are ``vjp`` and ``forward``; ``PAIRS`` is the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from chainrule.layers.contract import ELEMENTWISE

from .attention import attention_backward, attention_forward
from .conv import conv_backward, conv_forward
from .dense import elementwise, identity_backward, identity_forward, linear_backward, linear_forward
from .dropout import dropout_backward, dropout_forward
from .embedding import embedding_backward, embedding_forward
from .losses import cross_entropy_backward, cross_entropy_forward, mse_loss_backward, mse_loss_forward
from .norms import batch_norm_backward, batch_norm_forward, group_norm_backward, group_norm_forward, layer_norm_backward, layer_norm_forward
from .pooling import avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward
from .softmax import log_softmax_backward, log_softmax_forward, softmax_backward, softmax_forward

__all__ = ["PAIRS", "Pair", "forward", "vjp"]


@dataclass(frozen=True)
class Pair:
    """One layer: forward(config, **inputs) -> (y, cache) and backward(dy, cache) -> grads."""

    forward: Callable[..., tuple[np.ndarray, object]]
    backward: Callable[[np.ndarray, object], dict[str, np.ndarray]]


PAIRS: dict[str, Pair] = {
    "linear": Pair(linear_forward, linear_backward),
    "identity": Pair(identity_forward, identity_backward),
    **{name: Pair(*elementwise(name)) for name in ELEMENTWISE if name != "identity"},
    "softmax": Pair(softmax_forward, softmax_backward),
    "log_softmax": Pair(log_softmax_forward, log_softmax_backward),
    "layer_norm": Pair(layer_norm_forward, layer_norm_backward),
    "batch_norm": Pair(batch_norm_forward, batch_norm_backward),
    "group_norm": Pair(group_norm_forward, group_norm_backward),
    "embedding": Pair(embedding_forward, embedding_backward),
    "dropout": Pair(dropout_forward, dropout_backward),
    "conv1d": Pair(conv_forward, conv_backward),
    "conv2d": Pair(conv_forward, conv_backward),
    "max_pool2d": Pair(max_pool2d_forward, max_pool2d_backward),
    "avg_pool2d": Pair(avg_pool2d_forward, avg_pool2d_backward),
    "attention": Pair(attention_forward, attention_backward),
    "mse_loss": Pair(mse_loss_forward, mse_loss_backward),
    "cross_entropy": Pair(cross_entropy_forward, cross_entropy_backward),
}


def _pair(layer: str) -> Pair:
    if layer not in PAIRS:
        raise NotImplementedError(f"the reference has no layer {layer!r}; it has {', '.join(PAIRS)}")
    return PAIRS[layer]


def forward(layer: str, config: dict, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The layer's output y; ``config`` complete (chainrule.layers.contract.full_config)."""
    return _pair(layer).forward(config, **inputs)[0]


def vjp(layer: str, config: dict, inputs: dict[str, np.ndarray], dy: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(y, grads): grads[n] = J_n^T dy for each differentiable input n; ``config`` complete."""
    pair = _pair(layer)
    y, cache = pair.forward(config, **inputs)
    return y, pair.backward(dy, cache)
