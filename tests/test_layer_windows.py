"""Convolution, pooling and attention in the layer engine: the strategies reach what the contract
allows (strides, padding, dilation, groups, per-axis pairs, overlapping pool windows, ties,
count_include_pad, Lq != Lk, masks, causal, explicit scale) and the sizes around 2^k up to 129;
max_pool2d's tie rules are judged as kinks are (a declared rule honoured, an undeclared one named
as a convention, an invalid one wrong); the reduction reaches the smallest config that fails."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from chainrule.layers.judge import judge_layer
from chainrule.layers.search import check_layer
from chainrule.layers.strategies import WIDE_EDGES, build, given_case, specs
from chainrule.layers.text import format_layer_failure
from chainrule.oracles.layers import available
from chainrule.reference.layers import vjp as reference_vjp
from chainrule.reference.layers.pooling import max_pool2d_dx
from chainrule.sources.implementation import wrap
from chainrule.status import Status

WINDOWED = ("conv1d", "conv2d", "max_pool2d", "avg_pool2d", "attention")


@pytest.fixture(scope="module")
def judges():
    return available()


def _drawn(layer: str, examples: int = 400) -> list:
    cases = []

    @settings(max_examples=examples, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(specs(layer))
    def draw(spec):
        cases.append((spec, build(spec)))

    draw()
    return cases


def _axes(value, rank: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, list) else (value,) * rank


def _ties(case) -> bool:
    """Whether some max_pool2d window holds two equal maxima (padding never counts)."""
    x, c = case.inputs["x"], case.config
    (kh, kw), (ph, pw) = _axes(c["kernel_size"], 2), _axes(c["padding"], 2)
    sh, sw = _axes(c["stride"] or c["kernel_size"], 2)
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    for i in range(0, padded.shape[2] - kh + 1, sh):
        for j in range(0, padded.shape[3] - kw + 1, sw):
            window = padded[:, :, i:i + kh, j:j + kw].reshape(*x.shape[:2], -1)
            if ((window == window.max(axis=-1, keepdims=True)).sum(axis=-1) > 1).any():
                return True
    return False


@pytest.mark.parametrize("layer", WINDOWED)
def test_the_strategies_reach_every_config_and_the_sizes_around_2k(layer):
    cases = [case for _, case in _drawn(layer)]
    assert all(case is not None for case in cases)  # every spec drawn is a case of the contract
    c = [case.config for case in cases]
    reached = set()
    if layer in ("conv1d", "conv2d"):
        rank = 1 if layer == "conv1d" else 2
        kernel = [case.inputs["weight"].shape[2:] for case in cases]
        stride = [_axes(x["stride"], rank) for x in c]
        reached |= {"stride > kernel" for s, k in zip(stride, kernel) if any(a > b for a, b in zip(s, k))}
        reached |= {"1 < stride < kernel" for s, k in zip(stride, kernel) if any(1 < a < b for a, b in zip(s, k))}
        reached |= {"padding" for x in c if max(_axes(x["padding"], rank)) > 0}
        reached |= {"dilation" for x in c if max(_axes(x["dilation"], rank)) > 1}
        reached |= {"groups" for x in c if x["groups"] > 1}
        reached |= {"depthwise" for case in cases if case.config["groups"] == case.inputs["x"].shape[1] > 1}
        if rank == 2:
            reached |= {"pairs" for x in c if any(isinstance(x[k], list) and x[k][0] != x[k][1] for k in ("stride", "padding", "dilation"))}
        sizes = {d for case in cases for d in (*case.inputs["x"].shape[1:], case.inputs["weight"].shape[0])}
        wanted = {"stride > kernel", "1 < stride < kernel", "padding", "dilation", "groups", "depthwise"} | ({"pairs"} if rank == 2 else set())
    elif layer in ("max_pool2d", "avg_pool2d"):
        kernel = [_axes(x["kernel_size"], 2) for x in c]
        stride = [_axes(x["stride"] or x["kernel_size"], 2) for x in c]
        reached |= {"overlapping" for s, k in zip(stride, kernel) if any(a < b for a, b in zip(s, k))}
        reached |= {"disjoint" for s, k in zip(stride, kernel) if all(a >= b for a, b in zip(s, k))}
        reached |= {"padding" for x in c if max(_axes(x["padding"], 2)) > 0}
        reached |= {"pairs" for x in c if any(isinstance(x[k], list) and x[k][0] != x[k][1] for k in ("kernel_size", "stride", "padding"))}
        wanted = {"overlapping", "disjoint", "padding", "pairs"}
        if layer == "avg_pool2d":
            reached |= {f"count_include_pad={x['count_include_pad']}" for x in c if max(_axes(x["padding"], 2)) > 0}
            wanted |= {"count_include_pad=True", "count_include_pad=False"}
        else:
            reached |= {"ties" for case in cases[:150] if _ties(case)}
            wanted.add("ties")
        sizes = {d for case in cases for d in case.inputs["x"].shape[1:]}
    else:
        shapes = [(case.inputs["q"].shape, case.inputs["v"].shape) for case in cases]
        reached |= {"Lq != Lk" for case in cases if case.inputs["q"].shape[2] != case.inputs["k"].shape[2]}
        reached |= {"Ev != E" for q, v in shapes if q[3] != v[3]}
        reached |= {"mask" for case in cases if "mask" in case.inputs}
        reached |= {"causal" for x in c if x["causal"]}
        reached |= {"mask and causal" for case in cases if "mask" in case.inputs and case.config["causal"]}
        reached |= {"scale" for x in c if x["scale"] is not None}
        wanted = {"Lq != Lk", "Ev != E", "mask", "causal", "mask and causal", "scale"}
        sizes = {d for case in cases for d in (case.inputs["q"].shape[2], case.inputs["k"].shape[2])}
        for case in cases:  # every query attends to at least one key
            if "mask" in case.inputs:
                Lq, Lk = case.inputs["mask"].shape
                allowed = case.inputs["mask"] & (np.tri(Lq, Lk, dtype=bool) if case.config["causal"] else True)
                assert allowed.any(axis=1).all()
    assert wanted <= reached, wanted - reached
    assert {2**k + e for k in (3, 5) for e in (-1, 0, 1)} <= sizes, sorted(sizes)
    assert sizes & {127, 128, 129}, sorted(sizes)


class TieRule:
    """The reference, except that max_pool2d sends a tied window's gradient by ``rule``; ``declare``: says so."""

    def __init__(self, rule: str, declare: bool):
        self.name = f"tie rule {rule}" + (" (declared)" if declare else "")
        self.rule, self.layers = rule, ("max_pool2d",)
        if declare:
            self.kink_derivatives = {"max_pool2d": rule}

    def vjp(self, layer, config, inputs, dy):
        y, grads = reference_vjp(layer, config, inputs, dy)
        return y, {"x": max_pool2d_dx(config, inputs["x"], dy, self.rule)}


class AllMaxima(TieRule):
    """Every tied maximum gets the window's whole gradient (facebookresearch/CrypTen#90): outside the subdifferential."""

    def __init__(self):
        super().__init__("all", False)

    def vjp(self, layer, config, inputs, dy):
        y, grads = reference_vjp(layer, config, inputs, dy)
        split = max_pool2d_dx(config, inputs["x"], dy, "split")
        first = max_pool2d_dx(config, inputs["x"], dy, "first")
        ties = ~np.isclose(split, first)
        return y, {"x": np.where(ties, split * 2, first)}  # two tied maxima each get the whole window's dy


TIED = dict(config={"kernel_size": 2, "stride": 1}, shapes={"x": (1, 1, 3, 3)})


def _tied_case():
    case = given_case("max_pool2d", TIED["config"], TIED["shapes"], 0)
    case.inputs["x"][...] = np.array([[[[1.0, 1.0, 0.0], [2.0, 2.0, 2.0], [0.0, 2.0, -1.0]]]])  # ties in all four windows
    return case


@pytest.mark.parametrize("rule", ["last", "split"])
def test_a_declared_tie_rule_is_honoured_and_an_undeclared_one_named(rule, judges):
    case = _tied_case()
    declared = judge_layer(wrap(TieRule(rule, True)), case, judges)
    assert declared.status is Status.AGREE, format_layer_failure(declared)
    undeclared = judge_layer(wrap(TieRule(rule, False)), case, judges)
    assert undeclared.failed and undeclared.convention == f"tie rule {rule!r}", format_layer_failure(undeclared)
    text = format_layer_failure(undeclared)
    assert "undeclared convention only" in text and f"kink_derivatives = {{'max_pool2d': {rule!r}}}" in text
    for contract in (TieRule("first", True), TieRule("first", False)):  # the contract's own rule, declared or not
        assert judge_layer(wrap(contract), case, judges).status is Status.AGREE


def test_every_maximum_taking_the_whole_gradient_is_wrong_not_a_convention(judges):
    verdict = judge_layer(wrap(AllMaxima()), _tied_case(), judges)
    assert verdict.failed and not verdict.convention and "x" in verdict.wrong, format_layer_failure(verdict)


def test_the_search_reaches_ties_and_names_an_undeclared_rule(judges):
    result = check_layer(wrap(TieRule("last", False)), "max_pool2d", judges, examples=60, seed=0)
    assert result.failure is not None and result.failure.convention == "tie rule 'last'", result.agreed
    assert any("tied maxima" in need for need in result.diagnosis.needs), result.diagnosis
    assert max(max(s) for s in result.failure.case.shapes.values()) <= 2, result.failure.case.describe()
    assert check_layer(wrap(TieRule("last", True)), "max_pool2d", judges, examples=60, seed=0).failure is None
