"""Every gradient source against every oracle."""

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from chainrule.case import Case, random_case
from chainrule.evidence import evidence
from chainrule.judge import judge
from chainrule.oracles.registry import ORACLE_TARGETS
from chainrule.reference import Architecture
from chainrule.strategies import architectures, cases
from chainrule.suite import host_proof, networks_only, oracle_or_skip  # noqa: F401 - networks_only: a fixture
from chainrule.verdict import format_failure

pytestmark = pytest.mark.usefixtures("networks_only")


def pytest_generate_tests(metafunc):
    """Every built-in oracle, then every plugged-in one (--chainrule-oracle, --chainrule-oracle-cmd,
    entry points in chainrule.oracles), each qualified once per session before it judges."""
    if "oracle" in metafunc.fixturenames:
        from chainrule.pytest_plugin import plugged_oracle_specs

        plugged = plugged_oracle_specs(metafunc.config)
        ids = list(ORACLE_TARGETS) + [f"oracle-{kind}={spec}" for kind, spec in plugged]
        metafunc.parametrize("oracle", [("builtin", name) for name in ORACLE_TARGETS] + plugged, ids=ids, indirect=True, scope="module")


@pytest.fixture(scope="module")
def oracle(request):
    kind, spec = request.param
    if kind == "builtin":
        return oracle_or_skip(spec)
    from chainrule.pytest_plugin import plugged_oracle

    return plugged_oracle(request.config, kind, spec)


def _supported_cases(implementation):
    return cases(architectures(activations=implementation.activations, losses=implementation.losses))


@host_proof
@given(data=st.data())
def test_agrees_with_oracle(implementation, oracle, data):
    case = data.draw(_supported_cases(implementation), label="case").in_precision(implementation.precision)
    assume(not evidence(case, implementation.precision).set_aside)
    verdict = judge(implementation, case, [oracle])
    assert not verdict.failed, format_failure(verdict)


@pytest.mark.parametrize("arch", ["1-sigmoid-6-gelu-5:mse", "2-tanh-6-sigmoid-6-silu-6:mse", "6-sigmoid-6-gelu-6:mse"])
def test_perfect_fit_at_zero_is_not_flagged(implementation, oracle, arch):
    """Every parameter, X and Y zero (where the shrinker goes): every true gradient is 0 while the
    plain central difference errs by h^2 L'''/6 ~ 1e-11 on every entry behind gelu or silu. Each of the many
    disputed entries must be refined before it counts, or a correct implementation is flagged."""
    case = random_case(Architecture.parse(arch), 1, 0)
    if not implementation.supports(case.arch):
        pytest.skip(f"{implementation.name} does not declare {case.arch}")
    zero = Case(case.arch, [(0 * W, 0 * b) for W, b in case.params], 0 * case.X, 0 * case.Y)
    verdict = judge(implementation, zero, [oracle])
    assert not verdict.failed, format_failure(verdict)
