"""Deliberately broken layer sources: classic backward bugs of hand-written layers, one per class.

Each is tests.gallery.layers_numpy's ``CourseLayers`` with one backward written wrong, as real code
got it wrong (the docstring names where). ``EXPECTED`` gives the layer and the input whose gradient
is wrong; ``THRESHOLDS`` the smallest size that shows a size-dependent one. Each is right on some
cases (its docstring says which), so a checker has to find the cases that show it. Load one with
``chainrule check tests.broken_layers:bn_dx_without_gamma``.
"""

from __future__ import annotations

import numpy as np

from tests.gallery.layers_numpy import CourseLayers, normalize_backward

__all__ = ["BUGS", "EXPECTED", "THRESHOLDS"]


def with_backward(layer, backward):
    """CourseLayers' (forward, backward) pairs with ``layer``'s backward replaced."""
    return {**CourseLayers.pairs, layer: (CourseLayers.pairs[layer][0], backward)}


def bn_backward_without_gamma(dout, cache):
    xhat, gamma, inv_std, axes = cache
    dx = normalize_backward(dout, xhat, inv_std, axes)
    return dx, np.sum(dout * xhat, axis=axes), np.sum(dout, axis=axes)


class BnDxWithoutGamma(CourseLayers):
    """Batch norm dx from dy where dxhat = dy * gamma belongs; right when gamma = 1 (denizyuret/Knet.jl#288)."""

    name = "course_numpy (bug: batch norm dx without gamma)"
    pairs = with_backward("batch_norm", bn_backward_without_gamma)


def bn_backward_without_mean_term(dout, cache):
    xhat, gamma, inv_std, axes = cache
    dxhat = dout * gamma
    dx = inv_std * (dxhat - xhat * np.mean(dxhat * xhat, axis=axes, keepdims=True))
    return dx, np.sum(dout * xhat, axis=axes), np.sum(dout, axis=axes)


class BnDxWithoutMeanTerm(CourseLayers):
    """Batch norm dx without -mean(dxhat), the batch mean's term; right when each channel's dy sums to 0 (cf. apache/mxnet#1053)."""

    name = "course_numpy (bug: batch norm dx without the mean term)"
    pairs = with_backward("batch_norm", bn_backward_without_mean_term)


def bn_backward_without_variance_term(dout, cache):
    xhat, gamma, inv_std, axes = cache
    dxhat = dout * gamma
    dx = inv_std * (dxhat - np.mean(dxhat, axis=axes, keepdims=True))
    return dx, np.sum(dout * xhat, axis=axes), np.sum(dout, axis=axes)


class BnDxWithoutVarianceTerm(CourseLayers):
    """Batch norm dx without -xhat * mean(dxhat * xhat); exact under an all-ones dy (the test of HomericIntelligence/Odyssey#3174)."""

    name = "course_numpy (bug: batch norm dx without the variance term)"
    pairs = with_backward("batch_norm", bn_backward_without_variance_term)


def ln_backward_last_axis_only(dout, cache):
    xhat, gamma, inv_std, axes = cache
    batch_axes = tuple(range(dout.ndim - len(axes)))
    dxhat = dout * gamma
    D = dout.shape[-1]
    dx = (1.0 / D) * inv_std * (D * dxhat - np.sum(dxhat, axis=-1, keepdims=True) - xhat * np.sum(dxhat * xhat, axis=-1, keepdims=True))
    return dx, np.sum(dout * xhat, axis=batch_axes), np.sum(dout, axis=batch_axes)


class LnBackward2dOnly(CourseLayers):
    """Layer norm backward summing over the last axis only: wrong when normalized_shape has 2+ dims (flagos-ai/FlagGems#5392)."""

    name = "course_numpy (bug: layer norm backward over the last axis only)"
    pairs = with_backward("layer_norm", ln_backward_last_axis_only)


def ln_backward_row_sums_in_chunks(dout, cache):
    xhat, gamma, inv_std, axes = cache
    batch_axes = tuple(range(dout.ndim - len(axes)))
    dxhat = (dout * gamma).reshape(-1, gamma.size)
    xhat_rows = xhat.reshape(dxhat.shape)
    D = gamma.size
    sum_dxhat = np.zeros((len(dxhat), 1))
    sum_dxhat_xhat = np.zeros((len(dxhat), 1))
    for chunk in range(max(1, D // 8)):
        cols = slice(8 * chunk, 8 * chunk + 8)
        sum_dxhat += np.sum(dxhat[:, cols], axis=1, keepdims=True)
        sum_dxhat_xhat += np.sum(dxhat[:, cols] * xhat_rows[:, cols], axis=1, keepdims=True)
    dx = (1.0 / D) * inv_std.reshape(-1, 1) * (D * dxhat - sum_dxhat - xhat_rows * sum_dxhat_xhat)
    return dx.reshape(dout.shape), np.sum(dout * xhat, axis=batch_axes), np.sum(dout, axis=batch_axes)


class LnRowSumsInChunks(CourseLayers):
    """Layer norm row sums over D // 8 chunks of 8, the tail dropped: wrong when D > 8, D % 8 != 0 (BobMcDear/attorch#18)."""

    name = "course_numpy (bug: layer norm row sums drop the last partial chunk of 8)"
    pairs = with_backward("layer_norm", ln_backward_row_sums_in_chunks)


def gn_backward_per_channel_sums(dout, cache):
    xhat, gamma, inv_std, G = cache
    N, C = dout.shape[:2]
    channel_axes = (0, *range(2, dout.ndim))
    inv_std = np.repeat(inv_std, C // G, axis=1)  # each channel takes its group's statistics
    dxhat = (dout * gamma).reshape(N, C, -1)
    dx = normalize_backward(dxhat, xhat.reshape(N, C, -1), inv_std, (2,))
    return dx.reshape(dout.shape), np.sum(dout * xhat, axis=channel_axes), np.sum(dout, axis=channel_axes)


class GnPerChannelSums(CourseLayers):
    """Group norm dx summed per channel, instance norm's backward: right when num_groups = C (no public report)."""

    name = "course_numpy (bug: group norm dx summed per channel)"
    pairs = with_backward("group_norm", gn_backward_per_channel_sums)


def gn_backward_gamma_outside_sums(dout, cache):
    xhat, gamma, inv_std, G = cache
    N = dout.shape[0]
    channel_axes = (0, *range(2, dout.ndim))
    dx = normalize_backward(dout.reshape(N, G, -1), xhat.reshape(N, G, -1), inv_std, (2,)).reshape(dout.shape) * gamma
    return dx, np.sum(dout * xhat, axis=channel_axes), np.sum(dout, axis=channel_axes)


class GnGammaOutsideGroupSums(CourseLayers):
    """Group norm dx with gamma outside the group sums: right when num_groups = C (uxlfoundation/oneDNN#3543)."""

    name = "course_numpy (bug: group norm gamma outside the group sums)"
    pairs = with_backward("group_norm", gn_backward_gamma_outside_sums)


def softmax_backward_diagonal(dout, cache):
    out, axis = cache
    return dout * out * (1 - out)


class SoftmaxDiagonal(CourseLayers):
    """Softmax dx = dy * s * (1 - s), the Jacobian's diagonal only; right when axis has length 1 (deeplearning4j/libnd4j#440)."""

    name = "course_numpy (bug: softmax backward diagonal only)"
    pairs = with_backward("softmax", softmax_backward_diagonal)


def log_softmax_backward_exp_plus_dy(dout, cache):
    out, axis = cache
    return np.exp(out) + dout


class LogSoftmaxExpPlusDy(CourseLayers):
    """log_softmax dx = exp(y) + dy where dy - exp(y) * sum(dy) belongs (mlpack/mlpack#2360)."""

    name = "course_numpy (bug: log_softmax backward exp(y) + dy)"
    pairs = with_backward("log_softmax", log_softmax_backward_exp_plus_dy)


def embedding_backward_last_wins(dout, cache):
    x, shape = cache
    dW = np.zeros(shape)
    dW[x] = dout
    return dW


class EmbeddingLastIndexWins(CourseLayers):
    """Embedding dW[indices] = dy: the last copy of a repeated index wins; right for distinct indices (pytorch/pytorch#1528)."""

    name = "course_numpy (bug: embedding, the last copy of a repeated index wins)"
    pairs = with_backward("embedding", embedding_backward_last_wins)


def dropout_backward_without_mask(dout, cache):
    mask, p = cache
    return dout / (1 - p)


class DropoutBackwardWithoutMask(CourseLayers):
    """Dropout dx = dy / (1 - p) without the mask; right when the mask keeps all (rohitg00/ai-engineering-from-scratch#17)."""

    name = "course_numpy (bug: dropout backward without the mask)"
    pairs = with_backward("dropout", dropout_backward_without_mask)


def dropout_backward_without_scale(dout, cache):
    mask, p = cache
    return dout * mask


class DropoutBackwardWithoutScale(CourseLayers):
    """Dropout dx = dy * mask without 1 / (1 - p); right when p = 0 (rohitg00/ai-engineering-from-scratch#17)."""

    name = "course_numpy (bug: dropout backward without 1/(1-p))"
    pairs = with_backward("dropout", dropout_backward_without_scale)


def cross_entropy_backward_without_one_over_n(dout, cache):
    probs, y = cache
    dx = probs.copy()
    dx[np.arange(len(y)), y] -= 1
    return dx * dout


class CrossEntropyWithoutOneOverN(CourseLayers):
    """Cross-entropy dx = softmax - onehot without the mean's 1/N; right when N = 1 (jxgu1016/MNIST_center_loss_pytorch#9)."""

    name = "course_numpy (bug: cross_entropy backward without 1/N)"
    pairs = with_backward("cross_entropy", cross_entropy_backward_without_one_over_n)


def mse_loss_backward_without_two(dout, cache):
    diff = cache
    dx = dout * diff / diff.size
    return dx, -dx


class MseLossWithoutTwo(CourseLayers):
    """mse_loss dx = (input - target) / n, the square's 2 dropped (davisking/dlib#1169)."""

    name = "course_numpy (bug: mse_loss backward without the 2)"
    pairs = with_backward("mse_loss", mse_loss_backward_without_two)


def linear_backward_dw_reshaped(dout, cache):
    x, w = cache
    dw = (x.T @ dout).reshape(w.shape)
    return dout @ w, dw, np.sum(dout, axis=0)


class LinearDweightReshaped(CourseLayers):
    """Linear dW = (x.T @ dy).reshape(W.shape) where .T belongs; right when out or in is 1 (MXNet's reshape_transpose tutorial)."""

    name = "course_numpy (bug: linear dW reshaped instead of transposed)"
    pairs = with_backward("linear", linear_backward_dw_reshaped)


def relu_backward_at_zero_one(dout, cache):
    x = cache
    return dout * (x >= 0)


class ReluPrimeAtZero(CourseLayers):
    """relu dx = dy * (x >= 0): relu'(0) = 1 at an exact zero; right off zero (iamtrask/Grokking-Deep-Learning#13)."""

    name = "course_numpy (bug: relu'(0) = 1)"
    pairs = with_backward("relu", relu_backward_at_zero_one)


BUGS = {
    "bn_dx_without_gamma": BnDxWithoutGamma,
    "bn_dx_without_mean_term": BnDxWithoutMeanTerm,
    "bn_dx_without_variance_term": BnDxWithoutVarianceTerm,
    "ln_backward_2d_only": LnBackward2dOnly,
    "ln_row_sums_in_chunks": LnRowSumsInChunks,
    "gn_per_channel_sums": GnPerChannelSums,
    "gn_gamma_outside_group_sums": GnGammaOutsideGroupSums,
    "softmax_diagonal": SoftmaxDiagonal,
    "log_softmax_exp_plus_dy": LogSoftmaxExpPlusDy,
    "embedding_last_index_wins": EmbeddingLastIndexWins,
    "dropout_backward_without_mask": DropoutBackwardWithoutMask,
    "dropout_backward_without_scale": DropoutBackwardWithoutScale,
    "cross_entropy_without_one_over_n": CrossEntropyWithoutOneOverN,
    "mse_loss_without_two": MseLossWithoutTwo,
    "linear_dweight_reshaped": LinearDweightReshaped,
    "relu_prime_at_zero": ReluPrimeAtZero,
}

# The layer and the input whose gradient each bug gets wrong.
EXPECTED = {
    "bn_dx_without_gamma": ("batch_norm", "x"),
    "bn_dx_without_mean_term": ("batch_norm", "x"),
    "bn_dx_without_variance_term": ("batch_norm", "x"),
    "ln_backward_2d_only": ("layer_norm", "x"),
    "ln_row_sums_in_chunks": ("layer_norm", "x"),  # size-dependent: THRESHOLDS
    "gn_per_channel_sums": ("group_norm", "x"),
    "gn_gamma_outside_group_sums": ("group_norm", "x"),
    "softmax_diagonal": ("softmax", "x"),
    "log_softmax_exp_plus_dy": ("log_softmax", "x"),
    "embedding_last_index_wins": ("embedding", "weight"),
    "dropout_backward_without_mask": ("dropout", "x"),
    "dropout_backward_without_scale": ("dropout", "x"),
    "cross_entropy_without_one_over_n": ("cross_entropy", "input"),
    "mse_loss_without_two": ("mse_loss", "input"),
    "linear_dweight_reshaped": ("linear", "weight"),
    "relu_prime_at_zero": ("relu", "x"),
}

# The size-dependent bug's smallest counterexample: (which size, its value, the diagnosis tag), as
# tests/broken_sizes.py's THRESHOLDS. Right at D <= 8 and at every multiple of 8; wrong at D = 9..15, 17, ...
THRESHOLDS = {"ln_row_sums_in_chunks": ("normalized size D = prod(normalized_shape)", 9, "%8")}

globals().update(BUGS)  # tests.broken_layers:bn_dx_without_gamma names one for the command line
