"""The report's layer search: each source that answers layers (docs/layers.md) has every layer it
declares searched by ``chainrule.layers.search.check_layers`` with the report's seed, as
``chainrule check`` searches them; one LayerRow per (source, layer), in the contract's order.

A failure is the search's reduced case told as ``chainrule check`` tells it
(``format_layer_failure``, with the diagnosis and the code that reproduces it).
"""

from __future__ import annotations

from typing import Callable

from chainrule.layers.search import LayerResult, check_layers
from chainrule.layers.text import format_layer_failure
from chainrule.oracles.layers import Judge
from chainrule.reports.records import LayerRow
from chainrule.sources.implementation import Implementation

__all__ = ["layer_row", "layer_rows"]


def layer_row(source: str, result: LayerResult) -> LayerRow:
    """The record of one layer's search."""
    failure = result.failure
    return LayerRow(
        source, result.layer, result.status, result.agreed, result.no_evidence, result.unsupported,
        () if failure is None else failure.wrong, result.seconds,
        None if failure is None else format_layer_failure(failure, result.diagnosis),
    )


def layer_rows(implementations: list[Implementation], judges: list[Judge], examples: int, seed: int,
               advance: Callable[[], None] = lambda: None) -> list[LayerRow]:
    """Every declared layer of every implementation searched with ``examples`` cases each;
    ``advance()`` after each layer. An implementation that answers no layers has no rows."""
    rows = []
    for implementation in implementations:
        summary = check_layers(implementation, examples=examples, seed=seed, judges=judges, progress=lambda result: advance())
        rows += [layer_row(implementation.name, result) for result in summary.results]
    return rows
