"""What a reduced layer failure needs and what its wrong gradient looks like.

From the reduced spec (chainrule.layers.reduce), variations are judged again, each on SEEDS
draws of the values (a need is claimed only when the variation passes on every one):
- each dim > 1 set to 1 ("only when N > 1") and one less ("fails at D = 9, passes at D = 8");
- a norm's or an elementwise layer's input one rank lower ("only at rank 3 and above");
- the values drawn plainly instead of as integers ("only at exact zeros of x"), an embedding's
  indices made distinct ("repeated indices");
- dropout at p = 0 ("only when p > 0"); an explicit config key is one its default passes
  ("stride = 2: it passes at the default stride = 1"; a pool's stride below its kernel:
  "overlapping windows"); attention with Lq = Lk, or without its mask;
- a size threshold found by the reduction checked at twice the size below it, and one more
  ("Lk > 32 and not a multiple of 32": passes at 32 and 64, fails at 33 and 65 — a blocked loop's remainder).
The wrong gradient against the reference: all zeros, a constant factor (named when it is
1 - p, 1/(1 - p), N, attention's scale, a power of 2 ...), or only the diagonal of the layer's Jacobian (each output's
dependence on its own input: the cross terms are missing).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

import numpy as np

from chainrule.layers.case import LayerCase
from chainrule.layers.contract import ELEMENTWISE, LAYERS, REQUIRED
from chainrule.layers.judge import LayerVerdict, judge_layer
from chainrule.layers.reduce import same_failure, verdict_of
from chainrule.layers.strategies import DEFAULT, POOLS, Spec
from chainrule.oracles.layers import Judge
from chainrule.reference.layers import vjp as reference_vjp
from chainrule.reference.layers.windows import per_axis
from chainrule.sources.implementation import Implementation

__all__ = ["LayerDiagnosis", "diagnose", "dim_labels"]

_RANKED = ELEMENTWISE + ("softmax", "log_softmax", "dropout", "mse_loss", "batch_norm")
SEEDS = 3  # value draws on which a variation must pass before the diagnosis says the failure needs what it changed


def dim_labels(spec: Spec) -> tuple[str, ...]:
    """A name for each of the spec's dims, as messages use them."""
    layer, n = spec.layer, len(spec.dims)
    spatial = tuple(f"spatial dim {i + 1}" for i in range(n))
    named = {
        "linear": ("N", "in_features", "out_features"),
        "layer_norm": tuple(f"x dim {i}" for i in range(n - 1)) + ("normalized dims",),
        "batch_norm": ("N", "C") + spatial,
        "group_norm": ("N", "num_groups", "channels a group") + spatial,
        "embedding": ("V", "D") + tuple(f"indices dim {i}" for i in range(n - 2)),
        "cross_entropy": ("N", "C"),
        "conv1d": ("N", "C_in", "C_out", "L", "kernel L"),
        "conv2d": ("N", "C_in", "C_out", "H", "W", "kernel H", "kernel W"),
        "max_pool2d": ("N", "C", "H", "W"),
        "avg_pool2d": ("N", "C", "H", "W"),
        "attention": ("N", "heads", "Lq", "Lk", "E", "Ev"),
    }
    return named.get(layer, tuple(f"x dim {i}" for i in range(n)))[:n]


@dataclass(frozen=True)
class LayerDiagnosis:
    wrong: tuple[str, ...]  # "y" or input names, the wrong arrays
    shapes: tuple[str, ...]  # what each wrong gradient looks like
    needs: tuple[str, ...]  # what the failure needs

    def __str__(self) -> str:
        lines = [f"wrong: {', '.join(self.wrong) or 'nothing: a fault'}"]
        lines += [f"  {line}" for line in self.shapes]
        lines += [f"needs: {need}" for need in self.needs] or ["needs: nothing more than the smallest case above"]
        return "\n".join(lines)


def _fails(implementation, spec: Spec, verdict: LayerVerdict, judges) -> bool | None:
    again = verdict_of(implementation, spec, judges)
    return None if again is None else same_failure(again, verdict)


def _passes(implementation, spec: Spec, verdict: LayerVerdict, judges) -> bool:
    """Whether the variation passes on SEEDS value draws (a claim about a size or a config, not one draw's values)."""
    return all(_fails(implementation, replace(spec, seed=spec.seed + i), verdict, judges) is False for i in range(SEEDS))


def _fails_somewhere(implementation, spec: Spec, verdict: LayerVerdict, judges) -> bool:
    return any(_fails(implementation, replace(spec, seed=spec.seed + i), verdict, judges) for i in range(SEEDS))


def _needs(implementation: Implementation, spec: Spec, verdict: LayerVerdict, judges: list[Judge]) -> list[str]:
    needs = []
    labels = dim_labels(spec)
    for i, (label, d) in enumerate(zip(labels, spec.dims)):
        if d <= 1 or (spec.layer == "layer_norm" and i == len(spec.dims) - 1):
            continue
        if d > 2 and _passes(implementation, spec.with_dim(i, d - 1), verdict, judges):  # a threshold (it says "> 1" too)
            if _passes(implementation, spec.with_dim(i, 2 * (d - 1)), verdict, judges) and _fails_somewhere(implementation, spec.with_dim(i, 2 * d - 1), verdict, judges):
                needs.append(f"{label} > {d - 1} and not a multiple of {d - 1}: it fails at {label} = {d}, "
                             f"passes at {label} = {d - 1} and {2 * (d - 1)} (a blocked loop's remainder)")
            else:
                needs.append(f"{label} = {d}: it passes at {label} = {d - 1} (a size threshold)")
        elif _passes(implementation, spec.with_dim(i, 1), verdict, judges):
            needs.append(f"{label} > 1")
    if spec.layer == "attention" and spec.dims[2] != spec.dims[3]:
        Lq, Lk = spec.dims[2:4]
        if all(_passes(implementation, replace(spec, dims=spec.dims[:2] + (L, L) + spec.dims[4:]), verdict, judges) for L in (Lq, Lk)):
            needs.append(f"Lq != Lk (Lq = {Lq}, Lk = {Lk}): it passes when they are equal")
    if "mask" in spec.optional and _passes(implementation, replace(spec, optional=()), verdict, judges):
        needs.append("a mask: it passes without one")
    if spec.layer in _RANKED + ("layer_norm",) and len(spec.dims) > (3 if spec.layer == "layer_norm" else 2 if spec.layer == "batch_norm" else 1):
        lower = spec.dims[:-2] + spec.dims[-1:] if spec.layer == "layer_norm" else spec.dims[:-1]
        if _passes(implementation, replace(spec, dims=lower), verdict, judges):
            rank = len(spec.dims) - (1 if spec.layer == "layer_norm" else 0)
            needs.append(f"rank {rank}: it passes at rank {rank - 1}")
    if spec.style != "normal" and _passes(implementation, replace(spec, style="normal"), verdict, judges):
        what = {"embedding": "repeated indices", "max_pool2d": "tied maxima in a window (integer values)"}.get(
            spec.layer, "exact zeros or ties in the inputs (integer values)")
        needs.append(f"{what}: it passes with values drawn plainly")
    if spec.layer == "embedding" and _distinct_passes(implementation, verdict, judges):
        needs.append("repeated indices: it passes when every index differs")
    config = dict(spec.config)
    if spec.layer == "dropout" and config.get("p", 0.0) > 0 and _passes(implementation, spec.with_config(p=0.0), verdict, judges):
        needs.append(f"p > 0 (p = {config['p']:g} here): it passes at p = 0")
    defaults = LAYERS[spec.layer].defaults
    for key, value in spec.config:
        if defaults[key] == REQUIRED or not _passes(implementation, spec.with_config(**{key: DEFAULT}), verdict, judges):
            continue  # part of the question (p, kernel_size), or the default fails too
        if spec.layer in POOLS and key == "stride" and any(s < k for s, k in zip(per_axis(value, 2), per_axis(config["kernel_size"], 2))):
            needs.append(f"overlapping windows (stride {json.dumps(value)} < kernel_size {json.dumps(config['kernel_size'])}): "
                         "it passes with disjoint windows (stride = kernel_size)")
        else:
            default = _NONE_READS[key] if defaults[key] is None else json.dumps(defaults[key])
            needs.append(f"{key} = {json.dumps(value)}: it passes at the default {key} = {default}")
    return needs


_NONE_READS = {"stride": "kernel_size", "scale": "1/sqrt(E)"}  # what a default of None means (a pool's stride, attention's scale)



def _distinct_passes(implementation: Implementation, verdict: LayerVerdict, judges: list[Judge]) -> bool:
    """For embedding indices with a repeat: whether the same case with every index distinct (weight
    given rows enough, the case's rows kept) passes."""
    case = verdict.case
    indices, weight = case.inputs["indices"], case.inputs["weight"]
    if len(np.unique(indices)) == indices.size:
        return False
    rows = np.concatenate([weight, np.random.default_rng(0).standard_normal((max(0, indices.size - len(weight)), weight.shape[1]))])
    distinct = LayerCase(case.layer, case.config, {"indices": np.arange(indices.size).reshape(indices.shape), "weight": rows}, case.dy)
    return not judge_layer(implementation, distinct, judges, confirm=False).failed


def _named_factors(case: LayerCase) -> dict[str, float]:
    """The constant factors a forgotten or doubled term often is, by name (the case's own first)."""
    named = {}
    if "p" in case.config:
        named |= {"1 - p: the factor 1/(1 - p) is missing": 1 - case.config["p"], "1/(1 - p): the factor 1/(1 - p) twice": 1 / (1 - case.config["p"])}
    if case.layer in ("cross_entropy", "mse_loss"):
        N, size = len(case.inputs["input"]), case.inputs["input"].size
        named |= {f"N = {N}": float(N), f"1/N = 1/{N}": 1 / N, f"the size {size}": float(size), f"1/size = 1/{size}": 1 / size}
    if case.layer == "attention":
        scale = case.config["scale"] if case.config["scale"] is not None else 1 / math.sqrt(case.inputs["q"].shape[-1])
        named |= {f"the scale {scale:.6g}: applied twice": scale, f"1/scale = {1 / scale:.6g}: the scale is missing": 1 / scale}
    return named | {"2": 2.0, "1/2": 0.5, "-1": -1.0}


def _weight_along_x(case: LayerCase) -> np.ndarray | None:
    """A norm's weight broadcast to x's shape (per channel, or over the normalized dims)."""
    if case.layer not in ("batch_norm", "group_norm", "layer_norm"):
        return None
    x, weight = case.inputs["x"], case.inputs["weight"]
    if case.layer == "layer_norm":
        return np.broadcast_to(weight, x.shape)
    return np.broadcast_to(weight.reshape((1, -1) + (1,) * (x.ndim - 2)), x.shape)


def _jacobian_diagonal(case: LayerCase) -> np.ndarray | None:
    """d y_i / d x_i for each entry, from the reference (one VJP an entry; small cases only)."""
    x = case.inputs.get("x")
    if x is None or x.shape != case.dy.shape or x.size > 256 or case.layer in ELEMENTWISE:
        return None
    diagonal = np.empty(x.size)
    for i in range(x.size):
        one_hot = np.zeros(x.size)
        one_hot[i] = 1.0
        diagonal[i] = reference_vjp(case.layer, case.config, case.inputs, one_hot.reshape(x.shape))[1]["x"].reshape(-1)[i]
    return diagonal.reshape(x.shape)


def _shape(case: LayerCase, name: str, got: np.ndarray, expected: np.ndarray) -> str:
    label = "y" if name == "y" else f"grads[{name!r}]"
    scale = max(float(np.abs(expected).max(initial=0.0)), 1e-300)
    close = lambda a, b: float(np.abs(a - b).max(initial=0.0)) <= 1e-9 * max(scale, float(np.abs(b).max(initial=0.0)))  # noqa: E731
    if not np.any(got) and np.any(expected):
        return f"{label} is all zeros"
    weight = _weight_along_x(case) if name == "x" else None
    if weight is not None and np.all(weight != 0):
        if close(got, expected / weight):
            return f"{label} lacks the factor weight (gamma): it is right only where gamma = 1"
        if close(got, expected * weight):
            return f"{label} has the factor weight (gamma) twice"
    if np.any(expected):
        factor = float(got.ravel() @ expected.ravel() / (expected.ravel() @ expected.ravel()))
        if math.isfinite(factor) and close(got, factor * expected):
            named = [text for text, value in _named_factors(case).items() if abs(factor - value) <= 1e-9 * abs(value)]
            if named or np.count_nonzero(expected) > 1:  # one entry is "a factor" of anything: only a named one says something
                return f"{label} is off by a constant factor {factor:.6g}" + (f" ({named[0]})" if named else "")
    if name == "x":
        diagonal = _jacobian_diagonal(case)
        if diagonal is not None and close(got, case.dy * diagonal) and not close(expected, case.dy * diagonal):
            return f"{label} is the diagonal of the Jacobian only (dy_i * dy_i/dx_i): the cross terms dy_j/dx_i, j != i, are missing"
    wrong = ~np.isclose(got, expected, rtol=1e-9, atol=1e-12 * scale)
    return f"{label}: {int(wrong.sum())} of {got.size} entries wrong"


def diagnose(implementation: Implementation, spec: Spec, verdict: LayerVerdict, judges: list[Judge]) -> LayerDiagnosis:
    """The diagnosis of a reduced failure (a fault: what it needs only)."""
    shapes = []
    comparison = next((c for c in verdict.comparisons if c.wrong), None)
    if comparison is not None:
        y, grads = reference_vjp(verdict.case.layer, verdict.case.config, verdict.case.inputs, verdict.case.dy)
        reference = {"y": np.asarray(y, dtype=np.float64)} | {n: np.asarray(g, dtype=np.float64) for n, g in grads.items()}
        for array in comparison.arrays:
            if array.bad:
                shapes.append(_shape(verdict.case, array.name, array.got, reference[array.name]))
    return LayerDiagnosis(verdict.wrong, tuple(shapes), tuple(_needs(implementation, spec, verdict, judges)))
