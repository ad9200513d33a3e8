"""Every gradient source against every oracle, and the oracles against each other."""

import itertools

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from oracles.compare import Status, compare
from oracles.crosscheck import adjudicate, judge, random_case
from oracles.kinks import rounding_ambiguous
from oracles.registry import ORACLE_TARGETS, get
from oracles.strategies import Case, architectures, cases
from oracles.verdict import CaseVerdict, format_failure
from reference import Architecture


def _available(name):
    registered = get(name)
    if not registered.info.available:
        pytest.skip(f"{name}: {registered.info.reason}")
    return registered


@pytest.fixture(params=list(ORACLE_TARGETS), scope="module")
def oracle(request):
    return _available(request.param)


@pytest.fixture(params=list(itertools.combinations(ORACLE_TARGETS, 2)), ids=lambda pair: "-vs-".join(pair), scope="module")
def oracle_pair(request):
    return tuple(_available(name) for name in request.param)


def _supported_cases(implementation):
    return cases(architectures(activations=implementation.activations, losses=implementation.losses))


@given(data=st.data())
def test_agrees_with_oracle(implementation, oracle, data):
    case = data.draw(_supported_cases(implementation), label="case")
    assume(not rounding_ambiguous(case.arch, case.params, case.X))
    verdict = judge(implementation, case, [oracle])
    assert not verdict.failed, format_failure(verdict)


@given(case=cases())
def test_oracles_agree_with_each_other(oracle_pair, case):
    """The first of the pair is judged by the second (finite differences always judge, on their evidence)."""
    assume(not rounding_ambiguous(case.arch, case.params, case.X))
    source, judge_ = oracle_pair
    answer = source.oracle.gradients(case.arch, case.params, case.X, case.Y)
    expected = judge_.oracle.gradients(case.arch, case.params, case.X, case.Y)
    comparison = compare(answer.loss, answer.grads, expected, judge_.info, source=source.info)
    comparison = adjudicate(comparison, judge_, case, answer.loss, answer.grads, source=source.info)
    verdict = CaseVerdict(source.info.name, case, (comparison,))
    assert comparison.status is not Status.DISAGREE, format_failure(verdict)


@pytest.mark.parametrize("arch", ["1-sigmoid-6-gelu-5:mse", "2-tanh-6-sigmoid-6-silu-6:mse", "6-sigmoid-6-gelu-6:mse"])
def test_perfect_fit_at_zero_is_not_flagged(implementation, oracle, arch):
    """Every parameter, X and Y zero (where the shrinker goes): every true gradient is 0 while the
    plain central difference errs by h^2 L'''/6 ~ 1e-11 on every entry behind gelu or silu. Each of the many
    disputed entries must be refined before it counts, or a correct implementation is flagged."""
    case = random_case(Architecture.parse(arch), 1, 0)
    zero = Case(case.arch, [(0 * W, 0 * b) for W, b in case.params], 0 * case.X, 0 * case.Y)
    verdict = judge(implementation, zero, [oracle])
    assert not verdict.failed, format_failure(verdict)
