"""JAX in its default float32, as a JAX user writes a dense network: ``jax.value_and_grad`` of
the loss written with ``jax.nn`` (exact gelu, log_softmax and softplus for the log losses).

JAX keeps float32 unless x64 is switched on, so this member declares ``precision = "float32"``.
Its kink conventions are JAX's own: jax.nn.relu'(0) = 0, and this leaky_relu, written with
``jnp.where(z > 0, ...)``, has 0.01 there, as the contract does.

    chainrule check tests.gallery.jax_float32:JaxFloat32
"""

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["JaxFloat32"]

ACTIVATIONS = {
    "identity": lambda z: z,
    "relu": jax.nn.relu,
    "leaky_relu": lambda z: jnp.where(z > 0, z, 0.01 * z),
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "softplus": jax.nn.softplus,
    "elu": jax.nn.elu,
    "gelu": lambda z: jax.nn.gelu(z, approximate=False),
    "silu": jax.nn.silu,
    "softmax": lambda z: jax.nn.softmax(z, axis=1),
}


class JaxFloat32:
    name = "jax-float32"
    precision = "float32"

    def loss_and_gradients(self, arch, params, X, Y):
        def loss(layers, X, Y):
            a = X
            for (W, b), name in zip(layers, arch.activations):
                z = a @ W.T + b
                a = ACTIVATIONS[name](z)
            if arch.loss == "mse":
                return jnp.sum((a - Y) ** 2) / len(X)
            if arch.loss == "cross_entropy":
                return -jnp.sum(Y * jax.nn.log_softmax(z, axis=1)) / len(X)
            return jnp.sum(Y * jax.nn.softplus(-z) + (1 - Y) * jax.nn.softplus(z)) / len(X)

        layers = [(jnp.asarray(W, jnp.float32), jnp.asarray(b, jnp.float32)) for W, b in params]
        value, grads = jax.value_and_grad(loss)(layers, jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32))
        return np.float32(value), [(np.asarray(dW), np.asarray(db)) for dW, db in grads]
