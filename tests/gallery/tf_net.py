#!/usr/bin/env python3
"""TensorFlow in float64 as a TensorFlow user writes a dense network, checked over JSON lines from
TensorFlow's own virtual environment (scripts/tf-venv.sh makes .venv-tf):

    chainrule check --cmd ".venv-tf/bin/python tests/gallery/tf_net.py"
    chainrule check --cmd ".venv-tf/bin/python tests/gallery/tf_net.py --bug"

Standalone (TensorFlow, numpy and the standard library; no chainrule). The layers are tf.nn's
(``tf.nn.relu``, ``tf.math.sigmoid``, ``tf.math.softplus``, ``tf.nn.elu``, ``tf.nn.silu``,
``tf.nn.softmax``, ...), the gradients from ``tf.GradientTape``; the log losses are TensorFlow's
from the output layer's logits: ``tf.nn.softmax_cross_entropy_with_logits`` and
``tf.nn.sigmoid_cross_entropy_with_logits``, summed over the outputs and averaged over the batch.
Two of tf.nn's float64 functions carry a float32 constant (TensorFlow 2.21), each 2e-8 off in
relative terms: ``tf.nn.leaky_relu``'s slope (the op's ``alpha`` attribute is a float32:
0.009999999776) and ``tf.nn.gelu``'s 1/sqrt(2) (``math_ops.cast`` of a Python float goes through
float32: 0.7071067691). chainrule calls those wrong on ordinary values, and names the float32
constant: so this member writes those two as their formulas (``tf.where(z > 0, z, 0.01 z)``,
``0.5 z (1 + erf(z / sqrt 2))`` in float64), as TensorFlow code from before tf.nn.gelu does, and
``--tf-nn`` takes tf.nn's own (rejected, naming the constant: tests/test_gallery.py).

It reads one JSON request per line on stdin and writes one JSON response per line on stdout
(CONTRACT.md, "Plugging in"); TensorFlow's own logging goes to stderr. ``--bug``: tanh through a
``tf.custom_gradient`` whose derivative leaves out a square.
"""

import json
import sys

import numpy as np
import tensorflow as tf

ACTIVATIONS = {
    "identity": lambda z: z,
    "relu": tf.nn.relu,
    "leaky_relu": lambda z: tf.where(z > 0, z, 0.01 * z),
    "sigmoid": tf.math.sigmoid,
    "tanh": tf.math.tanh,
    "softplus": tf.math.softplus,
    "elu": tf.nn.elu,
    "gelu": lambda z: 0.5 * z * (1.0 + tf.math.erf(z / tf.sqrt(tf.constant(2.0, tf.float64)))),
    "silu": tf.nn.silu,
    "softmax": tf.nn.softmax,
}


@tf.custom_gradient
def tanh(z):
    a = tf.math.tanh(z)

    def grad(dy):
        # The bug: tanh'(z) = 1 - tanh(z)^2; this takes 1 - tanh(z).
        return dy * (1.0 - a)

    return a, grad


def loss_and_gradients(activations, loss_name, params, X, Y):
    N = X.shape[0]
    with tf.GradientTape() as tape:
        tape.watch(params)
        a = X
        for (W, b), activation in zip(params, activations):
            z = tf.matmul(a, W, transpose_b=True) + b
            a = ACTIVATIONS[activation](z)
        if loss_name == "mse":
            loss = tf.reduce_sum(tf.square(a - Y)) / N
        elif loss_name == "cross_entropy":
            loss = tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(labels=Y, logits=z)) / N
        elif loss_name == "binary_cross_entropy":
            loss = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=Y, logits=z)) / N
        else:
            raise ValueError(f"unknown loss {loss_name!r}")
    return float(loss), tape.gradient(loss, params)


def respond(request):
    if request.get("describe"):
        return {"name": NAME}
    sizes = request["sizes"]
    params = [(tf.constant(np.array(p["W"], dtype=np.float64).reshape(m, n)), tf.constant(np.array(p["b"], dtype=np.float64)))
              for p, n, m in zip(request["params"], sizes, sizes[1:])]
    X = tf.constant(np.array(request["X"], dtype=np.float64).reshape(-1, sizes[0]))
    Y = tf.constant(np.array(request["Y"], dtype=np.float64).reshape(-1, sizes[-1]))
    loss, grads = loss_and_gradients(request["activations"], request["loss"], params, X, Y)
    return {"loss": loss, "grads": [{"W": dW.numpy().tolist(), "b": db.numpy().tolist()} for dW, db in grads]}


def main():
    for line in sys.stdin:
        try:
            response = respond(json.loads(line))
        except Exception as error:  # say so, and stay in the conversation
            response = {"error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(response) + "\n")  # json writes floats in shortest round-trip form
        sys.stdout.flush()


BUG = "--bug" in sys.argv[1:]
TF_NN = "--tf-nn" in sys.argv[1:]
NAME = "tf-net (bug: tanh' = 1 - tanh)" if BUG else "tf-net (tf.nn.leaky_relu, tf.nn.gelu)" if TF_NN else "tf-net"
if BUG:
    ACTIVATIONS["tanh"] = tanh
if TF_NN:
    ACTIVATIONS["leaky_relu"] = lambda z: tf.nn.leaky_relu(z, alpha=0.01)
    ACTIVATIONS["gelu"] = lambda z: tf.nn.gelu(z, approximate=False)

if __name__ == "__main__":
    main()
