"""Test the testers: every deliberately broken implementation is rejected, on a small case."""

import pytest

from chainrule.search import CheckFailure
from chainrule.status import Status
from tests.broken import BUGS

pytestmark = pytest.mark.xdist_group("broken-catalogue")  # one worker shares the crosscheck cache


@pytest.mark.parametrize("bug", list(BUGS))
def test_broken_implementation_is_rejected(broken_crosscheck, bug):
    failure = broken_crosscheck(bug)
    assert isinstance(failure, CheckFailure), f"{bug} was accepted: {failure}"
    assert failure.verdict.status in (Status.DISAGREE, Status.ERROR)
    assert "Reproduce:" in str(failure)


# "stateful" answers by what it was asked before, not by the case alone: no case of it is the
# smallest (test_diagnosis requires its stateful fault named instead).
@pytest.mark.parametrize("bug", [bug for bug in BUGS if bug != "stateful"])
def test_counterexample_is_small(broken_crosscheck, bug):
    """Every catalogued bug shows on two layers, two examples and two units a layer (a 2 x 2 W for
    a transposition, two outputs for softmax, two examples for a 1/N): no more may be shown."""
    case = broken_crosscheck(bug).verdict.case
    assert case.arch.depth <= 2, f"{bug}: counterexample too deep: {case.describe()}"
    assert case.batch_size <= 2, f"{bug}: counterexample batch too large: {case.describe()}"
    assert max(case.arch.sizes) <= 2, f"{bug}: counterexample too wide: {case.describe()}"
