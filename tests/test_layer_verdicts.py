"""Layer verdicts users can trust: no false alarm on the frameworks' own functions, at a judge's
own rounding, in a declared precision or kink convention; the smallest real error still caught;
cases a source declines are never agreement."""

import numpy as np
import pytest
from hypothesis import settings

from chainrule.cli import main
from chainrule.layers.floors import floors
from chainrule.layers.judge import judge_layer
from chainrule.layers.search import JUDGED, check_layer, check_layers
from chainrule.layers.strategies import given_case
from chainrule.layers.text import format_layer_failure
from chainrule.oracles.layers import available
from chainrule.oracles.layers import torch_vjp
from chainrule.sources.implementation import wrap
from chainrule.status import Status
from tests.broken_layers import BUGS
from tests.gallery.layers_numpy import CourseLayers

THOROUGH = settings.get_current_profile_name().startswith("thorough")


@pytest.fixture(scope="module")
def judges():
    return available()


class TorchFunctional:
    """torch.nn.functional's own autograd, as a user would plug it in (the judge's code, asked as a source)."""

    name = "torch.nn.functional"

    def vjp(self, layer, config, inputs, dy):
        return torch_vjp.vjp(layer, config, inputs, dy)


@pytest.mark.parametrize("layer", JUDGED)
def test_torch_functional_is_accepted(layer, judges):
    result = check_layer(wrap(TorchFunctional()), layer, judges, examples=60 if THOROUGH else 25, seed=7)
    assert result.failure is None, format_layer_failure(result.failure, result.diagnosis)
    assert result.agreed >= 20


def test_a_judge_rounding_where_the_gradient_is_zero_is_no_evidence(judges):
    """A layer norm over one element: x - mean is exactly 0 and so is every exact gradient of x;
    torch returns rounding noise there. Neither it nor a source's noise of that size is evidence."""
    case = given_case("layer_norm", {"normalized_shape": [1]}, {"x": (3, 1), "weight": (1,), "bias": (1,)}, 5)
    reference = floors(case)
    assert not reference.grads["x"].any() and reference.floors["x"].max() > 0
    for source in (TorchFunctional(), CourseLayers()):
        verdict = judge_layer(wrap(source), case, judges)
        assert verdict.status is Status.AGREE, format_layer_failure(verdict)


class Course32(CourseLayers):
    """The course layers computing in float32, declared."""

    name = "course_float32"
    precision = "float32"

    def vjp(self, layer, config, inputs, dy):
        single = lambda a: a.astype(np.float32) if a.dtype == np.float64 else a  # noqa: E731
        y, grads = super().vjp(layer, config, {n: single(a) for n, a in inputs.items()}, single(np.asarray(dy)))
        return np.asarray(y, np.float32), {n: np.asarray(g, np.float32) for n, g in grads.items()}


class Course32Undeclared(Course32):
    name = "course_float32, undeclared"
    precision = None


def test_a_declared_precision_is_judged_in_it(judges):
    summary = check_layers(wrap(Course32()), ("linear", "layer_norm", "softmax", "cross_entropy"), examples=30, seed=2, judges=judges)
    assert not summary.failed, [format_layer_failure(r.failure) for r in summary.results if r.failure]
    undeclared = check_layer(wrap(Course32Undeclared()), "linear", judges, examples=10, seed=2)
    assert undeclared.failure is not None and undeclared.failure.fault.kind == "type"
    assert 'declare precision = "float32"' in undeclared.failure.fault.message


class LinearOffByRounding(CourseLayers):
    """dx of linear off by 1e-11 of its scale: a float32 constant, a wrong eps: far below float32's
    noise, far above float64's. It must be caught."""

    name = "linear dx off by 1e-11"

    def vjp(self, layer, config, inputs, dy):
        y, grads = super().vjp(layer, config, inputs, dy)
        if layer == "linear":
            grads = grads | {"x": grads["x"] + 1e-11 * np.abs(grads["x"]).max()}
        return y, grads


def test_an_error_just_above_rounding_is_caught(judges):
    result = check_layer(wrap(LinearOffByRounding()), "linear", judges, examples=30, seed=0)
    assert result.failure is not None and result.failure.wrong == ("x",)


class ReluOneDeclared(BUGS["relu_prime_at_zero"]):
    name = "relu'(0) = 1, declared"
    kink_derivatives = {"relu": 1.0}


def test_a_declared_kink_convention_is_honoured_and_an_undeclared_one_named(judges):
    assert check_layer(wrap(ReluOneDeclared()), "relu", judges, examples=40, seed=0).failure is None
    undeclared = check_layer(wrap(BUGS["relu_prime_at_zero"]()), "relu", judges, examples=40, seed=0)
    assert undeclared.failure is not None
    assert any("kink convention: relu'(0) = 1 here" in note for note in undeclared.failure.notes), undeclared.failure.notes


class NoRank3(CourseLayers):
    name = "2-D only"

    def vjp(self, layer, config, inputs, dy):
        if inputs["x"].ndim > 2:
            raise NotImplementedError("only 2-D x")
        return super().vjp(layer, config, inputs, dy)


class Declines(CourseLayers):
    name = "declines everything"

    def vjp(self, layer, config, inputs, dy):
        raise NotImplementedError("not written yet")


def test_a_declined_case_is_not_exercised_never_agreement(judges, capsys):
    result = check_layer(wrap(NoRank3()), "layer_norm", judges, examples=20, seed=1)
    assert result.failure is None and result.agreed == 20 and result.unsupported == ("only 2-D x",)
    result = check_layer(wrap(Declines()), "relu", judges, examples=10, seed=1)
    assert result.failure is None and result.agreed == 0 and result.status is Status.SKIPPED
    assert main(["check", "tests.test_layer_verdicts:Declines", "--layers", "relu", "--seed", "1", "--layer-examples", "5"]) == 2
    assert "nothing could be judged" in capsys.readouterr().out


class LastAxisOnly(CourseLayers):
    """A layer norm over the last axis only (up to 3 features), as fused kernels are, said in layer_configs."""

    name = "layer norm over the last axis"
    layer_configs = {"layer_norm": {"normalized_shape": [[1], [2], [3]], "eps": [1e-5]}}

    def vjp(self, layer, config, inputs, dy):
        if layer == "layer_norm" and (len(config["normalized_shape"]) != 1 or config["normalized_shape"][0] > 3 or config["eps"] != 1e-5):
            raise ValueError(f"asked outside its layer_configs: {config}")
        return super().vjp(layer, config, inputs, dy)


def test_only_the_declared_configs_are_asked(judges):
    result = check_layer(wrap(LastAxisOnly()), "layer_norm", judges, examples=40, seed=3)
    assert result.failure is None, format_layer_failure(result.failure)
    assert result.agreed == 40


class TwoEntriesOff(CourseLayers):
    """Two entries of dx off, as a kernel's tile edge would leave them."""

    name = "two entries of dx off"

    def vjp(self, layer, config, inputs, dy):
        y, grads = super().vjp(layer, config, inputs, dy)
        dx = grads["x"].copy()
        dx[5, 17] += 0.01
        dx[30, 2] -= 0.02
        return y, grads | {"x": dx}


@pytest.mark.parametrize("layer", ["relu", "layer_norm"])
def test_finite_differences_name_the_wrong_entries_of_a_large_case_by_group_testing(layer, judges):
    """1,200 entries: too many to difference each; one random direction shows dx is off, and halving
    the direction's support finds exactly the two wrong entries (finite differences alone judging)."""
    shapes = {"x": (40, 30)} | ({"weight": (30,), "bias": (30,)} if layer == "layer_norm" else {})
    case = given_case(layer, {"normalized_shape": [30]} if layer == "layer_norm" else {}, shapes, 1)
    alone = [j for j in judges if j.name == "finite_differences"]
    verdict = judge_layer(wrap(TwoEntriesOff()), case, alone)
    assert verdict.status is Status.DISAGREE and verdict.wrong == ("x",)
    assert "grads['x'] wrong at [5, 17], [30, 2] (group testing" in verdict.comparisons[0].note
    assert judge_layer(wrap(CourseLayers()), case, alone).status is Status.AGREE
