"""Declared precision in the engine: cases representable in it, floors of its own noise, answers
in it accepted, declarations checked; and the float32 diagnosis of float64 implementations.
(The float32 gallery and the catalogue in float32: tests/test_precision.py.)"""

import json
import sys

import numpy as np
import pytest

from chainrule import crosscheck
from chainrule.case import random_case
from chainrule.evidence import evidence
from chainrule.precision import precision
from chainrule.reference import Architecture, Reference
from chainrule.search import CheckFailure
from chainrule.sources.ask import answer
from chainrule.sources.faults import Fault, LoadError
from chainrule.sources.implementation import with_precision, wrap
from chainrule.sources.load import open_source
from chainrule.tolerances import sensitivity
from tests.rounding_bugs import RoundedSomewhere

pytestmark = pytest.mark.xdist_group("precision")
FLOAT32_ = precision("float32")


class Float32Reference:
    """The reference computed in float32 (inputs rounded, answers rounded), returning float32 arrays."""

    name = "reference in float32"
    precision = "float32"

    def loss_and_gradients(self, arch, params, X, Y):
        f = lambda a: np.asarray(a, dtype=np.float32).astype(np.float64)  # noqa: E731
        loss, grads = Reference().loss_and_gradients(arch, [(f(W), f(b)) for W, b in params], f(X), f(Y))
        return np.float32(loss), [(np.float32(dW), np.float32(db)) for dW, db in grads]


def test_precision_names_and_rounding():
    assert [precision(n).name for n in ("float64", "float32", "bfloat16", "float16")] == ["float64", "float32", "bfloat16", "float16"]
    with pytest.raises(ValueError, match="expected one of float64, float32"):
        precision("float8")
    x = np.array([0.1, 1.0, 1e39])
    assert precision("float32").round(x)[0] == float(np.float32(0.1)) and np.isinf(precision("float32").round(x)[2])
    assert precision("bfloat16").round(np.array([1.0 + 2.0**-9]))[0] == 1.0
    assert precision("float64").round(x) is x


def test_a_case_in_float32_is_representable_there_and_unchanged_when_it_already_is():
    case = random_case(Architecture.parse("3-tanh-4-identity-2:mse"), 5, 0)
    rounded = case.in_precision(FLOAT32_)
    arrays = [a for pair in rounded.params for a in pair] + [rounded.X, rounded.Y]
    assert all(FLOAT32_.representable(a) for a in arrays) and not FLOAT32_.representable(case.X)
    assert rounded.in_precision(FLOAT32_) is rounded


def test_float32_floors_are_float32_sized():
    """The floors scale with the precision's eps: float32's are ~eps32/eps64 = 5e8 times float64's."""
    case = random_case(Architecture.parse("4-sigmoid-8-tanh-3:mse"), 6, 1).in_precision(FLOAT32_)
    f64 = sensitivity(case.arch, case.params, case.X, case.Y)
    f32 = sensitivity(case.arch, case.params, case.X, case.Y, FLOAT32_)
    ratio = f32.noise[0][0].max() / f64.noise[0][0].max()
    assert 1e7 < ratio < 1e10, ratio
    assert not f32.outside and f32.rounding == 16 * FLOAT32_.eps


def test_float32_range_is_float32s():
    """e^-z overflows float32 past z = -88, far inside float64's range: set aside in float32 only."""
    arch = Architecture.parse("1-sigmoid-1:mse")
    from chainrule.case import Case

    case = Case(arch, [(np.ones((1, 1)), np.zeros(1))], np.array([[-100.0]]), np.array([[0.5]]))
    assert evidence(case).set_aside == ""
    assert "overflows in sigmoid" in evidence(case, FLOAT32_).set_aside


def test_a_float32_answer_is_a_type_fault_in_float64_with_the_hint_and_accepted_when_declared():
    case = random_case(Architecture.parse("3-tanh-2:mse"), 2, 0)
    undeclared = wrap(type("Undeclared", (Float32Reference,), {"precision": None})())
    with pytest.raises(Fault, match='float32, expected float64.*declare precision = "float32"'):
        answer(undeclared, case.arch, case.params, case.X, case.Y)
    declared = wrap(Float32Reference())
    assert declared.precision is FLOAT32_
    loss, grads = answer(declared, case.arch, case.params, case.X, case.Y)
    assert grads[0][0].dtype == np.float64


def test_an_unknown_declared_precision_is_a_load_error():
    with pytest.raises(LoadError, match="precision must be one of"):
        wrap(type("Odd", (Float32Reference,), {"precision": "float8"})())


def test_float32_implementation_accepted_in_float32_and_rejected_in_float64_with_the_hint():
    summary = crosscheck(Float32Reference(), examples=60, seed=3, isolate=False)
    assert summary.precision == "float32" and "judged in float32" in str(summary)
    with pytest.raises(CheckFailure, match="declare precision"):
        crosscheck(Float32Reference(), examples=60, seed=3, isolate=False, precision="float64")


def test_precision_reaches_a_worker_process_and_a_json_lines_command(tmp_path):
    """Declared through the worker (attribute) and over JSON lines (describe), or overridden:
    a worker asked for float32 accepts float32 arrays back."""
    worker = open_source("impl", "tests.test_declared_precision:Float32Reference", 10.0)
    try:
        assert worker.isolated and worker.precision is FLOAT32_
        overridden = with_precision(worker, "float64")
        case = random_case(Architecture.parse("2-tanh-2:mse"), 2, 0)
        with pytest.raises(Fault, match="expected float64"):
            answer(overridden, case.arch, case.params, case.X, case.Y)
        answer(worker, case.arch, case.params, case.X, case.Y)
    finally:
        worker.close()
    script = tmp_path / "describe.py"
    script.write_text(
        "import json, sys\n"
        "for line in sys.stdin:\n"
        "    print(json.dumps({'name': 'x', 'precision': 'float16'} if json.loads(line).get('describe') else {'error': 'no'}), flush=True)\n"
    )
    command = open_source("cmd", f"{sys.executable} {script}", 10.0)
    try:
        assert command.precision is precision("float16")
    finally:
        command.close()


@pytest.mark.parametrize(("part", "tag", "words"), [
    ("leaky_slope", "float32:leaky_relu-constant", "leaky_relu slope ≈ 0.009999999776 = float32(0.01); the contract's is 0.01"),
    ("gelu_sqrt2", "float32:gelu-constant", "gelu sqrt(2) ≈ 1.414213538 = float32(1.414213562)"),
    ("gelu_inv_sqrt2", "float32:gelu-constant", "gelu 1/sqrt(2) ≈ 0.7071067691 = float32(0.7071067812)"),
    ("sigmoid_float32", "float32:arithmetic", "within float32's rounding"),
])
def test_a_float32_rounding_in_a_float64_implementation_is_named(part, tag, words):
    with pytest.raises(CheckFailure) as failure:
        crosscheck(RoundedSomewhere(part), examples=100, seed=1, isolate=False)
    assert failure.value.diagnosis.patterns[0] == tag
    assert words in str(failure.value) and 'declare precision = "float32"' in str(failure.value)
    assert "constant factor 1 " not in str(failure.value)


def test_the_float64_twin_passes_and_a_real_bug_is_no_float32_pattern():
    crosscheck(RoundedSomewhere(), examples=100, seed=1, isolate=False)
    from tests.broken import CATALOGUE

    with pytest.raises(CheckFailure) as failure:
        crosscheck(CATALOGUE["gelu_tanh_approximation"], examples=100, seed=1, isolate=False)
    assert not any(tag.startswith("float32") for tag in failure.value.diagnosis.patterns)



def test_check_precision_on_the_command_line(capsys):
    """check --json states the precision judged in: the declared one, or --precision's, whose
    float64 rejects the float32 answer with the hint; --precision takes only the contract's names."""
    from chainrule.cli import main

    spec = "tests.test_declared_precision:Float32Reference"
    assert main(["check", spec, "--examples", "20", "--seed", "2", "--in-process", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "float32"
    assert main(["check", spec, "--examples", "20", "--seed", "2", "--in-process", "--json", "--precision", "float64"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["precision"] == "float64" and "declare precision" in document["counterexample"]["fault"]["message"]
    assert "--precision float64" in document["counterexample"]["command"]
    assert main(["check", spec, "--precision", "float8"]) == 2
    assert "invalid choice: 'float8'" in capsys.readouterr().err


def test_the_report_judges_a_float32_source_in_float32_and_says_so(tmp_path):
    """Its row carries its precision, it is asked the cases rounded to float32 and agrees within
    float32's floors; the same source judged in float64 would disagree on every generated case."""
    from chainrule.cli import main
    from chainrule.reports.results import from_json, read_json

    assert main(["report", "--impl", "tests.test_declared_precision:Float32Reference", "--examples", "8", "--seed", "1", "--layer-examples", "2", "--out", str(tmp_path)]) == 0
    report = from_json(read_json(tmp_path / "results.json"))
    source = next(s for s in report.sources if s.name == Float32Reference.name)
    assert source.precision == "float32" and next(s for s in report.sources if s.name == "reference").precision == "float64"
    mine = [r for r in report.records if r.implementation == Float32Reference.name and r.status.value in ("agree", "convention")]
    assert len(mine) >= 8 and all(r.allowance <= 1 for r in mine)
    assert "plugin, float32" in (tmp_path / "index.html").read_text()
