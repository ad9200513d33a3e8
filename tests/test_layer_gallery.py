"""Zero false alarms on layers: the layer gallery's correct sources, written the way their authors
write them (a numpy course assignment with caches, torch.autograd.Functions and jax.custom_vjps
through chainrule's one-call wrappers, plain JavaScript over JSON lines), are accepted by
``chainrule check`` on every layer they declare; the layer bug catalogue (tests/broken_layers.py)
is rejected, each bug on the smallest case with the layer and the wrong input named.

A rejection here of a correct member is a false alarm of the engine, never a reason to harden the
member. In the thorough profile each member is judged on 5 seeds.
"""

import json
import shutil

import numpy as np
import pytest
from hypothesis import settings

from chainrule.cli import main
from chainrule.layers.diagnosis import dim_labels
from chainrule.layers.search import check_layer
from chainrule.layers.strategies import build
from chainrule.oracles.layers import available
from chainrule.sources.implementation import wrap
from tests.broken_layers import BUGS, EXPECTED, THRESHOLDS
from tests.gallery import LAYER_MEMBERS as MEMBERS

THOROUGH = settings.get_current_profile_name().startswith("thorough")
# jax.custom_vjp compiles each new shape (about 0.3 s a call): fewer cases a layer in the default run
EXAMPLES = {"jax_custom_vjp": 15 if THOROUGH else 2}
SEEDS = (1, 2, 3, 4, 5) if THOROUGH else (1,)


def check(capsys, *arguments) -> tuple[int, dict]:
    """``chainrule check ... --json`` in this process (the source in its worker): exit code and document."""
    code = main(["check", *arguments, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("member", [
    pytest.param(m, marks=[pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")] if a[0] == "--cmd" else [])
    for m, a in MEMBERS.items()])
def test_member_is_accepted(capsys, member, seed):
    examples = EXAMPLES.get(member, 50 if THOROUGH else 15)
    code, document = check(capsys, *MEMBERS[member], "--layer-examples", str(examples), "--seed", str(seed))
    failures = [r["counterexample"] for r in document["layers"] if r["counterexample"]]
    assert code == 0 and not failures, json.dumps(failures, indent=1)[:4000]
    assert all(r["status"] in ("agree", "skipped") for r in document["layers"]), document["layers"]
    assert sum(r["agreed"] for r in document["layers"]) >= 4 * len(document["layers"]) // 2


@pytest.fixture(scope="module")
def judges():
    return available()


@pytest.mark.parametrize("bug", list(BUGS))
def test_bug_is_rejected_on_the_smallest_case(bug, judges):
    layer, wrong = EXPECTED[bug]
    result = check_layer(wrap(BUGS[bug]()), layer, judges, examples=60, seed=0)
    assert result.failure is not None, f"{bug} was accepted on {result.agreed} cases of {layer}"
    assert result.failure.case.layer == layer
    assert wrong in result.failure.wrong, (bug, result.failure.wrong)
    assert str(result.diagnosis).startswith("wrong: ")
    big = {n: s for n, s in result.failure.case.shapes.items() if max(s, default=1) > 2}
    if bug in THRESHOLDS:
        what, threshold, _ = THRESHOLDS[bug]
        assert max(max(s) for s in big.values()) == threshold, (bug, big)
        assert any(f"= {threshold}" in need and "passes at" in need for need in result.diagnosis.needs), result.diagnosis
    else:  # no dim above 2, but one the failure needs (it passes one smaller: stride 2 needs W = 3) or the config does (no case one smaller)
        for i, (label, d) in enumerate(zip(dim_labels(result.spec), result.spec.dims)):
            assert d <= 2 or build(result.spec.with_dim(i, d - 1)) is None or any(need.startswith(f"{label} = {d}: it passes at") for need in result.diagnosis.needs), (
                f"{bug}: {label} = {d} in {result.failure.case.describe()}; {result.diagnosis}")


def test_the_counterexample_is_told_as_code(capsys):
    code = main(["check", "tests.broken_layers:softmax_diagonal", "--layers", "softmax", "--seed", "0", "--layer-examples", "20"])
    out = capsys.readouterr().out
    assert code == 1
    assert "is wrong on softmax" in out and "grads['x']" in out
    assert "the diagonal of the Jacobian only" in out
    assert "Reproduce:" in out and "source.vjp('softmax', config, inputs, dy)" in out
    code_ = out.split("Reproduce:\n", 1)[1].split("\n(seed", 1)[0]
    scope: dict = {}
    exec(code_, scope)  # the printed code loads the source and asks it the case: the same wrong answer
    softmax = np.exp(scope["inputs"]["x"]) / np.exp(scope["inputs"]["x"]).sum()
    right = softmax * (scope["dy"] - (scope["dy"] * softmax).sum())
    assert not np.allclose(scope["grads"]["x"], right), scope["grads"]


def test_one_case_from_the_command_line(capsys):
    code, document = check(capsys, "tests.gallery.layers_numpy:CourseLayers", "--layer", "group_norm",
                           "--config", '{"num_groups": 2}', "--shapes", "x=2,4,3 weight=4 bias=4", "--seed", "3")
    assert code == 0 and document["layers"][0]["status"] == "agree", document
    code, document = check(capsys, "tests.broken_layers:gn_per_channel_sums", "--layer", "group_norm",
                           "--config", '{"num_groups": 2}', "--shapes", "x=2,4,3 weight=4 bias=4", "--seed", "3")
    assert code == 1 and document["layers"][0]["counterexample"]["wrong"] == ["x"], document
