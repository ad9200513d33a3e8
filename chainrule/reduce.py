"""Structural reduction of a failing case, after Hypothesis has shrunk its values.

Hypothesis shrinks the choices it made; it cannot see that a hidden layer, a neuron, an
example, an input or an output can go. This pass tries each such removal and keeps it while
the case still fails (delta debugging), so the counterexample is the smallest network that
shows the bug:

- every layer after hidden layer l: layer l becomes the output layer, under mse with targets 1
  (a fresh candidate: a bug in a hidden layer often shows at the output alone);
- a hidden layer l: W(l+1) W(l) and W(l+1) b(l) + b(l+1) replace the two layers (exact
  when layer l is the identity, a fresh candidate otherwise);
- neuron j of a hidden layer: row j of W(l) and b(l), column j of W(l+1);
- example k: row k of X and Y;
- input i: column i of X and W(1);
- output j: row j of W(L) and b(L), column j of Y (cross-entropy rows renormalised);
- unit j of two adjacent layers of the same width at once (inputs, hidden neurons, outputs),
  which keeps the W between them square: a transposition bug only survives on square W;
- before single examples and units, blocks of them: half, a quarter, ... of the batch or of a
  layer, at each aligned position (delta debugging's chunks). A size-dependent failure (the
  edge of a tile of 8, a chunk of 4) often survives removing 8 of 17 units but no single one:
  17 -> 9 is a block. Blocks also take a width of 129 down in a few tries, not 120.

Removals of one kind are tried again on the smaller case after each success before the next
kind, and all kinds again while any succeeded, until none does or ``budget`` tries are spent.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from chainrule.case import Case
from chainrule.reference import Architecture

__all__ = ["reduce_case"]


def _case(sizes, activations, loss, params, X, Y) -> Case | None:
    try:
        return Case(Architecture(tuple(sizes), tuple(activations), loss), params, X, Y)
    except ValueError:
        return None


def _cut_after(case: Case, l: int) -> Case | None:
    arch = case.arch
    Y = np.ones((case.batch_size, arch.sizes[l + 1]))
    return _case(arch.sizes[: l + 2], arch.activations[: l + 1], "mse", case.params[: l + 1], case.X, Y)


def _without_layer(case: Case, l: int) -> Case | None:
    (W, b), (W_next, b_next) = case.params[l], case.params[l + 1]
    params = case.params[:l] + [(W_next @ W, W_next @ b + b_next)] + case.params[l + 2 :]
    arch = case.arch
    return _case(arch.sizes[: l + 1] + arch.sizes[l + 2 :], arch.activations[:l] + arch.activations[l + 1 :], arch.loss, params, case.X, case.Y)


def _without_neuron(case: Case, l: int, j) -> Case | None:
    params = list(case.params)
    W, b = params[l]
    params[l] = (np.delete(W, j, axis=0), np.delete(b, j))
    params[l + 1] = (np.delete(params[l + 1][0], j, axis=1), params[l + 1][1])
    sizes = list(case.arch.sizes)
    sizes[l + 1] -= np.size(j)
    return _case(sizes, case.arch.activations, case.arch.loss, params, case.X, case.Y)


def _without_example(case: Case, k) -> Case | None:
    return _case(case.arch.sizes, case.arch.activations, case.arch.loss, case.params, np.delete(case.X, k, axis=0), np.delete(case.Y, k, axis=0))


def _without_input(case: Case, i) -> Case | None:
    params = [(np.delete(case.params[0][0], i, axis=1), case.params[0][1])] + case.params[1:]
    sizes = (case.arch.sizes[0] - np.size(i),) + case.arch.sizes[1:]
    return _case(sizes, case.arch.activations, case.arch.loss, params, np.delete(case.X, i, axis=1), case.Y)


def _without_output(case: Case, j) -> Case | None:
    W, b = case.params[-1]
    Y = np.delete(case.Y, j, axis=1)
    if case.arch.loss == "cross_entropy":
        totals = Y.sum(axis=1, keepdims=True)
        if (totals == 0).any():
            return None
        Y = Y / totals
    params = case.params[:-1] + [(np.delete(W, j, axis=0), np.delete(b, j))]
    sizes = case.arch.sizes[:-1] + (case.arch.sizes[-1] - np.size(j),)
    return _case(sizes, case.arch.activations, case.arch.loss, params, case.X, Y)


def _without_unit(case: Case | None, m: int, j) -> Case | None:
    """Unit j (or the units j, an array) of layer m, counting the inputs as layer 0 and the outputs as layer L."""
    if case is None:
        return None
    if m == 0:
        return _without_input(case, j)
    if m == case.arch.depth:
        return _without_output(case, j)
    return _without_neuron(case, m - 1, j)


def _blocks(n: int) -> Iterator[np.ndarray]:
    """Blocks of n indices to remove at once, the biggest first: halves, quarters, ... (at least 2
    indices, never all n), each at every aligned position."""
    size = n // 2
    while size >= 2:
        for start in range(0, n - size + 1, size):
            yield np.arange(start, start + size)
        size //= 2


def _cuts(case: Case) -> Iterator[Case | None]:
    for l in range(case.arch.depth - 1):
        yield _cut_after(case, l)


def _layers(case: Case) -> Iterator[Case | None]:
    for l in range(case.arch.depth - 1):
        yield _without_layer(case, l)


def _examples(case: Case) -> Iterator[Case | None]:
    for block in _blocks(case.batch_size):
        yield _without_example(case, block)
    for k in range(case.batch_size if case.batch_size > 1 else 0):
        yield _without_example(case, k)


def _units(case: Case) -> Iterator[Case | None]:
    depth, sizes = case.arch.depth, case.arch.sizes
    for m in (*range(1, depth), 0, depth):  # hidden neurons, inputs, outputs
        for block in _blocks(sizes[m]):
            yield _without_unit(case, m, block)
        for j in range(sizes[m] if sizes[m] > 1 else 0):
            yield _without_unit(case, m, j)


def _square(case: Case) -> Iterator[Case | None]:
    sizes = case.arch.sizes
    for m in range(case.arch.depth):  # unit j of two adjacent layers of one width
        for j in range(sizes[m] if sizes[m] == sizes[m + 1] > 1 else 0):
            yield _without_unit(_without_unit(case, m, j), m + 1, j)


_KINDS = (_cuts, _layers, _examples, _units, _square)  # the biggest cuts first


def reduce_case(case: Case, fails: Callable[[Case], bool], budget: int = 400) -> Case:
    """The smallest case reachable by removals that still ``fails`` (at most ``budget`` tries)."""
    tries = 0
    progress = True
    while progress and tries < budget:
        progress = False
        for kind in _KINDS:
            shrinking = True
            while shrinking and tries < budget:  # this kind again on the smaller case, until it finds none
                shrinking = False
                for candidate in kind(case):
                    if candidate is None:
                        continue
                    tries += 1
                    if fails(candidate):
                        case, progress, shrinking = candidate, True, True
                        break
                    if tries >= budget:
                        break
    return case
