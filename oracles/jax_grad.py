"""JAX grad as an oracle: the contract's network built from jax.nn in float64, on the CPU.

``jax.value_and_grad`` of the loss (the log losses from z, as log_softmax and softplus) gives
dL/dW(l) and dL/db(l); gelu is jax.nn's exact erfc form. At the kinks jax.nn keeps its own
convention, declared in ``info.kink_derivatives``: relu'(0) = 0 as in the contract, but
leaky_relu'(0) = 1 where the contract takes 0.01.

Every network is embedded in a padded one (widths, batch and depth rounded up to powers of two,
at least MIN_PADDED; zero neurons, identity layers, masks) so that one jit-compiled function
serves many architectures: why and how, docs/oracles.md.

JAX's float64 mode (``jax.enable_x64``) is on only inside the oracle's own calls: a user's JAX code
in the same process keeps its own setting.
"""

from __future__ import annotations

import contextlib
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from chainrule.contract import KINKED, LEAKY_SLOPE
from chainrule.oracles.base import OracleGradients, OracleInfo

__all__ = ["JaxGrad"]

MIN_PADDED = 8  # smallest padded depth, width or batch: one compilation covers small networks
_CPU = jax.devices("cpu")[0]

# sigma(z); ``real`` marks the real neurons (columns) of the layer, which only softmax needs.
ACTIVATIONS = {
    "identity": lambda z, real: z,
    "relu": lambda z, real: jax.nn.relu(z),
    "leaky_relu": lambda z, real: jax.nn.leaky_relu(z, negative_slope=LEAKY_SLOPE),
    "sigmoid": lambda z, real: jax.nn.sigmoid(z),
    "tanh": lambda z, real: jnp.tanh(z),
    "softplus": lambda z, real: jax.nn.softplus(z),
    "elu": lambda z, real: jax.nn.elu(z),
    "gelu": lambda z, real: jax.nn.gelu(z, approximate=False),
    "silu": lambda z, real: jax.nn.silu(z),
    "softmax": lambda z, real: jax.nn.softmax(z, axis=1, where=real),
}


def _log_softmax(z, real):
    return jnp.where(real, jax.nn.log_softmax(z, axis=1, where=real), 0.0)  # 0, not -inf, off the real columns


# N * L per output entry (k, j), from the output layer's z and a; summed over real entries, / N.
LOSSES = {
    "mse": lambda z, a, Y, real: (a - Y) ** 2,
    "cross_entropy": lambda z, a, Y, real: -Y * _log_softmax(z, real),
    "binary_cross_entropy": lambda z, a, Y, real: Y * jax.nn.softplus(-z) + (1.0 - Y) * jax.nn.softplus(z),
}

_ACTIVATION_CODES = {name: code for code, name in enumerate(ACTIVATIONS)}
_LOSS_CODES = {name: code for code, name in enumerate(LOSSES)}


def _network_loss(params, X, Y, activations, loss, sizes, n):
    """L of the real network inside a padded one, and per layer whether a real z is exactly 0.

    ``activations`` and ``loss`` are codes, ``sizes`` the real widths, ``n`` the real batch.
    """
    real_rows = (jnp.arange(X.shape[0]) < n)[:, None]
    a = X
    hits = []
    for l, (W, b) in enumerate(params):
        real = jnp.arange(W.shape[0]) < sizes[l + 1]
        z = a @ W.T + b
        a = lax.switch(activations[l], tuple(ACTIVATIONS.values()), z, real)
        hits.append(jnp.any((z == 0) & real & real_rows))
    entries = lax.switch(loss, tuple(LOSSES.values()), z, a, Y, real)
    return jnp.where(real & real_rows, entries, 0.0).sum() / n, jnp.stack(hits)


# XLA's backend optimisation level 0 halves the compile time (about 2.5 s instead of 4.7 s for
# depth 8, widths 8, batch 8 on two cores); the run time of these tiny programs is unchanged.
_value_and_grad = jax.jit(
    jax.value_and_grad(_network_loss, has_aux=True),
    compiler_options={"xla_backend_optimization_level": 0},
)


def _padded(n: int) -> int:
    """n rounded up to a power of two, at least MIN_PADDED."""
    return max(MIN_PADDED, 1 << (n - 1).bit_length())


def _pad(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A new float64 array of ``shape``: ``array`` in the leading corner, zeros elsewhere."""
    out = np.zeros(shape)
    out[tuple(slice(0, n) for n in np.shape(array))] = array
    return out


@contextlib.contextmanager
def _float64():
    """JAX in float64 on the CPU for the duration, whatever the process's own setting."""
    with jax.enable_x64(True), jax.default_device(_CPU):
        yield


def _kink_derivatives() -> dict[str, float]:
    """d sigma / dz at z = 0, measured by jax.grad on this module's own activations."""
    return {name: float(jax.grad(partial(ACTIVATIONS[name], real=True))(0.0)) for name in KINKED}


class JaxGrad:
    """The contract's network in JAX; gradients by jax.value_and_grad."""

    name = "jax"

    def __init__(self) -> None:
        with _float64():
            kink_derivatives = _kink_derivatives()
        self.info = OracleInfo(
            name=self.name, framework="jax", version=jax.__version__,
            available=True, exact=True, kink_derivatives=kink_derivatives,
        )

    def gradients(self, arch, params, X, Y) -> OracleGradients:
        """The loss, (dL/dW, dL/db) per layer, and the kinked activations hit at exactly z = 0."""
        widths = [_padded(n) for n in arch.sizes]
        extra = _padded(len(params)) - len(params)  # identity layers in front of layer 1
        identity = (np.eye(widths[0]), np.zeros(widths[0]))
        real = [(_pad(W, (m, n)), _pad(b, (m,))) for (W, b), n, m in zip(params, widths, widths[1:])]
        codes = [_ACTIVATION_CODES["identity"]] * extra + [_ACTIVATION_CODES[name] for name in arch.activations]
        sizes = [arch.sizes[0]] * extra + list(arch.sizes)
        rows = _padded(len(X))
        with _float64():
            (loss, hits), padded_grads = _value_and_grad(
                [identity] * extra + real, _pad(X, (rows, widths[0])), _pad(Y, (rows, widths[-1])),
                np.array(codes), _LOSS_CODES[arch.loss], np.array(sizes), len(X),
            )
        grads = [
            (np.asarray(dW)[: W.shape[0], : W.shape[1]].copy(), np.asarray(db)[: b.shape[0]].copy())
            for (W, b), (dW, db) in zip(params, padded_grads[extra:])
        ]
        hit = np.asarray(hits)[extra:]
        kinks = frozenset(name for name, h in zip(arch.activations, hit) if h and name in KINKED)
        return OracleGradients(float(loss), grads, trusted=None, kinks=kinks)

    def loss_and_gradients(self, arch, params, X, Y) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
        result = self.gradients(arch, params, X, Y)
        return result.loss, result.grads
