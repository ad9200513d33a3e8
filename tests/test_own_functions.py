"""The chain rule on an implementation's own functions (chainrule.local): a disagreement beyond
the floor is a chain-rule failure only when the answer is not the composition of its own local
functions, or when one of them is wrong on ordinary values or within the search range; a
function that departs from the contract's only far out in saturation is a numerical-range
finding, named with where and how much. And the judges' own error is never evidence.

Each implementation here is the article's numpy code (tests/gallery/article_numpy) with one
local function written another way, each judged on one hand-made case.
"""

import math

import numpy as np
import pytest

from chainrule import Architecture, Reference
from chainrule.case import Case
from chainrule.judge import judge
from chainrule.local import ORDINARY, SEARCH_RANGE
from chainrule.oracles.registry import available
from chainrule.sources.load import as_implementation
from tests.broken import CATALOGUE
from tests.gallery.article_numpy import SIGMA, SIGMA_PRIME, ArticleNumpy, sigmoid


def _softplus_torch(z):
    """torch's F.softplus: log(1 + e^z), and z itself above its threshold 20."""
    return np.where(z > 20, z, np.log1p(np.exp(np.minimum(z, 20.0))))


class SoftplusThreshold(ArticleNumpy):
    """F.softplus's threshold: softplus'(z) = 1 above 20, where sigmoid(20) = 1 - 2e-9."""

    name = "softplus-threshold"
    sigma = {**SIGMA, "softplus": _softplus_torch}
    sigma_prime = {**SIGMA_PRIME, "softplus": lambda z: np.where(z > 20, 1.0, sigmoid(z))}


def _sigmoid_tanh(z):
    return 0.5 * (1.0 + np.tanh(z / 2.0))


class TanhSigmoid(ArticleNumpy):
    """sigmoid as 0.5 (1 + tanh(z/2)), as HIPS autograd's examples write it: exactly 0 at z = -38."""

    name = "tanh-sigmoid"
    sigma = {**SIGMA, "sigmoid": _sigmoid_tanh}
    sigma_prime = {**SIGMA_PRIME, "sigmoid": lambda z: 0.25 * (1.0 - np.tanh(z / 2.0) ** 2)}


class OverflowingTanh(ArticleNumpy):
    """tanh as micrograd's lecture writes it, (e^2z - 1)/(e^2z + 1): inf / inf = NaN above 355."""

    name = "overflowing-tanh"

    def _tanh(z):
        with np.errstate(all="ignore"):
            e = np.exp(2.0 * z)
            return (e - 1.0) / (e + 1.0)

    sigma = {**SIGMA, "tanh": _tanh}
    sigma_prime = {**SIGMA_PRIME, "tanh": lambda z: 1.0 - OverflowingTanh._tanh(z) ** 2}


class SigmoidPrimeZeroedAbove10(ArticleNumpy):
    """The bug: sigmoid'(z) = 0 for |z| > 10 (sigmoid'(12) = 6.1e-6)."""

    name = "sigmoid-prime-zeroed-above-10"
    sigma_prime = {**SIGMA_PRIME, "sigmoid": lambda z: np.where(np.abs(z) > 10, 0.0, sigmoid(z) * (1.0 - sigmoid(z)))}


class Float32Slope(ArticleNumpy):
    """The bug: leaky_relu's slope is float32(0.01), in the forward and the backward pass alike."""

    name = "float32-slope"
    slope = float(np.float32(0.01))
    sigma = {**SIGMA, "leaky_relu": lambda z: np.where(z > 0, z, Float32Slope.slope * z)}
    sigma_prime = {**SIGMA_PRIME, "leaky_relu": lambda z: np.where(z > 0, 1.0, Float32Slope.slope)}


class SigmoidPrimeOfA(ArticleNumpy):
    """The bug: sigmoid' evaluated at a = sigmoid(z) instead of z (a consistent composition of a wrong function)."""

    name = "sigmoid-prime-of-a"
    sigma_prime = {**SIGMA_PRIME, "sigmoid": lambda z: sigmoid(sigmoid(z)) * (1.0 - sigmoid(sigmoid(z)))}


def _judged(source, case: Case):
    return judge(as_implementation(source, isolate=False), case, available())


def _one_unit(activation: str, z: float, loss: str = "mse", y: float = 0.3, hidden: str | None = None) -> Case:
    """A network whose unit of ``activation`` sits at pre-activation z: 1-activation-1 (under
    ``loss``), or 1-hidden-1-identity-1 with the unit hidden."""
    if hidden is None:
        return Case(Architecture((1, 1), (activation,), loss), [(np.array([[z]]), np.zeros(1))], np.ones((1, 1)), np.array([[y]]))
    arch = Architecture((1, 1, 1), (activation, "identity"), "mse")
    return Case(arch, [(np.array([[z]]), np.zeros(1)), (np.array([[1.5]]), np.array([0.25]))], np.ones((1, 1)), np.array([[y]]))


@pytest.mark.parametrize("source, case, function", [
    pytest.param(SoftplusThreshold(), _one_unit("softplus", 20.5, y=3.0), "softplus", id="softplus-threshold"),
    pytest.param(TanhSigmoid(), _one_unit("sigmoid", -38.0, "binary_cross_entropy", y=0.7), "binary_cross_entropy after sigmoid", id="tanh-sigmoid-log-0"),
    pytest.param(OverflowingTanh(), _one_unit("tanh", 400.0, hidden="tanh"), "tanh", id="overflowing-tanh"),
])
def test_a_function_off_only_beyond_the_search_range_is_a_numerical_range_finding(source, case, function):
    verdict = _judged(source, case)
    assert not verdict.failed, f"got a failure, expected a numerical-range finding:\n{verdict.notes}"
    assert verdict.explanation and verdict.finding is not None, verdict
    assert verdict.finding.probe.startswith(function), verdict.finding
    assert abs(verdict.finding.failed_at) > SEARCH_RANGE, verdict.finding


def test_the_same_function_at_ordinary_values_agrees():
    for source, case in ((SoftplusThreshold(), _one_unit("softplus", 2.5, y=3.0)), (TanhSigmoid(), _one_unit("sigmoid", -3.0, "binary_cross_entropy", y=0.7)),
                         (OverflowingTanh(), _one_unit("tanh", 1.5, hidden="tanh"))):
        verdict = _judged(source, case)
        assert not verdict.failed and not verdict.explanation, f"{source.name}: {verdict.status}, {verdict.notes}"


@pytest.mark.parametrize("source, case, words", [
    pytest.param(SigmoidPrimeZeroedAbove10(), _one_unit("sigmoid", 12.0, hidden="sigmoid"), f"its own sigmoid' is wrong within |z| <= {SEARCH_RANGE:g}", id="zeroed-above-10"),
    pytest.param(Float32Slope(), _one_unit("leaky_relu", -3.0, hidden="leaky_relu"), "its own leaky_relu and leaky_relu' are wrong on ordinary values", id="float32-slope"),
    pytest.param(SigmoidPrimeOfA(), _one_unit("sigmoid", 0.5, hidden="sigmoid"), "its own sigmoid' is wrong on ordinary values", id="sigma-prime-of-a"),
])
def test_a_function_wrong_within_the_search_range_is_a_chain_rule_failure_that_names_it(source, case, words):
    verdict = _judged(source, case)
    assert verdict.failed and not verdict.explanation, f"got {verdict.status}, expected a failure: {verdict.explanation}"
    assert any(note.startswith(words) for note in verdict.notes), f"got {verdict.notes}, expected a note starting {words!r}"


def test_a_float32_slope_is_wrong_by_more_than_rounding_on_ordinary_values():
    """The classification's threshold on ordinary values sits between rounding and a float32 constant."""
    slope_error = abs(Float32Slope.slope - 0.01) / 1.0
    assert slope_error > 1e-12 and ORDINARY >= 3.0, slope_error


@pytest.mark.parametrize("bug", ["bias_averaged", "transposed_W", "loop_stops_early"])
def test_an_answer_that_is_not_the_composition_of_its_own_functions_is_a_chain_rule_error(bug):
    arch = Architecture((2, 2, 2), ("tanh", "sigmoid"), "mse")
    rng = np.random.default_rng(3)
    case = Case(arch, [(rng.standard_normal((2, 2)), rng.standard_normal(2)) for _ in range(2)], rng.standard_normal((3, 2)), rng.standard_normal((3, 2)))
    verdict = _judged(CATALOGUE[bug], case)
    assert verdict.failed, verdict
    assert any(note.startswith("not the chain rule") for note in verdict.notes), verdict.notes


def test_a_finite_difference_remainder_where_the_exact_gradient_is_0_is_no_evidence():
    """1-leaky_relu-2-gelu-1 with W2 = 0, b2 = 0, Y = 0: the loss and every gradient are exactly 0;
    gelu(x)^2 is not even, so the central difference keeps an O(h^2) remainder (-6.6e-14 here),
    and refining one entry shrank the tensor's scale until another, unrefined, was disputed."""
    arch = Architecture.parse("1-leaky_relu-2-gelu-1:mse")
    params = [(np.array([[9.839015079895127], [-10.9663946743631]]), np.array([7.744950724356045, -2.0307831030906094])),
              (np.zeros((1, 2)), np.zeros(1))]
    case = Case(arch, params, np.array([[1.319215941112411]]), np.zeros((1, 1)))
    verdict = judge(as_implementation(Reference(), isolate=False), case, available(["finite_differences"]))
    assert not verdict.failed, verdict.comparisons
    (comparison,) = verdict.comparisons
    assert "Richardson" in comparison.note and math.isfinite(comparison.worst_error), comparison


def test_an_undeclared_kink_convention_stays_a_failure_named_as_a_convention():
    """relu'(0) = 1 is within the subdifferential: not explained away, and not called wrong."""
    verdict = _judged(CATALOGUE["relu_prime_at_zero"], _one_unit("relu", 0.0, hidden="relu"))
    assert verdict.failed, verdict
    assert any(note.startswith("its own relu'(0) = 1 at an exact kink") and "kink convention" in note for note in verdict.notes), verdict.notes
