"""The tolerance floors: what a correct implementation may be off by, and no more."""

import numpy as np
import pytest
from scipy.special import expit

from chainrule.case import Case
from chainrule.judge import judge
from chainrule.oracles.registry import ORACLE_TARGETS, get
from chainrule.reference import Architecture, Reference
from chainrule.sources.implementation import wrap


class TextbookLoss:
    """The reference's gradients; binary cross-entropy from a = sigmoid(z), the textbook way,
    times ``factor``."""

    name = "textbook-loss"

    def __init__(self, factor: float = 1.0):
        self.factor = factor

    def loss_and_gradients(self, arch, params, X, Y):
        _, grads = Reference().loss_and_gradients(arch, params, X, Y)
        a = expit(X @ params[0][0].T + params[0][1])
        loss = -(Y * np.log(a) + (1.0 - Y) * np.log1p(-a)).sum() / len(Y)
        return float(loss * self.factor), grads


def _output_at(z: float) -> Case:
    """1-sigmoid-1 under binary cross-entropy, z = b, target 0: L = softplus(z)."""
    return Case(Architecture.parse("1-sigmoid-1:binary_cross_entropy"), [(np.zeros((1, 1)), np.array([z]))], np.zeros((1, 1)), np.zeros((1, 1)))


@pytest.fixture(params=list(ORACLE_TARGETS))
def oracle(request):
    registered = get(request.param)
    if not registered.info.available:
        pytest.skip(f"{request.param}: {registered.info.reason}")
    return registered


@pytest.mark.parametrize("z", [2.0, 16.6, 20.0])
def test_textbook_loss_from_a_saturated_output_agrees(oracle, z):
    """-log(1 - sigmoid(z)) from a rounded a is e^z eps off (2e-9 at z = 16.6, 1e-10 of L): the
    loss's noise floor covers it; the gradients are exact."""
    verdict = judge(wrap(TextbookLoss()), _output_at(z), [oracle])
    assert not verdict.failed, verdict.comparisons


@pytest.mark.parametrize("z, factor", [(2.0, 1 + 1e-9), (12.0, 1 + 1e-7), (16.0, 1 + 1e-6)])
def test_a_loss_off_beyond_its_rounding_is_caught(oracle, z, factor):
    """The floor grows with e^z and no faster: a loss off by more than its rounding is wrong, up
    to the search range's edge (chainrule.local.SEARCH_RANGE)."""
    verdict = judge(wrap(TextbookLoss(factor)), _output_at(z), [oracle])
    assert verdict.failed and all(c.loss_error > 1e-10 for c in verdict.comparisons), verdict.comparisons
    assert not any(c.note for c in verdict.comparisons), "only the loss disagrees: no entry to re-estimate"


@pytest.mark.parametrize("z, factor", [(16.6, 1 + 1e-6), (20.0, 1 + 1e-5)])
def test_a_loss_off_beyond_the_search_range_is_a_numerical_range_finding(oracle, z, factor):
    """Beyond |z| = 16 no standard formula is held to the contract (torch's binary cross-entropy is
    off by 90% at z = -30): a loss off there is a numerical-range finding that names it and where,
    never silence."""
    verdict = judge(wrap(TextbookLoss(factor)), _output_at(z), [oracle])
    assert not verdict.failed and verdict.finding is not None, verdict
    assert verdict.finding.probe == "binary_cross_entropy after sigmoid: the loss" and verdict.finding.failed_at == z, verdict.finding


@pytest.mark.parametrize("z, why", [(30.0, "of the loss"), (37.0, "log 0 in binary_cross_entropy"), (800.0, "log 0 in binary_cross_entropy")])
def test_beyond_float64_the_case_is_set_aside(oracle, z, why):
    """Where the plain binary cross-entropy loses its digits (z = 30: 1e-3 of L) or is infinite
    (z >= 37, sigmoid rounds to 1), the case is no evidence about the chain rule: not asked, not failed."""
    verdict = judge(wrap(TextbookLoss(2.0)), _output_at(z), [oracle])
    assert not verdict.failed and not verdict.comparisons and why in verdict.outside, verdict
