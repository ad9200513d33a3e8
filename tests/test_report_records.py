"""Report records and their JSON: every field present, PENDING until decided, an exact round trip."""

import dataclasses
import json
import os

import numpy as np
import pytest

from chainrule.compare import compare
from chainrule.oracles.base import OracleGradients, OracleInfo
from chainrule.reports.atomic import write_atomic
from chainrule.reports.records import (
    Article,
    ArticleSource,
    CaseInfo,
    Counterexample,
    Disagreement,
    Environment,
    LayerRow,
    RangeRow,
    Record,
    Report,
    Settings,
    Source,
    Status,
    TensorView,
    ToleranceRow,
)
from chainrule.reports.results import SCHEMA_VERSION, from_json, to_json
from chainrule.sources.faults import Fault
from chainrule.status import strongest
from chainrule.tolerances import Sensitivity

TORCH = OracleInfo("torch", "torch", "2", True)
W, b = np.array([[1.0, -2.0]]), np.array([0.5])


def _comparison(scale: float):
    """A one-layer answer compared with torch's, off by ``scale`` in dW[0, 1]."""
    expected = OracleGradients(0.25, [(W, b)])
    exact = Sensitivity([(0 * W, 0 * b)], 0.0, [(0 * W, 0 * b)])  # no floor: the error is all there is
    return compare(0.25, [(W + np.array([[0.0, scale]]), b)], expected, TORCH, exact)


def _report() -> Report:
    """A Report with every record type present and awkward values (0.1 + 0.2, 1e-300, -0.0, empty tuples)."""
    tensor = TensorView("dL/dW[layer 1]", (2, 2), (0.1 + 0.2, -0.0, 1e-300, 5.0), (0.3, 0.0, 0.0, -5.0), ((1, 1), (0, 0)), 2.0, 1e-9)
    return Report(
        Settings(seed=7, examples=3, jobs=1, date="2026-01-01T00:00:00+00:00", seconds=1.5, rejected=1, layer_examples=2),
        Environment("3.11", "2.0", "2.13", "not installed", "0.1.0", "Linux"),
        (ToleranceRow("exact", 1e-9, (("rtol", 1e-9), ("floor", 1e-4)), "why"),),
        (Source("reference", "reference", "reference:Reference"), Source("x:Y", "plugin", "x:Y", "cannot import", available=False),
         Source("course", "plugin", "course:Layers", networks=False)),
        (CaseInfo("article", "3-relu-2-identity-2:mse, N=1", ("relu", "identity"), "mse", 2, 1),),
        (
            Record("reference", "torch", "article", Status.AGREE, 1.2e-16, 14, 0.001, "exact", ""),
            Record("reference", "jax", "article"),
        ),
        (Counterexample("broken", "1-identity-1:mse, N=2", "import numpy as np\n", True, "", (
            Disagreement("torch", 0.1, 0.1, 0.0, (tensor,), ("dL/db[layer 1]",), "note"),
        ), "text", ""),),
        Article("3-relu-2-identity-2:mse, N=1", ("L", "dL/dw11(2)"), (0.5001125, -1.787775), (ArticleSource("reference", (0.5001125, -1.7877749999999999)), ArticleSource("bad", (), "raised"))),
        "walkthrough\n",
        (RangeRow("plain", "binary_cross_entropy after sigmoid, z > 0", 30.0, 36.0, "the loss is off by 0.0012", "use log-sigmoid"),),
        (
            LayerRow("course", "relu", Status.AGREE, 2, 0, (), (), 0.25),
            LayerRow("course", "softmax", Status.DISAGREE, 1, 0, ("axis=0 is not <implemented>",), ("x",), 0.1 + 0.2, "wrong\n\nReproduce:\n"),
            LayerRow("course", "dropout"),
        ),
        ("torch", "jax"),
    )


def test_a_new_record_is_pending_with_every_field_present():
    record = Record("reference", "torch", "case-001")
    assert record.status is Status.PENDING
    assert (record.worst_error, record.compared, record.seconds, record.method, record.note) == (None, 0, None, "", "")
    encoded = to_json(dataclasses.replace(_report(), records=(record,)))["records"][0]
    assert encoded == {
        "implementation": "reference", "oracle": "torch", "case": "case-001", "status": "pending",
        "worst_error": None, "compared": 0, "seconds": None, "method": "", "note": "", "allowance": None,
    }


def test_a_new_layer_row_is_pending_with_every_field_present():
    row = LayerRow("course", "softmax")
    encoded = to_json(dataclasses.replace(_report(), layers=(row,)))["layers"][0]
    assert encoded == {
        "source": "course", "layer": "softmax", "status": "pending", "agreed": 0, "no_evidence": 0, "unsupported": [], "wrong": [],
        "seconds": None, "counterexample": None,
    }


def test_a_check_decides_the_status():
    blank = Record("reference", "torch", "case-001")
    agreed = blank.decided(_comparison(0.0), 0.5, "exact")
    assert (agreed.status, agreed.worst_error, agreed.compared, agreed.seconds, agreed.method) == (Status.AGREE, 0.0, 3, 0.5, "exact")
    disagreed = blank.decided(_comparison(1.0), 0.5, "exact")
    assert disagreed.status is Status.DISAGREE and disagreed.worst_error == pytest.approx(0.5)
    faulted = blank.faulted(Fault("shape", "dL/dW[layer 1] has shape (3,)"), 0.1)
    assert (faulted.status, faulted.note, faulted.worst_error) == (Status.ERROR, "shape: dL/dW[layer 1] has shape (3,)", None)
    assert blank.skipped("not supported").status is Status.SKIPPED
    assert blank.status is Status.PENDING  # records are values: deciding makes a new one


def test_round_trip_is_exact():
    report = _report()
    data = json.loads(json.dumps(to_json(report), allow_nan=False))
    assert data["schema_version"] == SCHEMA_VERSION
    assert from_json(data) == report
    assert from_json(data).records[0].status is Status.AGREE
    assert from_json(data).counterexamples[0].disagreements[0].tensors[0].bad == ((1, 1), (0, 0))
    assert from_json(data).layers[1].status is Status.DISAGREE and from_json(data).layers[1].wrong == ("x",)


def test_every_field_of_every_record_is_written():
    def check(value, data):
        if dataclasses.is_dataclass(value):
            assert set(data) == {f.name for f in dataclasses.fields(value)}, type(value).__name__
            for f in dataclasses.fields(value):
                check(getattr(value, f.name), data[f.name])
        elif isinstance(value, tuple):
            assert len(value) == len(data)
            for item, encoded in zip(value, data):
                check(item, encoded)

    data = to_json(_report())
    check(_report(), {k: v for k, v in data.items() if k != "schema_version"})



@pytest.mark.parametrize(
    "statuses, expected",
    [
        ([Status.AGREE, Status.DISAGREE, Status.ERROR], Status.DISAGREE),  # fifty wrong answers outrank one fault
        ([Status.AGREE, Status.ERROR], Status.ERROR),
        ([Status.AGREE, Status.CONVENTION, Status.DISAGREE], Status.DISAGREE),
        ([Status.NO_EVIDENCE, Status.AGREE, Status.CONVENTION], Status.AGREE),
        ([Status.NO_EVIDENCE, Status.CONVENTION], Status.CONVENTION),
        ([Status.SKIPPED, Status.NO_EVIDENCE], Status.NO_EVIDENCE),
        ([Status.SKIPPED, Status.PENDING], Status.SKIPPED),
        ([], Status.PENDING),
    ],
    ids=["disagree-over-error", "error-over-agree", "disagree-over-agree", "agree-over-weaker", "convention", "no-evidence", "skipped", "nothing"],
)
def test_overall_takes_the_strongest_status(statuses, expected):
    assert strongest(statuses) is expected


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "index.html"
    target.write_text("old report")

    def chunks():
        yield "<html>half a new rep"
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        write_atomic(target, chunks())
    assert target.read_text() == "old report"
    assert os.listdir(tmp_path) == ["index.html"]  # no temporary file left behind
    write_atomic(target, ["new ", "report"])
    assert target.read_text() == "new report"
    assert os.listdir(tmp_path) == ["index.html"]
