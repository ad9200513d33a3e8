"""The numerical-range verdict: the judges hold over the whole ladder, a plain implementation gets
its range reported as a warning (a failure under --strict-numerics), never a chain-rule failure."""

import itertools
import json
import math

import numpy as np
import pytest

from chainrule import crosscheck
from chainrule.cli import main
from chainrule.judge import ask_oracles, judge_oracle
from chainrule.numerics import LADDER, _rung, numerical_range
from chainrule.oracles.registry import available
from chainrule.reference import ACTIVATION_NAMES, Reference
from chainrule.sources.implementation import wrap
from chainrule.status import Status
from chainrule.tolerances import sensitivity


class PlainSigmoidBCE:
    """The article's formulas as a textbook writes them: sigmoid as 1/(1 + e^-z), binary
    cross-entropy from the rounded output a, dL/da then times sigma'(z)."""

    name = "plain-sigmoid-bce"
    activations = ("identity", "sigmoid")
    losses = ("mse", "binary_cross_entropy")

    def loss_and_gradients(self, arch, params, X, Y):
        zs, A = [], [X]
        for (W, b), name in zip(params, arch.activations):
            zs.append(A[-1] @ W.T + b)
            A.append(1.0 / (1.0 + np.exp(-zs[-1])) if name == "sigmoid" else zs[-1])
        a, N = A[-1], len(X)
        if arch.loss == "mse":
            loss, dA = ((a - Y) ** 2).sum() / N, 2.0 * (a - Y) / N
        else:
            loss, dA = -(Y * np.log(a) + (1.0 - Y) * np.log(1.0 - a)).sum() / N, (-Y / a + (1.0 - Y) / (1.0 - a)) / N
        grads = []
        for l in reversed(range(len(params))):
            s = 1.0 / (1.0 + np.exp(-zs[l]))
            dZ = dA * (s * (1.0 - s) if arch.activations[l] == "sigmoid" else 1.0)
            grads.append((dZ.T @ A[l], dZ.sum(axis=0)))
            dA = dZ @ params[l][0]
        return float(loss), grads[::-1]


class ScalarExp(PlainSigmoidBCE):
    """The same with math.exp, as a scalar engine has it: OverflowError past z = 709."""

    name = "scalar-exp"

    def loss_and_gradients(self, arch, params, X, Y):
        for (W, b) in params[:1]:
            for z in (X @ W.T + b).ravel():
                math.exp(-z)
        return super().loss_and_gradients(arch, params, X, Y)


PROBES = [(name, "mse") for name in ACTIVATION_NAMES] + [("sigmoid", "binary_cross_entropy"), ("softmax", "cross_entropy")]


@pytest.mark.parametrize("name, loss", PROBES, ids=[f"{n}-{loss}" for n, loss in PROBES])
def test_the_judges_agree_over_the_whole_ladder(name, loss):
    """Every oracle pair, every rung, both signs: the judges are stable where plain formulas are not."""
    from chainrule.reference import Architecture

    arch = Architecture((1, 2 if name == "softmax" else 1), (name,), loss)
    judges = available()
    for z in [s * m for m in LADDER for s in (1.0, -1.0)]:
        case = _rung(arch, z)
        answers = ask_oracles(case, judges)
        bounds = sensitivity(case.arch, case.params, case.X, case.Y).within_judges()
        for judged, judging in itertools.combinations(judges, 2):
            comparison = judge_oracle(judged, judging, case, answers, bounds)
            assert comparison.status is not Status.DISAGREE, f"{judged.info.name} vs {judging.info.name} at z = {z} [{arch}]: {comparison}"


def test_the_reference_has_no_numerical_range_finding():
    assert numerical_range(wrap(Reference()), available()) == ()


def test_a_plain_implementation_is_accepted_and_its_range_reported():
    summary = crosscheck(PlainSigmoidBCE(), examples=60, seed=1)
    findings = {f.probe: f for f in summary.numerical_range}
    bce = findings["binary_cross_entropy after sigmoid, z > 0"]
    assert bce.passed_up_to == 30 and bce.failed_at == 36 and "log-sigmoid" in bce.advice, bce
    assert "numerical range (warning): binary_cross_entropy after sigmoid, z > 0: finite and within rounding up to |z| = 30" in str(summary)


def test_an_overflow_is_a_range_finding_naming_the_exception():
    summary = crosscheck(ScalarExp(), examples=30, seed=2)
    sigmoid = [f for f in summary.numerical_range if f.probe.startswith("sigmoid")]
    assert sigmoid and sigmoid[0].failed_at == -720 and "OverflowError" in sigmoid[0].what, summary.numerical_range


def _check(capsys, *options):
    """``chainrule check`` run here, through ``main`` as ``python -m chainrule`` runs it (the
    implementation in its worker process all the same): (exit code, stdout)."""
    code = main(["check", "tests.test_numerics:PlainSigmoidBCE", "--examples", "20", "--seed", "3", *options])
    return code, capsys.readouterr().out


def test_check_warns_and_strict_numerics_fails(capsys):
    code, out = _check(capsys)
    assert code == 0 and "numerical range (warning): binary_cross_entropy after sigmoid, z > 0" in out, out
    code, out = _check(capsys, "--strict-numerics", "--json")
    document = json.loads(out)
    assert (code, document["status"], document["exit_code"]) == (1, "numerical-range", 1), document
    assert any(f["failed_at"] == 36 for f in document["numerical_range"]), document["numerical_range"]


class DoubledBiasShy(PlainSigmoidBCE):
    """Wrong (dL/db of layer 1 doubled), and raising on a single all-zero example with a target, where the
    shrinker heads: a fault of another kind waiting on the way down."""

    name = "doubled-bias-shy"

    def loss_and_gradients(self, arch, params, X, Y):
        if len(X) == 1 and not X.any() and Y.any():
            raise RuntimeError("an all-zero example")
        loss, grads = super().loss_and_gradients(arch, params, X, Y)
        return loss, [(grads[0][0], 2.0 * grads[0][1])] + grads[1:]


def test_a_counterexample_keeps_its_kind_and_stays_in_the_domain():
    """Shrinking and reduction never turn the disagreement into a fault of another kind, nor
    leave the chain rule's domain."""
    from chainrule import CheckFailure
    from chainrule.evidence import evidence

    with pytest.raises(CheckFailure) as raised:
        crosscheck(DoubledBiasShy(), examples=100, seed=4)
    verdict = raised.value.verdict
    assert verdict.fault is None and verdict.failure_kind == "disagree", str(raised.value)
    assert "dL/db[layer 1]" in str(raised.value) and not evidence(verdict.case).set_aside
    # the reduction's test of a smaller case: the fault on the way down does not count as the failure
    from chainrule.case import Case
    from chainrule.reference import Architecture
    from chainrule.search import _still_fails

    shy = Case(Architecture.parse("1-identity-1:mse"), [(np.zeros((1, 1)), np.zeros(1))], np.zeros((1, 1)), np.ones((1, 1)))
    wrong = Case(shy.arch, shy.params, np.ones((1, 1)), np.ones((1, 1)))
    implementation, judges = wrap(DoubledBiasShy()), available()
    assert not _still_fails(implementation, shy, judges, "disagree") and _still_fails(implementation, shy, judges, "raised")
    assert _still_fails(implementation, wrong, judges, "disagree")


class ShuffledSums(PlainSigmoidBCE):
    """Sums over the batch in a random order on every call, as a scalar engine whose topological
    order follows object ids does: answers that differ by rounding are not state."""

    name = "shuffled-sums"

    def loss_and_gradients(self, arch, params, X, Y):
        loss, grads = super().loss_and_gradients(arch, params, X, Y)
        order = np.random.default_rng().permutation(len(X))
        rows = [super(ShuffledSums, self).loss_and_gradients(arch, params, X[k : k + 1], Y[k : k + 1])[1] for k in order]
        summed = [tuple(sum(r[l][i] for r in rows) / len(X) for i in range(2)) for l in range(len(params))]
        return loss, summed


def test_rounding_that_varies_between_calls_is_not_state():
    summary = crosscheck(ShuffledSums(), examples=100, seed=5)
    assert summary.count(Status.AGREE) > 0


def test_a_subnormal_probability_is_outside_the_domain():
    """Logits 712 apart: the smaller softmax probability is subnormal, 1/a overflows in the
    autodiff of -log a (a scalar engine returned NaN there): no evidence about the chain rule."""
    from chainrule.case import Case
    from chainrule.evidence import evidence
    from chainrule.reference import Architecture

    case = Case(Architecture.parse("1-softmax-2:cross_entropy"), [(np.array([[356.0], [-356.0]]), np.zeros(2))], np.ones((1, 1)), np.array([[0.5, 0.5]]))
    assert "subnormal" in evidence(case).set_aside
