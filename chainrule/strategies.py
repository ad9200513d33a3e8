"""Hypothesis strategies for gradient cases: architectures, parameters and batches.

Shaped like Hypothesis's own ``array_shapes``: keyword-only ``min_*``/``max_*`` bounds with
small defaults, bad bounds rejected when the strategy is built, frozen dataclasses out.

What uniform sampling would miss is produced on purpose:
- exact kinks: values on a coarse dyadic grid (multiples of 1/4, where sums and products are
  exact in float64 in any order), and relu/leaky_relu units whose weight row and bias are
  zero, so z = 0 exactly for every example;
- the log losses with their output layers (a third of the draws each);
- saturated units (weights up to 12, pre-activations of tens);
- batches of more than one example and hidden layers (depth and batch are uniform).

Each tensor is drawn as one block of bytes and decoded (``_Values``): one Hypothesis draw per
tensor instead of one per entry keeps generation to about a millisecond a case. Bytes shrink
toward 0, which decodes to 0, and small bytes to the grid's small fractions, so a shrunk
counterexample reads easily.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from chainrule.case import Case
from chainrule.contract import ACTIVATION_NAMES, KINKED, LOSS_NAMES, REQUIRED_OUTPUT
from chainrule.reference import Architecture

__all__ = ["VALUE_MODES", "architectures", "cases"]

VALUE_MODES = ("grid", "float", "saturating")


@dataclass(frozen=True)
class _Values:
    """How one block of drawn bytes becomes a tensor: ``width`` bytes per value, read as an unsigned
    big-endian integer u, and ``decode(u)`` -> float64. Every decode sends u = 0 to 0 and small u
    to small values, so the shrinker, which moves bytes toward 0, makes values small and simple."""

    width: int
    decode: Callable[[np.ndarray], np.ndarray]


def _zigzag_grid(u: np.ndarray) -> np.ndarray:
    """u mod 17 -> 0, 1/4, -1/4, 1/2, -1/2, ..., 2, -2: the dyadic grid, exact in any summation order."""
    k = (u % 17).astype(np.float64)
    magnitude = np.ceil(k / 2) / 4
    return np.where(k % 2 == 1, magnitude, 0.0 - magnitude)  # 0.0 - 0.0 is +0.0, never -0.0


def _signed(bound: float) -> Callable[[np.ndarray], np.ndarray]:
    """u -> [-bound, bound]: the low bit is the sign, the rest the magnitude; below 1e-3 -> 0
    (tiny values only add underflow)."""

    def decode(u: np.ndarray) -> np.ndarray:
        v = np.where(u & 1, -1.0, 1.0) * (u >> 1) / (2**31 - 1) * bound
        return np.where(np.abs(v) >= 1e-3, v, 0.0)

    return decode


_VALUES = {  # by mode: parameters and X
    "grid": _Values(1, _zigzag_grid),
    "float": _Values(4, _signed(2.0)),
    "saturating": _Values(4, _signed(12.0)),
}
_INPUTS = {**_VALUES, "saturating": _VALUES["float"]}  # by mode: X and mse targets (never saturating)
_UNIT_FLOAT = _Values(4, lambda u: u / (2**32 - 1))
_UNIT = {  # by mode: targets in [0, 1]
    "grid": _Values(1, lambda u: (u % 5) / 4),
    "float": _UNIT_FLOAT,
    "saturating": _UNIT_FLOAT,
}


@functools.cache
def _tensor(values: _Values, shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    """A float64 array drawn as one block of bytes: one draw per tensor, not one per entry, which
    keeps generation near a millisecond a case (Hypothesis spends tens of microseconds a draw)."""
    size = values.width * int(np.prod(shape))
    unsigned = np.dtype(f">u{values.width}")
    return st.binary(min_size=size, max_size=size).map(
        lambda raw: values.decode(np.frombuffer(raw, dtype=unsigned).astype(np.int64)).reshape(shape)
    )


def _check_bounds(name: str, low: int, high: int, floor: int) -> None:
    if low < floor:
        raise InvalidArgument(f"min_{name}={low} must be at least {floor}")
    if high < low:
        raise InvalidArgument(f"max_{name}={high} must be at least min_{name}={low}")


def _check_names(kind: str, given, known) -> tuple[str, ...]:
    given = tuple(given)
    unknown = [name for name in given if name not in known]
    if unknown or not given:
        raise InvalidArgument(f"{kind}: got {unknown or 'nothing'}, allowed: {', '.join(known)}")
    return given


def architectures(
    *,
    min_depth: int = 1,
    max_depth: int = 5,
    min_width: int = 1,
    max_width: int = 6,
    activations=ACTIVATION_NAMES,
    losses=LOSS_NAMES,
) -> st.SearchStrategy[Architecture]:
    """Valid architectures: depth = number of layers with parameters, widths of every layer."""
    _check_bounds("depth", min_depth, max_depth, 1)
    _check_bounds("width", min_width, max_width, 1)
    activations = _check_names("activations", activations, ACTIVATION_NAMES)
    losses = _check_names("losses", losses, LOSS_NAMES)
    losses = tuple(loss for loss in losses if REQUIRED_OUTPUT.get(loss, activations[0]) in activations)
    if not losses:
        raise InvalidArgument("no loss can be used: cross_entropy needs softmax, binary_cross_entropy needs sigmoid")
    hidden = tuple(name for name in activations if name != "softmax")
    if max_depth > 1 and not hidden:
        raise InvalidArgument("max_depth > 1 needs a hidden activation other than softmax")

    # Strategies are built once, here: Hypothesis validates every new strategy object on first
    # draw, and each draw costs tens of microseconds, so a hidden layer is one draw of a
    # (width, activation) pair: the smallest width and the first activation shrink first.
    layer = st.sampled_from([(width, name) for width in range(min_width, max_width + 1) for name in hidden or ("identity",)])
    # softmax and sigmoid outputs under mse are where Jacobian bugs show: listed twice, drawn often
    outputs = st.sampled_from(activations + tuple(name for name in ("softmax", "sigmoid") if name in activations))
    loss_names = st.sampled_from(losses)
    hidden_layers = st.lists(layer, min_size=min_depth - 1, max_size=max_depth - 1 if hidden else 0)
    width = st.integers(min_width, max_width)

    @st.composite
    def draw_architecture(draw) -> Architecture:
        # Hidden layers are one list of (width, activation): the shrinker deletes whole layers.
        loss = draw(loss_names)
        layers = draw(hidden_layers)
        n_in, n_out = draw(width), draw(width)
        drawn = draw(outputs)  # drawn even where the loss fixes the output: a shrunk loss keeps later draws aligned
        output = REQUIRED_OUTPUT.get(loss, drawn)
        sizes = (n_in, *(width for width, _ in layers), n_out)
        return Architecture(sizes, tuple(name for _, name in layers) + (output,), loss)

    return draw_architecture()


@functools.cache
def _targets(loss: str, n: int, width: int, mode: str) -> st.SearchStrategy[np.ndarray]:
    """Y for a loss: free values for mse, probability rows for cross_entropy, [0, 1] for binary."""
    if loss == "mse":
        return _tensor(_INPUTS[mode], (n, width))
    unit = _tensor(_UNIT[mode], (n, width))
    return unit if loss == "binary_cross_entropy" else unit.map(_normalise_rows)


def _normalise_rows(w: np.ndarray) -> np.ndarray:
    """Rows of non-negative weights -> probability vectors (an all-zero row becomes one-hot)."""
    w = w.copy()
    w[w.sum(axis=1) == 0, 0] = 1.0
    return w / w.sum(axis=1, keepdims=True)


def cases(
    architecture: st.SearchStrategy[Architecture] | None = None,
    *,
    min_batch: int = 1,
    max_batch: int = 4,
) -> st.SearchStrategy[Case]:
    """Cases: an architecture (default: ``architectures()``), parameters, X and Y."""
    _check_bounds("batch", min_batch, max_batch, 1)
    architecture = architecture if architecture is not None else architectures()
    batch = st.integers(min_batch, max_batch)

    @st.composite
    def draw_case(draw) -> Case:
        arch = draw(architecture)
        mode = draw(_MODES)
        return _draw_values(draw, arch, mode, draw(batch))

    return draw_case()


_MODES = st.sampled_from(VALUE_MODES)


@functools.cache
def _zeroed_row(count: int) -> st.SearchStrategy[int | None]:
    """Half the time None, else a uniform unit j in [0, count): one draw, shrinking to None."""
    return st.sampled_from((None,) * count + tuple(range(count)))


def _draw_values(draw, arch: Architecture, mode: str, n: int) -> Case:
    """Parameters, X and Y for the architecture, batch n, values by mode. A layer's [W | b] is one
    block; at a relu/leaky_relu layer, half the time one unit's row and bias are zeroed, so its
    z = 0 exactly for every example: a kink."""
    values = _VALUES[mode]
    params = []
    for l, (n_in, n_out) in enumerate(zip(arch.sizes, arch.sizes[1:])):
        Wb = draw(_tensor(values, (n_out, n_in + 1)))
        if arch.activations[l] in KINKED and (j := draw(_zeroed_row(n_out))) is not None:
            Wb[j] = 0.0
        params.append((Wb[:, :n_in].copy(), Wb[:, n_in].copy()))
    X = draw(_tensor(_INPUTS[mode], (n, arch.sizes[0])))
    Y = draw(_targets(arch.loss, n, arch.sizes[-1], mode))
    return Case(arch, params, X, Y)
