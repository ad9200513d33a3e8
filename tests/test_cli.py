"""The command line: verdicts and exit codes as CONTRACT.md fixes them, as text and as JSON."""

import json
import math
import textwrap

import numpy as np
import pytest

import chainrule
from chainrule.cli import main
from chainrule.jsonverdict import STATUSES, dumps

# A throwaway implementation, right except that dL/db of layer 1 is doubled; it prints to stdout
# on every call, which must never reach the stdout of ``check --json``.
DOUBLED_BIAS = '''
from chainrule.reference import Reference


class DoubledBias:
    name = "doubled-bias"

    def loss_and_gradients(self, arch, params, X, Y):
        print("noise from the implementation")
        loss, grads = Reference().loss_and_gradients(arch, params, X, Y)
        (dW, db), *rest = grads
        return loss, [(dW, 2 * db), *rest]


class Raises:
    name = "raises"

    def loss_and_gradients(self, arch, params, X, Y):
        raise RuntimeError("not implemented yet")
'''
KEYS = {
    "schema_version", "chainrule_version", "implementation", "status", "exit_code", "message", "seed", "examples", "arch",
    "oracles", "counts", "not_exercised", "numerical_range", "counterexample", "qualifications", "disqualified", "precision", "layers",
}


@pytest.fixture
def throwaway(tmp_path, monkeypatch):
    """``throwaway:DoubledBias`` and ``throwaway:Raises`` loadable from the working directory."""
    (tmp_path / "throwaway.py").write_text(textwrap.dedent(DOUBLED_BIAS))
    monkeypatch.chdir(tmp_path)


def run_json(capsys, *argv: str) -> tuple[int, dict, str]:
    """``chainrule check ARGV --json``: its exit code, the one JSON document that is all of its
    stdout (json.loads refuses a second document, text around it, NaN and Infinity), and stderr."""
    code = main(["check", *argv, "--json"])
    out, err = capsys.readouterr()
    document = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in the JSON document"))
    assert out.endswith("\n") and out.count("\n") == 1, out
    assert set(document) == KEYS, set(document) ^ KEYS
    assert (document["schema_version"], document["chainrule_version"]) == (1, chainrule.__version__)
    assert document["exit_code"] == code and document["status"] in STATUSES, document
    return code, document, err


def assert_is_the_reproduction(counterexample: dict) -> None:
    """The counterexample's architecture, params, X and Y are its reproduction's, float for float."""
    namespace = {}
    exec(counterexample["reproduction"], namespace)
    assert str(namespace["arch"]) == counterexample["architecture"]
    assert [{"W": W.tolist(), "b": b.tolist()} for W, b in namespace["params"]] == counterexample["params"]
    assert namespace["X"].tolist() == counterexample["X"] and namespace["Y"].tolist() == counterexample["Y"]
    assert len(counterexample["X"]) == counterexample["batch_size"]


def test_version(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out == f"chainrule {chainrule.__version__}\n"


def test_check_accepts_the_reference(capsys):
    assert main(["check", "chainrule.reference:Reference", "--examples", "30", "--seed", "1", "--layer-examples", "5"]) == 0
    assert "agree" in capsys.readouterr().out


def test_check_rejects_a_broken_implementation_with_a_counterexample(capsys):
    assert main(["check", "tests.broken:relu_prime_at_zero", "--examples", "100", "--seed", "1"]) == 1
    out = capsys.readouterr().out
    assert "dL/dW[layer" in out and "Reproduce:" in out and "Architecture.parse(" in out


def test_json_agreement_counts_the_cases(capsys):
    code, document, _ = run_json(capsys, "chainrule.reference:Reference", "--examples", "5", "--seed", "1", "--layer-examples", "2")
    assert (code, document["status"], document["implementation"]) == (0, "agree", "reference")
    assert (document["seed"], document["examples"], document["counterexample"], document["message"]) == (1, 5, None, None)
    counts = document["counts"]
    assert counts["cases"] == 5 and counts["agree"] + counts["convention"] + counts["no_evidence"] == 5, counts
    assert counts["coverage"] > 0 and counts["rejected"] >= 0, counts
    assert "finite_differences" in document["oracles"] and document["not_exercised"] == []


def test_json_disagreement_names_the_wrong_tensor_and_rebuilds_the_case(capsys, throwaway):
    code, document, err = run_json(capsys, "throwaway:DoubledBias", "--examples", "20", "--seed", "1")
    assert (code, document["status"], document["implementation"], document["counts"]) == (1, "disagree", "doubled-bias", None)
    assert "noise from the implementation" in err  # what the implementation prints goes to stderr
    counterexample = document["counterexample"]
    assert counterexample["fault"] is None and counterexample["disagreements"], counterexample
    for disagreement in counterexample["disagreements"]:
        assert disagreement["oracle"] in document["oracles"] and disagreement["loss"] is None, disagreement
        [tensor] = disagreement["tensors"]
        assert (tensor["tensor"], tensor["layer"], tensor["kind"]) == ("dL/db[layer 1]", 1, "b"), tensor
        assert 1 <= len(tensor["entries"]) == min(tensor["differing"], 6) and tensor["worst_relative_error"] > tensor["tolerance"]
        for entry in tensor["entries"]:
            assert entry["got"] == 2 * entry["expected"] != 0, entry
    diagnosis = counterexample["diagnosis"]
    assert diagnosis["patterns"] and "layer 1" in diagnosis["summary"], diagnosis
    assert counterexample["command"] == "chainrule check throwaway:DoubledBias --examples 20 --seed 1"
    assert_is_the_reproduction(counterexample)


def test_json_wrong_loss_is_told(capsys):
    code, document, _ = run_json(capsys, "tests.broken:loss_missing_one_over_n", "--examples", "20", "--seed", "1")
    assert (code, document["status"]) == (1, "disagree")
    counterexample = document["counterexample"]
    for disagreement in counterexample["disagreements"]:
        loss = disagreement["loss"]
        assert loss["got"] == pytest.approx(counterexample["batch_size"] * loss["expected"]) and loss["relative_error"] > 0, loss


def test_json_fault_is_an_error(capsys, throwaway):
    code, document, _ = run_json(capsys, "throwaway:Raises", "--examples", "5", "--seed", "1")
    assert (code, document["status"]) == (1, "error")
    fault = document["counterexample"]["fault"]
    assert fault["kind"] == "raised" and "not implemented yet" in fault["message"], fault
    assert document["oracles"], document  # the judges it was to face, though none compared an answer


def test_json_without_an_oracle_is_an_error(capsys, monkeypatch):
    monkeypatch.setattr("chainrule.plugged.available", lambda names=None: [])  # crosscheck's built-in judges (chainrule.plugged.resolve)
    code, document, err = run_json(capsys, "chainrule.reference:Reference", "--examples", "5", "--layer-examples", "2")
    assert (code, document["status"], document["counterexample"]) == (1, "error", None)
    assert "no oracle" in document["message"] and document["message"] in err


@pytest.mark.parametrize(
    "target, code, status",
    [("chainrule.reference:Reference", 0, "agree"), ("throwaway:DoubledBias", 1, "disagree")],
    ids=["reference", "doubled-bias"],
)
def test_json_for_one_architecture(capsys, throwaway, target, code, status):
    got, document, _ = run_json(capsys, target, "--arch", "3-relu-4-identity-2:mse", "--batch", "3", "--seed", "2")
    assert (got, document["status"], document["arch"], document["seed"], document["examples"]) == (code, status, "3-relu-4-identity-2:mse", 2, None)
    if code == 0:
        assert document["counts"]["cases"] == 1 and document["counterexample"] is None, document
        return
    counterexample = document["counterexample"]
    assert (counterexample["batch_size"], counterexample["judged_by"]) == (3, "oracles")
    assert counterexample["command"] == f"chainrule check {target} --arch 3-relu-4-identity-2:mse --batch 3 --seed 2"
    assert {t["tensor"] for d in counterexample["disagreements"] for t in d["tensors"]} == {"dL/db[layer 1]"}
    assert_is_the_reproduction(counterexample)  # random values this time: every bit of each float must survive


def test_json_above_the_threshold_is_judged_by_directions(capsys, throwaway):
    argv = ["throwaway:DoubledBias", "--arch", "32-tanh-700-identity-4:mse", "--batch", "8", "--seed", "3", "--oracles", "finite_differences"]
    code, document, _ = run_json(capsys, *argv)
    assert (code, document["status"], document["oracles"]) == (1, "disagree", ["directional"])
    counterexample = document["counterexample"]
    assert counterexample["judged_by"] == "directional" and counterexample["command"] == "chainrule check " + " ".join(argv)
    [tensor] = [t for d in counterexample["disagreements"] for t in d["tensors"]]
    assert tensor["tensor"] == "dL/db[layer 1]" and len(tensor["entries"]) == min(tensor["differing"], 6), tensor


@pytest.mark.parametrize(
    "argv, message",
    [
        (["no_such_module:Thing"], "cannot import"),
        (["chainrule.reference:Reference", "--examples", "0"], "--examples"),
        (["chainrule.reference:Reference", "--arch", "3-relu-2"], "3-relu-2"),
    ],
    ids=["cannot-load", "bad-option", "bad-arch"],
)
def test_json_usage_error(capsys, argv, message):
    code, document, err = run_json(capsys, *argv)
    assert (code, document["status"], document["counterexample"]) == (2, "usage-error", None)
    assert message in document["message"], document
    assert f"chainrule: error: {document['message']}" in err.splitlines() and "Traceback" not in err


def test_json_floats_round_trip_and_non_finite_ones_are_strings():
    values = [0.1 + 0.2, -0.0, 5e-324, 1.7976931348623157e308, float(np.float64(1) / 3)]
    document = {"values": values, "odd": [math.nan, math.inf, -math.inf, np.float64("nan")]}
    read = json.loads(dumps(document), parse_constant=lambda name: pytest.fail(f"{name} in the JSON document"))
    assert read["values"] == values and math.copysign(1, read["values"][1]) == -1
    assert read["odd"] == ["nan", "inf", "-inf", "nan"]


@pytest.mark.parametrize(
    "target, message",
    [
        ("no_such_module:Thing", "cannot import"),
        ("chainrule.reference:NoSuchThing", "has no attribute"),
        ("chainrule.reference.architecture:KINKED", "has no loss_and_gradients"),
        ("chainrule.reference", "expected MODULE:ATTR"),
    ],
    ids=["missing-module", "missing-attribute", "not-an-implementation", "no-colon"],
)
def test_check_bad_target_is_a_one_line_usage_error(capsys, target, message):
    assert main(["check", target]) == 2
    out, err = capsys.readouterr()
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1 and out == ""


def test_oracles_lists_versions(capsys):
    assert main(["oracles"]) == 0
    out = capsys.readouterr().out
    for name in ("torch", "jax", "finite_differences"):
        assert name in out


def test_examples_must_be_positive(capsys):
    assert main(["check", "chainrule.reference:Reference", "--examples", "0"]) == 2
    out, err = capsys.readouterr()
    assert "--examples" in err and out == ""
