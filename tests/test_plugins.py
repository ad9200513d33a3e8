"""Every way in, each accepting a correct implementation and rejecting a wrong one with the wrong
tensor named: the Python API, ``chainrule check``, entry points, ``pytest --chainrule-impl/--chainrule-cmd``
(in this checkout and as the shipped ``pytest --pyargs chainrule.suite``), and JSON-lines
commands in Python and Node.js. Also that the pytest plugin is a good citizen of another
project's pytest run: prefixed options only, verdicts untouched by the host's configuration,
its summary printed under pytest-xdist.

A throwaway package is written to a temporary directory and only pointed at (sys.path,
PYTHONPATH); a ``*.dist-info`` beside it declares its entry points, which is all
importlib.metadata needs.
"""

import os
import re
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from chainrule.cli import main
from chainrule.sources.faults import LoadError
from chainrule.sources.implementation import Implementation
from chainrule.sources.jsonlines import command
from chainrule.sources.load import ENTRY_POINT_GROUP, entry_point_implementations, entry_point_names, load_entry_point
from chainrule.sources.worker import WORKER
from chainrule.status import Status

REPO = Path(__file__).resolve().parents[1]
PYTHON_EXAMPLE = f"{sys.executable} {REPO / 'examples/python/backprop.py'}"
WRONG_EXAMPLE = f"{sys.executable} {REPO / 'examples/python/wrong_backprop.py'}"
NODE_EXAMPLE = f"node {REPO / 'examples/node/backprop.js'}"
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
JUDGE = "finite_differences"  # rejections are shown against one judge (numpy only): shrinking asks it hundreds of times
# A wrong implementation in JavaScript: the example's answer with dL/db of the first layer doubled.
WRONG_NODE = """
const readline = require("readline");
const { lossAndGradients } = require(process.argv[2]);
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const request = JSON.parse(line);
  if (request.describe) return console.log(JSON.stringify({ name: "js-wrong" }));
  const answer = lossAndGradients(request);
  answer.grads[0].b = answer.grads[0].b.map((v) => 2 * v);
  console.log(JSON.stringify(answer));
});
"""

# A partial implementation, as another project would write it: four activations, two losses.
GOOD = '''
import numpy as np


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(z):
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


SIGMA = {
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
}


class Backprop:
    name = "demo-backprop"
    activations = tuple(SIGMA)
    losses = ("mse", "binary_cross_entropy")
    two = 2.0  # d/da (a - y)^2 = 2 (a - y)

    def loss_and_gradients(self, arch, params, X, Y):
        zs, As = [], [X]
        for (W, b), name in zip(params, arch.activations):
            zs.append(As[-1] @ W.T + b)
            As.append(SIGMA[name][0](zs[-1]))
        N, z, a = len(X), zs[-1], As[-1]
        if arch.loss == "mse":
            loss = ((a - Y) ** 2).sum() / N
            dZ = self.two * (a - Y) / N * SIGMA[arch.activations[-1]][1](z)
        else:
            loss = (Y * _softplus(-z) + (1.0 - Y) * _softplus(z)).sum() / N
            dZ = (a - Y) / N
        grads = []
        for l in reversed(range(len(params))):
            grads.insert(0, (dZ.T @ As[l], dZ.sum(axis=0)))
            if l > 0:
                dZ = (dZ @ params[l][0]) * SIGMA[arch.activations[l - 1]][1](zs[l - 1])
        return float(loss), grads
'''

WRONG = '''
from demo_pkg.good import Backprop as Good


class Backprop(Good):
    name = "demo-backprop-bias-twice"

    def loss_and_gradients(self, arch, params, X, Y):
        loss, grads = super().loss_and_gradients(arch, params, X, Y)
        grads[0] = (grads[0][0], 2 * grads[0][1])  # the bias gradient of layer 1 counted twice
        return loss, grads
'''

# The nested pytest run leaves out Hypothesis's explain phase, which traces every failing
# example's coverage and triples the time a failure takes; it adds nothing to what is checked.
NO_EXPLAIN = '''
import pytest
from hypothesis import Phase, settings


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    phases = [p for p in settings.default.phases if p is not Phase.explain]
    settings.register_profile("no-explain", settings(settings.default, phases=phases))
    settings.load_profile("no-explain")
'''

HANGS = '''
import time

from demo_pkg.good import Backprop as Good


class Backprop(Good):
    def loss_and_gradients(self, arch, params, X, Y):
        time.sleep(60)
'''

ENTRY_POINTS = f"""
[{ENTRY_POINT_GROUP}]
demo-good = demo_pkg.good:Backprop
demo-wrong = demo_pkg.wrong:Backprop
demo-broken = demo_pkg.missing:Nothing
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A directory on sys.path holding demo_pkg and its dist-info (entry points)."""
    root = tmp_path_factory.mktemp("site")
    package = root / "demo_pkg"
    package.mkdir()
    for name, text in (("__init__", ""), ("good", GOOD), ("wrong", WRONG), ("hangs", HANGS)):
        (package / f"{name}.py").write_text(textwrap.dedent(text))
    info = root / "chainrule_demo_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: chainrule-demo-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))
    for name in [m for m in sys.modules if m == "demo_pkg" or m.startswith("demo_pkg.")]:
        del sys.modules[name]


def test_import_chainrule_exports_crosscheck_without_importing_frameworks():
    code = (
        "import sys\n"
        "import chainrule.oracles\n"
        "heavy = ('torch', 'jax', 'numpy', 'hypothesis')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"  # the package of the judges imports nothing
        "import chainrule.search\n"  # the submodule first: the package must still give the function
        "from chainrule import crosscheck, CheckFailure, Summary\n"
        "assert callable(crosscheck) and issubclass(CheckFailure, AssertionError), crosscheck\n"
        "assert {'crosscheck', 'CheckFailure', 'Summary'} <= set(chainrule.__all__), chainrule.__all__\n"
        "print(sorted(m for m in ('torch', 'jax') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "[]"], result.stdout


def test_api_accepts_a_correct_implementation_and_says_what_was_not_exercised(site):
    from demo_pkg.good import Backprop

    from chainrule import Summary, crosscheck

    summary = crosscheck(Backprop(), examples=20, seed=0)
    assert isinstance(summary, Summary) and len(summary.verdicts) > 0
    assert all(v.case.arch.loss in Backprop.losses and set(v.case.arch.activations) <= set(Backprop.activations) for v in summary.verdicts)
    assert summary.count(Status.AGREE) + summary.count(Status.CONVENTION) + summary.count(Status.NO_EVIDENCE) == len(summary.verdicts)
    assert summary.unexercised == ("leaky_relu", "softplus", "elu", "gelu", "silu", "softmax", "cross_entropy")
    assert "not exercised (outside what it declares it supports): leaky_relu, softplus, elu, gelu, silu, softmax, cross_entropy" in str(summary)
    assert summary.isolation == WORKER and "not isolated" not in str(summary), "an object that pickles runs in a worker process"


def test_api_rejects_a_wrong_implementation_with_an_assertion_naming_the_tensor(site):
    from demo_pkg.wrong import Backprop

    from chainrule import CheckFailure, crosscheck

    with pytest.raises(AssertionError) as caught:
        crosscheck(Backprop(), examples=30, seed=0, oracles=[JUDGE])
    assert isinstance(caught.value, CheckFailure)
    text = str(caught.value)
    assert text.startswith("demo-backprop-bias-twice is wrong on 1-") and text.splitlines()[0].endswith("N=1")
    assert "dL/db[layer 1]: 1 of 1 entries differ" in text and "Reproduce:" in text


def test_check_command_accepts_a_python_implementation_and_says_what_was_not_exercised(site, capsys):
    assert main(["check", "demo_pkg.good:Backprop", "--examples", "20", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    assert "demo-backprop: 20 cases against" in out and "not exercised (outside what it declares it supports): leaky_relu" in out


def test_entry_points_are_found_loaded_and_broken_ones_reported(site):
    assert {"demo-good", "demo-wrong", "demo-broken"} <= set(entry_point_names())
    found = dict(entry_point_implementations())
    assert isinstance(found["demo-good"], Implementation) and found["demo-good"].name == "demo-backprop"
    assert found["demo-good"].isolation == WORKER and found["demo-good"].source.module == "demo_pkg.good"
    assert found["demo-good"].losses == ("mse", "binary_cross_entropy")
    assert isinstance(found["demo-broken"], LoadError) and "No module named 'demo_pkg.missing'" in str(found["demo-broken"])
    from chainrule import crosscheck

    assert crosscheck(load_entry_point("demo-good"), examples=10, seed=1).count(Status.AGREE) > 0
    assert isinstance(load_entry_point("demo-wrong"), Implementation)  # rejected in the pytest run below
    with pytest.raises(LoadError, match="no entry point 'nothing'"):
        load_entry_point("nothing")


def test_oracles_command_lists_plugged_in_implementations(site, capsys):
    assert main(["oracles"]) == 0
    out = capsys.readouterr().out
    assert f"plugged-in implementations (entry points, group {ENTRY_POINT_GROUP})" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("demo-")}
    assert "demo-backprop" in lines["demo-good"] and "not exercised: leaky_relu" in lines["demo-good"]
    assert "cannot load" in lines["demo-broken"] and "Traceback" not in out


@pytest.mark.parametrize(
    "spec, expected",
    [(PYTHON_EXAMPLE, "numpy-backprop (examples/python): 40 cases"), pytest.param(NODE_EXAMPLE, "js-backprop (examples/node): 40 cases", marks=needs_node)],
    ids=["python", "node"],
)
def test_check_command_accepts_a_correct_command(capsys, spec, expected):
    assert main(["check", "--cmd", spec, "--examples", "40", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert expected in out and "not exercised" not in out, out


@pytest.mark.parametrize("language", ["python", pytest.param("node", marks=needs_node)])
def test_check_command_rejects_a_wrong_command_naming_the_tensor(capsys, tmp_path, language):
    if language == "python":
        spec, name, tensor = WRONG_EXAMPLE, "wrong-backprop", "dL/db[layer 1]: 1 of 1 entries differ"
    else:
        (tmp_path / "wrong.js").write_text(WRONG_NODE)
        spec, name, tensor = f"node {tmp_path / 'wrong.js'} {REPO / 'examples/node/backprop.js'}", "js-wrong", "dL/db[layer 1]: 1 of 1 entries differ"
    assert main(["check", "--cmd", spec, "--examples", "30", "--seed", "2", "--oracles", JUDGE]) == 1
    out = capsys.readouterr().out
    assert out.startswith(name) and tensor in out and "Reproduce:" in out, out


@needs_node
def test_node_example_computes_exact_gelu_in_both_tails():
    """gelu through erfc ported to JavaScript, on saturating networks of gelu layers only."""
    import dataclasses

    from chainrule import crosscheck

    implementation = command(NODE_EXAMPLE)
    try:
        gelu_only = dataclasses.replace(implementation, activations=("gelu",), losses=("mse",))
        summary = crosscheck(gelu_only, examples=40, seed=5, oracles=["torch", "jax"])
        assert summary.count(Status.AGREE) == len(summary.verdicts) > 0
        assert any(abs(W).max() > 4 for v in summary.verdicts for W, _ in v.case.params), "no saturating case drawn"
    finally:
        implementation.close()


def test_command_declaring_limits_is_only_asked_those_and_says_so(tmp_path):
    script = tmp_path / "limited.py"
    script.write_text(textwrap.dedent(f'''
        import json, sys
        sys.path.insert(0, {str(REPO)!r})
        import numpy as np
        from chainrule.reference import Architecture, Reference

        for line in sys.stdin:
            request = json.loads(line)
            if request.get("describe"):
                print(json.dumps({{"name": "limited", "activations": ["identity", "relu", "softmax"], "losses": ["cross_entropy", "binary_cross_entropy"]}}), flush=True)
                continue
            assert request["loss"] == "cross_entropy" and set(request["activations"]) <= {{"identity", "relu", "softmax"}}, request
            arch = Architecture(request["sizes"], request["activations"], request["loss"])
            params = [(np.array(p["W"]).reshape(m, n), np.array(p["b"])) for p, n, m in zip(request["params"], arch.sizes, arch.sizes[1:])]
            X, Y = np.array(request["X"]).reshape(-1, arch.sizes[0]), np.array(request["Y"]).reshape(-1, arch.sizes[-1])
            loss, grads = Reference().loss_and_gradients(arch, params, X, Y)
            print(json.dumps({{"loss": loss, "grads": [{{"W": dW.tolist(), "b": db.tolist()}} for dW, db in grads]}}), flush=True)
    '''))
    from chainrule import crosscheck

    implementation = command(f"{sys.executable} {script}")
    try:
        assert implementation.name == "limited" and implementation.losses == ("cross_entropy", "binary_cross_entropy")
        summary = crosscheck(implementation, examples=20, seed=0, oracles=[JUDGE])
    finally:
        implementation.close()
    assert summary.unexercised == ("leaky_relu", "sigmoid", "tanh", "softplus", "elu", "gelu", "silu", "mse", "binary_cross_entropy (needs sigmoid)")
    assert "not exercised" in str(summary)


def _junit(path: Path) -> dict[str, str]:
    """test id -> "passed", "failed: <message>", "error: <message>" or "skipped"."""
    outcomes = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        for kind in ("failure", "error", "skipped"):
            element = case.find(kind)
            if element is not None:
                outcomes[case.get("name")] = f"{kind}: {element.get('message', '')}\n{element.text or ''}"
                break
        else:
            outcomes[case.get("name")] = "passed"
    return outcomes


def test_pytest_runs_the_suite_on_every_source_one_test_id_each(site, tmp_path):
    """One pytest run with every kind of source: the good ones pass, the wrong ones fail naming
    the tensor, a hung one and one that cannot start fail alone, and --chainrule-examples holds."""
    junit = tmp_path / "junit.xml"
    crash = tmp_path / "crash.py"
    crash.write_text("import sys\nsys.exit('ImportError: no model')\n")
    (tmp_path / "chainrule_no_explain.py").write_text(NO_EXPLAIN)
    node = ["--chainrule-cmd", NODE_EXAMPLE] if shutil.which("node") else []
    argv = [
        sys.executable, "-m", "pytest", "tests/suite/test_agreement.py", "-p", "no:cacheprovider", "-q", "-p", "no:xdist", "-p", "chainrule_no_explain",
        "-k", "agrees_with_oracle and finite_differences", "--chainrule-examples", "10", "--hypothesis-show-statistics",
        "--chainrule-impl", "demo_pkg.good:Backprop", "--chainrule-impl", "demo_pkg.wrong:Backprop", "--chainrule-impl", "demo_pkg.hangs:Backprop",
        "--chainrule-cmd", PYTHON_EXAMPLE, *node, "--chainrule-cmd", f"{sys.executable} {crash}",
        "--chainrule-timeout", "1", f"--junitxml={junit}",
    ]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(tmp_path), str(REPO)]))
    result = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    outcomes = _junit(junit)
    test = "test_agrees_with_oracle[finite_differences-{}]".format
    expected_ids = {
        test("reference"), test("impl=demo_pkg.good:Backprop"), test("impl=demo_pkg.wrong:Backprop"), test("impl=demo_pkg.hangs:Backprop"),
        test(f"cmd={PYTHON_EXAMPLE}"), test(f"cmd={sys.executable} {crash}"),
        test("entry=demo-good"), test("entry=demo-wrong"), test("entry=demo-broken"),
    } | ({test(f"cmd={NODE_EXAMPLE}")} if node else set())
    assert set(outcomes) == expected_ids, result.stdout[-3000:]
    for passing in ("reference", "impl=demo_pkg.good:Backprop", f"cmd={PYTHON_EXAMPLE}", "entry=demo-good") + ((f"cmd={NODE_EXAMPLE}",) if node else ()):
        assert outcomes[test(passing)] == "passed", outcomes[test(passing)]
    for wrong in ("impl=demo_pkg.wrong:Backprop", "entry=demo-wrong"):
        assert outcomes[test(wrong)].startswith("failure") and "dL/db[layer 1]" in outcomes[test(wrong)], outcomes[test(wrong)]
    hung = outcomes[test("impl=demo_pkg.hangs:Backprop")]  # shrinking ends on a case it was no longer asked
    assert hung.startswith("failure") and "timeout: did not answer within 1 s" in hung, hung
    assert outcomes[test(f"cmd={sys.executable} {crash}")].startswith("error") and "ImportError: no model" in outcomes[test(f"cmd={sys.executable} {crash}")]
    assert outcomes[test("entry=demo-broken")].startswith("error") and "cannot load" in outcomes[test("entry=demo-broken")]
    # --chainrule-examples: the passing tests ran exactly 10 examples each
    assert result.stdout.count("Stopped because settings.max_examples=10") >= 4, result.stdout[-3000:]
    # the terminal summary names what the partial implementation never exercised, and the hung one
    assert "impl=demo_pkg.good:Backprop: not exercised (outside what it declares it supports): leaky_relu" in result.stdout
    assert "impl=demo_pkg.hangs:Backprop: retired after a fatal fault (timeout)" in result.stdout


def test_pytest_plugin_leaves_other_projects_implementation_fixture_alone(tmp_path):
    (tmp_path / "test_theirs.py").write_text(textwrap.dedent('''
        import pytest

        @pytest.fixture
        def implementation(request):
            assert not hasattr(request, "param"), "parametrized by chainrule's plugin"
            return "theirs"

        def test_uses_their_fixture(implementation):
            assert implementation == "theirs"
    '''))
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", str(tmp_path / "test_theirs.py"), "--rootdir", str(tmp_path), "--chainrule-impl", "x:y"]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0 and "test_uses_their_fixture PASSED" in result.stdout, result.stdout + result.stderr


# What another project's pytest configuration may hold: every warning an error, its own
# ``--max-examples`` option (array-api-tests has one) loading its own profile, as strict as a
# profile gets (a 1 ms deadline, every health check on).
HOST_INI = """
[pytest]
filterwarnings =
    error
"""
HOST_CONFTEST = '''
from hypothesis import settings


def pytest_addoption(parser):
    parser.addoption("--max-examples", type=int, default=100, help="the host project's own option")


def pytest_configure(config):
    settings.register_profile("host", deadline=1, max_examples=config.getoption("--max-examples"))
    settings.load_profile("host")
'''
# A correct implementation whose every call warns, as numpy code at the edges of its range does.
NOISY = '''
import numpy as np

from demo_pkg.good import Backprop as Good


class Backprop(Good):
    name = "noisy-backprop"

    def loss_and_gradients(self, arch, params, X, Y):
        np.log(np.zeros(1))  # RuntimeWarning: divide by zero encountered in log
        return super().loss_and_gradients(arch, params, X, Y)
'''


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """chainrule as its wheel installs it: built from a copy of this checkout and unpacked into a
    directory that goes first on PYTHONPATH, so the checkout (and its editable install) is never
    imported: the suite must bring everything it needs, and nothing from tests/."""
    root = tmp_path_factory.mktemp("wheel")
    # .venv* also leaves out .venv-tf (TensorFlow's, 1.6 GB once ``make thorough`` made it): half a minute of copying
    ignore = shutil.ignore_patterns(".venv*", ".git", ".*_cache", ".hypothesis", "__pycache__", "*.egg-info", "build", "dist", "out", "node_modules")
    shutil.copytree(REPO, root / "checkout", ignore=ignore)
    build = "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    result = subprocess.run([sys.executable, "-c", build, str(root)], capture_output=True, text=True, cwd=root / "checkout", timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with zipfile.ZipFile(root / result.stdout.split()[-1]) as built:
        built.extractall(root / "site")
    return root / "site"


def _pytest_elsewhere(cwd: Path, *paths: Path, args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m pytest ARGS`` in ``cwd`` (outside the checkout) with only ``paths`` on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS_")) and k != "PYTHONPATH"}
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(map(str, paths))
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


@pytest.mark.xdist_group("wheel")  # one worker builds the wheel they share
def test_shipped_suite_runs_from_any_directory_and_rejects_a_wrong_implementation(wheel, site, tmp_path):
    """``pytest -W error --pyargs chainrule.suite --chainrule-impl ...`` from a directory outside
    the checkout, with only the wheel: the correct implementation passes every test (those
    outside what it declares skipped), the wrong one fails naming dL/db[layer 1]."""
    junit = tmp_path / "junit.xml"
    args = [
        "-W", "error", "--pyargs", "chainrule.suite", "-k", "not reference", "--chainrule-no-entry-points", "--chainrule-examples", "10",
        "--chainrule-impl", "demo_pkg.good:Backprop", "--chainrule-impl", "demo_pkg.wrong:Backprop", f"--junitxml={junit}",
    ]
    result = _pytest_elsewhere(tmp_path, wheel, site, args=args)
    out = result.stdout[-3000:] + result.stderr[-3000:]
    assert f"rootdir: {tmp_path}" in result.stdout and "site/chainrule/suite/test_agreement.py" in result.stdout, out  # here, the wheel's suite
    outcomes = _junit(junit)

    def of(spec: str) -> dict[str, str]:
        return {name.replace(spec, "SOURCE"): outcome for name, outcome in outcomes.items() if spec in name}

    good, wrong = of("impl=demo_pkg.good:Backprop"), of("impl=demo_pkg.wrong:Backprop")
    assert good.keys() == wrong.keys() and len(good) + len(wrong) == len(outcomes), sorted(outcomes)
    assert all(outcome == "passed" or outcome.startswith("skipped") for outcome in good.values()), good
    assert sum(outcome == "passed" for outcome in good.values()) >= 6, good  # 3 oracles, 3 metamorphic properties
    agreement = [name for name in wrong if name.startswith("test_agrees_with_oracle")]
    assert len(agreement) == 3, sorted(wrong)
    for name in agreement:
        assert wrong[name].startswith("failure") and "dL/db[layer 1]" in wrong[name], wrong[name]
    assert result.returncode == 1, out


@pytest.mark.xdist_group("wheel")  # one worker builds the wheel they share
def test_host_warning_filters_option_names_and_profile_do_not_change_verdicts(wheel, site, tmp_path):
    """A host project with ``filterwarnings = error``, its own ``--max-examples`` option and a 1 ms
    deadline in its profile, judging a correct implementation that warns on every call: a pass."""
    (tmp_path / "pytest.ini").write_text(HOST_INI)
    (tmp_path / "conftest.py").write_text(HOST_CONFTEST)
    (tmp_path / "noisy.py").write_text(NOISY)
    args = [
        "--pyargs", "chainrule.suite", "-k", "not reference", "--chainrule-no-entry-points", "--max-examples", "5",
        "--chainrule-impl", "noisy:Backprop", "-rA", "-p", "no:xdist",
    ]
    result = _pytest_elsewhere(tmp_path, wheel, site, args=args)
    out = result.stdout[-5000:] + result.stderr[-3000:]
    assert "configfile: pytest.ini" in result.stdout and "site/chainrule/suite/test_agreement.py" in result.stdout, out  # the host's run, the wheel's suite
    passed = re.search(r"(\d+) passed", result.stdout.splitlines()[-1])
    assert result.returncode == 0 and passed and int(passed[1]) >= 6, out  # 3 oracles, 3 metamorphic properties


@pytest.mark.xdist_group("wheel")  # one worker builds the wheel they share
def test_summary_is_printed_once_under_xdist(wheel, site, tmp_path):
    """``-n 2``: the workers load the sources; the controller prints what they were not asked, once."""
    args = [
        "--pyargs", "chainrule.suite", "-n", "2", "-k", "test_metamorphic and good", "--chainrule-no-entry-points", "--chainrule-examples", "3",
        "--chainrule-impl", "demo_pkg.good:Backprop",
    ]
    result = _pytest_elsewhere(tmp_path, wheel, site, args=args)
    assert result.returncode == 0 and "created: 2/2 workers" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    line = "impl=demo_pkg.good:Backprop: not exercised (outside what it declares it supports): leaky_relu, softplus, elu, gelu, silu, softmax, cross_entropy"
    assert " chainrule " in result.stdout and result.stdout.count(line) == 1, result.stdout[-3000:]


def _options(help_text: str) -> set[str]:
    return {line.split()[0].split("=")[0].rstrip(",") for line in help_text.splitlines() if line.startswith("  --")}


def test_every_plugin_option_is_prefixed(tmp_path):
    """The plugin loads into every pytest run of the environment: what it adds to ``pytest --help``
    (with it, less without it) is only ``--chainrule-*`` options."""
    with_plugin = _pytest_elsewhere(tmp_path, args=["--help"], timeout=120)
    without = _pytest_elsewhere(tmp_path, args=["-p", "no:chainrule", "--help"], timeout=120)
    assert with_plugin.returncode == without.returncode == 0, with_plugin.stderr + without.stderr
    added = _options(with_plugin.stdout) - _options(without.stdout)
    assert "--chainrule-impl" in added and "chainrule gradient sources:" in with_plugin.stdout, with_plugin.stdout
    assert all(option.startswith("--chainrule-") for option in added), sorted(added)
