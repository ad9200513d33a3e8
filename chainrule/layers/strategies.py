"""What Hypothesis draws for a layer: a Spec (shapes, config, value style, seed), built into a case.

A Spec is the small, shrinkable description of a case: the dims of the layer's main input, the
config keys given explicitly (a key left out takes its default: the simplest config is the
empty one), how its values are drawn and the seed that draws them. Hypothesis shrinks dims
toward 1 and configs toward the defaults; chainrule.layers.reduce goes on from there.

Dims come from 1..4 or the boundaries around 2^k (EDGES), capped so that a case holds at most
``max_entries`` entries (the time budget). Values reach the special points on purpose:
"integers" puts exact zeros (relu's kink) and ties in the inputs and repeats embedding indices;
"zeros" sets a third of the entries to 0. dy is random, never constant; the norms' weight is
never all ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from hypothesis import strategies as st

from chainrule.layers.case import LayerCase, shapes_text
from chainrule.layers.contract import ELEMENTWISE, LAYERS, full_config
from chainrule.reference.layers import forward

__all__ = ["DEFAULT", "EDGES", "MAX_ENTRIES", "STYLES", "Spec", "build", "given_case", "parse_shapes", "specs", "supported"]

EDGES = (7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65)  # dims around 2^k, where tiled and chunked loops break
MAX_ENTRIES = 1024  # entries of the main input at most (the time budget may lower it)
STYLES = ("normal", "integers", "zeros")
_EPS = (1e-3, 0.1, 1.0)
_P = (0.0, 0.1, 0.5, 0.9)


@dataclass(frozen=True)
class Spec:
    """A case before its values: the layer, the config keys given explicitly, the dims of its main
    input (linear: N, in, out; layer_norm: x's dims then how many trailing ones are normalized;
    group_norm: N, groups, channels a group, *spatial; embedding: V, D, then the indices' dims;
    cross_entropy: N, C), how values are drawn and the seed."""

    layer: str
    config: tuple[tuple[str, object], ...]
    dims: tuple[int, ...]
    style: str = "normal"
    seed: int = 0

    def with_config(self, **changes) -> "Spec":
        config = dict(self.config) | changes
        return replace(self, config=tuple((k, v) for k, v in config.items() if v is not DEFAULT))

    def describe(self) -> str:
        return f"{self.layer} dims={self.dims} config={dict(self.config)} style={self.style} seed={self.seed}"


DEFAULT = object()  # with_config(key=DEFAULT): back to the default


def _rank(dims: tuple[int, ...], layer: str) -> int:
    return len(dims) - (1 if layer == "layer_norm" else 0)


def build(spec: Spec) -> LayerCase | None:
    """The case a Spec describes (None when its dims break the contract, e.g. a norm over one value)."""
    rng = np.random.default_rng(spec.seed)
    layer, dims, config = spec.layer, spec.dims, dict(spec.config)
    values = lambda shape: _values(rng, shape, spec.style)  # noqa: E731
    if layer == "linear":
        N, n_in, n_out = dims
        inputs = {"x": values((N, n_in)), "weight": values((n_out, n_in)), "bias": values((n_out,))}
        y_shape = (N, n_out)
    elif layer in ELEMENTWISE or layer in ("softmax", "log_softmax"):
        if "axis" in config and not -len(dims) <= config["axis"] < len(dims):
            return None
        inputs, y_shape = {"x": values(dims)}, dims
    elif layer == "layer_norm":
        shape, k = dims[:-1], dims[-1]
        if not 1 <= k <= len(shape) or (math.prod(shape[-k:]) < 1):
            return None
        normalized = shape[-k:]
        config["normalized_shape"] = list(normalized)
        inputs = {"x": values(shape), "weight": _weight(rng, normalized), "bias": values(normalized)}
        y_shape = shape
    elif layer in ("batch_norm", "group_norm"):
        if layer == "group_norm":
            N, groups, per_group, *spatial = dims
            channels, per_statistic = groups * per_group, per_group * math.prod(spatial)
            config["num_groups"] = groups
        else:
            N, channels, *spatial = dims
            per_statistic = N * math.prod(spatial)
        if per_statistic < 2:
            return None
        shape = (N, channels, *spatial)
        inputs = {"x": values(shape), "weight": _weight(rng, (channels,)), "bias": values((channels,))}
        y_shape = shape
    elif layer == "embedding":
        V, D, *index_shape = dims
        high = min(V, 2) if spec.style == "integers" else V  # "integers": indices repeat
        inputs = {"indices": rng.integers(0, high, tuple(index_shape)).astype(np.int64), "weight": values((V, D))}
        y_shape = (*index_shape, D)
    elif layer == "dropout":
        p = config.get("p", 0.5)
        config["p"] = p
        inputs = {"x": values(dims), "mask": rng.random(dims) >= p}
        y_shape = dims
    elif layer == "mse_loss":
        inputs, y_shape = {"input": values(dims), "target": values(dims)}, ()
    elif layer == "cross_entropy":
        N, C = dims
        inputs, y_shape = {"input": values((N, C)), "target": rng.integers(0, C, N).astype(np.int64)}, ()
    else:
        raise ValueError(f"no strategy for layer {layer!r}")
    if "weight" in inputs and np.all(inputs["weight"] == 1.0):  # all ones would hide a missing weight factor
        inputs["weight"] = inputs["weight"] + 1.0
    return LayerCase(layer, full_config(layer, config), inputs, _cotangent(rng, y_shape))


def _values(rng: np.random.Generator, shape: tuple[int, ...], style: str) -> np.ndarray:
    if style == "integers":
        return rng.integers(-2, 3, shape).astype(np.float64)
    x = rng.standard_normal(shape)
    if style == "zeros":
        x[rng.random(shape) < 1 / 3] = 0.0
    return x


def _weight(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """A norm's weight (gamma): around 1, never all ones (a missing gamma would hide)."""
    return 1.0 + 0.5 * rng.standard_normal(shape)


def _cotangent(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """dy: random, never constant (an all-ones dy hides a norm's dx), never 1 when 0-d."""
    dy = rng.standard_normal(shape)
    if dy.size == 1:
        return 0.5 + np.abs(dy) if abs(float(dy.reshape(-1)[0]) - 1.0) < 0.1 else dy
    return dy


# --- drawing specs ---------------------------------------------------------------------------

def _dim(edges: bool):
    """1..4 two times in three, else a boundary around 2^k."""
    small = st.integers(1, 4)
    return st.one_of(small, small, st.sampled_from(EDGES)) if edges else small


@st.composite
def _dims(draw, rank: int, max_entries: int, edges: bool, least: int = 1) -> tuple[int, ...]:
    """``rank`` dims whose product stays within max_entries (a dim that would pass it is cut)."""
    dims, product = [], 1
    for _ in range(rank):
        d = max(least, min(draw(_dim(edges)), max_entries // product))
        dims.append(d)
        product *= d
    return tuple(dims)


def _key(draw, allowed: dict, key: str, values):
    """A config value: left out (the default) unless drawn explicitly; only ``allowed`` ones when listed."""
    if key in allowed:
        return draw(st.sampled_from(list(allowed[key])))
    return draw(values) if draw(st.booleans()) else DEFAULT


@st.composite
def specs(draw, layer: str, layer_configs: dict | None = None, max_entries: int = MAX_ENTRIES, edges: bool = True) -> Spec:
    """Specs of ``layer`` within what the source supports (``layer_configs[layer]``: the values each
    listed key may take) and ``max_entries``."""
    allowed = dict((layer_configs or {}).get(layer, {}))
    config: dict[str, object] = {}
    dims = lambda rank, least=1: draw(_dims(rank, max_entries, edges, least))  # noqa: E731
    if layer == "linear":
        shape = dims(3)
    elif layer in ELEMENTWISE or layer == "dropout" or layer == "mse_loss":
        shape = dims(draw(st.integers(1, 4)))
        if layer == "dropout":
            config["p"] = _key(draw, allowed, "p", st.one_of(st.sampled_from(_P), st.floats(0.0, 0.9)))
            if config["p"] is DEFAULT:
                config["p"] = draw(st.sampled_from(_P))
    elif layer in ("softmax", "log_softmax"):
        shape = dims(draw(st.integers(1, 4)))
        config["axis"] = _key(draw, allowed, "axis", st.integers(-len(shape), len(shape) - 1))
    elif layer == "layer_norm":
        if "normalized_shape" in allowed:  # the trailing dims are one of the listed shapes
            normalized = tuple(draw(st.sampled_from(list(allowed["normalized_shape"]))))
            leading = dims(draw(st.integers(max(0, 2 - len(normalized)), max(0, 4 - len(normalized)))))
            shape = (*leading, *normalized, len(normalized))
        else:
            shape = dims(draw(st.integers(2, 4)))
            shape = (*shape, draw(st.integers(1, len(shape))))
        config["eps"] = _key(draw, allowed, "eps", st.sampled_from(_EPS))
    elif layer == "batch_norm":
        shape = dims(draw(st.integers(2, 4)))
        config["eps"] = _key(draw, allowed, "eps", st.sampled_from(_EPS))
    elif layer == "group_norm":
        rank = draw(st.integers(2, 4))
        N, groups = draw(_dims(2, max_entries, edges))
        if "num_groups" in allowed:
            groups = draw(st.sampled_from(list(allowed["num_groups"])))
        shape = (N, groups, *draw(_dims(rank - 1, max(1, max_entries // (N * groups)), edges)))
        config["eps"] = _key(draw, allowed, "eps", st.sampled_from(_EPS))
    elif layer == "embedding":
        shape = (*dims(2), *dims(draw(st.integers(0, 2))))
    elif layer == "cross_entropy":
        shape = dims(2)
    else:
        raise ValueError(f"no strategy for layer {layer!r}")
    config = {k: v for k, v in config.items() if v is not DEFAULT}
    style = draw(st.sampled_from(STYLES))
    seed = draw(st.integers(0, 2**32 - 1))
    return Spec(layer, tuple(config.items()), tuple(shape), style, seed)


def parse_shapes(text: str) -> dict[str, tuple[int, ...]]:
    """``x=2,3,9,9 weight=4,3,3,3 bias=4`` (``indices=`` for a 0-d array) as {name: shape}; ValueError if malformed."""
    shapes = {}
    for word in text.split():
        name, _, dims = word.partition("=")
        try:
            shapes[name] = tuple(int(d) for d in dims.split(",") if d)
        except ValueError:
            raise ValueError(f"--shapes: {word!r} is not NAME=D1,D2,...") from None
        if not name or any(d < 0 for d in shapes[name]):
            raise ValueError(f"--shapes: {word!r} is not NAME=D1,D2,...")
    return shapes


def given_case(layer: str, config: dict, shapes: dict[str, tuple[int, ...]], seed: int) -> LayerCase:
    """The case of ``check --layer``: these shapes (every input of the layer named), random values
    from ``seed`` as the strategies draw them, dy of the reference's output shape."""
    spec = LAYERS[layer]
    missing = [n for n in spec.input_names if n not in shapes]
    extra = [n for n in shapes if n not in spec.input_names]
    if missing or extra:
        raise ValueError(f"--shapes for {layer} names {', '.join(spec.input_names)}" + (f"; missing {', '.join(missing)}" if missing else "")
                         + (f"; unknown {', '.join(extra)}" if extra else ""))
    config = full_config(layer, config)
    rng = np.random.default_rng(seed)
    inputs = {}
    for entry in spec.inputs:
        shape = shapes[entry.name]
        if entry.kind == "index":
            high = shapes["weight"][0] if layer == "embedding" else shapes["input"][-1]
            inputs[entry.name] = rng.integers(0, high, shape).astype(np.int64)
        elif entry.kind == "mask":
            inputs[entry.name] = rng.random(shape) >= config["p"]
        elif entry.name == "weight" and layer.endswith("_norm"):
            inputs[entry.name] = _weight(rng, shape)
        else:
            inputs[entry.name] = rng.standard_normal(shape)
    try:
        y = forward(layer, config, inputs)
    except Exception as error:
        raise ValueError(f"--shapes {shapes_text(shapes)} do not fit {layer} with config {config}: {error}") from None
    return LayerCase(layer, config, inputs, _cotangent(rng, np.shape(y)))


def supported(case: LayerCase, layer_configs: dict | None) -> bool:
    """Whether every config value of the case is among those the source lists for its layer."""
    listed = (layer_configs or {}).get(case.layer, {})
    return all(case.config[key] in list(values) for key, values in listed.items())
