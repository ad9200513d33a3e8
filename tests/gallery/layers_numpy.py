"""Layers one at a time in numpy float64, as CS231n's assignment ``layers.py`` writes them.

For each layer, ``<name>_forward(...)`` returns ``(out, cache)`` and ``<name>_backward(dout, cache)``
the gradients of its differentiable inputs, in the contract's order. ``CourseLayers.vjp`` runs one
pair. Batch, layer and group norm share the course's simplified backward over the N values each
mean and variance were taken over:

    dx = (1/N) * inv_std * (N*dxhat - sum(dxhat) - xhat*sum(dxhat*xhat))

Convolution as the fast-layers assignment does it: im2col gathers each window's patch as a column
(index arithmetic over the kernel offsets), the forward is one matrix product per group, and the
backward's dx puts the patch gradients back with col2im (``np.add.at``, overlaps summed). conv1d is
a conv2d over a height of 1; the pools use the same windows, max_pool2d's gradient going to each
window's first maximum. Attention is the textbook softmax(q k^T * scale) v with its backward by hand:

    dV = P^T dY,  dP = dY V^T,  dS = P * (dP - rowsum(dP * P)),  dQ = dS K scale,  dK = dS^T Q scale

Every layer of the contract, everything it allows: norms of any rank, softmax over any axis,
embedding with 0-d and repeated indices (``np.add.at``, as the RNN assignment's
``word_embedding_backward``), conv stride, padding, dilation and groups, pools with padding and
either count_include_pad, attention with or without a mask, causal or not. relu'(0) = 0,
leaky_relu'(0) = 0.01.

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


# ---- convolution and pooling: im2col and col2im ------------------------------------------------

def pair(value):
    """A per-axis (height, width) pair given as one int or a list of two."""
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


def first(value):
    """conv1d's one int given as an int or a list of one."""
    return value[0] if isinstance(value, (list, tuple)) else value


def output_size(L, K, stride, pad, dilation):
    return (L + 2 * pad - dilation * (K - 1) - 1) // stride + 1


def patch_indices(C, KH, KW, OH, OW, stride, dilation):
    """Index arrays (c, i, j) into the padded input, broadcasting to (C*KH*KW, OH*OW): row
    (c, kh, kw) of column (oh, ow) is x_padded[c, oh*sh + kh*dh, ow*sw + kw*dw]."""
    sh, sw = stride
    dh, dw = dilation
    i0 = np.tile(np.repeat(np.arange(KH) * dh, KW), C)  # the kernel offset of each patch row
    j0 = np.tile(np.arange(KW) * dw, KH * C)
    i1 = sh * np.repeat(np.arange(OH), OW)  # the window's corner for each output position
    j1 = sw * np.tile(np.arange(OW), OH)
    i = i0.reshape(-1, 1) + i1.reshape(1, -1)
    j = j0.reshape(-1, 1) + j1.reshape(1, -1)
    c = np.repeat(np.arange(C), KH * KW).reshape(-1, 1)
    return c, i, j


def im2col(x_padded, KH, KW, OH, OW, stride, dilation):
    """The patches of x_padded (N, C, Hp, Wp) as columns: (N, C*KH*KW, OH*OW)."""
    c, i, j = patch_indices(x_padded.shape[1], KH, KW, OH, OW, stride, dilation)
    return x_padded[:, c, i, j]


def col2im(cols, padded_shape, KH, KW, OH, OW, stride, dilation):
    """im2col's adjoint: each column entry added back where it was gathered from, overlaps summed."""
    c, i, j = patch_indices(padded_shape[1], KH, KW, OH, OW, stride, dilation)
    x_padded = np.zeros(padded_shape)
    np.add.at(x_padded, (slice(None), c, i, j), cols)
    return x_padded


def unpad(x_padded, pad):
    ph, pw = pad
    return x_padded[:, :, ph:x_padded.shape[2] - ph, pw:x_padded.shape[3] - pw]


def conv2d_forward(x, w, b, stride, padding, dilation, groups):
    # out[n, f] = sum over f's group of input channels of the patch times w[f], + b[f]
    conv_param = {"stride": pair(stride), "pad": pair(padding), "dilation": pair(dilation), "groups": groups}
    N, _, H, W = x.shape
    F, Cg, KH, KW = w.shape
    G = groups
    (ph, pw), (sh, sw), (dh, dw) = conv_param["pad"], conv_param["stride"], conv_param["dilation"]
    OH, OW = output_size(H, KH, sh, ph, dh), output_size(W, KW, sw, pw, dw)
    x_padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode="constant")
    x_cols = im2col(x_padded, KH, KW, OH, OW, conv_param["stride"], conv_param["dilation"])
    x_cols = x_cols.reshape(N, G, Cg * KH * KW, OH * OW)
    w_rows = w.reshape(G, F // G, Cg * KH * KW)
    out = np.einsum("gfk,ngkl->ngfl", w_rows, x_cols).reshape(N, F, OH, OW) + b.reshape(1, -1, 1, 1)
    cache = (x_padded, w, x_cols, conv_param)
    return out, cache


def conv2d_backward(dout, cache):
    x_padded, w, x_cols, conv_param = cache
    N, F, OH, OW = dout.shape
    _, Cg, KH, KW = w.shape
    G = conv_param["groups"]
    dout_rows = dout.reshape(N, G, F // G, OH * OW)
    db = np.sum(dout, axis=(0, 2, 3))
    dw = np.einsum("ngfl,ngkl->gfk", dout_rows, x_cols).reshape(w.shape)
    dx_cols = np.einsum("gfk,ngfl->ngkl", w.reshape(G, F // G, -1), dout_rows).reshape(N, G * Cg * KH * KW, OH * OW)
    dx_padded = col2im(dx_cols, x_padded.shape, KH, KW, OH, OW, conv_param["stride"], conv_param["dilation"])
    dx = unpad(dx_padded, conv_param["pad"])
    return dx, dw, db


def conv1d_forward(x, w, b, stride, padding, dilation, groups):
    # a conv2d over a height of 1
    out, cache = conv2d_forward(x[:, :, None], w[:, :, None], b, (1, first(stride)), (0, first(padding)), (1, first(dilation)), groups)
    return out[:, :, 0], cache


def conv1d_backward(dout, cache):
    dx, dw, db = conv2d_backward(dout[:, :, None], cache)
    return dx[:, :, 0], dw[:, :, 0], db


def pool_windows(x, kernel_size, stride, padding, fill):
    """Each channel's windows as columns: (N*C, KH*KW, OH*OW), x padded with ``fill``."""
    N, C, H, W = x.shape
    (KH, KW), (sh, sw), (ph, pw) = pair(kernel_size), pair(kernel_size if stride is None else stride), pair(padding)
    OH, OW = output_size(H, KH, sh, ph, 1), output_size(W, KW, sw, pw, 1)
    x_padded = np.pad(x.reshape(N * C, 1, H, W), ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    pool_param = {"kernel": (KH, KW), "stride": (sh, sw), "pad": (ph, pw), "out": (OH, OW), "padded_shape": x_padded.shape}
    return im2col(x_padded, KH, KW, OH, OW, (sh, sw), (1, 1)), pool_param


def pool_backward(dcols, x_shape, pool_param):
    """The windows' gradients (N*C, KH*KW, OH*OW) added back into dx (N, C, H, W)."""
    (KH, KW), (OH, OW) = pool_param["kernel"], pool_param["out"]
    dx_padded = col2im(dcols, pool_param["padded_shape"], KH, KW, OH, OW, pool_param["stride"], (1, 1))
    return unpad(dx_padded, pool_param["pad"]).reshape(x_shape)


def max_pool2d_forward(x, kernel_size, stride, padding):
    # padding with -inf never wins; argmax takes the first maximum of a window, as torch does
    cols, pool_param = pool_windows(x, kernel_size, stride, padding, -np.inf)
    argmax = np.argmax(cols, axis=1)
    out = np.max(cols, axis=1).reshape(x.shape[:2] + pool_param["out"])
    cache = (x.shape, cols, argmax, pool_param)
    return out, cache


def max_pool2d_backward(dout, cache):
    x_shape, cols, argmax, pool_param = cache
    dcols = np.zeros_like(cols)
    np.put_along_axis(dcols, argmax[:, None, :], dout.reshape(len(cols), 1, -1), axis=1)
    dx = pool_backward(dcols, x_shape, pool_param)  # overlapping windows accumulate
    return dx


def avg_pool2d_forward(x, kernel_size, stride, padding, count_include_pad):
    cols, pool_param = pool_windows(x, kernel_size, stride, padding, 0.0)
    if count_include_pad:
        divisor = cols.shape[1]  # the whole kernel area, padding zeros included
    else:
        real, _ = pool_windows(np.ones((1, 1) + x.shape[2:]), kernel_size, stride, padding, 0.0)
        divisor = np.sum(real, axis=1)  # the real entries of each window
    out = (np.sum(cols, axis=1) / divisor).reshape(x.shape[:2] + pool_param["out"])
    cache = (x.shape, divisor, pool_param)
    return out, cache


def avg_pool2d_backward(dout, cache):
    x_shape, divisor, pool_param = cache
    KH, KW = pool_param["kernel"]
    dcols = np.repeat(dout.reshape(x_shape[0] * x_shape[1], 1, -1) / divisor, KH * KW, axis=1)
    dx = pool_backward(dcols, x_shape, pool_param)
    return dx


# ---- attention ---------------------------------------------------------------------------------

def attention_allowed(Lq, Lk, mask, causal):
    """Which keys each query attends to: the mask (True = attend) and, if causal, j <= i."""
    allowed = np.ones((Lq, Lk), dtype=bool) if mask is None else mask.copy()
    if causal:
        allowed &= np.tril(np.ones((Lq, Lk), dtype=bool))  # top-left aligned
    return allowed


def attention_probs(q, k, scale, allowed):
    """P = softmax(q k^T * scale) over the allowed keys."""
    scores = np.where(allowed, q @ k.swapaxes(-1, -2) * scale, -np.inf)
    probs, _ = softmax_forward(scores, -1)
    return probs


def attention_forward(q, k, v, mask, causal, scale):
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    P = attention_probs(q, k, scale, attention_allowed(q.shape[-2], k.shape[-2], mask, causal))
    out = P @ v
    cache = (q, k, v, mask, causal, scale, P)
    return out, cache


def attention_grads(dout, q, k, v, P, scale):
    dv = P.swapaxes(-1, -2) @ dout
    dP = dout @ v.swapaxes(-1, -2)
    dS = P * (dP - np.sum(dP * P, axis=-1, keepdims=True))  # the softmax backward, row by row
    dq = dS @ k * scale
    dk = dS.swapaxes(-1, -2) @ q * scale
    return dq, dk, dv


def attention_backward(dout, cache):
    q, k, v, mask, causal, scale, P = cache
    return attention_grads(dout, q, k, v, P, scale)


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
        "conv1d": (conv1d_forward, conv1d_backward),
        "conv2d": (conv2d_forward, conv2d_backward),
        "max_pool2d": (max_pool2d_forward, max_pool2d_backward),
        "avg_pool2d": (avg_pool2d_forward, avg_pool2d_backward),
        "attention": (attention_forward, attention_backward),
    }

    def vjp(self, layer, config, inputs, dy):
        spec = LAYERS[layer]
        forward, backward = self.pairs[layer]
        arrays = (inputs.get(i.name) if i.optional else inputs[i.name] for i in spec.inputs)  # an absent mask is None
        out, cache = forward(*arrays, *(config[key] for key in spec.defaults))
        grads = backward(dy, cache)
        if not isinstance(grads, tuple):
            grads = (grads,)
        return out, dict(zip(spec.differentiable, grads))
