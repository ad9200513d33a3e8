"""The diagnosis names what is wrong: for every catalogued bug, for bugs the catalogue lacks,
and "no simple pattern" when none fits.

The catalogue's crosschecks are shared with test_broken through conftest's ``broken_crosscheck``
(one crosscheck per bug per session); the diagnosis is the one crosscheck attached to its
CheckFailure.
"""

import dataclasses

import numpy as np
import pytest

from chainrule.case import Case, random_case
from chainrule.diagnosis import Diagnosis, _rejudge, diagnose
from chainrule.judge import judge
from chainrule.oracles.registry import available, get
from chainrule.reference import ACTIVATIONS, LOSSES, Activation, Architecture
from chainrule.search import CheckFailure, crosscheck
from chainrule.sources.faults import Fault
from chainrule.sources.implementation import wrap
from chainrule.verdict import CaseVerdict, format_failure
from tests.broken import BUGS, CATALOGUE

pytestmark = pytest.mark.xdist_group("broken-catalogue")  # shares the crosscheck cache with test_broken

EXAMPLES = 200
SEED = 2026
# softmax_diagonal shows only with a softmax output under mse (cross_entropy's dZ = A - Y bypasses
# softmax's backward), 1 draw in 30: declared mse-only, its search draws one in 10 instead.
DECLARED = {"softmax_diagonal": {"losses": ("mse",)}}

# What the diagnosis must name. "layer:" matches any tag that starts so; "!factor:" forbids one.
NAMED = {
    "transposed_W": ["transposed", "layer:", "depth>=2", "!factor:", "!kink"],
    "missing_sigma_prime": ["layer:", "activation:", "sigma_prime", "depth>=2", "!factor:"],
    "sigma_prime_of_a": ["layer:", "activation:", "sigma_prime", "depth>=2", "!factor:"],
    "bias_from_one_example": ["batch>1", "only:db", "!factor:"],
    "bias_averaged": ["factor:1/N", "only:db", "batch>1"],
    "mse_missing_two": ["factor:1/2", "!batch>1", "!only:"],
    "mse_missing_one_over_n": ["factor:N", "batch>1", "!only:"],
    "relu_prime_at_zero": ["kink", "activation:relu", "!factor:", "!activation:softmax", "!only:"],
    "leaky_relu_prime_at_zero": ["kink", "activation:leaky_relu", "convention", "!only:"],
    "loop_stops_early": ["zero", "layer:1", "depth>=2"],
    "tanh_prime_of_z": ["activation:tanh", "!sigma_prime", "!kink"],
    "gelu_tanh_approximation": ["activation:gelu", "!sigma_prime"],
    "softmax_diagonal": ["activation:softmax"],
    "cross_entropy_missing_one_over_n": ["factor:N", "batch>1", "loss:cross_entropy", "!activation:softmax"],
    "loss_missing_one_over_n": ["loss-value", "factor:N", "batch>1"],
    "stateful": ["fault:stateful"],
    "modifies_arguments": ["fault:modified-arguments"],
}


def _unmet(expected: list[str], patterns: tuple[str, ...]) -> list[str]:
    """The expectations the patterns do not meet."""
    def named(tag):
        return any(p == tag or (tag.endswith(":") and p.startswith(tag)) for p in patterns)

    return [tag for tag in expected if (named(tag[1:]) if tag.startswith("!") else not named(tag))]


def _diagnosed(failure) -> Diagnosis:
    assert isinstance(failure, CheckFailure), f"not rejected: {failure}"
    assert isinstance(failure.diagnosis, Diagnosis), "CheckFailure carries no diagnosis"
    assert "\ndiagnosis:\n  " + failure.diagnosis.summary in str(failure), "the failure message lacks the diagnosis"
    return failure.diagnosis


def test_every_catalogued_bug_has_an_expectation():
    assert sorted(NAMED) == sorted(BUGS)


def _crosschecked(bug, broken_crosscheck):
    if bug not in DECLARED:
        return broken_crosscheck(bug, EXAMPLES, SEED)  # shared with test_broken
    try:
        return crosscheck(dataclasses.replace(wrap(CATALOGUE[bug]), **DECLARED[bug]), examples=EXAMPLES, seed=SEED)
    except CheckFailure as failure:
        return failure


@pytest.mark.parametrize("bug", list(BUGS))
def test_diagnosis_names_the_pattern_of_each_catalogued_bug(bug, broken_crosscheck):
    diagnosis = _diagnosed(_crosschecked(bug, broken_crosscheck))
    unmet = _unmet(NAMED[bug], diagnosis.patterns)
    assert not unmet, f"{bug} ({BUGS[bug]}): expected {unmet} to hold, got {diagnosis.patterns}\n{diagnosis}"


def test_summary_says_what_and_when_and_the_oracles_side(broken_crosscheck):
    diagnosis = _diagnosed(broken_crosscheck("bias_averaged", EXAMPLES, SEED))
    assert diagnosis.summary.startswith("Only the bias gradients are wrong"), diagnosis.summary
    assert "factor 1/N" in diagnosis.summary and "more than one example" in diagnosis.summary, diagnosis.summary
    assert any("refined estimate sides with the other oracles" in line for line in diagnosis.lines), diagnosis.lines


# --- bugs the catalogue does not have --------------------------------------------------------


def _backprop(arch, params, X, Y, activation=ACTIVATIONS.__getitem__, weight_step=lambda dZ, A: dZ.T @ A):
    """The article's backward pass with two steps replaceable: sigma/sigma' by name, and dW."""
    zs, As = [], [X]
    for (W, b), name in zip(params, arch.activations):
        zs.append(As[-1] @ W.T + b)
        As.append(activation(name).sigma(zs[-1]))
    dZ = LOSSES[arch.loss].output_dZ(zs[-1], As[-1], Y, activation(arch.activations[-1]))
    grads = []
    for l in reversed(range(arch.depth)):
        grads.append((weight_step(dZ, As[l]), dZ.sum(axis=0)))
        if l > 0:
            dZ = activation(arch.activations[l - 1]).backward(zs[l - 1], As[l], dZ @ params[l][0])
    return LOSSES[arch.loss].value(zs[-1], As[-1], Y), grads[::-1]


class _Mutant:
    def __init__(self, name, **steps):
        self.name, self.steps = name, steps

    def loss_and_gradients(self, arch, params, X, Y):
        change = self.steps.get("change", lambda grads: grads)
        loss, grads = _backprop(arch, params, X, Y, **{k: v for k, v in self.steps.items() if k != "change"})
        return loss, change(grads)


_SOFTPLUS, _RELU = ACTIVATIONS["softplus"], ACTIVATIONS["relu"]
NEW_BUGS = {
    "dW of layer 1 negated": (
        _Mutant("sign", change=lambda grads: [(-grads[0][0], grads[0][1])] + grads[1:]),
        ["sign", "factor:-1", "only:dW", "layer:1", "!batch>1"],
    ),
    "softplus' written as sigmoid(-z)": (
        _Mutant("softplus", activation=lambda name: Activation(_SOFTPLUS.sigma, lambda z: ACTIVATIONS["sigmoid"].sigma(-z)) if name == "softplus" else ACTIVATIONS[name]),
        ["activation:softplus", "!factor:", "!kink", "!batch>1"],
    ),
    "relu' = 1 down to z = -0.01 (a threshold, not the value at 0)": (
        _Mutant("relu-threshold", activation=lambda name: Activation(_RELU.sigma, lambda z: (z > -0.01) * 1.0) if name == "relu" else ACTIVATIONS[name]),
        ["activation:relu", "near-kink", "!kink"],
    ),
    "dW transposed where square (A^T dZ)": (
        _Mutant("dW-transposed", weight_step=lambda dZ, A: A.T @ dZ if dZ.shape[1] == A.shape[1] else dZ.T @ A),
        ["transposed", "only:dW", "!factor:"],
    ),
}


@pytest.mark.parametrize("bug", list(NEW_BUGS))
def test_diagnosis_generalises_to_bugs_not_in_the_catalogue(bug):
    implementation, expected = NEW_BUGS[bug]
    with pytest.raises(CheckFailure) as caught:
        crosscheck(implementation, examples=EXAMPLES, seed=SEED)
    diagnosis = _diagnosed(caught.value)
    unmet = _unmet(expected, diagnosis.patterns)
    assert not unmet, f"{bug}: expected {unmet} to hold, got {diagnosis.patterns}\n{diagnosis}"


def test_no_simple_pattern_is_said_honestly():
    """A smooth, value-dependent error in every dW: no factor, no transpose, nothing a variation removes."""
    noisy = _Mutant("noisy", change=lambda grads: [(dW + 0.1 * np.sin(7 * dW + 1), db) for dW, db in grads])
    with pytest.raises(CheckFailure) as caught:
        crosscheck(noisy, examples=EXAMPLES, seed=SEED)
    diagnosis = _diagnosed(caught.value)
    assert diagnosis.summary.startswith("No simple pattern fits"), diagnosis
    assert all(p.startswith(("layer:", "only:dW")) for p in diagnosis.patterns), diagnosis.patterns


# --- conventions and faults ------------------------------------------------------------------


def test_a_kink_convention_is_listed_as_a_convention():
    """mse_missing_two on a leaky_relu kink: jax's leaky_relu'(0) = 1 makes its comparison a
    convention difference; the diagnosis says so, and still names the real factor."""
    jax = get("jax")
    if not jax.info.available:
        pytest.skip(f"jax: {jax.info.reason}")
    judges = [get("torch"), jax] if get("torch").info.available else [jax]
    arch = Architecture((1, 1, 1), ("leaky_relu", "identity"), "mse")
    params = [(np.array([[0.0]]), np.array([0.0])), (np.array([[0.5]]), np.array([0.25]))]
    case = Case(arch, params, np.array([[1.0]]), np.array([[1.5]]))
    implementation = wrap(CATALOGUE["mse_missing_two"])
    diagnosis = diagnose(implementation, judge(implementation, case, judges), judges)
    assert any(line.startswith("jax differs only by its convention at the kink") for line in diagnosis.lines), diagnosis
    assert "convention" in diagnosis.patterns and "factor:1/2" in diagnosis.patterns, diagnosis


def test_a_variation_within_rounding_of_a_kink_is_not_judged():
    """0.1 + 0.2 - 0.3 is 5.6e-17, not 0: which side of relu's kink it lands on is rounding's choice."""
    arch = Architecture((2, 1), ("relu",), "mse")
    case = Case(arch, [(np.array([[1.0, 1.0]]), np.array([-0.3]))], np.array([[0.1, 0.2]]), np.array([[1.0]]))
    assert _rejudge(wrap(CATALOGUE["relu_prime_at_zero"]), [case], []).startswith("not run")


class _MustNotBeAsked:
    name = "retired"

    def loss_and_gradients(self, arch, params, X, Y):
        raise AssertionError("a faulted implementation was asked again")


def test_a_fault_is_diagnosed_without_asking_again():
    case = Case(Architecture((1, 1), ("identity",), "mse"), [(np.zeros((1, 1)), np.zeros(1))], np.zeros((1, 1)), np.zeros((1, 1)))
    verdict = CaseVerdict("retired", case, fault=Fault("timeout", "no answer within 10 s"))
    diagnosis = diagnose(_MustNotBeAsked(), verdict)
    assert diagnosis.patterns == ("fault", "fault:timeout"), diagnosis
    assert "diagnosis:\n  It breaks the contract" in format_failure(verdict, diagnosis)
    assert "diagnosis:" not in format_failure(verdict)


# --- at which size ---------------------------------------------------------------------------


class _BatchSized:
    """db wrong from some batch size on: summed over chunks of ``chunk`` examples with the remainder
    dropped, or (``above``) averaged instead of summed once N > above."""

    def __init__(self, name, chunk=None, above=None):
        self.name, self.chunk, self.above = name, chunk, above

    def loss_and_gradients(self, arch, params, X, Y):
        loss, grads = _backprop(arch, params, X, Y)
        N = len(X)
        if self.chunk and N > self.chunk and N % self.chunk:
            keep = N - N % self.chunk
            dZ = _backprop(arch, params, X[:keep], Y[:keep])[1][0][1] * keep / N  # db of the full chunks only
            grads[0] = (grads[0][0], dZ)
        if self.above and N > self.above:
            grads[0] = (grads[0][0], grads[0][1] / N)
        return loss, grads


@pytest.mark.parametrize(
    "mutant, batch, expected, says",
    [
        (_BatchSized("chunks-of-3", chunk=3), 4, ["size:N>3", "size:N%3"], "it fails when N > 3 and not a multiple of 3: 4, 5 and 7 fail, 3 and 6 agree"),
        (_BatchSized("averaged-above-6", above=6), 7, ["size:N>6", "!size:N%"], "it fails when N > 6: 7, 8, 12 and 13 fail, 6 agrees"),
    ],
    ids=["chunk-edge", "threshold"],
)
def test_diagnosis_names_a_size_threshold_and_a_tile_edge(mutant, batch, expected, says):
    judges = [get("torch")] if get("torch").info.available else None
    case = random_case(Architecture.parse("2-tanh-2-identity-1:mse"), batch, seed=4)
    implementation = wrap(mutant)
    verdict = judge(implementation, case, judges or available())
    assert verdict.failed
    diagnosis = diagnose(implementation, verdict, judges)
    unmet = _unmet(expected, diagnosis.patterns)
    assert not unmet and says in diagnosis.summary, f"expected {unmet} to hold, got {diagnosis.patterns}\n{diagnosis}"
    assert "it needs a batch of more than one" not in diagnosis.summary, "the size threshold says more"
