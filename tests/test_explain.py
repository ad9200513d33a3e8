"""``chainrule explain``: the article's worked example, and any small network, as chain-rule sums."""

import re

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.reference import Architecture, Reference
from chainrule.reports.explain import random_example

ARTICLE_NUMBERS = [
    "-1.194", "-2.0895", "-0.253725", "-0.418", "-0.7315", "-0.088825", "-0.2985", "-0.1045",
    "-1.787775", "-0.054175", "-1.842225", "-0.055825", "-0.985", "-1.015", "0.5001125",
    "1.815", "0.055", "0.4075", "0.2925", "0.21787775",
]


def _explain(capsys, *argv):
    code = main(["explain", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _path_sums(out: str) -> list[tuple[str, float, float]]:
    """(line, value of the printed path terms, the printed result) for every numeric path line."""
    found = []
    for line in out.splitlines():
        match = re.fullmatch(r"\s+= (.+) = (\S+)", line)
        if match and "·" in match.group(1):
            terms = match.group(1).split(" + ")
            total = sum(np.prod([float(f) for f in term.split("·")]) for term in terms)
            found.append((line, total, float(match.group(2))))
    return found


@pytest.mark.parametrize("number", ARTICLE_NUMBERS)
def test_article_number_is_reproduced(capsys, number):
    code, out, _ = _explain(capsys)
    assert code == 0
    assert re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])", out), f"{number} missing from `chainrule explain`"


def test_article_gradient_is_told_as_the_article_tells_it(capsys):
    _, out, _ = _explain(capsys)
    assert "dL/dw11(1) = dL/dz1(2)·w11(2)·σ'(z1(1))·x1 + dL/dz2(2)·w21(2)·σ'(z1(1))·x1" in out
    assert "= -0.985·0.2·1·4 + -1.015·0.1·1·4 = -1.194" in out
    assert "w11(2) ← 0.2 - 0.01·-1.787775 = 0.21787775" in out
    assert "dW(1) = dZ(1)ᵀ·X = [[-1.194, -2.0895, -0.253725], [-0.418, -0.7315, -0.088825]]" in out
    assert "the loss drops" in out


@pytest.mark.parametrize(
    "arch",
    ["4-tanh-3-sigmoid-1:binary_cross_entropy", "2-relu-2-softmax-3:cross_entropy", "2-elu-2-tanh-2-identity-2:mse", "3-gelu-2-softmax-2:mse"],
)
def test_every_path_sum_equals_the_reference_gradient(capsys, arch):
    code, out, err = _explain(capsys, arch, "--seed", "3")
    assert code == 0, err
    parsed = Architecture.parse(arch)
    params, X, Y = random_example(parsed, 3)
    _, grads = Reference().loss_and_gradients(parsed, params, X, Y)
    sums = _path_sums(out)
    assert len(sums) == parsed.parameter_count, f"got {len(sums)} path lines, expected one per parameter ({parsed.parameter_count})"
    printed = sorted(value for _, _, value in sums)
    expected = sorted(float(f"{g:.10g}") for pair in grads for array in pair for g in array.ravel())
    assert printed == pytest.approx(expected, rel=1e-9, abs=1e-15)
    for line, total, value in sums:
        assert total == pytest.approx(value, rel=1e-8, abs=1e-12), f"path terms sum to {total}, printed {value}: {line.strip()}"


def test_walkthrough_is_deterministic_in_the_seed(capsys):
    first = _explain(capsys, "3-relu-2-identity-1:mse", "--seed", "7")[1]
    assert _explain(capsys, "3-relu-2-identity-1:mse", "--seed", "7")[1] == first
    assert _explain(capsys, "3-relu-2-identity-1:mse", "--seed", "8")[1] != first


@pytest.mark.parametrize(
    "arch, message",
    [
        ("3-relu-2", "expected WIDTH-ACTIVATION-WIDTH"),
        ("3-softmax-2-identity-1:mse", "output layer only"),
        ("3-relu-2-sigmoid-1:cross_entropy", "requires a 'softmax'"),
        ("8-relu-8-relu-8-identity-4:mse", "explain tells at most"),
    ],
    ids=["no-loss", "hidden-softmax", "wrong-output", "too-big"],
)
def test_bad_architecture_is_a_one_line_usage_error(capsys, arch, message):
    code, out, err = _explain(capsys, arch)
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert out == ""
