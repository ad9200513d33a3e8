"""What Hypothesis draws for a layer: a Spec (shapes, config, value style, seed), built into a case.

A Spec is the small, shrinkable description of a case: the dims of the layer's main input, the
config keys given explicitly (a key left out takes its default: the simplest config is the
empty one), how its values are drawn and the seed that draws them. Hypothesis shrinks dims
toward 1 and configs toward the defaults; chainrule.layers.reduce goes on from there.

Dims come from 1..4 or the boundaries around 2^k (EDGES; up to 129 for the channels, spatial
sizes and sequence lengths of convolution, pooling and attention: WIDE_EDGES), capped so that a
case holds at most ``max_entries`` entries (the time budget). Configs cover what the contract
allows: strides below and above the kernel, padding up to half the (dilated) kernel, dilation,
groups (depthwise too), per-axis pairs, overlapping and disjoint pool windows, attention with
Lq != Lk, a mask, causal, both. Values reach the special points on purpose: "integers" puts
exact zeros (relu's kink) and ties (max-pool windows) in the inputs and repeats embedding
indices; "zeros" sets a third of the entries to 0. dy is random, never constant; the norms'
weight is never all ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from hypothesis import strategies as st

from chainrule.layers.case import LayerCase, shapes_text
from chainrule.layers.contract import ELEMENTWISE, LAYERS, full_config
from chainrule.reference.layers import forward
from chainrule.reference.layers.windows import per_axis

__all__ = ["DEFAULT", "EDGES", "MAX_ENTRIES", "POOLS", "STYLES", "WIDE_EDGES", "Spec", "build", "given_case", "parse_shapes", "specs",
           "supported"]

EDGES = (7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65)  # dims around 2^k, where tiled and chunked loops break
WIDE_EDGES = EDGES + (127, 128, 129)  # channels, spatial sizes and sequence lengths of conv, pooling and attention
CONVS = {"conv1d": 1, "conv2d": 2}  # layer -> its spatial rank
POOLS = ("max_pool2d", "avg_pool2d")
_SCALES = (0.5, 2.0, 0.125, 1.0)  # attention's explicit scale
MAX_ENTRIES = 1024  # entries of the main input at most (the time budget may lower it)
STYLES = ("normal", "integers", "zeros")
_EPS = (1e-3, 0.1, 1.0)
_P = (0.0, 0.1, 0.5, 0.9)


@dataclass(frozen=True)
class Spec:
    """A case before its values: the layer, the config keys given explicitly, the dims of its main
    input (linear: N, in, out; layer_norm: x's dims then how many trailing ones are normalized;
    group_norm: N, groups, channels a group, *spatial; embedding: V, D, then the indices' dims;
    cross_entropy: N, C; conv: N, C_in, C_out, *spatial, *kernel; pools: N, C, H, W; attention:
    N, heads, Lq, Lk, E, Ev), how values are drawn, the seed, and the optional inputs present
    (attention's mask)."""

    layer: str
    config: tuple[tuple[str, object], ...]
    dims: tuple[int, ...]
    style: str = "normal"
    seed: int = 0
    optional: tuple[str, ...] = ()

    def with_dim(self, i: int, size: int) -> "Spec":
        """The spec with dim ``i`` set to ``size``."""
        return replace(self, dims=self.dims[:i] + (size,) + self.dims[i + 1:])

    def with_config(self, **changes) -> "Spec":
        config = dict(self.config) | changes
        return replace(self, config=tuple((k, v) for k, v in config.items() if v is not DEFAULT))

    def describe(self) -> str:
        with_optional = f" with {', '.join(self.optional)}" if self.optional else ""
        return f"{self.layer} dims={self.dims} config={dict(self.config)} style={self.style} seed={self.seed}{with_optional}"


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
    elif layer in CONVS:
        rank = CONVS[layer]
        N, c_in, c_out, *rest = dims
        spatial, kernel = tuple(rest[:rank]), tuple(rest[rank:])
        groups = config.get("groups", 1)
        out = _out_size(spatial, kernel, *(per_axis(config.get(key, default), rank) for key, default in (("stride", 1), ("padding", 0), ("dilation", 1))))
        if c_in % groups or c_out % groups or min(out) < 1:
            return None
        inputs = {"x": values((N, c_in, *spatial)), "weight": values((c_out, c_in // groups, *kernel)), "bias": values((c_out,))}
        y_shape = (N, c_out, *out)
    elif layer in POOLS:
        N, C, H, W = dims
        kernel = per_axis(config["kernel_size"], 2)
        padding = per_axis(config.get("padding", 0), 2)
        if any(2 * p > k for p, k in zip(padding, kernel)):  # the contract: padding at most half the kernel
            return None
        out = _out_size((H, W), kernel, per_axis(config.get("stride") or kernel, 2), padding, (1, 1))
        if min(out) < 1:
            return None
        inputs, y_shape = {"x": values((N, C, H, W))}, (N, C, *out)
    elif layer == "attention":
        N, heads, Lq, Lk, E, Ev = dims
        inputs = {"q": values((N, heads, Lq, E)), "k": values((N, heads, Lk, E)), "v": values((N, heads, Lk, Ev))}
        if "mask" in spec.optional:
            inputs["mask"] = _mask(rng, Lq, Lk, config.get("causal", False))
        y_shape = (N, heads, Lq, Ev)
    else:
        raise ValueError(f"no strategy for layer {layer!r}")
    if "weight" in inputs and np.all(inputs["weight"] == 1.0):  # all ones would hide a missing weight factor
        inputs["weight"] = inputs["weight"] + 1.0
    return LayerCase(layer, full_config(layer, config), inputs, _cotangent(rng, y_shape))


def _out_size(size, kernel, stride, padding, dilation) -> tuple[int, ...]:
    """Output size an axis: floor((L + 2p - d (K - 1) - 1) / s) + 1 (below 1: no window fits)."""
    return tuple((L + 2 * p - d * (K - 1) - 1) // s + 1 for L, K, s, p, d in zip(size, kernel, stride, padding, dilation))


def _mask(rng: np.random.Generator, Lq: int, Lk: int, causal: bool) -> np.ndarray:
    """An attention mask (True = attend) in which every query keeps a key after AND with the causal mask."""
    mask = rng.random((Lq, Lk)) < 0.7
    allowed = mask & np.tri(Lq, Lk, dtype=bool) if causal else mask
    mask[~allowed.any(axis=1), 0] = True  # key 0: every query may see it, causal or not
    return mask


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

def _dim(edges: bool, boundaries: tuple[int, ...] = EDGES):
    """1..4 two times in three, else a boundary around 2^k."""
    small = st.integers(1, 4)
    return st.one_of(small, small, st.sampled_from(boundaries)) if edges else small


@st.composite
def _dims(draw, rank: int, max_entries: int, edges: bool, least: int = 1, boundaries: tuple[int, ...] = EDGES) -> tuple[int, ...]:
    """``rank`` dims whose product stays within max_entries (a dim that would pass it is cut)."""
    dims, product = [], 1
    for _ in range(rank):
        d = max(least, min(draw(_dim(edges, boundaries)), max_entries // product))
        dims.append(d)
        product *= d
    return tuple(dims)


def _axes(rank: int, values):
    """An int, or (conv2d, pools) sometimes one value an axis."""
    return st.one_of(values, values, st.lists(values, min_size=rank, max_size=rank)) if rank > 1 else values


def _sizes(draw, least: list[int], room: int, edges: bool) -> list[int]:
    """Spatial sizes, each at least ``least`` (one window fits) and, beyond that, their product within ``room``."""
    sizes = []
    for low in least:
        sizes.append(max(low, 1, min(draw(_dim(edges, WIDE_EDGES)), room)))
        room = max(1, room // sizes[-1])
    return sizes


@st.composite
def _conv(draw, rank: int, allowed: dict, max_entries: int, edges: bool) -> tuple[tuple[int, ...], dict]:
    """(dims, config) of a convolution: groups first (depthwise half the time), channels a group,
    kernel, stride, dilation, padding up to half the dilated kernel, then spatial sizes long
    enough for one window; channels cut to keep x and weight within the budget."""
    config = {"groups": _key(draw, allowed, "groups", st.integers(2, 4))}
    groups = 1 if config["groups"] is DEFAULT else config["groups"]
    N = draw(st.integers(1, 3))
    per_group = 1 if groups > 1 and draw(st.booleans()) else draw(_dim(edges, WIDE_EDGES))  # 1: depthwise
    kernel = draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank))
    c_out = draw(st.integers(1, 3)) if groups > 1 else draw(_dim(edges, WIDE_EDGES))  # a group's
    config["stride"] = _key(draw, allowed, "stride", _axes(rank, st.integers(1, 4)))
    config["dilation"] = _key(draw, allowed, "dilation", _axes(rank, st.integers(1, 3)))
    dilation = per_axis(1 if config["dilation"] is DEFAULT else config["dilation"], rank)
    reach = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]  # the dilated kernel's extent
    config["padding"] = _key(draw, allowed, "padding", _axes(rank, st.integers(0, max(reach) // 2)))
    if config["padding"] is not DEFAULT:
        padding = [min(p, r // 2) for p, r in zip(per_axis(config["padding"], rank), reach)]
        config["padding"] = padding if isinstance(config["padding"], list) else min(padding)
    padding = per_axis(0 if config["padding"] is DEFAULT else config["padding"], rank)
    spatial = _sizes(draw, [r - 2 * p for r, p in zip(reach, padding)], max(1, max_entries // (N * groups * per_group)), edges)
    per_group = max(1, min(per_group, max_entries // (N * groups * math.prod(spatial))))  # x within the budget
    c_out = max(1, min(c_out, max_entries // (groups * per_group * math.prod(kernel))))  # the weight too
    return (N, groups * per_group, groups * c_out, *spatial, *kernel), config


@st.composite
def _pool(draw, layer: str, allowed: dict, max_entries: int, edges: bool) -> tuple[tuple[int, ...], dict]:
    """(dims, config) of a pool: a kernel, a stride below, at or above it (overlapping or disjoint
    windows), padding up to half the kernel, count_include_pad either way, then H, W of one window at least."""
    config = {"kernel_size": draw(st.sampled_from(list(allowed["kernel_size"]))) if "kernel_size" in allowed
              else draw(_axes(2, st.integers(1, 4)))}
    kernel = per_axis(config["kernel_size"], 2)
    config["stride"] = _key(draw, allowed, "stride", _axes(2, st.integers(1, 4)))
    config["padding"] = _key(draw, allowed, "padding", _axes(2, st.integers(0, max(kernel) // 2)))
    if config["padding"] is not DEFAULT:
        padding = [min(p, k // 2) for p, k in zip(per_axis(config["padding"], 2), kernel)]
        config["padding"] = padding if isinstance(config["padding"], list) else min(padding)
    padding = per_axis(0 if config["padding"] is DEFAULT else config["padding"], 2)
    if layer == "avg_pool2d":
        config["count_include_pad"] = _key(draw, allowed, "count_include_pad", st.booleans())
    H, W = _sizes(draw, [k - 2 * p for k, p in zip(kernel, padding)], max_entries, edges)
    N, C = draw(_dims(2, max(1, max_entries // (H * W)), edges))
    return (N, C, H, W), config


@st.composite
def _attention(draw, allowed: dict, max_entries: int, edges: bool) -> tuple[tuple[int, ...], dict]:
    """(dims, config) of attention: N, heads, then Lq and Lk drawn apart (up to 129), E and Ev apart,
    causal or not, the default scale or an explicit one."""
    N, heads = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    room = max(1, max_entries // (N * heads))
    Lq, Lk = (min(draw(_dim(edges, WIDE_EDGES)), room) for _ in range(2))
    E, Ev = (max(1, min(draw(_dim(edges)), room // max(Lq, Lk))) for _ in range(2))
    config = {"causal": _key(draw, allowed, "causal", st.booleans()), "scale": _key(draw, allowed, "scale", st.sampled_from(_SCALES))}
    return (N, heads, Lq, Lk, E, Ev), config


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
    elif layer in CONVS:
        shape, config = draw(_conv(CONVS[layer], allowed, max_entries, edges))
    elif layer in POOLS:
        shape, config = draw(_pool(layer, allowed, max_entries, edges))
    elif layer == "attention":
        shape, config = draw(_attention(allowed, max_entries, edges))
    else:
        raise ValueError(f"no strategy for layer {layer!r}")
    config = {k: v for k, v in config.items() if v is not DEFAULT}
    style = draw(st.sampled_from(STYLES))
    seed = draw(st.integers(0, 2**32 - 1))
    optional = tuple(i.name for i in LAYERS[layer].inputs if i.optional and draw(st.booleans()))
    return Spec(layer, tuple(config.items()), tuple(shape), style, seed, optional)


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
    missing = [i.name for i in spec.inputs if i.name not in shapes and not i.optional]
    extra = [n for n in shapes if n not in spec.input_names]
    if missing or extra:
        raise ValueError(f"--shapes for {layer} names {', '.join(spec.input_names)}" + (f"; missing {', '.join(missing)}" if missing else "")
                         + (f"; unknown {', '.join(extra)}" if extra else ""))
    config = full_config(layer, config)
    rng = np.random.default_rng(seed)
    inputs = {}
    for entry in (i for i in spec.inputs if i.name in shapes):
        shape = shapes[entry.name]
        if entry.kind == "index":
            high = shapes["weight"][0] if layer == "embedding" else shapes["input"][-1]
            inputs[entry.name] = rng.integers(0, high, shape).astype(np.int64)
        elif entry.kind == "mask" and layer == "attention":
            if len(shape) != 2:
                raise ValueError(f"--shapes: attention's mask is (Lq, Lk), not {shape}")
            inputs[entry.name] = _mask(rng, *shape, config["causal"])
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
