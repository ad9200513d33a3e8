"""``chainrule report``: one small report, checked by its structure and in a real browser.

The report judges the reference and five plug-ins: a broken one (tests.broken:bias_averaged),
a correct one named like an XSS payload, one that raises, one that supports only part of the
contract, and one that cannot be imported. The faulty ones must not stop the others.
"""

import contextlib
import io
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from chainrule.cli import main
from chainrule.reference import Reference
from chainrule.reports import html, plots
from chainrule.reports.article import PUBLISHED
from chainrule.reports.records import Status
from chainrule.reports.results import from_json, read_json
from chainrule.reports.views import ALLOWANCE_DECADES

pytestmark = pytest.mark.xdist_group("report-html")  # one worker makes the module's one report, not each worker its own

EXAMPLES, SEED = 12, 1
SCRIPT = "<script>alert(1)</script>"
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"


class ScriptNamed:
    """Correct gradients under a name that would run if the page did not escape it."""

    name = SCRIPT

    def loss_and_gradients(self, arch, params, X, Y):
        return Reference().loss_and_gradients(arch, params, X, Y)


class Raising:
    name = "raises"

    def loss_and_gradients(self, arch, params, X, Y):
        raise RuntimeError("<b>boom</b>")


class Limited(ScriptNamed):
    """Declares relu/identity with mse only: every other case must be skipped, not agreed."""

    name = "limited"
    activations = ("relu", "identity")
    losses = ("mse",)


PLUGINS = ["tests.broken:bias_averaged", f"{__name__}:ScriptNamed", f"{__name__}:Raising", f"{__name__}:Limited", "no_such_module:Thing"]


class Node:
    def __init__(self, tag, attrs, parent=None):
        self.tag, self.attrs, self.parent, self.children, self.text = tag, dict(attrs), parent, [], []

    @property
    def classes(self):
        return (self.attrs.get("class") or "").split()

    def all(self, tag=None, cls=None):
        """Every descendant with this tag and/or class."""
        found = []
        for child in self.children:
            if (tag is None or child.tag == tag) and (cls is None or cls in child.classes):
                found.append(child)
            found += child.all(tag, cls)
        return found

    def content(self):
        return "".join(self.text + [child.content() for child in self.children])

    def by_id(self, name):
        return next(n for n in self.all() if n.attrs.get("id") == name)


class Tree(HTMLParser):
    VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "source"}

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("document", {})
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.current)
        self.current.children.append(node)
        if tag not in self.VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, attrs, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.current = node.parent

    def handle_data(self, data):
        self.current.text.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    stdout, stderr = io.StringIO(), io.StringIO()
    argv = ["report", "--out", str(out), "--examples", str(EXAMPLES), "--seed", str(SEED), "--layer-examples", "2"]
    for plugin in PLUGINS:
        argv += ["--impl", plugin]
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv)
    text = (out / "index.html").read_text(encoding="utf-8")
    return {"code": code, "out": out, "stderr": stderr.getvalue(), "html": text, "tree": Tree(text).root, "data": read_json(out / "results.json")}


def _verdicts(tree):
    return {li.all(cls="name")[0].content(): li.attrs["data-status"] for li in tree.by_id("verdicts").all("li", "verdict")}


def test_unloadable_plugin_is_a_usage_error_but_the_others_are_checked(report):
    assert report["code"] == 2
    errors = [line for line in report["stderr"].splitlines() if line.startswith("chainrule: error:")]
    assert len(errors) == 1 and "cannot import 'no_such_module'" in errors[0]
    assert "Traceback" not in report["stderr"]


def test_each_implementation_has_one_verdict_line(report):
    assert _verdicts(report["tree"]) == {
        "reference": "agree",
        "broken:bias_averaged": "disagree",
        SCRIPT: "agree",
        "raises": "error",
        "limited": "agree",
        "no_such_module:Thing": "error",
    }
    lines = {li.all(cls="name")[0].content(): li.content() for li in report["tree"].by_id("verdicts").all("li", "verdict")}
    judged = EXAMPLES + 1 - report["data"]["settings"]["rejected"]  # the generated cases set aside are not judged
    assert f"agrees on {judged} cases against torch, jax, finite_differences" in lines["reference"]
    assert "DISAGREES on" in lines["broken:bias_averaged"]
    assert "RuntimeError: <b>boom</b>" in lines["raises"]
    assert "skipped (not supported)" in lines["limited"]


def test_records_cover_every_pair_and_none_is_left_pending(report):
    results = from_json(report["data"])
    oracles = [s.name for s in results.sources if s.kind == "oracle" and s.available]
    judged = [s.name for s in results.sources if s.kind != "oracle" and s.available]
    pairs = len(oracles) * (len(oracles) - 1) // 2
    assert len(results.cases) == EXAMPLES + 1 - results.settings.rejected
    assert len(results.records) == len(results.cases) * (len(judged) * len(oracles) + pairs)
    assert all(r.status is not Status.PENDING for r in results.records)
    limited = {r.case for r in results.records if r.implementation == "limited" and r.status is not Status.SKIPPED}
    supported = {c.id for c in results.cases if c.loss == "mse" and set(c.activations) <= {"relu", "identity"}}
    assert limited == supported and "article" in supported


def test_matrix_has_every_source_against_every_oracle(report):
    table = report["tree"].by_id("matrix").all("table", "matrix")[0]
    rows = table.all("tr")
    columns = [th.content() for th in rows[0].all("th")][1:]
    assert columns == ["torch", "jax", "finite_differences"]
    cells = {tr.all("th")[0].content().split(" (")[0]: tr.all("td") for tr in rows[1:]}
    assert set(cells) == {"reference", "broken:bias_averaged", SCRIPT, "raises", "limited", "torch", "jax", "finite_differences"}
    records = from_json(report["data"]).records
    for oracle, td in zip(columns, cells["reference"]):
        compared = [r for r in records if (r.implementation, r.oracle) == ("reference", oracle) and r.status in (Status.AGREE, Status.DISAGREE)]
        assert "agree" in td.classes and f"n={len(compared)}" in td.content() and len(compared) >= EXAMPLES - 2
    assert all("disagree" in td.classes for td in cells["broken:bias_averaged"])
    assert all("none" in td.classes for td in cells["raises"])  # nothing to compare: it never answered
    for k, oracle in enumerate(columns):  # each pair of oracles is judged once and shown in both of its cells
        assert [td.classes for td in cells[oracle]] == [["self"] if j == k else ["agree"] for j in range(len(columns))]
        assert [td.content() for td in cells[oracle]] == [cells[other][k].content() for other in columns]
    assert all(re.fullmatch(r"hsl\(\d+, 70%, 78%\)", td.attrs["style"].split(": ")[1]) for td in cells["reference"])


def test_coverage_grid_counts_every_case(report):
    grids = report["tree"].by_id("coverage").all("table", "grid")
    activation_loss, depth_batch = grids
    header = [th.content() for th in activation_loss.all("tr")[0].all("th")]
    assert header == ["activation", "mse", "cross_entropy", "binary_cross_entropy"]
    activations = [tr.all("th")[0].content() for tr in activation_loss.all("tr")[1:]]
    assert activations == ["identity", "relu", "leaky_relu", "sigmoid", "tanh", "softplus", "elu", "gelu", "silu", "softmax"]
    counts = [int(td.content().split()[0]) for td in depth_batch.all("td") if "empty" not in td.classes]
    assert sum(counts) == EXAMPLES + 1 - from_json(report["data"]).settings.rejected
    assert depth_batch.all("td", "failing"), "bias_averaged fails somewhere: some cell must show it"


def test_error_distributions_draw_errors_in_units_of_what_was_allowed(report):
    """Every histogram has its bound at 1 (the larger of rtol scale and the case's noise floor):
    the agreeing sources' bars all lie left of it, the broken one's red bars right of it."""
    figures = report["tree"].by_id("distributions").all("figure")
    assert len(figures) == 4 * 3 + 3  # reference, two agreeing plug-ins and the broken one x 3 oracles, and 3 oracle pairs
    low, high = ALLOWANCE_DECADES
    bound = plots.WIDTH * (0 - low) / (high - low)
    for figure in figures:
        svg = figure.all("svg")[0]
        assert "error / allowed" in figure.all("figcaption")[0].content()
        assert float(svg.all("line", "tolerance")[0].attrs["x1"]) == pytest.approx(bound, abs=0.1)
        broken = "broken:bias_averaged" in figure.all("figcaption")[0].content()
        rects = svg.all("rect")
        assert rects and all(float(r.attrs["x"]) > bound for r in rects if r.attrs["fill"] == "#c62828")
        if not broken:
            assert all(float(r.attrs["x"]) + float(r.attrs["width"]) <= bound + 0.1 for r in rects), figure.content()
        else:
            assert any(r.attrs["fill"] == "#c62828" for r in rects)


def test_article_section_sets_the_articles_numbers_beside_each_source(report):
    table = report["tree"].by_id("article").all("table", "article")[0]
    header = [th.content() for th in table.all("tr")[0].all("th")]
    assert header[:3] == ["quantity", "article", "reference"] and "torch" in header and "raises" in header
    rows = table.all("tr")[1:]
    printed = [PUBLISHED["loss"]] + [v for layer in (2, 1) for v in [x for row in PUBLISHED[f"dW({layer})"] for x in row] + PUBLISHED[f"db({layer})"]]
    assert [float(tr.all("td")[0].content()) for tr in rows] == printed
    reference = header.index("reference") - 1
    assert all("match" in tr.all("td")[reference].classes for tr in rows)
    assert "-0.985·0.2·1·4 + -1.015·0.1·1·4 = -1.194" in report["tree"].by_id("explain").content()


def test_failure_shows_the_minimal_counterexample_with_differing_entries_highlighted(report):
    failures = report["tree"].by_id("failures").all("div", "failure")
    named = {f.all("span", "name")[0].content(): f for f in failures}
    assert set(named) == {"broken:bias_averaged", "raises"}
    broken = named["broken:bias_averaged"]
    assert "shrunk by Hypothesis" in broken.content()
    for side in ("got", "expected"):
        tables = broken.all("table", side)
        assert tables and all(t.all("td", "bad") for t in tables), f"{side}: no highlighted entry"
    assert "Architecture.parse(" in broken.all("pre", "reproduction")[0].content()
    assert broken.all("div", "diagnosis"), "chainrule.diagnosis's reading of the failure is missing"
    assert "raised RuntimeError: <b>boom</b>" in named["raises"].content()


def test_plugin_strings_are_escaped(report):
    text = report["html"]
    assert SCRIPT not in text and "<b>boom</b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&lt;b&gt;boom&lt;/b&gt;" in text
    assert not report["tree"].all("script") and not report["tree"].all("b")


def test_page_references_no_external_resource(report):
    tree = report["tree"]
    assert not tree.all("link") and not tree.all("img") and not tree.all("iframe")
    for node in tree.all():
        for name in ("src", "href", "xlink:href", "action"):
            value = node.attrs.get(name) or ""
            assert not re.match(r"(https?:)?//", value), f"<{node.tag} {name}={value!r}>"
    assert "url(" not in text_of_styles(tree) and "@import" not in text_of_styles(tree)


def text_of_styles(tree):
    return "".join(style.content() for style in tree.all("style"))


def test_page_is_rendered_from_results_json_alone(report):
    assert html.render(read_json(report["out"] / "results.json")) == report["html"]


def test_interrupted_render_leaves_the_previous_report(report, tmp_path, monkeypatch):
    target = tmp_path / "index.html"
    shutil.copy(report["out"] / "index.html", target)
    real = html._stream

    def dies_halfway(data):
        for k, chunk in enumerate(real(data)):
            if k == 40:
                raise KeyboardInterrupt
            yield chunk

    monkeypatch.setattr(html, "_stream", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        html.write(report["data"], target)
    assert target.read_text(encoding="utf-8") == report["html"]
    assert os.listdir(tmp_path) == ["index.html"]


def test_results_json_is_plain_json(report):
    assert json.loads((report["out"] / "results.json").read_text()) == report["data"]


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent (make test installs it: scripts/install-browser.sh)")
def test_report_reads_in_a_real_browser(report):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    requests = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
            page.on("request", lambda request: requests.append(request.url))
            page.goto((report["out"] / "index.html").as_uri())
            matrix = page.locator("table.matrix")
            assert matrix.is_visible()
            box = matrix.bounding_box()
            assert box["width"] > 300 and box["height"] > 100
            verdicts = page.locator("li.verdict")
            assert verdicts.count() == 6
            for k in range(6):
                assert verdicts.nth(k).is_visible()
            assert page.locator("li.verdict", has_text=SCRIPT).is_visible()
            bad = page.locator("#failures table.tensor td.bad").first
            bad.scroll_into_view_if_needed()
            assert bad.is_visible() and bad.bounding_box()["width"] > 10
            assert page.locator("#coverage table.grid").first.is_visible()
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()
    assert all(url.startswith("file://") for url in requests), f"requests beyond the file: {requests}"
