"""The command line: verdicts and exit codes as CONTRACT.md fixes them."""

import pytest

from chainrule.cli import main


def test_check_accepts_the_reference(capsys):
    assert main(["check", "reference:Reference", "--examples", "30", "--seed", "1"]) == 0
    assert "agree" in capsys.readouterr().out


def test_check_rejects_a_broken_implementation_with_a_counterexample(capsys):
    assert main(["check", "tests.broken:relu_prime_at_zero", "--examples", "100", "--seed", "1"]) == 1
    out = capsys.readouterr().out
    assert "dL/dW[layer" in out and "Reproduce:" in out and "Architecture.parse(" in out


@pytest.mark.parametrize(
    "target, message",
    [
        ("no_such_module:Thing", "cannot import"),
        ("reference:NoSuchThing", "has no attribute"),
        ("reference.architecture:KINKED", "has no loss_and_gradients"),
        ("reference", "expected MODULE:ATTR"),
    ],
    ids=["missing-module", "missing-attribute", "not-an-implementation", "no-colon"],
)
def test_check_bad_target_is_a_one_line_usage_error(capsys, target, message):
    assert main(["check", target]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_oracles_lists_versions(capsys):
    assert main(["oracles"]) == 0
    out = capsys.readouterr().out
    for name in ("torch", "jax", "finite_differences"):
        assert name in out


def test_examples_must_be_positive(capsys):
    assert main(["check", "reference:Reference", "--examples", "0"]) == 2
