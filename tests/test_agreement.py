"""The oracles against each other. (Every gradient source against every oracle is the shipped
suite's job: chainrule.suite, tests/suite/test_agreement.py.)"""

import itertools

import pytest
from hypothesis import assume, given

from chainrule.judge import ask_oracles, judge_oracle
from chainrule.kinks import rounding_ambiguous
from chainrule.oracles.registry import ORACLE_TARGETS
from chainrule.status import Status
from chainrule.strategies import cases
from chainrule.suite import oracle_or_skip
from chainrule.verdict import CaseVerdict, format_failure


@pytest.fixture(params=list(itertools.combinations(ORACLE_TARGETS, 2)), ids=lambda pair: "-vs-".join(pair), scope="module")
def oracle_pair(request):
    return tuple(oracle_or_skip(name) for name in request.param)


@given(case=cases())
def test_oracles_agree_with_each_other(oracle_pair, case):
    """The first of the pair is judged by the second (finite differences always judge, on their evidence)."""
    assume(not rounding_ambiguous(case.arch, case.params, case.X))
    source, judge_ = oracle_pair
    comparison = judge_oracle(source, judge_, case, ask_oracles(case, [source, judge_]))
    verdict = CaseVerdict(source.info.name, case, (comparison,))
    assert comparison.status is not Status.DISAGREE, format_failure(verdict)
