"""Layers as ``jax.custom_vjp`` functions with hand-written fwd and bwd, as JAX users write a layer
whose gradient they want to control: the config in ``nondiff_argnums`` (bwd receives it first), the
residuals saved by fwd, one cotangent per other argument from bwd (None for index arrays).
``chainrule.jax_custom_vjp_layers`` turns the dict of them into a layer source; it switches x64 on
for its own calls only, so nothing here touches JAX's global setting.

Not here (not exercised): identity and leaky_relu. relu'(0) = 0 (``jnp.where(x > 0, ...)``).

    chainrule check tests.gallery.layers_jax:SOURCE
"""

import math
from functools import partial

import jax
import jax.numpy as jnp
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
    },
    name="jax_custom_vjp",
)
