"""Deliberately broken layer sources: classic backward bugs of hand-written layers, one per class.

Each is tests.gallery.layers_numpy's ``CourseLayers`` with one backward written wrong, as real code
got it wrong (the docstring names where). ``EXPECTED`` gives the layer and the input whose gradient
is wrong; ``THRESHOLDS`` the smallest size that shows a size-dependent one. Each is right on some
cases (its docstring says which), so a checker has to find the cases that show it. Load one with
``chainrule check tests.broken_layers:bn_dx_without_gamma``.
"""

from __future__ import annotations

import numpy as np

from tests.gallery.layers_numpy import (
    CourseLayers,
    attention_allowed,
    attention_grads,
    attention_probs,
    avg_pool2d_backward,
    conv2d_backward,
    conv2d_forward,
    im2col,
    normalize_backward,
    patch_indices,
    pool_backward,
    unpad,
)

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


# ---- conv2d ------------------------------------------------------------------------------------

def conv2d_backward_dx_without_flip(dout, cache):
    x_padded, w, x_cols, conv_param = cache
    _, dw, db = conv2d_backward(dout, cache)
    N, F, OH, OW = dout.shape
    _, Cg, KH, KW = w.shape
    G, (sh, sw), dilation = conv_param["groups"], conv_param["stride"], conv_param["dilation"]
    # dx_padded: dy spread out by the stride, bordered by the kernel's reach, fully correlated with w seen
    # as a conv from F to C channels; the textbook rotates w by 180 degrees here
    rh, rw = dilation[0] * (KH - 1), dilation[1] * (KW - 1)
    dout_full = np.zeros((N, F, x_padded.shape[2] + rh, x_padded.shape[3] + rw))
    dout_full[:, :, rh:rh + sh * OH:sh, rw:rw + sw * OW:sw] = dout
    w_t = w.reshape(G, F // G, Cg, KH, KW).swapaxes(1, 2).reshape(G * Cg, F // G, KH, KW)
    dx_padded, _ = conv2d_forward(dout_full, w_t, np.zeros(G * Cg), 1, 0, dilation, G)
    return unpad(dx_padded, conv_param["pad"]), dw, db


class Conv2dDxWithoutFlip(CourseLayers):
    """conv2d dx as dy fully correlated with the kernel not rotated by 180 degrees (cf. ddbourgin/numpy-ml#27); right when every kernel is
    symmetric under the rotation (1x1)."""

    name = "course_numpy (bug: conv2d dx correlates dy with the kernel unflipped)"
    pairs = with_backward("conv2d", conv2d_backward_dx_without_flip)


def conv2d_backward_padding_forward_only(dout, cache):
    x_padded, w, x_cols, conv_param = cache
    H, W = (n - 2 * p for n, p in zip(x_padded.shape[2:], conv_param["pad"]))
    dx_padded, dw, db = conv2d_backward(dout, (x_padded, w, x_cols, conv_param | {"pad": (0, 0)}))
    return dx_padded[:, :, :H, :W], dw, db  # x read from the padded grid's corner: the offset p is missing


class Conv2dPaddingForwardOnly(CourseLayers):
    """conv2d padding is an offset in the forward, none in dx's backward (tensorflow/tensorflow#11092); right at padding 0."""

    name = "course_numpy (bug: conv2d padding in the forward only)"
    pairs = with_backward("conv2d", conv2d_backward_padding_forward_only)


def conv2d_backward_stride_one(dout, cache):
    x_padded, w, x_cols, conv_param = cache
    return conv2d_backward(dout, (x_padded, w, x_cols, conv_param | {"stride": (1, 1)}))  # col2im as for stride 1


class Conv2dBackwardStrideOne(CourseLayers):
    """conv2d dx added back at stride-1 window corners, the stride not multiplied in (enggen/Deep-Learning-Coursera#7); right at
    stride 1."""

    name = "course_numpy (bug: conv2d backward written for stride 1)"
    pairs = with_backward("conv2d", conv2d_backward_stride_one)


def conv2d_backward_dweight_without_dilation(dout, cache):
    x_padded, w, x_cols, conv_param = cache
    (KH, KW), (OH, OW) = w.shape[2:], dout.shape[2:]
    undilated = im2col(x_padded, KH, KW, OH, OW, conv_param["stride"], (1, 1)).reshape(x_cols.shape)  # dW's patches gathered again
    return conv2d_backward(dout, (x_padded, w, undilated, conv_param))


class Conv2dDweightWithoutDilation(CourseLayers):
    """conv2d dW from patches gathered with dilation 1 (cf. deeplearning4j/deeplearning4j#4100, an im2col called without the dilation);
    right at dilation 1."""

    name = "course_numpy (bug: conv2d dW without the dilation)"
    pairs = with_backward("conv2d", conv2d_backward_dweight_without_dilation)


def conv2d_backward_dweight_groups_forgotten(dout, cache):
    x_padded, w, x_cols, conv_param = cache
    dx, _, db = conv2d_backward(dout, cache)
    N, F = dout.shape[:2]
    dw_full = np.einsum("nfl,nkl->fk", dout.reshape(N, F, -1), x_cols.reshape(N, -1, x_cols.shape[-1]))  # as for groups = 1
    dw = dw_full.reshape(F, conv_param["groups"], -1).sum(axis=1)  # folded into w's shape: every group's channels summed in
    return dx, dw.reshape(w.shape), db


class Conv2dDweightGroupsForgotten(CourseLayers):
    """conv2d dW as if groups = 1, each filter's gradient gathering the other groups' channels too (cf. pytorch/pytorch#51430); right at
    groups 1."""

    name = "course_numpy (bug: conv2d dW ignores groups)"
    pairs = with_backward("conv2d", conv2d_backward_dweight_groups_forgotten)


def conv2d_backward_dweight_channel_tiles(dout, cache):
    x_padded, w, x_cols, conv_param = cache
    dx, _, db = conv2d_backward(dout, cache)
    N, F, OH, OW = dout.shape
    _, Cg, KH, KW = w.shape
    G = conv_param["groups"]
    dout_rows = dout.reshape(N, G, F // G, OH * OW)
    cols = x_cols.reshape(N, G, Cg, KH * KW, OH * OW)
    dw = np.zeros((G, F // G, Cg, KH * KW))
    for tile in range(max(1, Cg // 4)):  # tiles of 4 input channels: a partial tile after a full one is never reached
        c = slice(4 * tile, 4 * tile + 4)
        dw[:, :, c] = np.einsum("ngfl,ngckl->gfck", dout_rows, cols[:, :, c])
    return dx, dw.reshape(w.shape), db


class Conv2dDweightChannelTiled(CourseLayers):
    """conv2d dW accumulated in tiles of 4 input channels, the loop bound max(1, C_in // 4) dropping the partial tile after the first (no
    public report); right when C_in / groups <= 4 or a multiple of 4."""

    name = "course_numpy (bug: conv2d dW in tiles of 4 input channels, the remainder dropped)"
    pairs = with_backward("conv2d", conv2d_backward_dweight_channel_tiles)


# ---- the pools ---------------------------------------------------------------------------------

def max_pool2d_backward_last_write_wins(dout, cache):
    x_shape, cols, argmax, pool_param = cache
    (KH, KW), (OH, OW) = pool_param["kernel"], pool_param["out"]
    _, i, j = patch_indices(1, KH, KW, OH, OW, pool_param["stride"], (1, 1))
    windows, rows = np.arange(OH * OW), np.arange(len(cols))[:, None]
    dx_padded = np.zeros(pool_param["padded_shape"])
    dx_padded[rows, 0, i[argmax, windows], j[argmax, windows]] = dout.reshape(len(cols), -1)  # "=" where "+=" belongs
    return unpad(dx_padded, pool_param["pad"]).reshape(x_shape)


class MaxPool2dLastWriteWins(CourseLayers):
    """max_pool2d dx[argmax] = dy, the last window writing an entry wins (FluxML/NNlib.jl#205, ahrefs/ocannl#512); right unless one entry
    is the maximum of two windows, so whenever windows do not overlap (stride >= kernel)."""

    name = "course_numpy (bug: max_pool2d backward assigns instead of accumulating)"
    pairs = with_backward("max_pool2d", max_pool2d_backward_last_write_wins)


def max_pool2d_backward_ties_all(dout, cache):
    x_shape, cols, argmax, pool_param = cache
    maxima = cols == np.max(cols, axis=1, keepdims=True)
    return pool_backward(maxima * dout.reshape(len(cols), 1, -1), x_shape, pool_param)  # every maximum gets the window's dy


class MaxPool2dTiesAll(CourseLayers):
    """max_pool2d dy sent to every entry equal to the window's maximum (Theano/Theano#5404's behaviour 1; cf. facebookresearch/CrypTen#90):
    no tie rule, the window's gradient exceeds dy; right when no window has a tie."""

    name = "course_numpy (bug: max_pool2d gradient to every tied maximum)"
    pairs = with_backward("max_pool2d", max_pool2d_backward_ties_all)


def avg_pool2d_backward_kernel_area(dout, cache):
    x_shape, divisor, pool_param = cache
    KH, KW = pool_param["kernel"]
    return avg_pool2d_backward(dout, (x_shape, KH * KW, pool_param))  # always the kernel area


class AvgPool2dCountIncludePadForwardOnly(CourseLayers):
    """avg_pool2d count_include_pad=False in the forward only, the backward dividing by the kernel area (cf. tracel-ai/burn#5604); right
    when padding = 0 or count_include_pad = True."""

    name = "course_numpy (bug: avg_pool2d count_include_pad in the forward only)"
    pairs = with_backward("avg_pool2d", avg_pool2d_backward_kernel_area)


# ---- attention ---------------------------------------------------------------------------------

def attention_backward_ignores_causal(dout, cache):
    q, k, v, mask, causal, scale, P = cache
    P = attention_probs(q, k, scale, attention_allowed(q.shape[-2], k.shape[-2], mask, False))  # recomputed, causal forgotten
    return attention_grads(dout, q, k, v, P, scale)


class AttentionBackwardIgnoresCausal(CourseLayers):
    """attention's backward recomputes P without the causal mask, as the fused-attention tutorial's backward ignores ctx.causal
    (triton-lang/triton#4541); right when causal is False."""

    name = "course_numpy (bug: attention backward ignores causal)"
    pairs = with_backward("attention", attention_backward_ignores_causal)


def attention_backward_causal_bottom_right(dout, cache):
    q, k, v, mask, causal, scale, P = cache
    Lq, Lk = q.shape[-2], k.shape[-2]
    allowed = attention_allowed(Lq, Lk, mask, False)
    if causal:
        allowed &= np.tril(np.ones((Lq, Lk), dtype=bool), Lk - Lq)  # query i sees keys j <= i + Lk - Lq
    P = np.nan_to_num(attention_probs(q, k, scale, allowed))  # a query that sees no key (Lq > Lk) gets P = 0
    return attention_grads(dout, q, k, v, P, scale)


class AttentionCausalBottomRightBackward(CourseLayers):
    """attention's backward aligns the causal mask bottom-right, the forward top-left (the mirror of xlite-dev/ffpa-attn#300); right when
    Lq == Lk or causal is False."""

    name = "course_numpy (bug: attention backward's causal mask aligned bottom-right)"
    pairs = with_backward("attention", attention_backward_causal_bottom_right)


def attention_backward_dv_key_blocks(dout, cache):
    q, k, v, mask, causal, scale, P = cache
    dq, dk, _ = attention_grads(dout, q, k, v, P, scale)
    dv = np.zeros_like(v)
    for block in range(max(1, k.shape[-2] // 32)):  # blocks of 32 keys: a partial block after a full one is never reached
        keys = slice(32 * block, 32 * block + 32)
        dv[..., keys, :] = P[..., keys].swapaxes(-1, -2) @ dout
    return dq, dk, dv


class AttentionDvBlocked(CourseLayers):
    """attention dV accumulated over blocks of 32 keys, the partial block after the first full ones dropped (cf.
    amorehead/jvp_flash_attention#13, a backward that needs the length divisible by 32); right when Lk <= 32 or a multiple of 32."""

    name = "course_numpy (bug: attention dV in blocks of 32 keys, the remainder dropped)"
    pairs = with_backward("attention", attention_backward_dv_key_blocks)


def attention_backward_scale_twice(dout, cache):
    q, k, v, mask, causal, scale, P = cache
    dv = P.swapaxes(-1, -2) @ dout
    dP = dout @ v.swapaxes(-1, -2)
    dS = P * (dP - np.sum(dP * P, axis=-1, keepdims=True)) * scale  # the scores' scale taken into dS ...
    dq = dS @ k * scale  # ... and again here
    dk = dS.swapaxes(-1, -2) @ q * scale
    return dq, dk, dv


class AttentionScaleTwice(CourseLayers):
    """attention dS multiplied by the scale and dQ, dK by it again (no public report); right when scale = 1 (E = 1 with the default
    scale)."""

    name = "course_numpy (bug: attention backward applies the scale twice)"
    pairs = with_backward("attention", attention_backward_scale_twice)


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
    "conv2d_dx_without_flip": Conv2dDxWithoutFlip,
    "conv2d_padding_forward_only": Conv2dPaddingForwardOnly,
    "conv2d_backward_stride_one": Conv2dBackwardStrideOne,
    "conv2d_dweight_without_dilation": Conv2dDweightWithoutDilation,
    "conv2d_dweight_groups_forgotten": Conv2dDweightGroupsForgotten,
    "conv2d_dweight_channel_tiled": Conv2dDweightChannelTiled,
    "max_pool2d_last_write_wins": MaxPool2dLastWriteWins,
    "max_pool2d_ties_all": MaxPool2dTiesAll,
    "avg_pool2d_count_include_pad_forward_only": AvgPool2dCountIncludePadForwardOnly,
    "attention_backward_ignores_causal": AttentionBackwardIgnoresCausal,
    "attention_causal_bottom_right_backward": AttentionCausalBottomRightBackward,
    "attention_dv_blocked": AttentionDvBlocked,
    "attention_scale_twice": AttentionScaleTwice,
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
    "conv2d_dx_without_flip": ("conv2d", "x"),
    "conv2d_padding_forward_only": ("conv2d", "x"),
    "conv2d_backward_stride_one": ("conv2d", "x"),
    "conv2d_dweight_without_dilation": ("conv2d", "weight"),
    "conv2d_dweight_groups_forgotten": ("conv2d", "weight"),
    "conv2d_dweight_channel_tiled": ("conv2d", "weight"),  # size-dependent: THRESHOLDS
    "max_pool2d_last_write_wins": ("max_pool2d", "x"),
    "max_pool2d_ties_all": ("max_pool2d", "x"),
    "avg_pool2d_count_include_pad_forward_only": ("avg_pool2d", "x"),
    "attention_backward_ignores_causal": ("attention", "v"),
    "attention_causal_bottom_right_backward": ("attention", "v"),
    "attention_dv_blocked": ("attention", "v"),  # size-dependent: THRESHOLDS
    "attention_scale_twice": ("attention", "q"),
}

# The size-dependent bugs' smallest counterexamples: (which size, its value, the diagnosis tag), as
# tests/broken_sizes.py's THRESHOLDS. Each is right up to one tile and at every multiple of the tile:
# D <= 8 or D % 8 == 0; C_in (a group's input channels) <= 4 or C_in % 4 == 0; Lk <= 32 or Lk % 32 == 0.
THRESHOLDS = {
    "ln_row_sums_in_chunks": ("normalized size D = prod(normalized_shape)", 9, "%8"),
    "conv2d_dweight_channel_tiled": ("C_in", 5, "%4"),
    "attention_dv_blocked": ("Lk", 33, "%32"),
}

globals().update(BUGS)  # tests.broken_layers:bn_dx_without_gamma names one for the command line
