"""PyTorch autograd as an oracle: the contract's network built from torch primitives in float64.

For layer l = 1..L, with A(0) = X (rows are examples):

    Z(l) = A(l-1) W(l)^T + b(l)        A(l) = sigma(Z(l))

and the loss from the output layer's z and a (N examples):

    mse:                  L = (1/N) sum_k ||a_k - y_k||^2
    cross_entropy:        L = -(1/N) sum_kj y_kj log_softmax(z_k)_j
    binary_cross_entropy: L = (1/N) sum_kj [y_kj softplus(-z_kj) + (1 - y_kj) softplus(z_kj)]

``torch.autograd.grad`` gives dL/dW(l) and dL/db(l). Each activation is written from primitives
whose derivative is the contract's: relu = where(z > 0, z, 0) has relu'(0) = 0 (clamp's would
be 1), leaky_relu'(0) = 0.01, softplus = logaddexp(z, 0) (F.softplus turns exactly linear above
20), gelu = z Phi(z) with Phi(z) = erfc(-z / sqrt 2) / 2 (exact, not the tanh approximation),
and elu's exp branch only ever sees z <= 0, so no inf reaches the unused branch.

For chainrule's diagnosis (chainrule.float32), ``gradients`` also computes variants of the
contract's network: an activation's constant (``CONSTANTS``: leaky_relu's slope, the sqrt 2 of
gelu's erf) set to another value, or activations and the loss evaluated in float32.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from chainrule.contract import KINKED, LEAKY_SLOPE
from chainrule.oracles.base import OracleGradients, OracleInfo

__all__ = ["CONSTANTS", "TorchAutograd"]

_INV_SQRT_2 = 1.0 / math.sqrt(2.0)

Tensor = torch.Tensor


def _softplus(z: Tensor) -> Tensor:
    return torch.logaddexp(z, torch.zeros_like(z))


ACTIVATIONS = {
    "identity": lambda z: z,
    "relu": lambda z: torch.where(z > 0, z, 0.0),
    "leaky_relu": lambda z: torch.where(z > 0, z, LEAKY_SLOPE * z),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softplus": _softplus,
    "elu": lambda z: torch.where(z > 0, z, torch.expm1(z.clamp(max=0.0))),
    "gelu": lambda z: 0.5 * z * torch.erfc(-_INV_SQRT_2 * z),
    "silu": lambda z: z * torch.sigmoid(z),
    "softmax": lambda z: torch.softmax(z, dim=1),
}

# The constant in an activation's formula that a variant may set: (its name, the contract's value,
# the activation with that value).
CONSTANTS = {
    "leaky_relu": ("slope", LEAKY_SLOPE, lambda c: lambda z: torch.where(z > 0, z, c * z)),
    "gelu": ("sqrt(2)", math.sqrt(2.0), lambda c: lambda z: 0.5 * z * torch.erfc(-z / c)),
}

# N * L from the output layer's z and a; divided by N once, in ``gradients``.
LOSSES = {
    "mse": lambda z, a, Y: ((a - Y) ** 2).sum(),
    "cross_entropy": lambda z, a, Y: -(Y * torch.log_softmax(z, dim=1)).sum(),
    "binary_cross_entropy": lambda z, a, Y: (Y * _softplus(-z) + (1.0 - Y) * _softplus(z)).sum(),
}


def _tensor(array: np.ndarray, requires_grad: bool = False) -> Tensor:
    """A float64 copy of ``array`` (never shares memory with the caller's array)."""
    return torch.tensor(array, dtype=torch.float64, requires_grad=requires_grad)


def _numpy(tensor: Tensor) -> np.ndarray:
    """A float64 numpy copy of ``tensor`` (never a view into a torch buffer)."""
    return tensor.detach().numpy().copy()


def _float32(function):
    """``function`` evaluated in float32: its tensor arguments rounded, its result back in float64."""
    return lambda *tensors: function(*(t.float() for t in tensors)).double()


def _at_kinks(activation, slope: float, derivative: float):
    """The activation with d/dz = ``derivative`` where z is exactly 0 (``slope`` is its own there):
    the value is unchanged, (derivative - slope) (z - z.detach()) is 0 but carries the gradient."""
    return lambda z: activation(z) + (derivative - slope) * (z - z.detach()) * (z == 0)


def _kink_derivatives() -> dict[str, float]:
    """d sigma / dz at z = 0, measured through autograd on this module's own activations."""
    derivatives = {}
    for name in KINKED:
        z = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        with torch.enable_grad():
            (dz,) = torch.autograd.grad(ACTIVATIONS[name](z).sum(), z)
        derivatives[name] = dz.item()
    return derivatives


class TorchAutograd:
    """The contract's network in PyTorch; gradients by reverse-mode autograd."""

    name = "torch"

    def __init__(self) -> None:
        self.info = OracleInfo(
            name=self.name, framework="torch", version=torch.__version__,
            available=True, exact=True, kink_derivatives=_kink_derivatives(), honours_declarations=True,
        )

    def gradients(
        self, arch, params, X, Y, kink_derivatives: dict[str, float] | None = None, constants: dict[str, float] | None = None,
        in_float32: frozenset[str] = frozenset(),
    ) -> OracleGradients:
        """The loss, (dL/dW, dL/db) per layer, and the kinked activations hit at exactly z = 0;
        with ``kink_derivatives``, d sigma/dz at exactly 0 is the value given there (a declared
        convention, judged as declared) instead of this oracle's own. Variants: ``constants``
        sets an activation's constant (CONSTANTS, by activation name); the activations and loss
        named in ``in_float32`` are evaluated in float32 (value and derivative)."""
        activations = dict(ACTIVATIONS) | {name: CONSTANTS[name][2](value) for name, value in (constants or {}).items()}
        for name, derivative in (kink_derivatives or {}).items():
            activations[name] = _at_kinks(ACTIVATIONS[name], self.info.kink_derivatives[name], derivative)
        activations |= {name: _float32(activations[name]) for name in in_float32 if name in activations}
        loss_of = _float32(LOSSES[arch.loss]) if arch.loss in in_float32 else LOSSES[arch.loss]
        leaves = [(_tensor(W, True), _tensor(b, True)) for W, b in params]
        with torch.enable_grad():
            a = _tensor(X)
            kinks = set()
            for (W, b), name in zip(leaves, arch.activations):
                z = a @ W.T + b
                a = activations[name](z)
                if name in KINKED and bool((z == 0).any()):
                    kinks.add(name)
            loss = loss_of(z, a, _tensor(Y)) / len(X)
            flat = torch.autograd.grad(loss, [t for pair in leaves for t in pair])
        grads = [(_numpy(dW), _numpy(db)) for dW, db in zip(flat[0::2], flat[1::2])]
        return OracleGradients(loss.item(), grads, trusted=None, kinks=frozenset(kinks))

    def loss_and_gradients(self, arch, params, X, Y) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
        result = self.gradients(arch, params, X, Y)
        return result.loss, result.grads
