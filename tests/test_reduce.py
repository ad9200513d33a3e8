"""Structural reduction: what Hypothesis cannot shrink (a layer, a neuron, an example, an input,
an output) goes while the case still fails."""

import numpy as np
import pytest

from chainrule.case import Case, random_case
from chainrule.judge import judge
from chainrule.oracles.registry import get
from chainrule.reduce import reduce_case
from chainrule.reference import Architecture, forward
from chainrule.sources.load import as_implementation
from tests.broken import CATALOGUE


def _case(arch: str, batch: int = 3, seed: int = 0) -> Case:
    return random_case(Architecture.parse(arch), batch, seed)


def test_relu_bug_deep_in_a_network_comes_out_as_the_output_layer_alone():
    """relu'(0) = 1 hidden behind two more layers: cutting the network after the relu layer
    (targets 1, so dL/da is not 0 there) shows it on 1-relu-1, one example."""
    case = _case("2-relu-3-sigmoid-2-identity-2:mse")
    W, b = case.params[0]
    W[1], b[1] = 0.0, 0.0  # unit 2 of the relu layer sits at z = 0 exactly
    judges = [get("torch")]
    broken = as_implementation(CATALOGUE["relu_prime_at_zero"])
    fails = lambda c: judge(broken, c, judges).failed  # noqa: E731
    assert fails(case)
    reduced = reduce_case(case, fails)
    assert str(reduced.arch) == "1-relu-1:mse" and reduced.batch_size == 1, reduced.describe()
    assert fails(reduced)


def test_a_bug_that_needs_a_square_W_keeps_it_square():
    """dA = dZ W^T instead of dZ W only runs where W is square: single neurons cannot go, unit j
    of both layers at once can, down to the smallest W where a transpose differs, 2 x 2."""
    case = _case("1-identity-5-tanh-5:mse", batch=2)
    broken = as_implementation(CATALOGUE["transposed_W"])
    fails = lambda c: judge(broken, c, [get("torch")]).failed  # noqa: E731
    assert fails(case)
    reduced = reduce_case(case, fails)
    assert reduced.arch.sizes == (1, 2, 2) and reduced.batch_size == 1, reduced.describe()


def test_every_kind_of_removal_is_tried():
    """A predicate that only needs two examples and the tanh: everything else goes."""
    case = _case("4-tanh-5-sigmoid-3-identity-3:mse", batch=4)
    reduced = reduce_case(case, lambda c: c.batch_size >= 2 and "tanh" in c.arch.activations)
    assert reduced.arch.sizes == (1, 1) and reduced.arch.activations == ("tanh",) and reduced.batch_size == 2, reduced.describe()
    assert reduced.X.shape == (2, 1) and reduced.Y.shape == (2, 1)


def test_removing_an_identity_layer_keeps_the_network_function():
    """W(l+1) W(l), W(l+1) b(l) + b(l+1) replace an identity layer: among all removals, only that
    one leaves the network's output as it was (up to rounding)."""
    case = _case("3-identity-4-tanh-2:mse")
    output = lambda c: forward(c.arch, c.params, c.X)[-1].a  # noqa: E731
    same = lambda c: output(c).shape == output(case).shape and np.allclose(output(c), output(case), rtol=1e-13, atol=0)  # noqa: E731
    reduced = reduce_case(case, same)
    assert str(reduced.arch) == "3-tanh-2:mse" and reduced.batch_size == case.batch_size, reduced.describe()


def test_budget_bounds_the_tries():
    calls = []
    reduce_case(_case("6-tanh-6-tanh-6-identity-6:mse", batch=4), lambda c: calls.append(c) is not None, budget=7)  # never fails: every candidate is tried
    assert len(calls) == 7


def _counting(predicate):
    calls = []

    def fails(case):
        calls.append(case)
        return predicate(case)

    return fails, calls


@pytest.mark.parametrize(
    "arch, batch, edge, expected",
    [
        ("129-identity-1:mse", 1, lambda c: c.arch.sizes[0] > 8 and c.arch.sizes[0] % 8 > 0, ((9, 1), 1)),
        ("1-tanh-127-identity-1:mse", 1, lambda c: c.arch.depth == 2 and c.arch.sizes[1] > 8 and c.arch.sizes[1] % 8 > 0, ((1, 9, 1), 1)),
        ("1-identity-1:mse", 63, lambda c: c.batch_size > 4 and c.batch_size % 4 > 0, ((1, 1), 5)),
    ],
    ids=["inputs-129", "hidden-127", "batch-63"],
)
def test_blocks_take_a_size_down_to_its_edge(arch, batch, edge, expected):
    """A failure at the edge of a tile (more than 8 and not a multiple of 8) or a chunk survives
    no single removal from 17, 16 + 1: blocks of units or examples (17 -> 9) reach the edge, and in
    few tries from 129."""
    fails, calls = _counting(edge)
    reduced = reduce_case(_case(arch, batch), fails)
    assert (reduced.arch.sizes, reduced.batch_size) == expected, reduced.describe()
    assert len(calls) <= 150, f"{len(calls)} tries"
