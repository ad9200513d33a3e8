"""Finite differences: every gradient entry as a central difference of the loss itself.

For each parameter theta (every W(l)[j, i] and b(l)[j])

    dL/dtheta ~ (L(theta + h) - L(theta - h)) / 2h,     h = cbrt(eps) * max(1, |theta|), rounded so theta +- h are floats

on this module's own float64 network (one cached forward pass; a perturbation reruns only the
layers after it, batched). An entry whose +-h moves a relu, leaky_relu or elu pre-activation to
another sign (the sign of 0 is 0) is marked untrusted: no evidence. ``refine`` re-estimates
disputed entries by Richardson extrapolation. The error analysis, the rank-1 updates and the
refinement: docs/oracles.md.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_softmax, ndtr, softmax

from chainrule.contract import KINKED, LEAKY_SLOPE
from chainrule.oracles.base import OracleGradients, OracleInfo

__all__ = [
    "ACTIVATIONS", "CHUNK_BYTES", "FiniteDifferences", "LOSSES", "REFINE_LEVELS", "REFINE_STEP", "SIGN_SENSITIVE", "STEP", "step", "validated",
]

Params = list[tuple[np.ndarray, np.ndarray]]

STEP = float(np.cbrt(np.finfo(np.float64).eps))  # relative step of the central difference
REFINE_STEP = 2.0**-7  # relative step of refine's largest central difference
REFINE_LEVELS = 8  # refine halves the step this many times, less one
CHUNK_BYTES = 4 * 2**20  # buffers of one batch of perturbations: cache-sized, and paged in once per call
_ARRAYS_PER_PERTURBATION = 3  # buffers of the widest recomputed layer per perturbation: z, a, sign
SIGN_SENSITIVE = KINKED + ("elu",)  # a step across 0 breaks the central-difference error bound

# sigma(z, out): each writes into out (a buffer other than z) when given one, else allocates.
ACTIVATIONS = {
    "identity": lambda z, out=None: z,
    "relu": lambda z, out=None: np.maximum(z, 0.0, out=out),
    "leaky_relu": lambda z, out=None: np.maximum(z, np.multiply(z, LEAKY_SLOPE, out=out), out=out),  # max(z, slope z)
    "sigmoid": lambda z, out=None: expit(z, out=out),
    "tanh": lambda z, out=None: np.tanh(z, out=out),
    "softplus": lambda z, out=None: np.logaddexp(0.0, z, out=out),  # log(1 + e^z)
    # elu = max(z, e^min(z, 0) - 1): z above 0; below, e^z - 1 >= z
    "elu": lambda z, out=None: np.maximum(z, np.expm1(np.minimum(z, 0.0, out=out), out=out), out=out),
    "gelu": lambda z, out=None: np.multiply(z, ndtr(z, out=out), out=out),  # z Phi(z)
    "silu": lambda z, out=None: np.multiply(z, expit(z, out=out), out=out),  # z sigmoid(z)
    "softmax": lambda z, out=None: softmax(z, axis=-1),  # output layer only
}


def _mse(z, sigma, Y):
    """(1/N) sum_k ||a_k - y_k||^2."""
    d = sigma(z) - Y
    return np.square(d, out=d).sum(axis=(-2, -1)) / len(Y)


def _cross_entropy(z, sigma, Y):
    """-(1/N) sum_kj y_kj log softmax(z_k)_j."""
    return -(Y * log_softmax(z, axis=-1)).sum(axis=(-2, -1)) / len(Y)


def _binary_cross_entropy(z, sigma, Y):
    """(1/N) sum_kj [y softplus(-z) + (1 - y) softplus(z)], as -log sigmoid(z) = softplus(-z)."""
    return (Y * np.logaddexp(0.0, -z) + (1.0 - Y) * np.logaddexp(0.0, z)).sum(axis=(-2, -1)) / len(Y)


# Each loss from the output layer's Z (..., N, n), the output activation and Y (N, n) -> shape (...).
LOSSES = {"mse": _mse, "cross_entropy": _cross_entropy, "binary_cross_entropy": _binary_cross_entropy}
_OUTPUT = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}


def step(theta: np.ndarray, relative: float = STEP) -> np.ndarray:
    """h = relative * max(1, |theta|), rounded so that theta +- h are floats: (|theta| + h) - |theta|."""
    magnitude = np.abs(theta)
    return (magnitude + relative * np.maximum(1.0, magnitude)) - magnitude


def _sign_changed(name: str, z: np.ndarray, z_base: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Per perturbation (leading axis): does any pre-activation of a sign-sensitive layer change sign?"""
    if name not in SIGN_SENSITIVE:
        return np.zeros(len(z), dtype=bool)
    return (np.sign(z, out=out) != np.sign(z_base)).any(axis=tuple(range(1, z.ndim)))


def _reach(W: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """reach[k, j] = min_i |Z[k, i]| / |W[i, j]| (inf where W[i, j] = 0): the least change of
    A(l-1)[k, j] that can bring some Z(l)[k, i] to 0. A column moved by less keeps every sign."""
    absW, absZ = np.abs(W), np.abs(Z)
    reach = np.empty((len(Z), W.shape[1]))
    rows = max(1, 2**17 // W.size)  # examples per block: about 1 MB of ratios
    for k in range(0, len(Z), rows):
        ratio = np.full((len(absZ[k : k + rows]),) + W.shape, np.inf)
        np.divide(absZ[k : k + rows, :, None], absW, out=ratio, where=absW > 0)
        reach[k : k + rows] = ratio.min(axis=1)
    return reach


def _richardson(D: np.ndarray) -> tuple[float, float]:
    """Richardson extrapolation of central differences D[k] at steps h / 2^k (error series in h^2):
    (estimate, its error estimate).

    Neville's tableau T[k, m] = T[k, m-1] + (T[k, m-1] - T[k-1, m-1]) / (4^m - 1); as in Ridders'
    method, the entry whose distance to its two parents is smallest is returned, with that
    distance as its error estimate.
    """
    if len(D) < 2:
        return float("nan"), float("nan")
    best, best_error = D[-1], np.inf
    column = D
    for m in range(1, len(D)):
        T = column[1:] + (column[1:] - column[:-1]) / (4.0**m - 1.0)
        error = np.maximum(np.abs(T - column[1:]), np.abs(T - column[:-1]))
        k = int(np.argmin(error))
        if error[k] < best_error:
            best, best_error = T[k], error[k]
        column = T
    return float(best), float(best_error)


def validated(arch) -> tuple[tuple[str, ...], str]:
    """(activations, loss) of ``arch``, checked against this module's own tables."""
    activations, loss = tuple(arch.activations), arch.loss
    for name in activations:
        if name not in ACTIVATIONS:
            raise ValueError(f"activations: got {name!r}, known: {', '.join(ACTIVATIONS)}")
    if "softmax" in activations[:-1]:
        raise ValueError(f"activations: got softmax in a hidden layer of {activations!r}, output only")
    if loss not in LOSSES:
        raise ValueError(f"loss: got {loss!r}, known: {', '.join(LOSSES)}")
    required = _OUTPUT.get(loss)
    if required and activations[-1] != required:
        raise ValueError(f"loss: got {loss!r} after {activations[-1]!r}, needs a {required!r} output")
    return activations, loss


class _Network:
    """One (arch, params, X, Y) with its forward cache: Z[l] and A[l] (A[0] = X, A[l+1] = sigma(Z[l])).

    Perturbed passes write into buffers kept here, reused from chunk to chunk: fresh arrays of
    this size would be paged in again for every chunk, which costs as much as the arithmetic.
    """

    def __init__(self, arch, params, X, Y):
        self.activations, self.loss_name = validated(arch)
        self.params = [(np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)) for W, b in params]
        self.Y = np.asarray(Y, dtype=np.float64)
        self.A = [np.asarray(X, dtype=np.float64)]
        self.Z = []
        for (W, b), name in zip(self.params, self.activations):
            self.Z.append(self.A[-1] @ W.T + b)
            self.A.append(ACTIVATIONS[name](self.Z[-1]))
        self.reach = [None] + [  # layer l+1's, for perturbations of layer l
            _reach(W, Z) if name in SIGN_SENSITIVE else None
            for (W, _), Z, name in zip(self.params[1:], self.Z[1:], self.activations[1:])
        ]
        self._buffers: dict[tuple[str, int], np.ndarray] = {}

    def buffer(self, kind: str, l: int, shape: tuple[int, ...]) -> np.ndarray:
        """A reusable float64 array of this shape for (kind, layer l); its contents are garbage."""
        size = int(np.prod(shape))
        if self._buffers.get((kind, l), np.empty(0)).size < size:
            self._buffers[kind, l] = np.empty(size)
        return self._buffers[kind, l][:size].reshape(shape)

    def loss(self, z: np.ndarray) -> np.ndarray:
        """The loss from the output layer's pre-activation z, over any leading axes."""
        return LOSSES[self.loss_name](z, ACTIVATIONS[self.activations[-1]], self.Y)

    def theta(self, l: int) -> tuple[np.ndarray, np.ndarray]:
        """[W(l) | b(l)] and [A(l-1) | 1]: b(l)[j] is the weight of a constant input 1."""
        W, b = self.params[l]
        A_prev = self.A[l]
        return np.hstack([W, b[:, None]]), np.hstack([A_prev, np.ones((len(A_prev), 1))])

    def perturbation_bytes(self, l: int) -> int:
        """Working set of one perturbation of layer l: the widest layer it recomputes."""
        widest = max(Z.shape[1] for Z in self.Z[l + 1 :] or self.Z[l:])
        return 8 * _ARRAYS_PER_PERTURBATION * len(self.Y) * widest

    def perturbed(self, l: int, j: np.ndarray, dz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Loss and sign change per perturbation p: column j[p] of Z(l) moved by dz[p] (dz: (P, N))."""
        (P, N), last, names = dz.shape, len(self.params) - 1, self.activations
        z_base = self.Z[l][:, j].T
        z_j = z_base + dz  # column j of Z(l), per perturbation: (P, N)
        changed = _sign_changed(names[l], z_j, z_base)
        if l == last:
            z = self.buffer("z", l, (P,) + self.Z[l].shape)
            z[...] = self.Z[l]
            z[np.arange(P), :, j] = z_j
            return self.loss(z), changed
        dA = ACTIVATIONS[names[l]](z_j) - self.A[l + 1][:, j].T  # column j of A(l)
        W_next, _ = self.params[l + 1]
        z = self.buffer("z", l + 1, (P,) + self.Z[l + 1].shape)
        np.multiply(dA[:, :, None], W_next[:, j].T[:, None, :], out=z)  # Z(l+1) + dA W(l+1)[:, j]^T
        z += self.Z[l + 1]
        if names[l + 1] in SIGN_SENSITIVE:  # check in full only where dA can reach the nearest 0
            near = (2.0 * np.abs(dA) >= self.reach[l + 1][:, j].T).any(axis=1)
            changed[near] |= _sign_changed(names[l + 1], z[near], self.Z[l + 1])
        for m in range(l + 1, last):
            a = ACTIVATIONS[names[m]](z, out=self.buffer("a", m, z.shape))
            W, b = self.params[m + 1]
            z = self.buffer("z", m + 1, (P,) + self.Z[m + 1].shape)
            np.matmul(a.reshape(P * N, -1), W.T, out=z.reshape(P * N, -1))  # Z(m+1), batched
            z += b
            changed |= _sign_changed(names[m + 1], z, self.Z[m + 1], out=self.buffer("a", m + 1, z.shape))
        return self.loss(z), changed


class FiniteDifferences:
    """The finite-difference oracle: central differences, kink-aware, with Richardson refinement."""

    name = "finite_differences"
    info = OracleInfo(
        name, "numpy", np.__version__, True, exact=False,
        kink_derivatives={"relu": None, "leaky_relu": None},  # no evidence at a kink
    )

    def __init__(self, chunk_bytes: int = CHUNK_BYTES):
        self.chunk_bytes = chunk_bytes

    def gradients(self, arch, params, X, Y) -> OracleGradients:
        """Central differences for every entry, with the entries that crossed no kink marked trusted."""
        net = _Network(arch, params, X, Y)
        grads, trusted = [], []
        for l in range(len(net.params)):
            theta, A_ext = net.theta(l)
            h = step(theta).ravel()
            g, ok = np.empty(theta.size), np.empty(theta.size, dtype=bool)
            size = max(1, self.chunk_bytes // (2 * net.perturbation_bytes(l)))
            for start in range(0, theta.size, size):
                entries = np.arange(start, min(start + size, theta.size))
                j, i = np.divmod(entries, theta.shape[1])
                dz = h[entries, None] * A_ext[:, i].T  # theta[j, i] +- h moves Z(l)[:, j] by +- h A_ext[:, i]
                loss, changed = net.perturbed(l, np.concatenate([j, j]), np.concatenate([dz, -dz]))
                n = len(entries)
                g[entries] = (loss[:n] - loss[n:]) / (2.0 * h[entries])
                ok[entries] = ~(changed[:n] | changed[n:])
            g, ok = g.reshape(theta.shape), ok.reshape(theta.shape)
            grads.append((g[:, :-1].copy(), g[:, -1].copy()))
            trusted.append((ok[:, :-1].copy(), ok[:, -1].copy()))
        kinks = frozenset(name for name, z in zip(net.activations, net.Z) if name in KINKED and (z == 0).any())
        return OracleGradients(float(net.loss(net.Z[-1])), grads, trusted, kinks)

    def loss_and_gradients(self, arch, params, X, Y) -> tuple[float, Params]:
        """The contract: the loss and every central difference (untrusted entries included)."""
        result = self.gradients(arch, params, X, Y)
        return result.loss, result.grads

    def refine(self, arch, params, X, Y, entries) -> dict[tuple, float]:
        """A more precise dL/dtheta for the given entries (TensorId, index), keyed the same way
        (``refine_with_errors`` without the error estimates)."""
        return {entry: value for entry, (value, _) in self.refine_with_errors(arch, params, X, Y, entries).items()}

    def refine_with_errors(self, arch, params, X, Y, entries) -> dict[tuple, tuple[float, float]]:
        """(estimate, error estimate) of dL/dtheta for the given entries (TensorId, index), keyed
        the same way. The error estimate is the Richardson tableau's (``_richardson``): where the
        exact value is 0, an O(h^2) remainder lies within it.

        Central differences at h / 2^k, h = REFINE_STEP * max(1, |theta|) / max(1, |a(l-1)_i|),
        k < REFINE_LEVELS, are Richardson-extrapolated. Steps at or above the largest one that
        changes the sign of a relu, leaky_relu or elu pre-activation are dropped; NaN if fewer
        than two remain. Every entry of a layer is refined in the same batched passes as
        ``gradients``, so refining all of a network costs REFINE_LEVELS times its differences.
        """
        net = _Network(arch, params, X, Y)
        refined = {}
        levels = 2.0 ** -np.arange(REFINE_LEVELS)
        for l in sorted({tensor.slot[0] for tensor, _ in entries}):
            layer = [(tensor, index) for tensor, index in entries if tensor.slot[0] == l]
            theta, A_ext = net.theta(l)
            j = np.array([index[0] for _, index in layer], dtype=int)
            i = np.array([index[1] if tensor.kind == "W" else theta.shape[1] - 1 for tensor, index in layer], dtype=int)
            # scaled so the largest move of z(l) stays REFINE_STEP * max(1, |theta|): a large input
            # a(l-1)_i would otherwise carry every step out of the asymptotic range
            h0 = step(theta[j, i], REFINE_STEP) / np.maximum(1.0, np.abs(A_ext[:, i]).max(axis=0))
            h = h0[:, None] * levels  # (entries, levels)
            size = max(1, self.chunk_bytes // (2 * REFINE_LEVELS * net.perturbation_bytes(l)))
            for start in range(0, len(layer), size):
                part = slice(start, start + size)
                n = len(h[part])
                dz = (h[part, :, None] * A_ext[:, i[part]].T[:, None, :]).reshape(n * REFINE_LEVELS, -1)
                rows = np.repeat(j[part], REFINE_LEVELS)
                loss, changed = net.perturbed(l, np.concatenate([rows, rows]), np.concatenate([dz, -dz]))
                D = ((loss[: n * REFINE_LEVELS] - loss[n * REFINE_LEVELS :]).reshape(n, REFINE_LEVELS)) / (2.0 * h[part])
                crossed = (changed[: n * REFINE_LEVELS] | changed[n * REFINE_LEVELS :]).reshape(n, REFINE_LEVELS)
                for entry, d, c in zip(layer[part], D, crossed):
                    crossing = np.flatnonzero(c)
                    refined[entry] = _richardson(d[crossing[-1] + 1 :] if len(crossing) else d)
        return refined
