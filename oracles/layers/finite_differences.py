"""Finite differences as a judge of the layer contract: each layer's float64 forward written here with
numpy and scipy.special, differentiated numerically, every estimate with its own error estimate.

For an entry x_i of an input (or, in ``directional``, all inputs along a direction d) let
phi(t) = <y(x + t e_i), dy> - <y(x), dy>. At the steps h_k = h / 2^k, k = 0, 1, 2:

    D_k = (phi(h_k) - phi(-h_k)) / 2h_k              central difference: f' + c2 h_k^2 + c4 h_k^4 + ...
    R_k = D_k+1 + (D_k+1 - D_k) / 3                  Richardson: f' + O(h_k^4)
    s_k = (phi(h_k) + phi(-h_k)) / h_k               second difference: h_k f'' + O(h_k^3)

The estimate is R_1, its error |R_1 - R_0| + |s_0 - 2 s_1| + |s_1 - 2 s_2| + ROUNDING * noise,
where noise = eps * S / h bounds the rounding of phi (S: the size of <y, dy>'s terms: |y| |dy|
and |x| |grad| summed, the latter for the cancellations inside the forward pass, plus the
entry's largest |phi|; per entry where the entries are independent). Where the
function is smooth, s_k halves with the step; where a step crosses a kink (relu or leaky_relu
at 0, elu's jump in curvature, any non-smooth point), it does not, and a mismatch beyond KINK
times its rounding bound makes the error inf: no evidence.

h = cbrt(eps) * max(1, |x_i|), each h_k rounded so that x_i +- h_k are floats. Layers whose
output entry j depends on x_j alone (the elementwise ones, dropout) move every entry at once;
the others one entry at a time (2 * 3 forward passes an entry).

conv, the pools and attention are vectorised over the output positions (a loop over the kernel's
offsets, each a strided slice), since they run 6 times an entry. conv and avg_pool2d are linear in
x and attention is smooth; max_pool2d has a kink wherever a window's maximum is tied, which the
second differences refuse (a step up moves the window's maximum, a step down does not).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_softmax, ndtr, softmax

from chainrule.contract import LEAKY_SLOPE
from chainrule.layers.contract import ELEMENTWISE, LAYERS

__all__ = ["FORWARD", "KINK", "ROUNDING", "SEPARABLE", "STEP", "directional", "step", "vjp"]

EPS = float(np.finfo(np.float64).eps)
STEP = float(np.cbrt(EPS))  # relative step h of the central difference
LEVELS = 3  # steps h, h/2, h/4
# R_1 takes about 6 eps S / h of rounding from phi's, each within eps S: 8 leaves a margin.
ROUNDING = 8.0
# s_0 - 2 s_1 and s_1 - 2 s_2 take at most 20 and 40 eps S / h of rounding; a mismatch KINK times
# that is a non-smooth point within a step (a kink crossed by every step mismatches by |jump| |dy|).
KINK = 4.0
_MISMATCH_ROUNDING = np.array([20.0, 40.0])
SEPARABLE = frozenset(ELEMENTWISE) | {"dropout"}  # y[j] depends on x[j] alone


def _normalized(x: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    """(x - mean) / sqrt(var + eps) over ``axes``, biased variance."""
    centred = x - x.mean(axis=axes, keepdims=True)
    return centred / np.sqrt((centred * centred).mean(axis=axes, keepdims=True) + eps)


def _per_channel(a: np.ndarray, ndim: int) -> np.ndarray:
    """A (C,) array shaped to broadcast over (N, C, *spatial) of rank ``ndim``."""
    return a.reshape((-1,) + (1,) * (ndim - 2))


def _layer_norm(c, x, weight, bias):
    rank = 1 if isinstance(c["normalized_shape"], int) else len(c["normalized_shape"])  # S: an int or a list
    return _normalized(x, tuple(range(x.ndim - rank, x.ndim)), c["eps"]) * weight + bias


def _batch_norm(c, x, weight, bias):
    y = _normalized(x, (0,) + tuple(range(2, x.ndim)), c["eps"])
    return y * _per_channel(weight, x.ndim) + _per_channel(bias, x.ndim)


def _group_norm(c, x, weight, bias):
    y = _normalized(x.reshape(x.shape[0], c["num_groups"], -1), (2,), c["eps"]).reshape(x.shape)
    return y * _per_channel(weight, x.ndim) + _per_channel(bias, x.ndim)


def _per_axis(value, rank: int) -> tuple[int, ...]:
    """A config's int or list (one per spatial axis) as one int per axis."""
    return tuple(value) if isinstance(value, list) else (value,) * rank


def _windows(x: np.ndarray, kernel, stride, dilation, padding, fill: float) -> np.ndarray:
    """Every window of x (N, C, *spatial) padded with ``fill`` on both sides of each axis:
    (N, C, K, *out), K the kernel's offsets in row-major order, out = (L + 2p - d (k - 1) - 1) // s + 1."""
    padded = np.full((*x.shape[:2], *(n + 2 * p for n, p in zip(x.shape[2:], padding))), fill)  # np.pad, without its overhead
    padded[(..., *(slice(p, p + n) for p, n in zip(padding, x.shape[2:])))] = x
    out = [(n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(padded.shape[2:], kernel, stride, dilation)]
    return np.stack([padded[(..., *(slice(o * d, o * d + s * (m - 1) + 1, s) for o, d, s, m in zip(offset, dilation, stride, out)))]
                     for offset in np.ndindex(*kernel)], axis=2)


def _conv(c, x, weight, bias):
    """Cross-correlation: per group g, weight[g] (C_out/G, C_in/G * K) times x's windows (C_in/G * K, positions)."""
    rank, groups = x.ndim - 2, c["groups"]
    stride, dilation, padding = (_per_axis(c[key], rank) for key in ("stride", "dilation", "padding"))
    windows = _windows(x, weight.shape[2:], stride, dilation, padding, 0.0)
    columns = windows.reshape(x.shape[0], groups, -1, np.prod(windows.shape[3:], dtype=int))
    y = (weight.reshape(groups, weight.shape[0] // groups, -1) @ columns).reshape(x.shape[0], weight.shape[0], *windows.shape[3:])
    return y + _per_channel(bias, y.ndim)


def _pool_windows(c, x: np.ndarray, fill: float) -> np.ndarray:
    """The pool's windows of x (N, C, H, W): (N, C, K, H_out, W_out); stride None is kernel_size."""
    kernel = _per_axis(c["kernel_size"], 2)
    stride = kernel if c["stride"] is None else _per_axis(c["stride"], 2)
    return _windows(x, kernel, stride, (1, 1), _per_axis(c["padding"], 2), fill)


def _avg_pool2d(c, x):
    """The window's sum over the kernel's area, or (count_include_pad False) over its real entries."""
    total = _pool_windows(c, x, 0.0).sum(axis=2)
    if c["count_include_pad"]:
        return total / np.prod(_per_axis(c["kernel_size"], 2))
    return total / _pool_windows(c, np.ones_like(x), 0.0).sum(axis=2)


def _attention(c, q, k, v, mask=None):
    """softmax(q k^T scale) v over the keys allowed by mask AND (causal) j <= i; scale None: 1/sqrt(E)."""
    allowed = np.ones((q.shape[-2], k.shape[-2]), dtype=bool) if mask is None else mask
    if c["causal"]:
        allowed = allowed & np.tri(q.shape[-2], k.shape[-2], dtype=bool)
    scale = 1.0 / np.sqrt(q.shape[-1]) if c["scale"] is None else c["scale"]
    logits = np.where(allowed, q @ np.swapaxes(k, -1, -2) * scale, -np.inf)
    return softmax(logits, axis=-1) @ v


def _cross_entropy(c, input, target):
    """mean over N of -log softmax(input)[target]."""
    return -np.mean(np.take_along_axis(log_softmax(input, axis=1), target[:, None], axis=1))


# layer -> forward(config, **inputs): y in float64 from the contract's inputs.
FORWARD = {
    "linear": lambda c, x, weight, bias: x @ weight.T + bias,
    "identity": lambda c, x: x,
    "relu": lambda c, x: np.where(x > 0, x, 0.0),
    "leaky_relu": lambda c, x: np.where(x > 0, x, LEAKY_SLOPE * x),
    "sigmoid": lambda c, x: expit(x),
    "tanh": lambda c, x: np.tanh(x),
    "softplus": lambda c, x: np.logaddexp(0.0, x),  # log(1 + e^x) everywhere
    "elu": lambda c, x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "gelu": lambda c, x: x * ndtr(x),  # x Phi(x), the exact form
    "silu": lambda c, x: x * expit(x),
    "softmax": lambda c, x: softmax(x, axis=c["axis"]),
    "log_softmax": lambda c, x: log_softmax(x, axis=c["axis"]),
    "layer_norm": _layer_norm,
    "batch_norm": _batch_norm,
    "group_norm": _group_norm,
    "embedding": lambda c, indices, weight: weight[indices],
    "dropout": lambda c, x, mask: x * mask / (1.0 - c["p"]),
    "conv1d": _conv,
    "conv2d": _conv,
    "max_pool2d": lambda c, x: _pool_windows(c, x, -np.inf).max(axis=2),
    "avg_pool2d": _avg_pool2d,
    "attention": _attention,
    "mse_loss": lambda c, input, target: np.mean((input - target) ** 2),
    "cross_entropy": _cross_entropy,
}


def step(x: np.ndarray, relative: float = STEP) -> np.ndarray:
    """h = relative * max(1, |x|), rounded so that x +- h are floats: (|x| + h) - |x|."""
    magnitude = np.abs(x)
    return (magnitude + relative * np.maximum(1.0, magnitude)) - magnitude


def _estimate(plus: np.ndarray, minus: np.ndarray, h: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R_1, its error) from phi(+-h_k) = plus[k], minus[k] at the steps h[k] (h_k / h_k+1 = 2 up to
    rounding), per entry; ``size`` is S, the scale of phi's rounding. Error inf at a non-smooth point."""
    D = (plus - minus) / (2.0 * h)
    s = (plus + minus) / h
    ratio = h[:-1] / h[1:]
    R = D[1:] + (D[1:] - D[:-1]) / (ratio * ratio - 1.0)
    mismatch = np.abs(s[:-1] - ratio * s[1:])
    noise = EPS * size / h[0]
    kinked = (mismatch > KINK * _MISMATCH_ROUNDING.reshape((-1,) + (1,) * noise.ndim) * noise).any(axis=0)
    error = np.abs(R[1] - R[0]) + mismatch.sum(axis=0) + ROUNDING * noise
    return R[-1], np.where(kinked, np.inf, error)


def _forward(layer: str, config: dict, inputs: dict[str, np.ndarray], dy: np.ndarray):
    """(y, forward(**moved) -> y with some inputs replaced, dy as float64)."""
    function = FORWARD[layer]

    def forward(**moved):
        return function(config, **(inputs | moved))

    return forward(), forward, np.asarray(dy, dtype=np.float64)


def _phi(forward, name: str, x: np.ndarray, moved: np.ndarray, y: np.ndarray, dy: np.ndarray, separable: bool) -> np.ndarray:
    """phi for each entry of x moved alone to ``moved`` (x's shape): sum((y' - y) dy) of its own
    forward pass, or (y'[j] - y[j]) dy[j] for all entries in one pass when the layer is separable."""
    if separable:
        return (forward(**{name: moved}) - y) * dy
    out, probe = np.empty(x.shape), x.copy()
    for i in np.ndindex(x.shape):
        probe[i] = moved[i]
        out[i] = np.sum((forward(**{name: probe}) - y) * dy)
        probe[i] = x[i]
    return out


def vjp(layer: str, config: dict, inputs: dict[str, np.ndarray], dy: np.ndarray, names=None):
    """(y, grads, errors): the layer's output, grads[n] the estimates of d<y, dy>/d inputs[n] for
    every entry, errors[n] each entry's error estimate (inf where a step met a non-smooth point).
    ``names``: the inputs to differentiate (default: every differentiable one)."""
    y, forward, dy = _forward(layer, config, inputs, dy)
    separable = layer in SEPARABLE
    total = (lambda a: a) if separable else np.sum  # S per entry where entries are independent, else one
    names = LAYERS[layer].differentiable if names is None else tuple(names)
    steps, plus, minus = {}, {}, {}
    for n in names:
        x = np.asarray(inputs[n], dtype=np.float64)
        steps[n] = np.stack([step(x, STEP / 2**k) for k in range(LEVELS)])
        plus[n] = np.stack([_phi(forward, n, x, x + h, y, dy, separable) for h in steps[n]])
        minus[n] = np.stack([_phi(forward, n, x, x - h, y, dy, separable) for h in steps[n]])
    # S: |y| |dy| and |x| |grad| (the forward pass's cancellations), then each entry's largest |phi|
    common = total(np.abs(y * dy)) + sum(total(np.abs(inputs[n] * (plus[n][0] - minus[n][0]) / (2.0 * steps[n][0]))) for n in names)
    grads, errors = {}, {}
    for n in names:
        size = common + np.maximum(np.abs(plus[n]).max(axis=0), np.abs(minus[n]).max(axis=0))
        grads[n], errors[n] = _estimate(plus[n], minus[n], steps[n], size)
    return np.array(y, dtype=np.float64), grads, errors


def directional(layer: str, config: dict, inputs: dict[str, np.ndarray], dy: np.ndarray, directions: dict[str, np.ndarray]):
    """(value, error): d/dt <y(inputs + t directions), dy> at t = 0, for inputs too large to
    difference entry by entry; 6 forward passes. The step in t moves no entry by more than
    cbrt(eps) * max(1, the largest |entry| moved)."""
    y, forward, dy = _forward(layer, config, inputs, dy)
    reach = max((float(np.abs(d).max(initial=0.0)) for d in directions.values()), default=0.0)
    if reach == 0.0:
        return 0.0, 0.0
    moved = [np.asarray(inputs[n], dtype=np.float64)[np.asarray(d) != 0] for n, d in directions.items()]
    scale = max(1.0, max(float(np.abs(x).max(initial=0.0)) for x in moved))
    h = STEP * scale / reach / 2.0 ** np.arange(LEVELS)

    def phi(t: float) -> float:
        return float(np.sum((forward(**{n: inputs[n] + t * d for n, d in directions.items()}) - y) * dy))

    plus, minus = np.array([phi(t) for t in h]), np.array([phi(-t) for t in h])
    rough = abs(plus[0] - minus[0]) / (2.0 * h[0])
    size = float(np.sum(np.abs(y * dy))) + np.abs(plus).max() + np.abs(minus).max() + rough * scale / reach
    value, error = _estimate(plus, minus, h, np.array(size))
    return float(value), float(error)
