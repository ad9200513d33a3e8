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
Grid values shrink to small fractions, so a shrunk counterexample reads easily.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra.numpy import arrays

from reference.architecture import ACTIVATION_NAMES, KINKED, LOSS_NAMES, REQUIRED_OUTPUT, Architecture

__all__ = ["Case", "VALUE_MODES", "architectures", "cases"]

VALUE_MODES = ("grid", "float", "saturating")
_GRID = st.integers(-8, 8).map(lambda i: i / 4)  # -2, -1.75, ..., 2: exact arithmetic


def _floats(low: float, high: float) -> st.SearchStrategy[float]:
    """Floats in [low, high] with no magnitude below 1e-3: tiny values only add underflow."""
    return st.floats(low, high).map(lambda v: v if abs(v) >= 1e-3 else 0.0)


_FLOAT = _floats(-2.0, 2.0)
_SATURATING = _floats(-12.0, 12.0)
_UNIT_GRID = st.integers(0, 4).map(lambda i: i / 4)
_UNIT_FLOAT = _floats(0.0, 1.0)


@dataclass(frozen=True)
class Case:
    """One question for a gradient source: a network, its parameters and a batch."""

    arch: Architecture
    params: list[tuple[np.ndarray, np.ndarray]]
    X: np.ndarray
    Y: np.ndarray

    @property
    def batch_size(self) -> int:
        return len(self.X)

    def describe(self) -> str:
        """Short label for messages and test ids: ``3-relu-2-identity-2:mse, N=1``."""
        return f"{self.arch}, N={self.batch_size}"

    def reproduction(self) -> str:
        """Copy-pastable Python that rebuilds this case."""
        rows = lambda a: repr(a.tolist())  # noqa: E731 - full float64 round-trip via repr
        params = ",\n    ".join(f"(np.array({rows(W)}), np.array({rows(b)}))" for W, b in self.params)
        return (
            "import numpy as np\n"
            "from reference import Architecture\n"
            f"arch = Architecture.parse({str(self.arch)!r})\n"
            f"params = [\n    {params},\n]\n"
            f"X = np.array({rows(self.X)})\n"
            f"Y = np.array({rows(self.Y)})\n"
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

    layer = st.tuples(st.integers(min_width, max_width), st.sampled_from(hidden or ("identity",)))
    outputs = st.sampled_from(activations)
    nonlinear = [name for name in ("softmax", "sigmoid") if name in activations]
    if nonlinear:  # softmax and sigmoid outputs under mse are where Jacobian bugs show: draw them often
        outputs = st.one_of(outputs, st.sampled_from(nonlinear))

    @st.composite
    def draw_architecture(draw) -> Architecture:
        # Hidden layers are one list of (width, activation): the shrinker deletes whole layers.
        loss = draw(st.sampled_from(losses))
        layers = draw(st.lists(layer, min_size=min_depth - 1, max_size=max_depth - 1 if hidden else 0))
        n_in, n_out = draw(st.integers(min_width, max_width)), draw(st.integers(min_width, max_width))
        output = REQUIRED_OUTPUT.get(loss) or draw(outputs)
        sizes = (n_in, *(width for width, _ in layers), n_out)
        return Architecture(sizes, tuple(name for _, name in layers) + (output,), loss)

    return draw_architecture()


def _targets(loss: str, n: int, width: int, mode: str) -> st.SearchStrategy[np.ndarray]:
    """Y for a loss: free values for mse, probability rows for cross_entropy, [0, 1] for binary."""
    if loss == "mse":
        return arrays(np.float64, (n, width), elements=_GRID if mode == "grid" else _FLOAT)
    unit = _UNIT_GRID if mode == "grid" else _UNIT_FLOAT
    if loss == "binary_cross_entropy":
        return arrays(np.float64, (n, width), elements=unit)
    weights = arrays(np.float64, (n, width), elements=unit)
    return weights.map(lambda w: _normalise_rows(w))


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
    return _cases(architecture if architecture is not None else architectures(), min_batch, max_batch)


@st.composite
def _cases(draw, architecture: st.SearchStrategy[Architecture], min_batch: int, max_batch: int) -> Case:
    arch = draw(architecture)
    mode = draw(st.sampled_from(VALUE_MODES))
    n = draw(st.integers(min_batch, max_batch))
    values = {"grid": _GRID, "float": _FLOAT, "saturating": _SATURATING}[mode]
    params = []
    for l, (n_in, n_out) in enumerate(zip(arch.sizes, arch.sizes[1:])):
        W = draw(arrays(np.float64, (n_out, n_in), elements=values))
        b = draw(arrays(np.float64, (n_out,), elements=values))
        if arch.activations[l] in KINKED and draw(st.booleans()):
            j = draw(st.integers(0, n_out - 1))
            W[j], b[j] = 0.0, 0.0  # z_j = 0 exactly for every example: a kink
        params.append((W, b))
    X = draw(arrays(np.float64, (n, arch.sizes[0]), elements=_GRID if mode == "grid" else _FLOAT))
    Y = draw(_targets(arch.loss, n, arch.sizes[-1], mode))
    return Case(arch, params, X, Y)
