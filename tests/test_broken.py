"""Test the testers: every deliberately broken implementation is rejected, on a small case."""

import pytest

from oracles.crosscheck import CheckFailure, crosscheck
from oracles.compare import Status
from tests.broken import BUGS, CATALOGUE

EXAMPLES = 200
SEED = 2026
# Bugs that only show on a network of a certain size: transposed_W needs a square layer feeding a
# hidden one (two hidden layers of equal width); loop_stops_early needs two layers.
MIN_DEPTH = {"transposed_W": 3}


@pytest.mark.parametrize("bug", list(BUGS))
def test_broken_implementation_is_rejected_with_a_small_counterexample(bug):
    with pytest.raises(CheckFailure) as caught:
        crosscheck(CATALOGUE[bug], examples=EXAMPLES, seed=SEED)
    verdict = caught.value.verdict
    case = verdict.case
    assert verdict.status in (Status.DISAGREE, Status.ERROR)
    assert case.arch.depth <= MIN_DEPTH.get(bug, 2) + 1 and case.arch.depth <= 3, f"{bug}: counterexample too deep: {case.describe()}"
    assert case.batch_size <= 3, f"{bug}: counterexample batch too large: {case.describe()}"
    assert "Reproduce:" in str(caught.value)
