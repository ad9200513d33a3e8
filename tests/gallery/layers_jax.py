"""Layers as ``jax.custom_vjp`` functions with hand-written fwd and bwd, as JAX users write a layer
whose gradient they want to control: the config in ``nondiff_argnums`` (bwd receives it first), the
residuals saved by fwd, one cotangent per other argument from bwd (None for index arrays).
``chainrule.jax_custom_vjp_layers`` turns the dict of them into a layer source; it switches x64 on
for its own calls only, so nothing here touches JAX's global setting.

Not here (not exercised): identity and leaky_relu. relu'(0) = 0 (``jnp.where(x > 0, ...)``). One
conv serves conv1d and conv2d (x's rank picks), with every stride, padding, dilation and groups;
max_pool2d sends a tied window's gradient to its first maximum (``jnp.argmax``).

    chainrule check tests.gallery.layers_jax:SOURCE
"""

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import erf

import chainrule

__all__ = ["SOURCE"]


def elementwise(f, f_prime):
    """A custom_vjp layer y = f(x) with dx = dy * f'(x)."""
    layer = jax.custom_vjp(f)
    layer.defvjp(lambda x: (f(x), x), lambda x, g: (g * f_prime(x),))
    return layer


def _gelu_prime(x):
    return 0.5 * (1 + erf(x / math.sqrt(2))) + x * jnp.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


relu = elementwise(lambda x: jnp.where(x > 0, x, 0.0), lambda x: jnp.where(x > 0, 1.0, 0.0))
sigmoid = elementwise(jax.nn.sigmoid, lambda x: jax.nn.sigmoid(x) * (1 - jax.nn.sigmoid(x)))
tanh = elementwise(jnp.tanh, lambda x: 1 - jnp.tanh(x) ** 2)
softplus = elementwise(lambda x: jnp.logaddexp(x, 0.0), jax.nn.sigmoid)
elu = elementwise(
    lambda x: jnp.where(x > 0, x, jnp.expm1(jnp.minimum(x, 0.0))), lambda x: jnp.where(x > 0, 1.0, jnp.exp(jnp.minimum(x, 0.0)))
)
gelu = elementwise(lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2))), _gelu_prime)
silu = elementwise(lambda x: x * jax.nn.sigmoid(x), lambda x: jax.nn.sigmoid(x) * (1 + x * (1 - jax.nn.sigmoid(x))))


@jax.custom_vjp
def linear(x, weight, bias):
    return x @ weight.T + bias


def _linear_fwd(x, weight, bias):
    return linear(x, weight, bias), (x, weight)


def _linear_bwd(res, g):
    x, weight = res
    return g @ weight, g.T @ x, g.sum(0)


linear.defvjp(_linear_fwd, _linear_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(1,))
def softmax(x, axis):
    z = x - x.max(axis, keepdims=True)
    e = jnp.exp(z)
    return e / e.sum(axis, keepdims=True)


def _softmax_fwd(x, axis):
    y = softmax(x, axis)
    return y, y


def _softmax_bwd(axis, y, g):
    return (y * (g - (g * y).sum(axis, keepdims=True)),)


softmax.defvjp(_softmax_fwd, _softmax_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(1,))
def log_softmax(x, axis):
    z = x - x.max(axis, keepdims=True)
    return z - jnp.log(jnp.exp(z).sum(axis, keepdims=True))


def _log_softmax_fwd(x, axis):
    y = log_softmax(x, axis)
    return y, y


def _log_softmax_bwd(axis, y, g):
    return (g - jnp.exp(y) * g.sum(axis, keepdims=True),)


log_softmax.defvjp(_log_softmax_fwd, _log_softmax_bwd)


def _normalize(x, axes, eps):
    mean = x.mean(axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axes, keepdims=True)
    rstd = 1 / jnp.sqrt(var + eps)
    return (x - mean) * rstd, rstd


def _normalize_bwd(dxhat, xhat, rstd, axes):
    """dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), the means over ``axes``."""
    return rstd * (dxhat - dxhat.mean(axes, keepdims=True) - xhat * (dxhat * xhat).mean(axes, keepdims=True))


@partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def layer_norm(x, weight, bias, normalized_shape, eps):
    return _layer_norm_fwd(x, weight, bias, normalized_shape, eps)[0]


def _layer_norm_fwd(x, weight, bias, normalized_shape, eps):
    axes = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    xhat, rstd = _normalize(x, axes, eps)
    return xhat * weight + bias, (xhat, weight, rstd)


def _layer_norm_bwd(normalized_shape, eps, res, g):
    xhat, weight, rstd = res
    axes = tuple(range(xhat.ndim - len(normalized_shape), xhat.ndim))
    batch = tuple(range(xhat.ndim - len(normalized_shape)))
    return _normalize_bwd(g * weight, xhat, rstd, axes), (g * xhat).sum(batch), g.sum(batch)


layer_norm.defvjp(_layer_norm_fwd, _layer_norm_bwd)


def _per_channel(a, ndim):
    return a.reshape((1, -1) + (1,) * (ndim - 2))


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def batch_norm(x, weight, bias, eps):
    return _batch_norm_fwd(x, weight, bias, eps)[0]


def _batch_norm_fwd(x, weight, bias, eps):
    axes = (0, *range(2, x.ndim))
    xhat, rstd = _normalize(x, axes, eps)
    return xhat * _per_channel(weight, x.ndim) + _per_channel(bias, x.ndim), (xhat, weight, rstd)


def _batch_norm_bwd(eps, res, g):
    xhat, weight, rstd = res
    axes = (0, *range(2, xhat.ndim))
    return _normalize_bwd(g * _per_channel(weight, g.ndim), xhat, rstd, axes), (g * xhat).sum(axes), g.sum(axes)


batch_norm.defvjp(_batch_norm_fwd, _batch_norm_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def group_norm(x, weight, bias, num_groups, eps):
    return _group_norm_fwd(x, weight, bias, num_groups, eps)[0]


def _group_norm_fwd(x, weight, bias, num_groups, eps):
    grouped = x.reshape(x.shape[0], num_groups, -1)
    xhat, rstd = _normalize(grouped, (2,), eps)
    xhat = xhat.reshape(x.shape)
    return xhat * _per_channel(weight, x.ndim) + _per_channel(bias, x.ndim), (xhat, weight, rstd)


def _group_norm_bwd(num_groups, eps, res, g):
    xhat, weight, rstd = res
    N, axes = g.shape[0], (0, *range(2, g.ndim))
    dxhat = (g * _per_channel(weight, g.ndim)).reshape(N, num_groups, -1)
    dx = _normalize_bwd(dxhat, xhat.reshape(N, num_groups, -1), rstd, (2,)).reshape(g.shape)
    return dx, (g * xhat).sum(axes), g.sum(axes)


group_norm.defvjp(_group_norm_fwd, _group_norm_bwd)


@jax.custom_vjp
def embedding(indices, weight):
    return weight[indices]


def _embedding_fwd(indices, weight):
    return weight[indices], (indices, weight.shape)


def _embedding_bwd(res, g):
    indices, shape = res
    return None, jnp.zeros(shape, g.dtype).at[indices].add(g)


embedding.defvjp(_embedding_fwd, _embedding_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def dropout(x, mask, p):
    return jnp.where(mask, x / (1 - p), 0.0)


def _dropout_fwd(x, mask, p):
    return dropout(x, mask, p), mask


def _dropout_bwd(p, mask, g):
    return jnp.where(mask, g / (1 - p), 0.0), None


dropout.defvjp(_dropout_fwd, _dropout_bwd)


@jax.custom_vjp
def mse_loss(input, target):
    return jnp.mean((input - target) ** 2)


def _mse_loss_fwd(input, target):
    return mse_loss(input, target), input - target


def _mse_loss_bwd(diff, g):
    grad = 2 * g * diff / diff.size
    return grad, -grad


mse_loss.defvjp(_mse_loss_fwd, _mse_loss_bwd)


@jax.custom_vjp
def cross_entropy(input, target):
    return _cross_entropy_fwd(input, target)[0]


def _cross_entropy_fwd(input, target):
    log_probs = jax.nn.log_softmax(input, axis=1)
    loss = -jnp.take_along_axis(log_probs, target[:, None], axis=1).mean()
    return loss, (log_probs, target)


def _cross_entropy_bwd(res, g):
    log_probs, target = res
    N = log_probs.shape[0]
    grad = jnp.exp(log_probs).at[jnp.arange(N), target].add(-1.0)
    return grad * g / N, None


cross_entropy.defvjp(_cross_entropy_fwd, _cross_entropy_bwd)


def _per_axis(value, n):
    """A config value as one int per spatial axis: an int, or a tuple of them (the wrapper passes lists as tuples)."""
    return tuple(value) if isinstance(value, tuple) else (value,) * n


# lax's dimension numbers by the number of spatial axes: the convolution, and the one giving dweight, which
# contracts over the batch (x's N as the feature axis, its channels as the batch, dy as the kernel).
_CONV_DIMS = {1: ("NCH", "OIH", "NCH"), 2: ("NCHW", "OIHW", "NCHW")}
_DWEIGHT_DIMS = {1: ("CNH", "IOH", "CNH"), 2: ("CNHW", "IOHW", "CNHW")}


@partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5, 6))
def conv(x, weight, bias, stride, padding, dilation, groups):
    return _conv_fwd(x, weight, bias, stride, padding, dilation, groups)[0]


def _conv_fwd(x, weight, bias, stride, padding, dilation, groups):
    n = x.ndim - 2
    stride, padding, dilation = (_per_axis(value, n) for value in (stride, padding, dilation))
    y = lax.conv_general_dilated(x, weight, stride, [(p, p) for p in padding], rhs_dilation=dilation,
                                 dimension_numbers=_CONV_DIMS[n], feature_group_count=groups)
    return y + _per_channel(bias, y.ndim), (x, weight)


def _conv_bwd(stride, padding, dilation, groups, res, g):
    """dx: dy with stride - 1 zeros put between its entries, convolved with the flipped kernel, in and out channels
    swapped group by group, padded d(K-1) - p, plus at the end the rows the stride's floor dropped. (Zeros put in by
    hand: XLA on CPU aborts on some of these convolutions given as lhs_dilation.) dweight: x, padded p less those rows
    at the end, convolved with dy, dy's positions spread by the stride, the kernel's offsets by the dilation, one
    group of channels per batch group."""
    x, weight = res
    n = x.ndim - 2
    stride, padding, dilation = (_per_axis(value, n) for value in (stride, padding, dilation))
    kernel = weight.shape[2:]
    C_out, C_in_group = weight.shape[:2]
    dropped = [L + 2 * p - d * (K - 1) - 1 - s * (O - 1)
               for L, p, d, K, s, O in zip(x.shape[2:], padding, dilation, kernel, stride, g.shape[2:])]
    spread = jnp.zeros(g.shape[:2] + tuple(s * (O - 1) + 1 for s, O in zip(stride, g.shape[2:])), g.dtype)
    spread = spread.at[(..., *(slice(None, None, s) for s in stride))].set(g)
    swapped = weight.reshape(groups, C_out // groups, C_in_group, *kernel).swapaxes(1, 2).reshape(-1, C_out // groups, *kernel)
    flipped = jnp.flip(swapped, axis=tuple(range(2, 2 + n)))
    edges = [(d * (K - 1) - p, d * (K - 1) - p + e) for d, K, p, e in zip(dilation, kernel, padding, dropped)]
    dx = lax.conv_general_dilated(spread, flipped, (1,) * n, edges, rhs_dilation=dilation,
                                  dimension_numbers=_CONV_DIMS[n], feature_group_count=groups)
    dweight = lax.conv_general_dilated(x, g, dilation, [(p, p - e) for p, e in zip(padding, dropped)], rhs_dilation=stride,
                                       dimension_numbers=_DWEIGHT_DIMS[n], batch_group_count=groups)
    return dx, dweight, g.sum((0, *range(2, g.ndim)))


conv.defvjp(_conv_fwd, _conv_bwd)


def _pool_config(kernel_size, stride, padding):
    """(kernel, stride, padding) as pairs; stride None is the kernel."""
    kernel = _per_axis(kernel_size, 2)
    return kernel, kernel if stride is None else _per_axis(stride, 2), _per_axis(padding, 2)


def _windows(size, kernel, stride, padding):
    """Each output position's window as flat indices into the padded (H + 2 ph) x (W + 2 pw) plane, row-major
    within the window: shape (H_out, W_out, kh kw). Shapes are static, so numpy."""
    (H, W), (kh, kw), (sh, sw), (ph, pw) = size, kernel, stride, padding
    Hp, Wp = H + 2 * ph, W + 2 * pw
    rows = np.arange((Hp - kh) // sh + 1)[:, None] * sh + np.arange(kh)
    cols = np.arange((Wp - kw) // sw + 1)[:, None] * sw + np.arange(kw)
    return (rows[:, None, :, None] * Wp + cols[None, :, None, :]).reshape(rows.shape[0], cols.shape[0], kh * kw)


def _unpad(flat, size, padding):
    """The (N, C, padded plane flattened) gradient back on x's (N, C, H, W): the padding's entries dropped."""
    (H, W), (ph, pw) = size, padding
    return flat.reshape(*flat.shape[:2], H + 2 * ph, W + 2 * pw)[:, :, ph:ph + H, pw:pw + W]


def _reduce_window(x, init, op, kernel, stride, padding):
    return lax.reduce_window(x, init, op, (1, 1, *kernel), (1, 1, *stride), ((0, 0), (0, 0), *((p, p) for p in padding)))


@partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def max_pool2d(x, kernel_size, stride, padding):
    return _reduce_window(x, -jnp.inf, lax.max, *_pool_config(kernel_size, stride, padding))


def _max_pool2d_fwd(x, kernel_size, stride, padding):
    return max_pool2d(x, kernel_size, stride, padding), x


def _max_pool2d_bwd(kernel_size, stride, padding, x, g):
    """Each window's dy added at its first maximum (argmax over the window's entries, padding -inf)."""
    kernel, stride, padding = _pool_config(kernel_size, stride, padding)
    N, C = x.shape[:2]
    windows = _windows(x.shape[2:], kernel, stride, padding)
    padded = jnp.pad(x, ((0, 0), (0, 0), *((p, p) for p in padding)), constant_values=-jnp.inf).reshape(N, C, -1)
    first = jnp.argmax(padded[:, :, windows], axis=-1)
    H_out, W_out = windows.shape[:2]
    where = jnp.asarray(windows)[np.arange(H_out)[:, None], np.arange(W_out), first]
    dx = jnp.zeros(padded.shape, g.dtype).at[np.arange(N)[:, None, None, None], np.arange(C)[:, None, None], where].add(g)
    return (_unpad(dx, x.shape[2:], padding),)


max_pool2d.defvjp(_max_pool2d_fwd, _max_pool2d_bwd)


def _avg_divisor(size, kernel, stride, padding, count_include_pad):
    """The kernel's area, or (count_include_pad False) the number of x's own entries in each window, (H_out, W_out)."""
    if count_include_pad:
        return kernel[0] * kernel[1]
    inside = np.pad(np.ones(size), [(p, p) for p in padding]).reshape(-1)
    return inside[_windows(size, kernel, stride, padding)].sum(-1)


@partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def avg_pool2d(x, kernel_size, stride, padding, count_include_pad):
    kernel, stride, padding = _pool_config(kernel_size, stride, padding)
    return _reduce_window(x, 0.0, lax.add, kernel, stride, padding) / _avg_divisor(x.shape[2:], kernel, stride, padding, count_include_pad)


def _avg_pool2d_fwd(x, kernel_size, stride, padding, count_include_pad):
    return avg_pool2d(x, kernel_size, stride, padding, count_include_pad), x.shape


def _avg_pool2d_bwd(kernel_size, stride, padding, count_include_pad, shape, g):
    """Each window's dy / divisor added to every entry of the window."""
    kernel, stride, padding = _pool_config(kernel_size, stride, padding)
    windows = _windows(shape[2:], kernel, stride, padding)
    share = g / _avg_divisor(shape[2:], kernel, stride, padding, count_include_pad)
    padded = (shape[0], shape[1], (shape[2] + 2 * padding[0]) * (shape[3] + 2 * padding[1]))
    dx = jnp.zeros(padded, g.dtype).at[:, :, windows].add(jnp.broadcast_to(share[..., None], share.shape + windows.shape[-1:]))
    return (_unpad(dx, shape[2:], padding),)


avg_pool2d.defvjp(_avg_pool2d_fwd, _avg_pool2d_bwd)


def _attention_scale(q, scale):
    return 1 / math.sqrt(q.shape[-1]) if scale is None else scale


@partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def attention(q, k, v, mask, causal, scale):
    return _attention_fwd(q, k, v, mask, causal, scale)[0]


def _attention_fwd(q, k, v, mask, causal, scale):
    allowed = jnp.ones((q.shape[-2], k.shape[-2]), bool) if mask is None else mask
    if causal:
        allowed = jnp.tril(allowed)
    scores = jnp.where(allowed, q @ k.swapaxes(-2, -1) * _attention_scale(q, scale), -jnp.inf)
    p = jax.nn.softmax(scores, axis=-1)
    return p @ v, (q, k, v, p)


def _attention_bwd(causal, scale, res, g):
    """dv = P^T dy, dP = dy v^T, dS = P (dP - rowsum(dP P)), dq = dS k scale, dk = dS^T q scale."""
    q, k, v, p = res
    scale = _attention_scale(q, scale)
    dp = g @ v.swapaxes(-2, -1)
    ds = p * (dp - (dp * p).sum(-1, keepdims=True))
    return ds @ k * scale, ds.swapaxes(-2, -1) @ q * scale, p.swapaxes(-2, -1) @ g, None


attention.defvjp(_attention_fwd, _attention_bwd)


SOURCE = chainrule.jax_custom_vjp_layers(
    {
        "linear": linear,
        "relu": relu,
        "sigmoid": sigmoid,
        "tanh": tanh,
        "softplus": softplus,
        "elu": elu,
        "gelu": gelu,
        "silu": silu,
        "softmax": softmax,
        "log_softmax": log_softmax,
        "layer_norm": layer_norm,
        "batch_norm": batch_norm,
        "group_norm": group_norm,
        "embedding": embedding,
        "dropout": dropout,
        "mse_loss": mse_loss,
        "cross_entropy": cross_entropy,
        "conv1d": conv,
        "conv2d": conv,
        "max_pool2d": max_pool2d,
        "avg_pool2d": avg_pool2d,
        "attention": attention,
    },
    name="jax_custom_vjp",
)
