"""Deliberately broken implementations: classic backprop bugs, one per object.

The suite must reject every one (HIPS autograd's test_tests.py does the same for its checker).
Each is the article's backward pass with exactly one step written wrong; ``BUGS`` names the
step. Load one with ``chainrule check tests.broken:relu_prime_at_zero``.
"""

from __future__ import annotations

import numpy as np

from chainrule.reference import ACTIVATIONS, LOSSES
from chainrule.reference.activations import Activation

__all__ = ["Broken", "BUGS", "CATALOGUE"]

BUGS = {
    "transposed_W": "dA(l-1) = dZ(l) W(l)^T wherever the shapes allow it",
    "missing_sigma_prime": "dZ(l-1) = dA(l-1): sigma' left out",
    "sigma_prime_of_a": "sigma' evaluated at A instead of Z",
    "bias_from_one_example": "db = dZ[0]: the first example's only",
    "bias_averaged": "db = mean over the batch instead of the sum",
    "mse_missing_two": "dL/dA = (A - Y)/N: the 2 of the squared error dropped",
    "mse_missing_one_over_n": "dL/dA = 2(A - Y): the 1/N of the average dropped",
    "relu_prime_at_zero": "relu'(0) = 1",
    "leaky_relu_prime_at_zero": "leaky_relu'(0) = 1",
    "loop_stops_early": "the backward loop stops before layer 1 (its gradients stay 0)",
    "tanh_prime_of_z": "tanh'(z) written as 1 - z^2",
    "gelu_tanh_approximation": "gelu's tanh approximation instead of the exact erf form",
    "softmax_diagonal": "softmax backward as the diagonal a(1 - a) instead of the full Jacobian",
    "cross_entropy_missing_one_over_n": "dL/dZ = A - Y for cross entropy: 1/N dropped",
    "loss_missing_one_over_n": "the loss value is summed, not averaged (gradients right)",
    "stateful": "gradients accumulate across calls",
    "modifies_arguments": "the update step is applied to the caller's params in place",
}


def _gelu_tanh(z):
    return 0.5 * z * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (z + 0.044715 * z**3)))


def _gelu_tanh_prime(z):
    u = np.sqrt(2.0 / np.pi) * (z + 0.044715 * z**3)
    du = np.sqrt(2.0 / np.pi) * (1.0 + 3 * 0.044715 * z**2)
    return 0.5 * (1.0 + np.tanh(u)) + 0.5 * z * (1.0 - np.tanh(u) ** 2) * du


def _activation(name: str, bug: str) -> Activation:
    """The reference's (sigma, sigma') with this mutant's change, if it touches activations."""
    if bug == "relu_prime_at_zero" and name == "relu":
        return Activation(ACTIVATIONS["relu"].sigma, lambda z: (z >= 0).astype(float))
    if bug == "leaky_relu_prime_at_zero" and name == "leaky_relu":
        return Activation(ACTIVATIONS["leaky_relu"].sigma, lambda z: np.where(z >= 0, 1.0, 0.01))
    if bug == "tanh_prime_of_z" and name == "tanh":
        return Activation(np.tanh, lambda z: 1.0 - z**2)
    if bug == "gelu_tanh_approximation" and name == "gelu":
        return Activation(_gelu_tanh, _gelu_tanh_prime)
    if bug == "softmax_diagonal" and name == "softmax":
        return Activation(ACTIVATIONS["softmax"].sigma, vjp=lambda z, a, dA: dA * a * (1.0 - a))
    return ACTIVATIONS[name]


class Broken:
    """The article's backprop with the one bug named by ``bug``."""

    def __init__(self, bug: str):
        if bug not in BUGS:
            raise ValueError(f"bug: got {bug!r}, known: {', '.join(BUGS)}")
        self.bug = bug
        self.name = f"broken:{bug}"
        self._accumulated = None

    def loss_and_gradients(self, arch, params, X, Y):
        bug = self.bug
        sigmas = [_activation(name, bug) for name in arch.activations]
        zs, As = [], [X]
        for (W, b), activation in zip(params, sigmas):
            zs.append(As[-1] @ W.T + b)
            As.append(activation.sigma(zs[-1]))
        z, a, N = zs[-1], As[-1], len(X)
        loss = LOSSES[arch.loss].value(z, a, Y) * (N if bug == "loss_missing_one_over_n" else 1)
        if arch.loss == "mse":
            scale = {"mse_missing_two": 1.0 / N, "mse_missing_one_over_n": 2.0}.get(bug, 2.0 / N)
            dZ = sigmas[-1].backward(z, a, scale * (a - Y))
        else:
            dZ = LOSSES[arch.loss].output_dZ(z, a, Y, sigmas[-1]) * (N if bug == "cross_entropy_missing_one_over_n" and arch.loss == "cross_entropy" else 1)
        grads = []
        stop = 1 if bug == "loop_stops_early" and len(params) > 1 else 0
        for l in reversed(range(stop, len(params))):
            W = params[l][0]
            db = {"bias_from_one_example": dZ[0], "bias_averaged": dZ.mean(axis=0)}.get(bug, dZ.sum(axis=0))
            grads.append((dZ.T @ As[l], db))
            dA = dZ @ (W.T if bug == "transposed_W" and W.shape[0] == W.shape[1] else W)
            if l > 0:
                if bug == "missing_sigma_prime":
                    dZ = dA
                elif bug == "sigma_prime_of_a" and sigmas[l - 1].sigma_prime is not None:
                    dZ = dA * sigmas[l - 1].sigma_prime(As[l])
                else:
                    dZ = sigmas[l - 1].backward(zs[l - 1], As[l], dA)
        grads += [(np.zeros_like(W), np.zeros_like(b)) for W, b in params[:stop]][::-1]
        grads.reverse()
        if bug == "stateful":
            if self._accumulated is not None and [g.shape for pair in self._accumulated for g in pair] == [g.shape for pair in grads for g in pair]:
                grads = [(dW + pW, db + pb) for (dW, db), (pW, pb) in zip(grads, self._accumulated)]
            self._accumulated = grads
        if bug == "modifies_arguments":
            for (W, b), (dW, db) in zip(params, grads):
                W -= 0.01 * dW
                b -= 0.01 * db
        return loss, grads


CATALOGUE = {bug: Broken(bug) for bug in BUGS}
globals().update(CATALOGUE)  # tests.broken:relu_prime_at_zero names one for the command line
