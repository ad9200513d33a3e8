"""JAX in float64 as a JAX user writes a dense network: ``jax.value_and_grad`` of a loss written
with ``jax.nn`` (``relu``, ``leaky_relu``, ``softplus``, exact ``gelu``, ...), the log losses
from the output layer's logits through ``jax.nn.log_softmax`` and ``jax.nn.log_sigmoid``.

x64 is switched on for the call only (``jax.enable_x64``), so that the process's own JAX setting
is left as it was. jax.nn's kinks: relu'(0) = 0 as the contract's, but its leaky_relu takes the
z ≥ 0 branch at 0, so leaky_relu'(0) = 1: declared below.

    chainrule check tests.gallery.jax_nn:JaxNN
    chainrule check tests.gallery.jax_nn:JaxNNWrongElu
"""

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["JaxNN", "JaxNNWrongElu"]

ACTIVATIONS = {
    "identity": lambda z: z,
    "relu": jax.nn.relu,
    "leaky_relu": lambda z: jax.nn.leaky_relu(z, negative_slope=0.01),
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "softplus": jax.nn.softplus,
    "elu": jax.nn.elu,
    "gelu": lambda z: jax.nn.gelu(z, approximate=False),
    "silu": jax.nn.silu,
    "softmax": lambda z: jax.nn.softmax(z, axis=1),
}


class JaxNN:
    name = "jax-nn"
    kink_derivatives = {"leaky_relu": 1.0}  # jax.nn.leaky_relu is where(z >= 0, z, 0.01 z)
    sigma = ACTIVATIONS

    def loss_and_gradients(self, arch, params, X, Y):
        def loss(layers, X, Y):
            a = X
            for (W, b), name in zip(layers, arch.activations):
                z = a @ W.T + b
                a = self.sigma[name](z)
            if arch.loss == "mse":
                return jnp.sum((a - Y) ** 2) / len(X)
            if arch.loss == "cross_entropy":
                return -jnp.sum(Y * jax.nn.log_softmax(z, axis=1)) / len(X)
            return -jnp.sum(Y * jax.nn.log_sigmoid(z) + (1 - Y) * jax.nn.log_sigmoid(-z)) / len(X)

        with jax.enable_x64(True):
            layers = [(jnp.asarray(W), jnp.asarray(b)) for W, b in params]
            value, grads = jax.value_and_grad(loss)(layers, jnp.asarray(X), jnp.asarray(Y))
            return float(value), [(np.asarray(dW), np.asarray(db)) for dW, db in grads]


@jax.custom_jvp
def elu(z):
    return jnp.where(z > 0, z, jnp.expm1(jnp.minimum(z, 0.0)))


@elu.defjvp
def elu_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    a = elu(z)
    # The bug: for z ≤ 0, elu'(z) = exp(z) = a + 1; this takes it as a.
    return a, jnp.where(z > 0, 1.0, a) * dz


class JaxNNWrongElu(JaxNN):
    """The bug: elu with a custom JVP (reusing the forward's output) whose slope for z ≤ 0 is
    elu(z) = exp(z) − 1 instead of exp(z)."""

    name = "jax-nn (bug: elu' = elu for z <= 0)"
    sigma = {**ACTIVATIONS, "elu": elu}
