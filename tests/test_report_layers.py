"""``chainrule report``'s layers: the layer x source matrix, each failing layer's counterexample,
results.json (schema 3) read back, and the page in a real browser.

One small report judges the reference and three plug-ins: CourseLayers (every layer of the
contract, right), one of tests/broken_layers.py (softmax's backward keeps the Jacobian's diagonal
only) and a source of networks only, which declares no layer. Its networks all agree, so the
layer alone must fail the report.
"""

import contextlib
import io
import os

import pytest

from chainrule.cli import main
from chainrule.layers.search import JUDGED as LAYER_NAMES  # the layers this version judges
from chainrule.reference import Reference
from chainrule.reports import html
from chainrule.reports.records import Status
from chainrule.reports.results import SCHEMA_VERSION, from_json, read_json, to_json
from tests.broken_layers import SoftmaxDiagonal
from tests.gallery.layers_numpy import CourseLayers
from tests.test_report_html import ARTIFACTS, CHROMIUM, Tree
from tests.test_report_records import _report

pytestmark = pytest.mark.xdist_group("report-layers")  # one worker makes the module's one report

LAYER_EXAMPLES, EXAMPLES, SEED = 3, 2, 1
COURSE, BUGGY, NETWORKS = CourseLayers.name, SoftmaxDiagonal.name, "networks only"


class NetworksOnly:
    """Right gradients of networks, and no vjp: every layer is "not declared"."""

    name = NETWORKS

    def loss_and_gradients(self, arch, params, X, Y):
        return Reference().loss_and_gradients(arch, params, X, Y)


PLUGINS = ["tests.gallery.layers_numpy:CourseLayers", "tests.broken_layers:softmax_diagonal", f"{__name__}:NetworksOnly"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    argv = ["report", "--out", str(out), "--examples", str(EXAMPLES), "--seed", str(SEED), "--layer-examples", str(LAYER_EXAMPLES)]
    for plugin in PLUGINS:
        argv += ["--impl", plugin]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    text = (out / "index.html").read_text(encoding="utf-8")
    return {"code": code, "out": out, "stdout": stdout.getvalue(), "tree": Tree(text).root, "data": read_json(out / "results.json")}


def _matrix(tree):
    """{layer: {source: <td>}} of the layers' matrix, and its columns in order."""
    rows = tree.by_id("layers").all("table", "layers")[0].all("tr")
    columns = [th.content() for th in rows[0].all("th")][1:]
    return {tr.all("th")[0].content(): dict(zip(columns, tr.all("td"))) for tr in rows[1:]}, columns


def test_a_wrong_layer_fails_the_report_and_its_sources_verdict(report):
    assert report["code"] == 1, report["stdout"]
    assert f"{len(LAYER_NAMES) * 3} layers searched" in report["stdout"]  # the reference, CourseLayers and the broken one
    lines = report["tree"].by_id("verdicts").all("li", "verdict")
    verdicts = {li.all(cls="name")[0].content(): (li.attrs["data-status"], li.content()) for li in lines}
    statuses = {name: status for name, (status, _) in verdicts.items()}
    assert statuses == {"reference": "agree", COURSE: "agree", BUGGY: "disagree", NETWORKS: "agree"}
    assert "layers: WRONG on softmax (x)" in verdicts[BUGGY][1]
    assert f"layers: {len(LAYER_NAMES)} of {len(LAYER_NAMES)} agree" in verdicts[COURSE][1]


def test_matrix_has_every_layer_of_the_contract_by_source(report):
    matrix, columns = _matrix(report["tree"])
    assert columns == ["reference", COURSE, BUGGY, NETWORKS]
    assert list(matrix) == list(LAYER_NAMES)
    for layer, cells in matrix.items():
        for source in ("reference", COURSE) + ((BUGGY,) if layer != "softmax" else ()):
            told = (layer, source, cells[source].content())
            assert cells[source].classes == ["agree"] and f"n={LAYER_EXAMPLES}" in cells[source].content(), told
        assert cells[NETWORKS].classes == ["undeclared"] and cells[NETWORKS].content() == "not declared", layer
    failing = matrix["softmax"][BUGGY]
    assert failing.classes == ["disagree"] and "x" in failing.attrs["title"]
    target = failing.all("a")[0].attrs["href"].removeprefix("#")
    failure = report["tree"].by_id(target)
    assert failure.all("span", "name")[0].content() == BUGGY and "softmax" in failure.all("h3")[0].content()
    told = failure.all("pre", "layer-counterexample")[0].content()
    assert told.startswith(f"{BUGGY} is wrong on softmax") and "diagonal of the Jacobian" in told and "Reproduce:" in told
    assert len(report["tree"].by_id("layers").all("div", "layer-failure")) == 1


def test_results_json_keeps_every_layer_and_reads_back(report):
    data = report["data"]
    assert data["schema_version"] == SCHEMA_VERSION == 3
    results = from_json(data)
    assert to_json(results) == data
    assert results.settings.layer_examples == LAYER_EXAMPLES and results.layer_judges
    searched = [(source, layer) for source in ("reference", COURSE, BUGGY) for layer in LAYER_NAMES]
    assert [(row.source, row.layer) for row in results.layers] == searched
    wrong = [row for row in results.layers if row.status is not Status.AGREE]
    assert [(row.source, row.layer, row.status, row.wrong) for row in wrong] == [(BUGGY, "softmax", Status.DISAGREE, ("x",))]
    assert all(row.agreed == LAYER_EXAMPLES and row.counterexample is None for row in results.layers if row not in wrong)
    networks = {s.name: s.networks for s in results.sources if s.kind != "oracle"}
    assert networks == {"reference": True, COURSE: False, BUGGY: False, NETWORKS: True}
    judged = {r.implementation for r in results.records}  # a source of layers only is not in the network sweep
    assert judged >= {"reference", NETWORKS} and not judged & {COURSE, BUGGY}


def test_unanswered_cases_are_footnoted_and_a_pending_layer_never_reads_as_agreement():
    tree = Tree(html.render(to_json(_report()))).root  # course: relu agrees, softmax disagrees where it answered, dropout never searched
    matrix, columns = _matrix(tree)
    assert columns == ["reference", "course"]  # the source that could not be loaded has no column
    softmax = matrix["softmax"]["course"]
    assert "could not answer: axis=0 is not <implemented>" in softmax.attrs["title"]
    note = softmax.all("sup")[0].all("a")[0].attrs["href"].removeprefix("#")
    assert "axis=0 is not <implemented>" in tree.by_id(note).content()
    assert matrix["dropout"]["course"].classes == ["pending"] and matrix["relu"]["course"].classes == ["agree"]
    assert matrix["relu"]["reference"].classes == ["undeclared"]


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent (make test installs it: scripts/install-browser.sh)")
def test_layers_read_in_a_real_browser(report):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
            page.goto((report["out"] / "index.html").as_uri())
            matrix = page.locator("table.layers")
            matrix.scroll_into_view_if_needed()
            assert matrix.is_visible() and matrix.locator("tr").count() == len(LAYER_NAMES) + 1
            box = matrix.bounding_box()
            assert box["width"] > 300 and box["height"] > 200
            page.locator("table.layers td.disagree a").click()  # the failing cell leads to its counterexample
            assert page.url.endswith("#layer-failure-0")
            told = page.locator("#layer-failure-0 pre")
            expect(told).to_be_in_viewport()
            expect(told).to_contain_text("Reproduce:")
            page.locator("#layers").screenshot(path=str(ARTIFACTS / "report-layers.png"))
        finally:
            browser.close()
