"""The loss layers mse_loss and cross_entropy: y and dy are 0-d.

These are torch.nn.functional's, not the network contract's losses of reference/losses.py.

    mse_loss:       y = mean((input - target)^2) over every entry
                    dinput = 2 (input - target) dy / size      dtarget = -dinput
    cross_entropy:  input (N, C) logits, target (N,) class indices
                    y = mean over n of -log_softmax(input)[n, target[n]]
                    dinput = (softmax(input) - onehot(target)) dy / N

The cache of mse_loss is input - target; that of cross_entropy is (log_softmax(input), target).
"""

from __future__ import annotations

import numpy as np

from .softmax import log_softmax

__all__ = ["cross_entropy_backward", "cross_entropy_forward", "mse_loss_backward", "mse_loss_forward"]


def mse_loss_forward(config, input, target):
    diff = input - target
    return (diff * diff).mean(), diff


def mse_loss_backward(dy, diff):
    dinput = 2.0 * diff * dy / diff.size  # d/dinput mean((input - target)^2)
    return {"input": dinput, "target": -dinput}


def cross_entropy_forward(config, input, target):
    log_p = log_softmax(input, axis=1)
    picked = log_p[np.arange(len(target)), target]  # log p[n, target[n]]
    return -picked.mean(), (log_p, target)


def cross_entropy_backward(dy, cache):
    log_p, target = cache
    n, classes = log_p.shape
    onehot = target[:, None] == np.arange(classes)
    return {"input": (np.exp(log_p) - onehot) * dy / n}  # (softmax - onehot) dy / N
