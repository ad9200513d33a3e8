"""Layers one at a time in numpy float64, as CS231n's assignment ``layers.py`` writes them.

For each layer, ``<name>_forward(...)`` returns ``(out, cache)`` and ``<name>_backward(dout, cache)``
the gradients of its differentiable inputs, in the contract's order. ``CourseLayers.vjp`` runs one
pair. Batch, layer and group norm share the course's simplified backward over the N values each
mean and variance were taken over:

    dx = (1/N) * inv_std * (N*dxhat - sum(dxhat) - xhat*sum(dxhat*xhat))

Every layer of the contract, everything it allows: norms of any rank, softmax over any axis,
embedding with 0-d and repeated indices (``np.add.at``, as the RNN assignment's
``word_embedding_backward``). relu'(0) = 0, leaky_relu'(0) = 0.01.

    chainrule check tests.gallery.layers_numpy:CourseLayers
"""

import math

import numpy as np
from scipy.special import erf

from chainrule.layers.contract import LAYERS

__all__ = ["CourseLayers"]


# ---- linear and the elementwise layers ------------------------------------------------------------

def linear_forward(x, w, b):
    out = x @ w.T + b
    cache = (x, w)
    return out, cache


def linear_backward(dout, cache):
    x, w = cache
    dx = dout @ w
    dw = dout.T @ x
    db = np.sum(dout, axis=0)
    return dx, dw, db


def identity_forward(x):
    return x.copy(), None


def identity_backward(dout, cache):
    return dout.copy()


def relu_forward(x):
    out = np.maximum(0, x)
    return out, x


def relu_backward(dout, cache):
    x = cache
    dx = dout * (x > 0)
    return dx


def leaky_relu_forward(x):
    out = np.where(x > 0, x, 0.01 * x)
    return out, x


def leaky_relu_backward(dout, cache):
    x = cache
    dx = dout * np.where(x > 0, 1.0, 0.01)
    return dx


def sigmoid(x):
    """A numerically stable sigmoid, as the RNN assignment writes it."""
    pos_mask = x >= 0
    neg_mask = x < 0
    z = np.zeros_like(x)
    z[pos_mask] = np.exp(-x[pos_mask])
    z[neg_mask] = np.exp(x[neg_mask])
    top = np.ones_like(x)
    top[neg_mask] = z[neg_mask]
    return top / (1 + z)


def sigmoid_forward(x):
    out = sigmoid(x)
    return out, out


def sigmoid_backward(dout, cache):
    out = cache
    dx = dout * out * (1 - out)
    return dx


def tanh_forward(x):
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, cache):
    out = cache
    dx = dout * (1 - out**2)
    return dx


def softplus_forward(x):
    out = np.logaddexp(0, x)  # log(1 + e^x)
    return out, x


def softplus_backward(dout, cache):
    x = cache
    dx = dout * sigmoid(x)
    return dx


def elu_forward(x):
    out = np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
    return out, x


def elu_backward(dout, cache):
    x = cache
    dx = dout * np.where(x > 0, 1.0, np.exp(np.minimum(x, 0)))
    return dx


def gelu_forward(x):
    out = x * 0.5 * (1 + erf(x / math.sqrt(2)))  # x * Phi(x)
    return out, x


def gelu_backward(dout, cache):
    x = cache
    Phi = 0.5 * (1 + erf(x / math.sqrt(2)))
    phi = np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)
    dx = dout * (Phi + x * phi)
    return dx


def silu_forward(x):
    s = sigmoid(x)
    out = x * s
    return out, (x, s)


def silu_backward(dout, cache):
    x, s = cache
    dx = dout * s * (1 + x * (1 - s))
    return dx


# ---- softmax -----------------------------------------------------------------------------------

def softmax_forward(x, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    exp = np.exp(shifted)
    out = exp / np.sum(exp, axis=axis, keepdims=True)
    return out, (out, axis)


def softmax_backward(dout, cache):
    out, axis = cache
    dx = out * (dout - np.sum(dout * out, axis=axis, keepdims=True))
    return dx


def log_softmax_forward(x, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    out = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return out, (out, axis)


def log_softmax_backward(dout, cache):
    out, axis = cache
    dx = dout - np.exp(out) * np.sum(dout, axis=axis, keepdims=True)
    return dx


# ---- the norms ---------------------------------------------------------------------------------

def normalize(x, axes, eps):
    """xhat = (x - mean) / sqrt(var + eps) over ``axes`` (biased variance), and 1/sqrt(var + eps)."""
    mu = np.mean(x, axis=axes, keepdims=True)
    var = np.var(x, axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = (x - mu) * inv_std
    return xhat, inv_std


def normalize_backward(dxhat, xhat, inv_std, axes):
    """The course's simplified formula, the sums over the N values of ``axes``."""
    N = math.prod(dxhat.shape[a] for a in axes)
    sum_dxhat = np.sum(dxhat, axis=axes, keepdims=True)
    sum_dxhat_xhat = np.sum(dxhat * xhat, axis=axes, keepdims=True)
    dx = (1.0 / N) * inv_std * (N * dxhat - sum_dxhat - xhat * sum_dxhat_xhat)
    return dx


def batch_norm_forward(x, gamma, beta, eps):
    # statistics per channel over the batch and the spatial axes: (N, C, *spatial)
    axes = (0, *range(2, x.ndim))
    per_channel = (1, -1) + (1,) * (x.ndim - 2)
    xhat, inv_std = normalize(x, axes, eps)
    gamma = gamma.reshape(per_channel)
    out = gamma * xhat + beta.reshape(per_channel)
    cache = (xhat, gamma, inv_std, axes)
    return out, cache


def batch_norm_backward(dout, cache):
    xhat, gamma, inv_std, axes = cache
    dbeta = np.sum(dout, axis=axes)
    dgamma = np.sum(dout * xhat, axis=axes)
    dxhat = dout * gamma
    dx = normalize_backward(dxhat, xhat, inv_std, axes)
    return dx, dgamma, dbeta


def layer_norm_forward(x, gamma, beta, normalized_shape, eps):
    # statistics per sample over the trailing normalized_shape axes
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    xhat, inv_std = normalize(x, axes, eps)
    out = gamma * xhat + beta
    cache = (xhat, gamma, inv_std, axes)
    return out, cache


def layer_norm_backward(dout, cache):
    xhat, gamma, inv_std, axes = cache
    batch_axes = tuple(range(dout.ndim - len(axes)))
    dbeta = np.sum(dout, axis=batch_axes)
    dgamma = np.sum(dout * xhat, axis=batch_axes)
    dxhat = dout * gamma
    dx = normalize_backward(dxhat, xhat, inv_std, axes)
    return dx, dgamma, dbeta


def group_norm_forward(x, gamma, beta, num_groups, eps):
    # statistics per sample and group of C // G channels: x seen as (N, G, C // G * spatial)
    N, G = x.shape[0], num_groups
    per_channel = (1, -1) + (1,) * (x.ndim - 2)
    xhat, inv_std = normalize(x.reshape(N, G, -1), (2,), eps)
    xhat = xhat.reshape(x.shape)
    gamma = gamma.reshape(per_channel)
    out = gamma * xhat + beta.reshape(per_channel)
    cache = (xhat, gamma, inv_std, G)
    return out, cache


def group_norm_backward(dout, cache):
    xhat, gamma, inv_std, G = cache
    N = dout.shape[0]
    channel_axes = (0, *range(2, dout.ndim))
    dbeta = np.sum(dout, axis=channel_axes)
    dgamma = np.sum(dout * xhat, axis=channel_axes)
    dxhat = dout * gamma
    dx = normalize_backward(dxhat.reshape(N, G, -1), xhat.reshape(N, G, -1), inv_std, (2,))
    return dx.reshape(dout.shape), dgamma, dbeta


# ---- embedding, dropout and the losses ---------------------------------------------------------

def embedding_forward(x, W):
    out = W[x]
    cache = (x, W.shape)
    return out, cache


def embedding_backward(dout, cache):
    x, shape = cache
    dW = np.zeros(shape)
    np.add.at(dW, x, dout)  # a row used twice gets both gradients
    return dW


def dropout_forward(x, mask, p):
    # inverted dropout with the mask given: x * mask / (1 - p)
    out = x * mask / (1 - p)
    cache = (mask, p)
    return out, cache


def dropout_backward(dout, cache):
    mask, p = cache
    dx = dout * mask / (1 - p)
    return dx


def mse_loss_forward(x, y):
    diff = x - y
    loss = np.mean(diff**2)
    return loss, diff


def mse_loss_backward(dout, cache):
    diff = cache
    dx = dout * 2 * diff / diff.size
    return dx, -dx


def cross_entropy_forward(x, y):
    # softmax_loss of the assignment: logits x (N, C), class indices y (N,)
    shifted_logits = x - np.max(x, axis=1, keepdims=True)
    Z = np.sum(np.exp(shifted_logits), axis=1, keepdims=True)
    log_probs = shifted_logits - np.log(Z)
    probs = np.exp(log_probs)
    N = x.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    return loss, (probs, y)


def cross_entropy_backward(dout, cache):
    probs, y = cache
    N = probs.shape[0]
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    dx *= dout / N
    return dx


# ---- the source ----------------------------------------------------------------------------------

class CourseLayers:
    """Each contract layer answered by its forward/backward pair: the forward takes the layer's
    inputs and then its config in the contract's order, the backward returns one gradient per
    differentiable input."""

    name = "course_numpy"
    pairs = {
        "linear": (linear_forward, linear_backward),
        "identity": (identity_forward, identity_backward),
        "relu": (relu_forward, relu_backward),
        "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
        "sigmoid": (sigmoid_forward, sigmoid_backward),
        "tanh": (tanh_forward, tanh_backward),
        "softplus": (softplus_forward, softplus_backward),
        "elu": (elu_forward, elu_backward),
        "gelu": (gelu_forward, gelu_backward),
        "silu": (silu_forward, silu_backward),
        "softmax": (softmax_forward, softmax_backward),
        "log_softmax": (log_softmax_forward, log_softmax_backward),
        "layer_norm": (layer_norm_forward, layer_norm_backward),
        "batch_norm": (batch_norm_forward, batch_norm_backward),
        "group_norm": (group_norm_forward, group_norm_backward),
        "embedding": (embedding_forward, embedding_backward),
        "dropout": (dropout_forward, dropout_backward),
        "mse_loss": (mse_loss_forward, mse_loss_backward),
        "cross_entropy": (cross_entropy_forward, cross_entropy_backward),
    }

    def vjp(self, layer, config, inputs, dy):
        spec = LAYERS[layer]
        forward, backward = self.pairs[layer]
        out, cache = forward(*(inputs[name] for name in spec.input_names), *(config[key] for key in spec.defaults))
        grads = backward(dy, cache)
        if not isinstance(grads, tuple):
            grads = (grads,)
        return out, dict(zip(spec.differentiable, grads))
