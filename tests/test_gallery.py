"""Zero false alarms: the gallery's correct implementations, written the way their authors write
them (tests/gallery: the article literally in numpy, a micrograd-style scalar engine, HIPS
autograd, mygrad, torch, JAX, plain JavaScript), are accepted by ``crosscheck`` and by ``chainrule
check``; each member's one injected bug is rejected, the wrong tensor named. TensorFlow's member
(its own virtual environment, made when absent) is judged in the thorough Hypothesis profile only.

A rejection here of a correct member is a false alarm of the engine, never a reason to harden
the member. ``tests/gallery/sweep.py`` runs the same members on more seeds and examples.
"""

import importlib
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from chainrule import Architecture, CheckFailure, crosscheck
from chainrule.cli import main
from tests.gallery import BUGGED, MEMBERS, PRECISIONS, THOROUGH_BUGGED, THOROUGH_MEMBERS

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = 60  # for crosscheck; then one coverage case per declared pairing (108 for the whole contract)
# Eager JAX compiles every new shape (about 70 ms a call): its members are judged on fewer generated
# cases in the default run, the coverage cases (one per declared pairing, and the wide and deep
# ones) all the same; EXAMPLES in the thorough profile.
JAX_EXAMPLES = EXAMPLES if settings.get_current_profile_name().startswith("thorough") else 10
COMMAND_EXAMPLES = 30  # the command is the way in: fewer, and another seed than crosscheck's
CROSSCHECK_SEED = 11
COMMAND_SEED = 12
BUG_SEED = 13
JUDGE = "finite_differences"  # rejections are shown against one judge (numpy only): shrinking asks it hundreds of times
LIBRARIES = {"autograd": "autograd", "mygrad": "mygrad", "torch_float32": "torch", "torch_float16": "torch", "torch_bfloat16": "torch", "jax_float32": "jax",
             "torch_functional": "torch", "jax_nn": "jax", "autograd_tanh_sigmoid": "autograd"}  # member: the package it needs
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")

# What each bug breaks: the activation whose σ' is wrong, or None when the output layer's σ' is
# left out (then the output layer is the first wrong one, whatever its activation).
BROKEN_ACTIVATION = {
    "article_numpy": "tanh",
    "scalar_engine": "tanh",
    "autograd": "softplus",
    "mygrad": "gelu",
    "plain_js": None,
    "article_float32": "sigmoid",
    "plain32_js": None,
    "torch_float32": "silu",
    "torch_functional": "softplus",
    "jax_nn": "elu",
    "autograd_tanh_sigmoid": "sigmoid",
    "tf": "tanh",
}
# The names the JSON-lines members' bugged variants give themselves in their describe reply.
COMMAND_NAMES = {"plain_js": "plain-js (bug: no sigma' at the output)", "plain32_js": "plain32-js (bug: no sigma' at the output)",
                 "tf": "tf-net (bug: tanh' = 1 - tanh)"}


def member_params(table):
    """One pytest param per member: Node.js ones skipped without node, autograd and mygrad without
    their packages (the ``test`` extra installs them)."""
    params = []
    for member, arguments in table.items():
        marks = [needs_node] if arguments[0] == "--cmd" else []
        if member in LIBRARIES and importlib.util.find_spec(LIBRARIES[member]) is None:
            marks.append(pytest.mark.skip(reason=f"{LIBRARIES[member]} is not installed (pip install -e '.[test]')"))
        params.append(pytest.param(member, arguments, id=member, marks=marks))
    return params


def implementation(arguments):
    """The member itself: an instance for MODULE:ATTR, a started command for ``--cmd``."""
    if arguments[0] == "--cmd":
        from chainrule.sources.jsonlines import command

        return command(arguments[1])
    module, _, attribute = arguments[0].partition(":")
    return getattr(importlib.import_module(module), attribute)()


def check(capsys, arguments, *options):
    """``chainrule check`` run here, through ``main`` as ``python -m chainrule`` runs it (the member
    in its worker process or command all the same): (exit code, stdout and stderr). A process of its
    own would only add seconds of imports."""
    code = main(["check", *arguments, *options])
    out, err = capsys.readouterr()
    return code, out + err


def thorough_for(params, members):
    """``params`` with those of ``members`` marked thorough (run in the thorough profile only)."""
    return [pytest.param(*p.values, id=p.id, marks=[*p.marks, pytest.mark.thorough]) if p.id in members else p for p in params]


# The command line judges every MODULE:ATTR member the same way (a worker process): eager JAX's
# members, a minute each there, go through it in the thorough profile only; crosscheck judges them
# in every run (test_crosscheck_accepts_a_correct_member).
COMMAND_THOROUGH = {"jax_float32", "jax_nn"}


def wrong_tensors(message: str) -> tuple[Architecture, set[tuple[int, str]]]:
    """The counterexample's architecture and the (layer, "W" or "b") it names as differing."""
    case = re.search(r" is wrong on (\S+), N=\d+", message)
    assert case, f"got no counterexample, expected one:\n{message}"
    named = {(int(layer), kind) for kind, layer, count in re.findall(r"dL/d([Wb])\[layer (\d+)\]: (\d+) of \d+ entries differ", message)
             if int(count) > 0}
    return Architecture.parse(case.group(1)), named


def assert_judged_in_its_precision(member: str, summary: str):
    """A member declaring a precision (PRECISIONS) was judged in it, its declaration honoured, and
    the summary's first line says so; the others in float64, which it does not mention."""
    head, declared = summary.splitlines()[0], PRECISIONS.get(member)
    if declared is not None:
        assert f" (judged in {declared}): " in head, f"got no {declared} judgement, expected its declaration honoured:\n{summary}"
    else:
        assert " (judged in " not in head, summary


def assert_rejected_naming_the_bug(member: str, name: str, message: str):
    """The failure is ``name``'s, and the first wrong tensor from the output back is the layer the
    bug breaks: the last layer with the broken activation (or the output layer), not one above it."""
    assert message.startswith(f"{name} is wrong on "), message
    assert "fault (" not in message, f"got a contract fault, expected wrong gradients:\n{message}"
    arch, named = wrong_tensors(message)
    broken = BROKEN_ACTIVATION[member]
    if broken is None:
        assert arch.activations[-1] != "identity", f"identity's σ' is 1, leaving it out is no bug:\n{message}"
        layer = len(arch.activations)
    else:
        assert broken in arch.activations, f"got {arch.activations}, expected {broken} in the counterexample:\n{message}"
        layer = max(l for l, activation in enumerate(arch.activations, start=1) if activation == broken)
    assert named, f"got no tensor named as differing:\n{message}"
    assert max(l for l, _ in named) == layer, f"got {sorted(named)} named, expected layer {layer} to be the first wrong one:\n{message}"


@pytest.mark.parametrize("member, arguments", member_params(MEMBERS))
def test_crosscheck_accepts_a_correct_member(member, arguments):
    source = implementation(arguments)
    try:
        summary = crosscheck(source, examples=JAX_EXAMPLES if LIBRARIES.get(member) == "jax" else EXAMPLES, seed=CROSSCHECK_SEED)
    finally:
        getattr(source, "close", lambda: None)()
    assert summary.verdicts and not summary.unexercised, str(summary)
    assert_judged_in_its_precision(member, str(summary))


@pytest.mark.parametrize("member, arguments", thorough_for(member_params(MEMBERS), COMMAND_THOROUGH))
def test_check_command_accepts_a_correct_member(member, arguments, capsys):
    code, output = check(capsys, arguments, "--examples", str(COMMAND_EXAMPLES), "--seed", str(COMMAND_SEED))
    assert code == 0, output
    assert "not exercised" not in output, output
    assert_judged_in_its_precision(member, output)


@pytest.mark.parametrize("member, arguments", member_params(BUGGED))
def test_a_bugged_member_is_rejected_with_the_wrong_tensor_named(member, arguments, capsys):
    if arguments[0] == "--cmd":  # through the command line, as a JSON-lines user meets it
        code, message = check(capsys, arguments, "--examples", str(EXAMPLES), "--seed", str(BUG_SEED), "--oracles", JUDGE)
        assert code == 1, message
        name = COMMAND_NAMES[member]
    else:
        source = implementation(arguments)
        with pytest.raises(CheckFailure) as failure:
            crosscheck(source, examples=EXAMPLES, seed=BUG_SEED, oracles=[JUDGE])
        message, name = str(failure.value), source.name
    assert_rejected_naming_the_bug(member, name, message)


# Members the shipped-suite run leaves out, with why: the two checks above still judge them.
JAX_COMPILES = "eager JAX compiles every new shape: a minute of the suite's serial run for no new path"
NOT_IN_SUITE_RUN = {"jax_float32": JAX_COMPILES, "jax_nn": JAX_COMPILES}


def _suite(members: dict, *extra: str) -> subprocess.CompletedProcess:
    """The shipped property suite (tests/suite = chainrule.suite) run on these members, not on the
    reference (the default run's own tests/suite judges it, on more examples)."""
    options = []
    for name, spec in members.items():
        if spec[0] == "--cmd" and shutil.which("node") is None or name in NOT_IN_SUITE_RUN:
            continue
        if name in LIBRARIES and importlib.util.find_spec(LIBRARIES[name]) is None:
            continue
        options += ["--chainrule-cmd", spec[1]] if spec[0] == "--cmd" else ["--chainrule-impl", spec[0]]
    argv = [sys.executable, "-m", "pytest", "tests/suite", "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
            "--chainrule-no-entry-points", "--chainrule-examples", "20", "-k", "not reference", *options, *extra]
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=600)


# In two runs of about the same length, one on each xdist worker.
SUITE_HALVES = {"torch": {m: a for m, a in MEMBERS.items() if LIBRARIES.get(m) == "torch"},
                "others": {m: a for m, a in MEMBERS.items() if LIBRARIES.get(m) != "torch"}}


@pytest.mark.parametrize("half", list(SUITE_HALVES))
def test_the_shipped_suite_accepts_the_gallery(half):
    run = _suite(SUITE_HALVES[half])
    assert run.returncode == 0 and " passed" in run.stdout, run.stdout[-3000:]


def test_the_shipped_suite_rejects_a_gallery_bug():
    run = _suite({"article_numpy": BUGGED["article_numpy"]}, "-x")  # its first failing test shows it
    assert run.returncode == 1 and "ArticleNumpyWrongTanh" in run.stdout, run.stdout[-3000:]


# The thorough profile's members (TensorFlow, ~1.6 GB in .venv-tf): the same two checks through the
# command line. The profile may carry a suffix ("thorough-with-verbose-verbosity").
thorough_only = pytest.mark.skipif(not settings.get_current_profile_name().startswith("thorough"),
                                   reason="the thorough Hypothesis profile only (--hypothesis-profile=thorough)")


@pytest.fixture(scope="module")
def tf_venv():
    """.venv-tf, made by scripts/tf-venv.sh when absent (a minute or more: a large download)."""
    subprocess.run(["bash", "scripts/tf-venv.sh"], cwd=REPO, check=True, timeout=1800)


@thorough_only
@pytest.mark.xdist_group("tensorflow")  # one worker makes .venv-tf
@pytest.mark.parametrize("member, arguments", list(THOROUGH_MEMBERS.items()), ids=list(THOROUGH_MEMBERS))
def test_check_command_accepts_a_thorough_member(tf_venv, member, arguments, capsys):
    code, output = check(capsys, arguments, "--examples", str(COMMAND_EXAMPLES), "--seed", str(COMMAND_SEED))
    assert code == 0, output
    assert "not exercised" not in output, output


@thorough_only
@pytest.mark.xdist_group("tensorflow")
@pytest.mark.parametrize("member, arguments", list(THOROUGH_BUGGED.items()), ids=list(THOROUGH_BUGGED))
def test_a_bugged_thorough_member_is_rejected_with_the_wrong_tensor_named(tf_venv, member, arguments, capsys):
    code, message = check(capsys, arguments, "--examples", str(EXAMPLES), "--seed", str(BUG_SEED), "--oracles", JUDGE)
    assert code == 1, message
    assert_rejected_naming_the_bug(member, COMMAND_NAMES[member], message)


@thorough_only
@pytest.mark.xdist_group("tensorflow")
def test_tensorflows_float32_constants_in_float64_are_named(tf_venv, capsys):
    """tf.nn.leaky_relu's slope and tf.nn.gelu's 1/sqrt(2) are float32 constants in float64 code
    (TensorFlow 2.21): wrong on ordinary values by 2e-8, and the diagnosis names the constant."""
    code, message = check(capsys, ["--cmd", f"{THOROUGH_MEMBERS['tf'][1]} --tf-nn"], "--examples", str(COMMAND_EXAMPLES), "--seed", str(COMMAND_SEED))
    assert code == 1, message
    assert "Float32 rounding" in message and ("float32(0.01)" in message or "float32(0.7071067812)" in message), message
