"""How far a plain evaluation of the article's formulas, in a given precision, can drift on one case.

The article's network is evaluated as a textbook implementation writes it — σ(z) = 1/(1+e^−z),
the losses from the output activation a, dL/da then ⊙ σ'(z), softmax with the max shift — under
Monte Carlo arithmetic: every elementary result r becomes r(1 + eps·u), u uniform in [−1, 1],
independently in each of SAMPLES runs (a matrix product r = A·B gets eps·u·(|A|·|B|), the
rounding of its sum), then is rounded to the precision's grid (chainrule.precision: float64,
float32, bfloat16, float16; eps is the precision's). Inputs that the precision cannot represent
are rounded likewise. The spread of the runs around the unperturbed one, times SAFETY, is the
case's noise floor per gradient entry and for the loss: what a correct plain implementation
may be off by. The unperturbed run also decides the chain rule's domain: a case where the plain
formulas overflow the precision, take log 0 or divide by 0 is no evidence about the chain rule
(it belongs to the numerical-range verdict). Method and soundness: docs/tolerances.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from chainrule.contract import LEAKY_SLOPE
from chainrule.precision import FLOAT64, Precision

__all__ = ["SAFETY", "SAMPLES", "Noise", "noise"]

SAMPLES = 8  # perturbed runs besides the exact one
SAFETY = 16.0  # the floor is SAFETY times the largest deviation seen in SAMPLES runs
_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class Noise:
    """The floors of one case, absolute: per gradient entry (dW, db per layer) and for the loss;
    the unperturbed plain answer they are deviations from; and why the plain formulas leave
    float64's range here ("" when they do not)."""

    grads: list[tuple[np.ndarray, np.ndarray]]
    loss: float
    plain_grads: list[tuple[np.ndarray, np.ndarray]]
    plain_loss: float
    outside: str = ""


class _Run:
    """SAMPLES + 1 evaluations side by side on a leading axis; the first is unperturbed. Every
    result goes through ``r``, which perturbs it, rounds it to the precision and remembers the
    first non-finite one."""

    def __init__(self, rng: np.random.Generator, precision: Precision):
        self.rng = rng
        self.precision = precision
        self.outside = ""

    def r(self, x: np.ndarray, what: str, scale: np.ndarray | None = None) -> np.ndarray:
        u = self.rng.uniform(-1.0, 1.0, x.shape)
        u[0] = 0.0
        x = self.precision.round(x + self.precision.eps * u * (np.abs(x) if scale is None else scale))
        if not self.outside and not np.isfinite(x[0]).all():
            self.outside = what
        return x

    def given(self, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """An input, as every run sees it: rounded to the precision (perturbed first) unless it is
        exactly representable there; broadcast to ``shape`` (runs first)."""
        x = np.asarray(x, dtype=np.float64)
        if self.precision.representable(x):
            return np.broadcast_to(x, shape)
        return self.r(np.broadcast_to(x, shape).copy(), "an input overflows the precision")

    def matmul(self, A: np.ndarray, B: np.ndarray, what: str) -> np.ndarray:
        return self.r(A @ B, what, np.abs(A) @ np.abs(B))


def _activation(run: _Run, name: str, z: np.ndarray, where: str):
    """(a, sigma'(z)) as the textbook writes them."""
    r = run.r
    if name == "identity":
        return z, np.ones_like(z)
    if name == "relu":
        return np.maximum(z, 0.0), (z > 0).astype(float)
    if name == "leaky_relu":
        return np.where(z > 0, z, r(LEAKY_SLOPE * z, where)), np.where(z > 0, 1.0, LEAKY_SLOPE)
    # sigma' is evaluated from its own rounding of sigma(z): an implementation may recompute it,
    # or differentiate another formula, so its error does not cancel against the loss's dL/da.
    if name == "sigmoid":
        s = [r(1.0 / r(1.0 + r(np.exp(-z), f"e^-z overflows in sigmoid ({where})"), where), where) for _ in range(2)]
        return s[0], r(s[1] * r(1.0 - s[1], where), where)
    if name == "tanh":
        t = [r(np.tanh(z), where) for _ in range(2)]
        return t[0], r(1.0 - r(t[1] * t[1], where), where)
    if name == "softplus":
        e = r(np.exp(z), f"e^z overflows in softplus ({where})")
        s = r(1.0 / r(1.0 + r(np.exp(-z), f"e^-z overflows in softplus' ({where})"), where), where)
        return r(np.log(r(1.0 + e, where)), where), s
    if name == "elu":
        e = r(np.exp(z), f"e^z overflows in elu ({where})")  # where(z > 0, z, e^z - 1) evaluates both branches
        return np.where(z > 0, z, r(e - 1.0, where)), np.where(z > 0, 1.0, e)
    if name == "gelu":
        Phi = r(0.5 * r(1.0 + r(erf(r(z / _SQRT2, where)), where), where), where)
        phi = r(r(np.exp(r(-0.5 * r(z * z, where), where)), where) / _SQRT2PI, where)
        return r(z * Phi, where), r(Phi + r(z * phi, where), where)
    if name == "silu":
        s = r(1.0 / r(1.0 + r(np.exp(-z), f"e^-z overflows in silu ({where})"), where), where)
        return r(z * s, where), r(s * r(1.0 + r(z * r(1.0 - s, where), where), where), where)
    if name == "softmax":
        e = r(np.exp(z - z.max(axis=-1, keepdims=True)), where)
        return r(e / r(e.sum(axis=-1, keepdims=True), where), where), None
    raise ValueError(f"unknown activation {name!r}")


def _loss(run: _Run, loss: str, a: np.ndarray, Y: np.ndarray, N: int):
    """(L, dL/da) from the output activation, as the textbook writes them."""
    r = run.r
    if loss == "mse":
        d = r(a - Y, "mse")
        return r(r(r(d * d, "mse").sum(axis=(-2, -1)), "the sum of squares overflows in mse") / N, "mse"), r(2.0 * d / N, "mse")
    if loss == "cross_entropy":
        log_a = r(np.log(a), "log 0 in cross_entropy (a softmax probability underflows to 0)")
        L = r(-r(r(Y * log_a, "0 log 0 in cross_entropy").sum(axis=(-2, -1)), "the sum overflows in cross_entropy") / N, "cross_entropy")
        inverse = r(1.0 / a, "1 / a overflows in cross_entropy's dL/da (a softmax probability is subnormal)")
        return L, r(-r(Y * inverse, "cross_entropy") / N, "cross_entropy")
    one_minus = r(1.0 - a, "binary_cross_entropy")
    terms = r(r(Y * r(np.log(a), "log 0 in binary_cross_entropy (sigmoid rounds to 0)"), "binary_cross_entropy")
              + r((1.0 - Y) * r(np.log(one_minus), "log 0 in binary_cross_entropy (sigmoid rounds to 1)"), "binary_cross_entropy"),
              "binary_cross_entropy")
    L = r(-r(terms.sum(axis=(-2, -1)), "the sum overflows in binary_cross_entropy") / N, "binary_cross_entropy")
    # 1/a and 1/(1 - a) as autodiff of log forms them: they overflow before y/a does
    inverse = r(1.0 / a, "1 / a overflows in binary_cross_entropy's dL/da (sigmoid is subnormal)")
    inverse_one_minus = r(1.0 / one_minus, "1 / (1 - a) overflows in binary_cross_entropy's dL/da (sigmoid rounds to 1)")
    dA = r(r(-Y * inverse, "binary_cross_entropy") + r((1.0 - Y) * inverse_one_minus, "binary_cross_entropy"), "binary_cross_entropy")
    return L, r(dA / N, "binary_cross_entropy")


def noise(arch, params, X: np.ndarray, Y: np.ndarray, seed: int = 0, precision: Precision = FLOAT64) -> Noise:
    """The case's noise floors in ``precision`` and whether it lies in the chain rule's domain there (module docstring)."""
    run = _Run(np.random.default_rng(seed), precision)
    N = len(X)
    K = SAMPLES + 1
    with np.errstate(all="ignore"):
        A = [run.given(X, (K, *np.shape(X)))]
        params = [(run.given(W, (K, *np.shape(W))), run.given(b, (K, 1, len(b)))) for W, b in params]
        Y = run.given(Y, (K, *np.shape(Y)))
        Z, sigma_prime = [], []
        for l, ((W, b), name) in enumerate(zip(params, arch.activations), start=1):
            where = f"{name}, layer {l}"
            z = run.r(run.matmul(A[-1], np.swapaxes(W, -1, -2), where) + b, where)
            a, d = _activation(run, name, z, where)
            Z.append(z)
            A.append(a)
            sigma_prime.append(d)
        L, dA = _loss(run, arch.loss, A[-1], Y, N)
        grads = []
        for l in reversed(range(len(params))):
            if sigma_prime[l] is None:  # softmax: dZ = a (dA - sum(dA a))
                a = A[l + 1]
                dZ = run.r(a * run.r(dA - run.r((dA * a).sum(axis=-1, keepdims=True), "softmax'"), "softmax'"), "softmax'")
            else:
                dZ = run.r(dA * sigma_prime[l], f"dZ, layer {l + 1}")
            dW = run.matmul(np.swapaxes(dZ, -1, -2), A[l], f"dW, layer {l + 1}")
            db = run.r(dZ.sum(axis=-2), f"db, layer {l + 1}", np.abs(dZ).sum(axis=-2))
            grads.append((dW, db))
            if l:
                dA = run.matmul(dZ, params[l][0], f"dA, layer {l}")
        floors = [tuple(SAFETY * np.abs(g[1:] - g[0]).max(axis=0) for g in pair) for pair in reversed(grads)]
        loss_floor = SAFETY * float(np.abs(L[1:] - L[0]).max())
    if not run.outside and not (np.isfinite(loss_floor) and all(np.isfinite(f).all() for pair in floors for f in pair)):
        run.outside = "the plain formulas' rounding is not finite"
    plain = [tuple(g[0] for g in pair) for pair in reversed(grads)]
    return Noise(floors, loss_floor, plain, float(L[0]), run.outside)
