"""Kink conventions are declared, not guessed: relu written as maximum(z, 0) takes relu'(0) = 1/2
in autograd, JAX and torch (ties split). Declared, it is judged as declared; undeclared, the
verdict names the value and how to declare it; outside the subdifferential it is plain wrong."""

import numpy as np
import pytest

from chainrule import CheckFailure, crosscheck
from chainrule.case import Case
from chainrule.judge import judge
from chainrule.oracles.registry import available
from chainrule.reference import Architecture
from chainrule.sources.faults import LoadError
from chainrule.sources.implementation import wrap
from chainrule.status import Status


class TiesSplit:
    """Dense relu networks under mse, with relu'(0) = ``at_zero`` (0.5: maximum(z, 0) in autograd)."""

    name = "ties-split"
    activations = ("identity", "relu")
    losses = ("mse",)
    at_zero = 0.5

    def loss_and_gradients(self, arch, params, X, Y):
        zs, A = [], [X]
        for (W, b), name in zip(params, arch.activations):
            zs.append(A[-1] @ W.T + b)
            A.append(np.maximum(zs[-1], 0.0) if name == "relu" else zs[-1])
        N = len(X)
        dA = 2.0 * (A[-1] - Y) / N
        grads = []
        for l in reversed(range(len(params))):
            z = zs[l]
            d = np.where(z > 0, 1.0, np.where(z == 0, self.at_zero, 0.0)) if arch.activations[l] == "relu" else 1.0
            dZ = dA * d
            grads.append((dZ.T @ A[l], dZ.sum(axis=0)))
            dA = dZ @ params[l][0]
        return float(((A[-1] - Y) ** 2).sum() / N), grads[::-1]


class TiesSplitDeclared(TiesSplit):
    name = "ties-split-declared"
    kink_derivatives = {"relu": 0.5}


class ClampDeclared(TiesSplit):
    name = "clamp-declared"
    at_zero = 1.0
    kink_derivatives = {"relu": 1.0}


class DeclaredButWrong(TiesSplit):
    """Declares 0.5 and does 1: judged as declared, so caught at the kinks."""

    name = "declared-but-wrong"
    at_zero = 1.0
    kink_derivatives = {"relu": 0.5}


class OutsideTheSubdifferential(TiesSplit):
    name = "outside"
    at_zero = 2.0


KINK = Case(
    Architecture.parse("2-relu-2-identity-1:mse"),
    [(np.array([[1.0, 0.0], [0.0, 1.0]]), np.zeros(2)), (np.array([[1.0, 1.0]]), np.zeros(1))],
    np.array([[0.0, 1.0]]), np.array([[0.5]]),
)


@pytest.mark.parametrize("declared", [TiesSplitDeclared, ClampDeclared], ids=lambda c: c.name)
def test_a_declared_convention_is_accepted(declared):
    assert not judge(wrap(declared()), KINK, available()).failed
    summary = crosscheck(declared(), examples=150, seed=7)
    assert summary.count(Status.AGREE) > 0


def test_a_declared_convention_is_judged_as_declared():
    verdict = judge(wrap(DeclaredButWrong()), KINK, available())
    assert verdict.failed and any(c.oracle == "torch" and c.status.value == "disagree" for c in verdict.comparisons), verdict


def test_an_undeclared_convention_is_named_with_how_to_declare_it():
    with pytest.raises(CheckFailure) as raised:
        crosscheck(TiesSplit(), examples=150, seed=7)
    text = str(raised.value)
    assert "kink convention: relu'(0) = 0.5 here, the contract's is 0" in text and "kink_derivatives = {'relu': 0.5}" in text, text


def test_a_value_outside_the_subdifferential_is_wrong():
    verdict = judge(wrap(OutsideTheSubdifferential()), KINK, available())
    assert verdict.failed and any("outside [0, 1]" in note and "wrong" in note for note in verdict.notes), verdict.notes


@pytest.mark.parametrize("declared, why", [({"relu": 2.0}, "outside"), ({"relu": "half"}, "number"), ({"tanh": 0.5}, "kink")])
def test_a_declaration_is_checked_when_loaded(declared, why):
    implementation = TiesSplit()
    implementation.kink_derivatives = declared
    with pytest.raises(LoadError, match=why):
        wrap(implementation)
