"""Plugged-in oracles (chainrule.plugged): a real third-party autodiff library (HIPS autograd,
tests/gallery/autograd_net.py) installed under the entry-point group ``chainrule.oracles``, and a
Node.js program over JSON lines (tests/gallery/plain.js), each qualifying against torch, JAX and
finite differences and then judging beside them; a wrong implementation rejected with them named;
deliberately broken oracles failing qualification with their own counterexample (exit 2); an
oracle wrong or faulting on a later case stopping the check instead of failing the implementation;
the report with their columns, in a real browser.

The entry point is declared the way test_plugins.py declares implementations: a ``*.dist-info``
with ``entry_points.txt`` in a temporary directory put on sys.path (and handed to worker
processes with it).
"""

import contextlib
import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule.case import random_case
from chainrule.cli import main
from chainrule.judge import judge
from chainrule.oracles.registry import available
from chainrule.plugged import ENTRY_POINT_GROUP, Disqualified, PluggedOracle, Qualification, as_oracle, open_oracle, qualify, resolve
from chainrule.reference import Architecture, Reference
from chainrule.reports.records import Source
from chainrule.reports.results import from_json, read_json, to_json
from chainrule.search import crosscheck
from chainrule.sources.load import as_implementation
from chainrule.sources.worker import WORKER
from chainrule.status import Status
from tests.gallery import PLAIN_JS
from tests.test_report_html import CHROMIUM, Tree

REPO = Path(__file__).resolve().parents[1]
REFERENCE = "chainrule.reference:Reference"
AUTOGRAD = "tests.gallery.autograd_net:AutogradNet"
AUTOGRAD_BROKEN = "tests.gallery.autograd_net:AutogradNetWrongSoftplus"  # softplus' = softplus
ARTIFACTS = Path(__file__).parent / "artifacts"
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
BUILTIN = ("torch", "jax", "finite_differences")
# The reference also answers layers, which ``check`` then searches too (50 cases a layer, most of a
# check's time): these tests are about the network verdict, so the layers get the fewest cases, as
# in test_cli; tests/test_reference_layers.py and the suite's test_layers judge them in full.
NETWORKS = ("--layer-examples", "2")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """HIPS autograd installed as an oracle: a dist-info declaring ``autograd`` in chainrule.oracles."""
    root = tmp_path_factory.mktemp("oracle-site")
    info = root / "chainrule_autograd_oracle-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: chainrule-autograd-oracle\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nautograd = {AUTOGRAD}\n")
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))


def _run(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


class Limited:
    """Correct gradients, declaring relu/identity with mse only: it may judge nothing else."""

    name = "limited-oracle"
    activations = ("relu", "identity")
    losses = ("mse",)

    def loss_and_gradients(self, arch, params, X, Y):
        return Reference().loss_and_gradients(arch, params, X, Y)


class WrongOnBatchesOfFive(Limited):
    """Right everywhere but on batches of five examples or more, where dL/db of layer 1 is doubled
    (not exactly five: which batch sizes a search draws depends on the time budget it measures)."""

    name = "wrong-on-five"
    activations = losses = None

    def loss_and_gradients(self, arch, params, X, Y):
        loss, grads = Reference().loss_and_gradients(arch, params, X, Y)
        if len(X) >= 5:
            grads[0] = (grads[0][0], 2 * grads[0][1])
        return loss, grads


class RaisesOnBatchesOfFive(WrongOnBatchesOfFive):
    name = "raises-on-five"

    def loss_and_gradients(self, arch, params, X, Y):
        if len(X) >= 5:
            raise RuntimeError("cannot handle five")
        return Reference().loss_and_gradients(arch, params, X, Y)


def _presumed_qualified(source) -> PluggedOracle:
    """An oracle as if its qualification run had passed: a qualification run is a sample, and an
    oracle can be wrong where it did not look. What happens then is what these tests show."""
    oracle, _ = as_oracle(as_implementation(source))
    oracle.qualification = Qualification(oracle.info.name, BUILTIN, 0, 0, 0, 0, 0.0)
    return oracle


# --- qualifying, then judging -------------------------------------------------------------------

def test_entry_point_oracle_qualifies_then_judges_beside_the_builtins(site):
    code, out, _ = _run(["check", REFERENCE, *NETWORKS, "--examples", "20", "--seed", "0", "--json"])
    document = json.loads(out)
    assert code == 0 and document["status"] == "agree", out
    assert document["oracles"] == [*BUILTIN, "autograd"], "the installed oracle judges after torch, JAX and finite differences"
    (qualification,) = document["qualifications"]
    assert qualification["oracle"] == "autograd" and qualification["against"] == list(BUILTIN)
    assert qualification["examples"] == 100 and qualification["cases"] > 50 and qualification["coverage"] > 50, qualification
    code, out, _ = _run(["check", REFERENCE, *NETWORKS, "--examples", "20", "--seed", "0"])
    assert code == 0 and "cases against torch, jax, finite_differences, autograd" in out
    assert "oracle autograd (plugged in) qualified: " in out and "coverage cases agree with torch, jax, finite_differences (qualification run of 100 examples" in out


@needs_node
def test_jsonlines_oracle_qualifies_then_judges_every_case(capsys):
    seen = []
    summary = crosscheck(Reference(), examples=20, seed=4, oracles=[open_oracle("cmd", PLAIN_JS)], on_verdict=seen.append)
    assert summary.oracles == (*BUILTIN, "plain-js")
    (qualification,) = summary.qualifications
    assert qualification.oracle == "plain-js" and qualification.cases > 50 and qualification.coverage > 50
    judged = [v for v in seen if v.judged_by == "oracles"]
    assert judged and all("plain-js" in [c.oracle for c in v.comparisons] for v in judged), "plain-js judges every case it declares"
    assert all(c.status is Status.AGREE for v in judged for c in v.comparisons if c.oracle == "plain-js")
    assert str(qualification) in str(summary)


def test_plugged_oracle_runs_in_a_worker_and_judges_only_what_it_declares():
    oracle = open_oracle("impl", "tests.test_plugged_oracles:Limited")
    try:
        assert oracle.implementation.isolation == WORKER, "a plugged-in Python oracle runs in a worker process, as any plug-in"
        assert oracle.info.plugged and oracle.info.activations == ("relu", "identity") and oracle.info.losses == ("mse",)
        seen = []
        summary = crosscheck(Reference(), examples=30, seed=1, oracles=[oracle], on_verdict=seen.append)
        assert summary.qualifications[0].oracle == "limited-oracle"
        judged = {v.case.arch: "limited-oracle" in [c.oracle for c in v.comparisons] for v in seen if v.judged_by == "oracles"}
        inside = {arch for arch in judged if arch.loss == "mse" and set(arch.activations) <= {"relu", "identity"}}
        assert inside and len(inside) < len(judged), "the search must draw cases on both sides of what it declares"
        assert {arch for arch, asked in judged.items() if asked} == inside
    finally:
        oracle.close()


# --- rejecting a wrong implementation --------------------------------------------------------------

@needs_node
def test_wrong_implementation_is_rejected_with_the_plugged_oracles_among_those_that_disagree(site):
    code, out, _ = _run(["check", "tests.broken:bias_averaged", "--examples", "20", "--seed", "0", "--oracle-cmd", PLAIN_JS, "--json"])
    document = json.loads(out)
    assert code == 1 and document["status"] == "disagree"
    disagreeing = [d["oracle"] for d in document["counterexample"]["disagreements"]]
    assert disagreeing == [*BUILTIN, "plain-js", "autograd"], disagreeing  # --oracle-cmd, then installed ones
    assert all(d["tensors"][0]["tensor"] == "dL/db[layer 1]" for d in document["counterexample"]["disagreements"])


# --- failing qualification ---------------------------------------------------------------------

@pytest.mark.parametrize("way", ["--oracle", pytest.param("--oracle-cmd", marks=needs_node)])
def test_broken_oracle_fails_qualification_with_its_own_counterexample(way):
    spec = AUTOGRAD_BROKEN if way == "--oracle" else f"{PLAIN_JS} --bug"
    code, out, _ = _run(["check", REFERENCE, *NETWORKS, "--examples", "20", "--seed", "0", way, spec])
    assert code == 2, out
    head, _, counterexample = out.partition("\n\n")
    assert "failed qualification against torch, jax, finite_differences (a qualification run of 100 examples, seed 0" in head
    assert "it is not used, and nothing was judged with it" in head
    assert " is wrong on " in counterexample and "against torch:" in counterexample and "diagnosis:" in counterexample
    assert "Reproduce:" in counterexample and "Architecture.parse(" in counterexample
    if way == "--oracle":
        assert "softplus" in counterexample.splitlines()[0], "autograd's bug is in softplus' vjp: the shrunk case needs softplus"
    code, out, _ = _run(["check", REFERENCE, *NETWORKS, "--examples", "20", "--seed", "0", way, spec, "--json"])
    document = json.loads(out)
    assert code == 2 and document["status"] == "failed-qualification" and document["exit_code"] == 2 and "failed qualification" in document["message"]
    assert document["disqualified"]["counterexample"]["disagreements"] and document["counts"] is None


def test_an_oracle_fails_qualification_through_the_api():
    with pytest.raises(Disqualified, match="failed qualification against torch, jax, finite_differences") as caught:
        crosscheck(Reference(), examples=10, seed=0, oracles=[AUTOGRAD_BROKEN])
    assert caught.value.oracle == "autograd (bug: softplus' = softplus)" and caught.value.verdict.failed
    assert not isinstance(caught.value, AssertionError), "a judge that cannot judge is no verdict on the implementation"


# --- a later case: adjudicated, never trusted over the built-in oracles ----------------------------

def test_an_oracle_wrong_on_a_later_case_stops_the_check_and_the_implementation_is_not_failed():
    oracle = _presumed_qualified(WrongOnBatchesOfFive())
    with pytest.raises(Disqualified) as caught:
        crosscheck(Reference(), examples=200, seed=0, oracles=[oracle])
    text = str(caught.value)
    assert "oracle wrong-on-five (plugged in) failed qualification on a later case" in text and re.search(r", N=\d+: it rejects reference's answer", text)
    assert "the built-in side is closer" in text and "wrong-on-five is wrong on " in text and "dL/db[layer 1]" in text
    assert caught.value.verdict.case.batch_size >= 5


def test_adjudication_on_one_case_names_the_closer_side():
    judges = available() + [_presumed_qualified(WrongOnBatchesOfFive()).registered]
    case = random_case(Architecture.parse("3-tanh-4-identity-2:mse"), 5, 1)
    with pytest.raises(Disqualified, match="the built-in side is closer"):
        judge(as_implementation(Reference()), case, judges)
    class AgreesWithTheOracle:  # a wrong implementation that the oracle happens to agree with
        name = "agrees-with-the-oracle"

        def loss_and_gradients(self, arch, params, X, Y):
            return WrongOnBatchesOfFive().loss_and_gradients(arch, params, X, Y)

    verdict = judge(as_implementation(AgreesWithTheOracle()), case, judges)
    assert verdict.failed and [c.oracle for c in verdict.comparisons if c.status is Status.DISAGREE] == list(BUILTIN)
    assert any("wrong-on-five (plugged in) agrees with this answer, but is itself off against torch" in n and "the built-in oracles decide" in n
               for n in verdict.notes), verdict.notes


def test_an_oracle_that_faults_while_judging_stops_the_check():
    oracle = _presumed_qualified(RaisesOnBatchesOfFive())
    with pytest.raises(Disqualified, match=r"failed qualification: it faulted while judging .*N=\d+ \(raised: raised RuntimeError: cannot handle five\)"):
        crosscheck(Reference(), examples=200, seed=0, oracles=[oracle])


def test_a_plugged_oracle_never_judges_alone():
    builtins, plugged, opened = resolve(["finite_differences", Limited()], isolate=False)
    assert [r.info.name for r in builtins] == ["finite_differences"] and [o.info.name for o in plugged] == ["limited-oracle"] and opened
    builtins, _, _ = resolve([Limited()], isolate=False)
    assert [r.info.name for r in builtins] == [r.info.name for r in available()], "no name given: every built-in oracle judges beside it"
    with pytest.raises(ValueError, match="known: torch, jax, finite_differences; installed"):
        resolve(["no-such-oracle"])


def test_qualification_is_run_once_per_oracle():
    oracle, _ = as_oracle(as_implementation(Limited()))
    first = qualify(oracle, available(), 0, crosscheck, examples=5)
    assert qualify(oracle, available(), 0, crosscheck, examples=5) is first


# --- chainrule oracles ---------------------------------------------------------------------------

def test_oracles_command_lists_plugged_in_oracles_with_what_they_declare_and_whether_they_qualified(site):
    code, out, _ = _run(["oracles", "--oracle", AUTOGRAD_BROKEN, "--oracle", "tests.test_plugged_oracles:Limited"])
    assert code == 2, "one of them fails qualification"
    assert f"plugged-in oracles (--oracle, --oracle-cmd, entry points in group {ENTRY_POINT_GROUP}): 3" in out
    lines = out.splitlines()
    at = {line.split()[0]: k for k, line in enumerate(lines) if line and not line.startswith(" ")}
    assert "kinks: relu'(0) = 0.5" in lines[at["autograd"]] and "activations: all; losses: all; precision float64" in lines[at["autograd"]]
    assert "oracle autograd (plugged in) qualified: " in lines[at["autograd"] + 1]
    assert "activations: relu, identity; losses: mse" in lines[at["limited-oracle"]]
    assert "oracle limited-oracle (plugged in) qualified" in lines[at["limited-oracle"] + 1]
    assert "failed qualification" in out and "softplus" in out


# --- pytest --chainrule-oracle ---------------------------------------------------------------------

@needs_node
def test_pytest_option_plugs_oracles_into_the_suite():
    argv = [sys.executable, "-m", "pytest", "tests/suite/test_agreement.py", "-q", "-p", "no:cacheprovider", "-k", "oracle-",
            "--chainrule-examples", "5", "--chainrule-oracle-cmd", PLAIN_JS, "--chainrule-oracle", AUTOGRAD_BROKEN]
    run = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=600)
    out = run.stdout
    assert run.returncode == 1, out
    assert "failed qualification" in out and "softplus" in out, out[-3000:]
    assert "oracle cmd=" in out and "plain-js (plugged in) qualified" in out, "the terminal summary says how each oracle qualified"
    assert "4 passed" in out and "4 errors" in out, out[-1500:]  # the 4 tests per oracle: plain-js judges and passes, the broken one errs them
    assert "ERROR tests/suite/test_agreement.py::test_agrees_with_oracle[oracle-impl=tests.gallery.autograd_net:AutogradNetWrongSoftplus-" in out


# --- the report ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def report(site, tmp_path_factory):
    """Two plugged-in oracles (autograd through its entry point, plain.js over JSON lines) and a
    broken one that fails qualification, judging the reference and a wrong implementation."""
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed")
    out = tmp_path_factory.mktemp("report")
    code, stdout, stderr = _run(["report", "--out", str(out), "--examples", "10", "--seed", "1", "--layer-examples", "2", "--impl", "tests.broken:bias_averaged",
                                 "--oracle-cmd", PLAIN_JS, "--oracle", AUTOGRAD_BROKEN])
    text = (out / "index.html").read_text(encoding="utf-8")
    return {"code": code, "stderr": stderr, "out": out, "tree": Tree(text).root, "data": read_json(out / "results.json")}


@pytest.mark.xdist_group("plugged-oracles-report")  # one worker makes the report they share
def test_report_has_a_column_and_a_row_per_qualified_oracle_and_fails_the_broken_one(report):
    assert report["code"] == 2 and "failed qualification" in report["stderr"]
    table = report["tree"].by_id("matrix").all("table", "matrix")[0]
    rows = table.all("tr")
    header = rows[0].all("th")[1:]
    assert [th.content().split(" ")[0] for th in header] == [*BUILTIN, "plain-js", "autograd"]
    assert [("plugged" in th.classes) for th in header] == [False, False, False, True, True]
    cells = {tr.all("th")[0].content(): tr.all("td") for tr in rows[1:]}
    assert "autograd (oracle, plugged in)" in cells and "plain-js (oracle, plugged in)" in cells
    assert all("disagree" in td.classes for td in cells["broken:bias_averaged (plugin)"]), "the wrong implementation disagrees with every oracle"
    assert all("agree" in td.classes for td in cells["reference (reference)"])
    assert [td.classes for td in cells["plain-js (oracle, plugged in)"]] == [["agree"]] * 3 + [["self"], ["agree"]]
    results = from_json(report["data"])
    plugged = {s.name: s for s in results.sources if s.plugged}
    assert set(plugged) == {"plain-js", "autograd", "autograd (bug: softplus' = softplus)"}
    assert plugged["plain-js"].available and "qualified" in plugged["plain-js"].detail
    broken = plugged["autograd (bug: softplus' = softplus)"]
    assert not broken.available and "failed qualification" in broken.detail
    assert "autograd (bug: softplus' = softplus)" in [c.implementation for c in results.counterexamples], "its counterexample is told"
    sources = report["tree"].by_id("settings").all("table")[1]
    assert "(plugged in)" in sources.content()


@pytest.mark.xdist_group("plugged-oracles-report")  # one worker makes the report they share
def test_results_json_carries_plugged_oracles_and_refuses_files_of_the_schema_before_them(report):
    data = report["data"]
    assert data["schema_version"] == 3 and [s["name"] for s in data["sources"] if s["plugged"]] == [
        "autograd (bug: softplus' = softplus)", "plain-js", "autograd"]  # --oracle, --oracle-cmd, then installed
    assert from_json(data) == from_json(to_json(from_json(data)))
    older = to_json(from_json(data)) | {"schema_version": 1}
    for source in older["sources"]:
        del source["plugged"]  # as version 1 wrote it, before Source.plugged
    with pytest.raises(ValueError, match="got schema_version 1, .* reads schema_version 3"):
        from_json(older)
    plugged = next(f for f in dataclasses.fields(Source) if f.name == "plugged")
    assert plugged.default is False


@pytest.mark.xdist_group("plugged-oracles-report")
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent (make test installs it: scripts/install-browser.sh)")
def test_report_with_plugged_oracles_reads_in_a_real_browser(report):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
            page.goto((report["out"] / "index.html").as_uri())
            columns = page.locator("table.matrix tr").first.locator("th.plugged")
            assert columns.count() == 2
            for k in range(2):
                assert columns.nth(k).is_visible() and columns.nth(k).bounding_box()["width"] > 20
            matrix = page.locator("table.matrix").bounding_box()
            last = columns.nth(1).bounding_box()
            assert last["x"] + last["width"] <= matrix["x"] + matrix["width"] + 1, "the extra columns are laid out inside the table"
            row = page.locator("table.matrix tr", has_text="(oracle, plugged in)").first
            assert row.is_visible() and row.locator("td.agree").count() == 4
            assert page.locator("#settings tr.plugged").count() == 3
            page.screenshot(path=str(ARTIFACTS / "report-plugged-oracles.png"), full_page=True)
        finally:
            browser.close()
