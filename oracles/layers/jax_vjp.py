"""JAX as a judge of the layer contract: each layer from jax.nn / jax.numpy in float64 on the CPU,
its vector-Jacobian product by ``jax.vjp``.

The meanings are torch.nn.functional's (docs/layers.md), written here: the norms from their
definition (mean and biased variance over the normalised axes, (x - mean) / sqrt(var + eps), then
weight and bias per feature or channel), cross_entropy as the mean of -log_softmax at the targets.
gelu is the exact erf form (jax.nn.gelu's default is the tanh approximation); leaky_relu is
where(x > 0, x, 0.01 x), since jax.nn.leaky_relu'(0) = 1 where the contract takes 0.01;
jax.nn.relu'(0) = 0 as in the contract.

conv1d / conv2d are the zero-padded x's windows, one strided lax.slice a kernel tap, stacked
and contracted with the weight per group (jnp.einsum), so that jax.vjp differentiates slices and
a product. Not lax.conv_general_dilated: the gradient XLA builds for it (a convolution with
lhs_dilation) aborts the process in jaxlib 0.10.2 when a stride exceeds 1 and the kernel is wider
than dy along an axis (x (1, 1, 4, 4), weight (1, 1, 2, 4), stride [2, 1], padding 1: "Window
dimensions do not match RHS shape", SIGABRT). The pools lax.reduce_window: max with -inf padding (its gradient, XLA's
select-and-scatter, sends a tied window's gradient to the first maximum in row-major order, the
contract's rule: a test holds it to that), avg a window sum divided by the kernel's area or, without
count_include_pad, by the window sum of ones over the unpadded x. attention is written from jnp ops,
softmax(q k^T scale, masked) v with the mask AND the top-left causal mask: jax.nn.dot_product_attention
rounds its softmax to float32 and needs v of k's shape (Ev = E).

JAX's float64 mode (``jax.enable_x64``) is on only inside ``vjp``: the process's own JAX setting
is left as it was. Each (layer, config) is one jit-compiled function, compiled again for each new
set of shapes: eager jax.vjp compiles every primitive of the layer for each new shape, which
costs more than compiling the whole vector-Jacobian product once.
"""

from __future__ import annotations

import contextlib
import json
from functools import cache

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from chainrule.contract import LEAKY_SLOPE
from chainrule.layers.contract import LAYERS

__all__ = ["FORWARD", "compiled", "vjp"]

_CPU = jax.devices("cpu")[0]


def _normalized(x, axes: tuple[int, ...], eps: float):
    """(x - mean) / sqrt(var + eps) over ``axes``, biased variance."""
    centred = x - jnp.mean(x, axis=axes, keepdims=True)
    return centred / jnp.sqrt(jnp.mean(centred * centred, axis=axes, keepdims=True) + eps)


def _per_channel(a, ndim: int):
    """A (C,) array shaped to broadcast over (N, C, *spatial) of rank ``ndim``."""
    return a.reshape((-1,) + (1,) * (ndim - 2))


def _layer_norm(c, x, weight, bias):
    rank = 1 if isinstance(c["normalized_shape"], int) else len(c["normalized_shape"])
    return _normalized(x, tuple(range(x.ndim - rank, x.ndim)), c["eps"]) * weight + bias


def _batch_norm(c, x, weight, bias):
    y = _normalized(x, (0,) + tuple(range(2, x.ndim)), c["eps"])
    return y * _per_channel(weight, x.ndim) + _per_channel(bias, x.ndim)


def _group_norm(c, x, weight, bias):
    y = _normalized(x.reshape(x.shape[0], c["num_groups"], -1), (2,), c["eps"]).reshape(x.shape)
    return y * _per_channel(weight, x.ndim) + _per_channel(bias, x.ndim)


def _per_axis(value, rank: int) -> tuple[int, ...]:
    """A config's int or list (one per spatial axis) as one int per axis."""
    return tuple(value) if isinstance(value, list) else (value,) * rank


def _windows(x, kernel, stride, dilation, padding):
    """x (N, C, *L) zero-padded, as its windows (N, C, prod K, *O): one strided slice a kernel tap,
    O = (L + 2p - d (K - 1) - 1) // s + 1."""
    padded = jnp.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    out = [(n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(padded.shape[2:], kernel, stride, dilation)]
    taps = []
    for tap in np.ndindex(*kernel):
        start = [t * d for t, d in zip(tap, dilation)]
        limit = [b + s * (o - 1) + 1 for b, s, o in zip(start, stride, out)]
        taps.append(lax.slice(padded, (0, 0, *start), (*padded.shape[:2], *limit), (1, 1, *stride)))
    return jnp.stack(taps, axis=2)


def _conv(c, x, weight, bias):
    """Cross-correlation of x (N, C_in, *spatial) with weight (C_out, C_in/groups, *kernel), plus
    bias: per group g, weight[g] (C_out/G, C_in/G * K) times the windows (C_in/G * K, positions)."""
    rank, groups = x.ndim - 2, c["groups"]
    windows = _windows(x, weight.shape[2:], *(_per_axis(c[key], rank) for key in ("stride", "dilation", "padding")))
    out = windows.shape[3:]
    columns = windows.reshape(x.shape[0], groups, -1, int(np.prod(out)))
    y = jnp.einsum("goi,ngip->ngop", weight.reshape(groups, weight.shape[0] // groups, -1), columns)
    return y.reshape(x.shape[0], weight.shape[0], *out) + _per_channel(bias, rank + 2)


def _pool(c, x, init, operation):
    """reduce_window over (H, W): window kernel_size, stride (None: kernel_size), padding both sides."""
    kernel = _per_axis(c["kernel_size"], 2)
    stride = kernel if c["stride"] is None else _per_axis(c["stride"], 2)
    padding = [(0, 0), (0, 0)] + [(p, p) for p in _per_axis(c["padding"], 2)]
    return lax.reduce_window(x, init, operation, (1, 1) + kernel, (1, 1) + stride, padding)


def _avg_pool2d(c, x):
    """The window's sum over the kernel's area, or (count_include_pad False) over its real entries."""
    total = _pool(c, x, 0.0, lax.add)
    if c["count_include_pad"]:
        return total / np.prod(_per_axis(c["kernel_size"], 2))
    return total / _pool(c, jnp.ones_like(x), 0.0, lax.add)


def _attention(c, q, k, v, mask=None):
    """softmax(q k^T scale) v over the keys allowed by mask AND (causal) j <= i."""
    allowed = jnp.ones((q.shape[-2], k.shape[-2]), dtype=bool) if mask is None else mask
    if c["causal"]:
        allowed = allowed & jnp.tril(jnp.ones_like(allowed))
    scale = 1.0 / np.sqrt(q.shape[-1]) if c["scale"] is None else c["scale"]
    logits = jnp.where(allowed, jnp.einsum("nhqe,nhke->nhqk", q, k) * scale, -jnp.inf)
    return jnp.einsum("nhqk,nhkv->nhqv", jax.nn.softmax(logits, axis=-1), v)


def _cross_entropy(c, input, target):
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(input, axis=1), target[:, None], axis=1))


# layer -> forward(config, **inputs): y from the contract's inputs as jax arrays.
FORWARD = {
    "linear": lambda c, x, weight, bias: x @ weight.T + bias,
    "identity": lambda c, x: x,
    "relu": lambda c, x: jax.nn.relu(x),
    "leaky_relu": lambda c, x: jnp.where(x > 0, x, LEAKY_SLOPE * x),
    "sigmoid": lambda c, x: jax.nn.sigmoid(x),
    "tanh": lambda c, x: jnp.tanh(x),
    "softplus": lambda c, x: jnp.logaddexp(x, 0.0),
    "elu": lambda c, x: jax.nn.elu(x),
    "gelu": lambda c, x: jax.nn.gelu(x, approximate=False),
    "silu": lambda c, x: jax.nn.silu(x),
    "softmax": lambda c, x: jax.nn.softmax(x, axis=c["axis"]),
    "log_softmax": lambda c, x: jax.nn.log_softmax(x, axis=c["axis"]),
    "layer_norm": _layer_norm,
    "batch_norm": _batch_norm,
    "group_norm": _group_norm,
    "embedding": lambda c, indices, weight: weight[indices],
    "dropout": lambda c, x, mask: x * mask / (1.0 - c["p"]),
    "conv1d": _conv,
    "conv2d": _conv,
    "max_pool2d": lambda c, x: _pool(c, x, -jnp.inf, lax.max),
    "avg_pool2d": _avg_pool2d,
    "attention": _attention,
    "mse_loss": lambda c, input, target: jnp.mean((input - target) ** 2),
    "cross_entropy": _cross_entropy,
}


@contextlib.contextmanager
def _float64():
    """JAX in float64 on the CPU for the duration, whatever the process's own setting."""
    with jax.enable_x64(True), jax.default_device(_CPU):
        yield


@cache
def _compiled(layer: str, static: str):
    """jit of (differentiable, fixed, floats, dy) -> (y, grads) for one layer and the config's
    non-float values (JSON, sorted): its float values (eps, p) are arguments, not constants, so a
    new eps compiles nothing. XLA's optimisation level 0 compiles these tiny programs faster."""
    names = LAYERS[layer].differentiable

    def pullback(differentiable, fixed, floats, dy):
        config = json.loads(static) | floats
        y, pull = jax.vjp(lambda *args: FORWARD[layer](config, **fixed, **dict(zip(names, args))), *differentiable)
        return y, pull(dy)

    return jax.jit(pullback, compiler_options={"xla_backend_optimization_level": 0})


_SEEN: set[tuple] = set()  # (layer, non-float config, shapes and dtypes) compiled so far


def _key(layer: str, config: dict, inputs: dict[str, np.ndarray], dy: np.ndarray) -> tuple[tuple, str]:
    static = json.dumps({k: v for k, v in config.items() if not isinstance(v, float)}, sort_keys=True)
    shapes = tuple((n, a.shape, a.dtype.str) for n, a in inputs.items()) + (np.shape(dy),)
    return (layer, static, shapes), static


def compiled(layer: str, config: dict, inputs: dict[str, np.ndarray], dy: np.ndarray) -> bool:
    """Whether this question's program is compiled already: asking it costs microseconds, not a compilation."""
    return _key(layer, config, inputs, dy)[0] in _SEEN


def vjp(layer: str, config: dict, inputs: dict[str, np.ndarray], dy: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(y, grads): the layer's output and grads[n] = J_n^T dy for each differentiable input n,
    fresh float64 arrays. ``config`` is complete (full_config); the inputs are never changed."""
    names = LAYERS[layer].differentiable
    key, static = _key(layer, config, inputs, dy)
    _SEEN.add(key)
    with _float64():
        y, grads = _compiled(layer, static)(
            tuple(jnp.asarray(inputs[n]) for n in names),
            {n: jnp.asarray(a) for n, a in inputs.items() if n not in names},
            {k: jnp.asarray(v) for k, v in config.items() if isinstance(v, float)},
            jnp.asarray(dy, dtype=jnp.float64),
        )
        return np.array(y, dtype=np.float64), {n: np.array(g, dtype=np.float64) for n, g in zip(names, grads)}
