"""Test the testers: every deliberately broken implementation is rejected, on a small case."""

import pytest

from oracles.compare import Status
from oracles.crosscheck import CheckFailure
from tests.broken import BUGS

pytestmark = pytest.mark.xdist_group("broken-catalogue")  # one worker shares the crosscheck cache


@pytest.mark.parametrize("bug", list(BUGS))
def test_broken_implementation_is_rejected_with_a_small_counterexample(broken_crosscheck, bug):
    failure = broken_crosscheck(bug)
    assert isinstance(failure, CheckFailure), f"{bug} was accepted: {failure}"
    case = failure.verdict.case
    assert failure.verdict.status in (Status.DISAGREE, Status.ERROR)
    assert case.arch.depth <= 3, f"{bug}: counterexample too deep: {case.describe()}"
    assert case.batch_size <= 3, f"{bug}: counterexample batch too large: {case.describe()}"
    assert "Reproduce:" in str(failure)
