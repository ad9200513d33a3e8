"""A scalar autodiff engine in micrograd's style, and the contract's network built from it.

Every number is a ``Value`` that remembers its children and how to push its gradient back to
them; ``backward()`` sorts the graph topologically and runs those closures from the loss down.
Written plainly with the ``math`` module: ``math.exp`` raises OverflowError above ~709.78 and
``math.log(0)`` raises ValueError, as they do in such engines.

    chainrule check tests.gallery.scalar_engine:ScalarEngine
"""

import math

__all__ = ["ScalarEngine", "ScalarEngineMicrogradTanh", "ScalarEngineWrongTanh", "Value"]


class Value:
    """A scalar and its gradient."""

    def __init__(self, data, _children=(), _op=""):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = set(_children)
        self._op = _op

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, other):
        assert isinstance(other, (int, float)), "only supporting int/float powers for now"
        out = Value(self.data**other, (self,), f"**{other}")

        def _backward():
            self.grad += (other * self.data ** (other - 1)) * out.grad

        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward():
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(self):
        out = Value(math.log(self.data), (self,), "log")

        def _backward():
            self.grad += (1 / self.data) * out.grad

        out._backward = _backward
        return out

    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,), "tanh")

        def _backward():
            self.grad += (1 - t**2) * out.grad

        out._backward = _backward
        return out

    def erf(self):
        out = Value(math.erf(self.data), (self,), "erf")

        def _backward():
            self.grad += 2 / math.sqrt(math.pi) * math.exp(-self.data**2) * out.grad

        out._backward = _backward
        return out

    def relu(self):
        out = Value(0 if self.data < 0 else self.data, (self,), "ReLU")

        def _backward():
            self.grad += (out.data > 0) * out.grad

        out._backward = _backward
        return out

    def leaky_relu(self, slope=0.01):
        out = Value(self.data if self.data > 0 else slope * self.data, (self,), "LeakyReLU")

        def _backward():
            self.grad += (1 if self.data > 0 else slope) * out.grad

        out._backward = _backward
        return out

    def backward(self):
        topo = []
        visited = set()

        def build_topo(v):
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build_topo(child)
                topo.append(v)

        build_topo(self)
        self.grad = 1
        for v in reversed(topo):
            v._backward()

    def __neg__(self):
        return self * -1

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return other + (-self)

    def __rmul__(self, other):
        return self * other

    def __truediv__(self, other):
        return self * other**-1

    def __rtruediv__(self, other):
        return other * self**-1

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"


# ---- the network's pieces, written with Values -------------------------------------------------


def sigmoid(z):
    return 1 / (1 + (-z).exp())


ACTIVATIONS = {
    "identity": lambda z: z,
    "relu": lambda z: z.relu(),
    "leaky_relu": lambda z: z.leaky_relu(0.01),
    "sigmoid": sigmoid,
    "tanh": lambda z: z.tanh(),
    "softplus": lambda z: (1 + z.exp()).log(),
    "elu": lambda z: z if z.data > 0 else z.exp() - 1,
    "gelu": lambda z: z * 0.5 * (1 + (z / math.sqrt(2)).erf()),
    "silu": lambda z: z * sigmoid(z),
}


def softmax(row):
    m = max(v.data for v in row)
    es = [(v - m).exp() for v in row]
    total = sum(es)
    return [e / total for e in es]


def mse(outputs, targets):
    return sum((a - y) ** 2 for row, ys in zip(outputs, targets) for a, y in zip(row, ys)) / len(targets)


def cross_entropy(outputs, targets):
    return -sum(y * a.log() for row, ys in zip(outputs, targets) for a, y in zip(row, ys)) / len(targets)


def binary_cross_entropy(outputs, targets):
    return -sum(y * a.log() + (1 - y) * (1 - a).log() for row, ys in zip(outputs, targets) for a, y in zip(row, ys)) / len(targets)


LOSSES = {"mse": mse, "cross_entropy": cross_entropy, "binary_cross_entropy": binary_cross_entropy}


class ScalarEngine:
    name = "scalar-engine"
    sigma = ACTIVATIONS

    def layer(self, W, b, activation, inputs):
        """One dense layer on one example: z_j = b_j + Σ_i w_ji x_i, then σ."""
        zs = [sum((wi * xi for wi, xi in zip(w, inputs)), bj) for w, bj in zip(W, b)]
        return softmax(zs) if activation == "softmax" else [self.sigma[activation](z) for z in zs]

    def loss_and_gradients(self, arch, params, X, Y):
        weights = [([[Value(float(w)) for w in row] for row in W], [Value(float(v)) for v in b]) for W, b in params]
        outputs = []
        for x in X:
            a = [float(v) for v in x]
            for (W, b), activation in zip(weights, arch.activations):
                a = self.layer(W, b, activation, a)
            outputs.append(a)
        loss = LOSSES[arch.loss](outputs, [[float(v) for v in y] for y in Y])
        loss.backward()
        grads = [([[w.grad for w in row] for row in W], [v.grad for v in b]) for W, b in weights]
        return loss.data, grads


def tanh_forgetting_the_square(z):
    t = math.tanh(z.data)
    out = Value(t, (z,), "tanh")

    def _backward():
        z.grad += (1 - t) * out.grad

    out._backward = _backward
    return out


class ScalarEngineWrongTanh(ScalarEngine):
    """The bug: tanh's backward uses 1 − tanh z instead of 1 − tanh² z."""

    name = "scalar-engine (bug: tanh' = 1 - tanh z)"
    sigma = {**ACTIVATIONS, "tanh": tanh_forgetting_the_square}


def micrograd_tanh(z):
    """tanh as micrograd's lecture writes it: (e^{2z} - 1) / (e^{2z} + 1) with ``math.exp``, which
    raises OverflowError above z ~ 354.9 (numerical range, not the chain rule)."""
    e = math.exp(2 * z.data)
    t = (e - 1) / (e + 1)
    out = Value(t, (z,), "tanh")

    def _backward():
        z.grad += (1 - t**2) * out.grad

    out._backward = _backward
    return out


class ScalarEngineMicrogradTanh(ScalarEngine):
    """The same engine with micrograd's own tanh."""

    name = "scalar-engine (micrograd's tanh)"
    sigma = {**ACTIVATIONS, "tanh": micrograd_tanh}
