"""Reduction of a failing layer case, after Hypothesis has shrunk it.

Hypothesis shrinks the choices it made: a dim drawn among the boundaries around 2^k only goes
down to the smallest boundary that fails (9 of 7, 8, 9, ...). This pass goes on, keeping each
change while the case still fails the same way (``same_failure``):

- a layer norm's last two normalized dims merged into one (its normalized size kept);
- each dim to 1, 2, half, half + 1, 2^k + 1 below it, one less (a threshold: 9 fails and 8
  does not; a chunked loop's remainder fails at 5 and 33, passes at 4, 8 and 32);
- each config key given explicitly back to its default, then to smaller values (stride 3 to 2,
  a per-axis pair to one int or one axis smaller);
- an optional input (attention's mask) left out;
- the values drawn plainly (normal) instead of integers or zeros, then seed 0;
- last, each dim above 2 one less with other seeds (a failure that needs particular values);

again while any change succeeded, within ``budget`` judgements.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator

from chainrule.layers.contract import LAYERS, REQUIRED
from chainrule.layers.judge import LayerVerdict, judge_layer
from chainrule.layers.strategies import DEFAULT, Spec, build, supported
from chainrule.oracles.layers import Judge
from chainrule.sources.implementation import Implementation

__all__ = ["reduce_spec", "same_failure", "verdict_of"]


def same_failure(verdict: LayerVerdict, first: LayerVerdict) -> bool:
    """Both fail with the same fault kind, or disagree first on the same array."""
    if not verdict.failed or verdict.failure_kind != first.failure_kind:
        return False
    return verdict.fault is not None or verdict.wrong[:1] == first.wrong[:1]


def verdict_of(implementation: Implementation, spec: Spec, judges: list[Judge]) -> LayerVerdict | None:
    """The verdict on the case a spec builds (None when it builds none, or one outside the source's layer_configs),
    unconfirmed: the judges that compile per shape only where compiled already."""
    case = build(spec)
    if case is None or not supported(case, implementation.layer_configs):
        return None
    return judge_layer(implementation, case, judges, confirm=False)


_DRAWS = 3  # other value draws tried for a dim one less, when nothing else reduces the case


def _smaller_sizes(d: int) -> tuple[int, ...]:
    """Sizes below d to try, smallest first: 1, 2, half, half + 1, the 2^k + 1 below, d - 1."""
    edge = (1 << (d - 2).bit_length() - 1) + 1 if d > 3 else 1  # 2^k + 1 < d: a tile edge
    return tuple(c for c in dict.fromkeys((1, 2, d // 2, d // 2 + 1, edge, d - 1)) if 1 <= c < d)


def _smaller_values(value) -> Iterator[object]:
    """Simpler config values than ``value``: a pair as one int (the smaller axis) or one axis
    smaller, an int above 1 one less and 1 (bools, floats: none)."""
    if isinstance(value, list):
        yield min(value)
        for i, v in enumerate(value):
            for smaller in _smaller_values(v):
                yield value[:i] + [smaller] + value[i + 1:]
    elif isinstance(value, int) and not isinstance(value, bool) and value > 1:
        yield from dict.fromkeys((1, value - 1))


def _candidates(spec: Spec) -> Iterator[Spec]:
    if spec.layer == "layer_norm" and spec.dims[-1] > 1:  # two normalized dims as one: the same normalized size, one dim fewer
        *shape, k = spec.dims
        yield replace(spec, dims=(*shape[:-2], shape[-2] * shape[-1], k - 1))
    for i, d in enumerate(spec.dims):
        for smaller in _smaller_sizes(d):
            yield spec.with_dim(i, smaller)
    defaults = LAYERS[spec.layer].defaults
    for key, value in spec.config:
        if defaults[key] != REQUIRED:  # a required key (dropout's p, a pool's kernel_size) has no default to go back to
            yield spec.with_config(**{key: DEFAULT})
        for smaller in _smaller_values(value):
            yield spec.with_config(**{key: smaller})
    if spec.optional:
        yield replace(spec, optional=())
    if spec.style != "normal":
        yield replace(spec, style="normal")
    if spec.seed != 0:
        yield replace(spec, seed=0)
    for i, d in enumerate(spec.dims):  # a failure that needs particular values (a maximum where windows overlap): other draws
        if d > 2:
            for seed in range(1, 1 + _DRAWS):
                yield replace(spec.with_dim(i, d - 1), seed=spec.seed + seed)


def reduce_spec(implementation: Implementation, spec: Spec, verdict: LayerVerdict, judges: list[Judge],
                budget: int = 80) -> tuple[Spec, LayerVerdict]:
    """The smallest, simplest spec found that still fails as ``verdict`` does, with its verdict."""
    tries, changed = 0, True
    while changed and tries < budget:
        changed = False
        for candidate in _candidates(spec):
            if tries >= budget or implementation.retired is not None:
                break
            tries += 1
            again = verdict_of(implementation, candidate, judges)
            if again is not None and same_failure(again, verdict):
                spec, verdict, changed = candidate, again, True
                break
    return spec, verdict
