#!/usr/bin/env python3
"""A dense network's backprop in plain numpy, checked by chainrule over JSON lines.

Standalone on purpose (numpy and the standard library only, no chainrule): this is what an
implementation in another project looks like. Check it with

    chainrule check --cmd "python examples/python/backprop.py"

It reads one JSON request per line on stdin and writes one JSON response per line on stdout
(docs/contract.md, "Plugging in"). Anything else it wants to say goes to stderr.
"""

import json
import math
import sys

import numpy as np

# --- activations: (sigma, sigma') pairs; softmax is handled by its vector-Jacobian product -------

_erfc = np.vectorize(math.erfc, otypes=[float])


def sigmoid(z):
    e = np.exp(-np.abs(z))  # never overflows
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softplus(z):
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def Phi(z):
    """The standard normal CDF, accurate in both tails: 0.5 erfc(-z / sqrt 2)."""
    return 0.5 * _erfc(-z / math.sqrt(2.0))


ACTIVATIONS = {
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
    "relu": (lambda z: np.where(z > 0, z, 0.0), lambda z: np.where(z > 0, 1.0, 0.0)),  # relu'(0) = 0
    "leaky_relu": (lambda z: np.where(z > 0, z, 0.01 * z), lambda z: np.where(z > 0, 1.0, 0.01)),
    "sigmoid": (sigmoid, lambda z: sigmoid(z) * (1.0 - sigmoid(z))),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "softplus": (softplus, sigmoid),
    "elu": (lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))), lambda z: np.where(z > 0, 1.0, np.exp(np.minimum(z, 0.0)))),
    "gelu": (lambda z: z * Phi(z), lambda z: Phi(z) + z * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)),
    "silu": (lambda z: z * sigmoid(z), lambda z: sigmoid(z) * (1.0 + z * (1.0 - sigmoid(z)))),
}


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- losses: the value from the output layer's z (stable), and dL/dA --------------------------


def loss_value(loss, z, a, Y):
    N = len(Y)
    if loss == "mse":
        return float(((a - Y) ** 2).sum() / N)
    if loss == "cross_entropy":
        shifted = z - z.max(axis=1, keepdims=True)
        return float(-(Y * (shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))).sum() / N)
    if loss == "binary_cross_entropy":
        return float((Y * softplus(-z) + (1.0 - Y) * softplus(z)).sum() / N)
    raise ValueError(f"unknown loss {loss!r}")


def mse_dA(a, Y):
    """dL/dA for L = (1/N) sum ||a - y||^2."""
    return 2.0 * (a - Y) / len(Y)


def output_dZ(loss, activation, z, a, Y):
    """dL/dZ of the output layer."""
    N = len(Y)
    if loss == "cross_entropy":  # softmax output: the Jacobian and the log collapse to this
        return (a * Y.sum(axis=1, keepdims=True) - Y) / N
    if loss == "binary_cross_entropy":  # sigmoid output
        return (a - Y) / N
    return backward_through(activation, z, a, mse_dA(a, Y))


def backward_through(activation, z, a, dA):
    """dL/dZ from dL/dA through one layer's activation."""
    if activation == "softmax":
        return a * (dA - (dA * a).sum(axis=1, keepdims=True))
    return dA * ACTIVATIONS[activation][1](z)


# --- the network ---------------------------------------------------------------------------


def forward(activations, params, X):
    zs, As = [], [X]
    for (W, b), activation in zip(params, activations):
        zs.append(As[-1] @ W.T + b)                                   # Z(l) = A(l-1) W(l)^T + b(l)
        As.append(softmax(zs[-1]) if activation == "softmax" else ACTIVATIONS[activation][0](zs[-1]))
    return zs, As


def loss_and_gradients(activations, loss, params, X, Y):
    zs, As = forward(activations, params, X)
    dZ = output_dZ(loss, activations[-1], zs[-1], As[-1], Y)
    grads = []
    for l in reversed(range(len(params))):
        W = params[l][0]
        grads.append((dZ.T @ As[l], dZ.sum(axis=0)))                   # dW = dZ^T A(l-1), db = dZ^T 1
        if l > 0:
            dA = dZ @ W                                                 # dA(l-1) = dZ(l) W(l)
            dZ = backward_through(activations[l - 1], zs[l - 1], As[l], dA)
    grads.reverse()
    return loss_value(loss, zs[-1], As[-1], Y), grads


# --- the protocol --------------------------------------------------------------------------


def respond(request):
    if request.get("describe"):
        return {"name": NAME}
    params = [(np.array(p["W"], dtype=float).reshape(m, n), np.array(p["b"], dtype=float))
              for p, n, m in zip(request["params"], request["sizes"], request["sizes"][1:])]
    X = np.array(request["X"], dtype=float).reshape(-1, request["sizes"][0])
    Y = np.array(request["Y"], dtype=float).reshape(-1, request["sizes"][-1])
    loss, grads = loss_and_gradients(request["activations"], request["loss"], params, X, Y)
    return {"loss": loss, "grads": [{"W": dW.tolist(), "b": db.tolist()} for dW, db in grads]}


def main():
    for line in sys.stdin:
        try:
            response = respond(json.loads(line))
        except Exception as error:  # say so, and stay in the conversation
            response = {"error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(response) + "\n")  # json writes floats in shortest round-trip form
        sys.stdout.flush()


NAME = "numpy-backprop (examples/python)"

if __name__ == "__main__":
    main()
