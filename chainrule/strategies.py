"""Hypothesis strategies for gradient cases: architectures, parameters and batches.

Shaped like Hypothesis's own ``array_shapes``: keyword-only ``min_*``/``max_*`` bounds with
small defaults, bad bounds rejected when the strategy is built, frozen dataclasses out.

What uniform sampling would miss is produced on purpose:
- exact kinks: values on a coarse dyadic grid (multiples of 1/4, where sums and products are
  exact in float64 in any order), and relu/leaky_relu units whose weight row and bias are
  zero, so z = 0 exactly for every example;
- the log losses with their output layers (a third of the draws each);
- saturated units (weights up to 12, pre-activations of tens);
- batches of more than one example and hidden layers;
- sizes across scales, when the bounds allow them: a width, the batch and the depth are
  mostly drawn at the toy scale (``SMALL``: width <= 6, N <= 4, depth <= 5, cheap and
  readable), and about one draw in eight (``LARGE_SHARE``) at the sizes where size-dependent
  bugs live: around the powers of two (2^k - 1, 2^k, 2^k + 1, the upper bound) for widths and
  the batch, 6..max for the depth. Tiled kernels, chunked batch loops and depth-dependent
  loops go wrong at a tile's edge, not in the middle of a toy network.

Each tensor is drawn as one block of bytes and decoded (``_Values``): one Hypothesis draw per
tensor instead of one per entry keeps generation to about a millisecond a case. Bytes shrink
toward 0, which decodes to 0, and small bytes to the grid's small fractions, so a shrunk
counterexample reads easily. Beyond the toy scale only a tensor's toy-sized corner is drawn
as bytes; the rest is decoded from a pseudo-random stream of one drawn seed, the same for
every size, so Hypothesis can shrink a large size while the case keeps its kind of values
(and its 8 KiB of choices suffice at any size). Weights into a layer of more than 8 inputs
are scaled by a power of two near sqrt(8 / inputs), which keeps pre-activations of wide
layers at the toy scale's magnitudes and grid values on the dyadic grid.

``cases(max_parameters=..., max_work=...)`` fits a drawn case under a size budget (the
search's time budget, chainrule.judge.size_budget): the widest layer, the batch or the depth is
halved toward the toy scale, keeping its place around a power of two, until it fits.
``limit_sizes`` caps every bound in the process (the pytest plugin's ``--chainrule-max-*``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from chainrule.case import Case
from chainrule.contract import ACTIVATION_NAMES, KINKED, LOSS_NAMES, REQUIRED_OUTPUT
from chainrule.reference import Architecture

__all__ = [
    "LARGE_SHARE", "SEARCH", "SMALL", "VALUE_MODES", "Sizes", "architectures", "boundary_sizes", "cases", "coverage_shapes", "fitted",
    "limit_sizes", "size_limits",
]

VALUE_MODES = ("grid", "float", "saturating")


@dataclass(frozen=True)
class Sizes:
    """Bounds on the sizes of a network and its batch: the widest layer, N, the number of layers."""

    width: int
    batch: int
    depth: int

    def __str__(self) -> str:
        return f"width {self.width}, N {self.batch}, depth {self.depth}"

    def bounded(self, width: int | None = None, batch: int | None = None, depth: int | None = None) -> "Sizes":
        """These sizes with the bounds given (None: keep), each a whole number >= 1 (else ValueError)."""
        given = {"width": width, "batch": batch, "depth": depth}
        for name, value in given.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"max_{name}: got {value!r}, expected a whole number >= 1")
        return Sizes(**{name: getattr(self, name) if value is None else value for name, value in given.items()})


SMALL = Sizes(width=6, batch=4, depth=5)  # the toy scale: most draws, every value drawn directly
SEARCH = Sizes(width=129, batch=64, depth=10)  # crosscheck's bounds unless told otherwise (--max-width, ...)
_limits: Sizes | None = None  # limit_sizes: caps on every bound in this process
_UNCAPPED = 1 << 30


def limit_sizes(width: int | None = None, batch: int | None = None, depth: int | None = None) -> None:
    """Caps every size drawn from now on in this process, whatever bounds a caller asks for (the
    pytest plugin's ``--chainrule-max-width``/``-batch``/``-depth``: the property suite and any
    ``crosscheck`` in the session stay within an implementation's known limits). No arguments:
    no caps. ValueError unless each is a whole number >= 1."""
    global _limits
    SEARCH.bounded(width, batch, depth)  # validates
    _limits = None if (width, batch, depth) == (None, None, None) else Sizes(width or _UNCAPPED, batch or _UNCAPPED, depth or _UNCAPPED)


def size_limits(sizes: Sizes) -> Sizes:
    """``sizes`` within the caps of ``limit_sizes``."""
    if _limits is None:
        return sizes
    return Sizes(min(sizes.width, _limits.width), min(sizes.batch, _limits.batch), min(sizes.depth, _limits.depth))
LARGE_SHARE = 1 / 8  # of the draws of one size (each width, the batch, the depth): above the toy scale
_WIDE_FAN_IN = 8  # weights into a layer with more inputs are scaled down (see the module docstring)


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


def boundary_sizes(low: int, high: int, above: int) -> tuple[int, ...]:
    """The sizes drawn above the toy scale ``above``: 2^k - 1, 2^k and 2^k + 1 within [low, high],
    and the bounds themselves, ascending (where a tile, a chunk or a vector lane ends)."""
    near_powers = {(1 << k) + d for k in range(1, high.bit_length() + 1) for d in (-1, 0, 1)}
    return tuple(sorted(s for s in near_powers | {low, high} if max(low, above + 1) <= s <= high))


@functools.cache
def _size_choices(low: int, high: int, small: int) -> tuple[int, ...]:
    """What one size is sampled from, in shrinking order: the toy sizes low..small, each repeated
    so that about LARGE_SHARE of the draws are boundary sizes, then the boundary sizes."""
    toy = tuple(range(low, min(high, small) + 1))
    large = boundary_sizes(low, high, small)
    repeat = math.ceil(len(large) * (1 - LARGE_SHARE) / (LARGE_SHARE * len(toy))) if toy and large else 1
    return tuple(size for size in toy for _ in range(repeat)) + large


def architectures(
    *,
    min_depth: int = 1,
    max_depth: int = SMALL.depth,
    min_width: int = 1,
    max_width: int = SMALL.width,
    activations=ACTIVATION_NAMES,
    losses=LOSS_NAMES,
) -> st.SearchStrategy[Architecture]:
    """Valid architectures: depth = number of layers with parameters, widths of every layer.
    Bounds above the toy scale (``SMALL``) are reached about one draw in eight, at the sizes
    around powers of two (``boundary_sizes``) for widths, uniformly above 5 for the depth."""
    _check_bounds("depth", min_depth, max_depth, 1)
    _check_bounds("width", min_width, max_width, 1)
    capped = size_limits(Sizes(max_width, 1, max_depth))
    (min_width, max_width), (min_depth, max_depth) = ((min(low, high), high) for low, high in ((min_width, capped.width), (min_depth, capped.depth)))
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
    widths = _size_choices(min_width, max_width, SMALL.width)
    layer = st.sampled_from([(width, name) for width in widths for name in hidden or ("identity",)])
    # softmax and sigmoid outputs under mse are where Jacobian bugs show: listed twice, drawn often
    outputs = st.sampled_from(activations + tuple(name for name in ("softmax", "sigmoid") if name in activations))
    loss_names = st.sampled_from(losses)
    top = max_depth - 1 if hidden else 0
    toy_top = min(top, SMALL.depth - 1)
    toy_layers = st.lists(layer, min_size=min(min_depth - 1, toy_top), max_size=toy_top) if min_depth <= SMALL.depth else None
    deep_layers = st.lists(layer, min_size=max(min_depth - 1, SMALL.depth), max_size=top) if top >= SMALL.depth else None
    deep = st.sampled_from((False,) * round(1 / LARGE_SHARE - 1) + (True,)) if toy_layers is not None and deep_layers is not None else None
    width = st.sampled_from(widths)

    @st.composite
    def draw_architecture(draw) -> Architecture:
        # Hidden layers are one list of (width, activation): the shrinker deletes whole layers.
        loss = draw(loss_names)
        layers = draw(deep_layers if toy_layers is None or (deep is not None and draw(deep)) else toy_layers)
        n_in, n_out = draw(width), draw(width)
        drawn = draw(outputs)  # drawn even where the loss fixes the output: a shrunk loss keeps later draws aligned
        output = REQUIRED_OUTPUT.get(loss, drawn)
        sizes = (n_in, *(width for width, _ in layers), n_out)
        return Architecture(sizes, tuple(name for _, name in layers) + (output,), loss)

    return draw_architecture()


def _normalise_rows(w: np.ndarray) -> np.ndarray:
    """Rows of non-negative weights -> probability vectors (an all-zero row becomes one-hot)."""
    w = w.copy()
    w[w.sum(axis=1) == 0, 0] = 1.0
    return w / w.sum(axis=1, keepdims=True)


def _halved(n: int, floor: int) -> int:
    """About n / 2, keeping n's place around a power of two (129 -> 65, 128 -> 64, 127 -> 63),
    never below ``floor`` nor above n - 1."""
    power = 1 << (n.bit_length() - 1)
    half = power - 1 if n == 2 * power - 1 else power // 2 + (n - power) if n - power <= 1 else n // 2
    return max(min(floor, n - 1), min(half, n - 1))


def fitted(arch: Architecture, batch: int, max_parameters: int | None = None, max_work: int | None = None) -> tuple[Architecture, int]:
    """(arch, batch) made to fit: at most ``max_parameters`` parameters and ``max_work`` (N x
    parameters), by halving the widest layer, the batch or the depth toward the toy scale, the
    one furthest above it first. A network at the toy scale is never cut further."""
    sizes, names, n = list(arch.sizes), list(arch.activations), batch

    def parameters() -> int:
        return sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))

    def over() -> bool:
        p = parameters()
        return (max_parameters is not None and p > max_parameters) or (max_work is not None and n * p > max_work)

    while over():
        widest = max(range(len(sizes)), key=sizes.__getitem__)
        width_excess = sizes[widest] / SMALL.width
        batch_excess = n / SMALL.batch if max_parameters is None or parameters() <= max_parameters else 0.0
        if width_excess > 1 and width_excess >= batch_excess:
            sizes[widest] = _halved(sizes[widest], SMALL.width)
        elif batch_excess > 1:
            n = _halved(n, SMALL.batch)
        elif len(names) > SMALL.depth:
            del sizes[-2], names[-2]
        else:
            break
    if (tuple(sizes), n) == (arch.sizes, batch):
        return arch, batch
    return Architecture(tuple(sizes), tuple(names), arch.loss), n


def _near_power_above(high: int) -> int:
    """The largest 2^k + 1 <= high (high itself below 3): where a tile or a chunk has one left over."""
    return max((1 << k) + 1 for k in range(high.bit_length()) if (1 << k) + 1 <= high) if high >= 3 else high


def coverage_shapes(hidden: str, output: str, loss: str, sizes: Sizes, max_parameters: int | None = None, max_work: int | None = None) -> list[tuple[Architecture, int]]:
    """(architecture, N) of the scaled coverage cases for one loss, each ``fitted``: a wide one,
    two layers of the largest width 2^k + 1 within sizes.width into 3 outputs, N the largest
    2^k + 1 within sizes.batch; and a deep one, sizes.depth layers of 3 units, N 5 (when the
    bounds allow more than one layer)."""
    width, n = _near_power_above(sizes.width), _near_power_above(sizes.batch)
    shapes = [(Architecture((width, width, min(3, sizes.width)), (hidden, output), loss), n)]
    if sizes.depth > 1:
        deep = min(3, sizes.width)
        shapes.append((Architecture((deep,) * (sizes.depth + 1), (hidden,) * (sizes.depth - 1) + (output,), loss), min(5, sizes.batch)))
    return [fitted(arch, batch, max_parameters, max_work) for arch, batch in shapes]


def cases(
    architecture: st.SearchStrategy[Architecture] | None = None,
    *,
    min_batch: int = 1,
    max_batch: int = SMALL.batch,
    max_parameters: int | None = None,
    max_work: int | None = None,
) -> st.SearchStrategy[Case]:
    """Cases: an architecture (default: ``architectures()``), parameters, X and Y. The batch is
    drawn as widths are (``boundary_sizes`` about one draw in eight above SMALL.batch); a case
    above ``max_parameters`` or ``max_work`` (N x parameters) is ``fitted`` down."""
    _check_bounds("batch", min_batch, max_batch, 1)
    max_batch = size_limits(Sizes(1, max_batch, 1)).batch
    min_batch = min(min_batch, max_batch)
    architecture = architecture if architecture is not None else architectures()
    batch = st.sampled_from(_size_choices(min_batch, max_batch, SMALL.batch))

    @st.composite
    def draw_case(draw) -> Case:
        arch = draw(architecture)
        mode = draw(_MODES)
        arch, n = fitted(arch, draw(batch), max_parameters, max_work)
        return _draw_values(draw, arch, mode, n)

    return draw_case()


_MODES = st.sampled_from(VALUE_MODES)
_SEEDS = st.integers(0, 2**32 - 1)


@functools.cache
def _zeroed_row(count: int) -> st.SearchStrategy[int | None]:
    """Half the time None, else a uniform unit j in [0, count): one draw, shrinking to None."""
    return st.sampled_from((None,) * count + tuple(range(count)))


class _Blocks:
    """Tensors drawn a toy-sized corner at a time; the rest is filled from one drawn seed at the end."""

    def __init__(self, draw):
        self.draw = draw
        self.rest: list[tuple[np.ndarray, np.ndarray, _Values]] = []  # (array, entries to fill, how to decode)

    def matrix(self, values: _Values, rows: int, cols: int, bias: bool = False) -> np.ndarray:
        """A (rows, cols [+ 1 bias column]) array: its first SMALL.batch-or-width rows and SMALL.width
        columns (and the bias column) drawn as bytes, exactly the whole array at the toy scale."""
        r, c = min(rows, SMALL.width if bias else SMALL.batch), min(cols, SMALL.width)
        block = self.draw(_tensor(values, (r, c + bias)))
        out = np.zeros((rows, cols + bias))
        drawn = np.zeros(out.shape, dtype=bool)
        drawn[:r, :c] = True
        drawn[:r, cols:] = True  # the bias column
        out[drawn] = block.ravel()
        if not drawn.all():
            self.rest.append((out, ~drawn, values))
        return out

    def filled(self) -> None:
        if self.rest:
            rng = np.random.default_rng(self.draw(_SEEDS))
            for out, missing, values in self.rest:
                out[missing] = values.decode(rng.integers(0, 1 << (8 * values.width), size=int(missing.sum()), dtype=np.int64))


def _scale(fan_in: int) -> float:
    """A power of two near sqrt(_WIDE_FAN_IN / fan_in), 1 up to _WIDE_FAN_IN inputs (exact on the grid)."""
    return 2.0 ** -max(0, round(math.log2(fan_in / _WIDE_FAN_IN) / 2)) if fan_in > _WIDE_FAN_IN else 1.0


def _draw_values(draw, arch: Architecture, mode: str, n: int) -> Case:
    """Parameters, X and Y for the architecture, batch n, values by mode. A layer's [W | b] is one
    block; at a relu/leaky_relu layer, half the time one unit's row and bias are zeroed, so its
    z = 0 exactly for every example: a kink."""
    values, blocks = _VALUES[mode], _Blocks(draw)
    layers, zeroed = [], []
    for l, (n_in, n_out) in enumerate(zip(arch.sizes, arch.sizes[1:])):
        layers.append(blocks.matrix(values, n_out, n_in, bias=True))
        zeroed.append(draw(_zeroed_row(n_out)) if arch.activations[l] in KINKED else None)
    X = blocks.matrix(_INPUTS[mode], n, arch.sizes[0])
    Y = blocks.matrix(_INPUTS[mode] if arch.loss == "mse" else _UNIT[mode], n, arch.sizes[-1])
    blocks.filled()
    params = []
    for Wb, j, n_in in zip(layers, zeroed, arch.sizes):
        if j is not None:
            Wb[j] = 0.0
        params.append((Wb[:, :n_in] * _scale(n_in), Wb[:, n_in].copy()))
    return Case(arch, params, X, _normalise_rows(Y) if arch.loss == "cross_entropy" else Y)
