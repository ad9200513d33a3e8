"""Reduction of a failing layer case, after Hypothesis has shrunk it.

Hypothesis shrinks the choices it made: a dim drawn among the boundaries around 2^k only goes
down to the smallest boundary that fails (9 of 7, 8, 9, ...). This pass goes on, keeping each
change while the case still fails the same way (``same_failure``):

- a layer norm's last two normalized dims merged into one (its normalized size kept);
- each dim to 1, to half, one less (a threshold: 9 fails and 8 does not);
- each config key given explicitly back to its default;
- the values drawn plainly (normal) instead of integers or zeros, then seed 0;

again while any change succeeded, within ``budget`` judgements.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator

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
    """The verdict on the case a spec builds (None when it builds none, or one outside the source's layer_configs)."""
    case = build(spec)
    if case is None or not supported(case, implementation.layer_configs):
        return None
    return judge_layer(implementation, case, judges)


def _candidates(spec: Spec) -> Iterator[Spec]:
    if spec.layer == "layer_norm" and spec.dims[-1] > 1:  # two normalized dims as one: the same normalized size, one dim fewer
        *shape, k = spec.dims
        yield replace(spec, dims=(*shape[:-2], shape[-2] * shape[-1], k - 1))
    for i, d in enumerate(spec.dims):
        for smaller in dict.fromkeys((1, d // 2, d - 1)):
            if 1 <= smaller < d:
                yield replace(spec, dims=spec.dims[:i] + (smaller,) + spec.dims[i + 1:])
    for key, _ in spec.config:
        if key != "p":  # dropout's p has no default: its value is part of the question
            yield spec.with_config(**{key: DEFAULT})
    if spec.style != "normal":
        yield replace(spec, style="normal")
    if spec.seed != 0:
        yield replace(spec, seed=0)


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
