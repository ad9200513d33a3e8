"""JAX as a judge of the layer contract: each layer from jax.nn / jax.numpy in float64 on the CPU,
its vector-Jacobian product by ``jax.vjp``.

The meanings are torch.nn.functional's (docs/layers.md), written here: the norms from their
definition (mean and biased variance over the normalised axes, (x - mean) / sqrt(var + eps), then
weight and bias per feature or channel), cross_entropy as the mean of -log_softmax at the targets.
gelu is the exact erf form (jax.nn.gelu's default is the tanh approximation); leaky_relu is
where(x > 0, x, 0.01 x), since jax.nn.leaky_relu'(0) = 1 where the contract takes 0.01;
jax.nn.relu'(0) = 0 as in the contract.

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
