"""Declared precision, shown on implementations that really compute in float32 (issue 11, "Show").

- The float32 gallery members (tests/gallery: article_float32 in numpy, plain32.js over
  Float32Array, torch autograd on float32 tensors) are accepted when judged in float32, and
  rejected when judged in float64 with a message that points at float32; each one's bug is
  rejected in float32 with the wrong tensor named.
- The shipped suite, told ``--chainrule-precision float32``, accepts the numpy member.
- Every bug of the catalogue (tests/broken.py) computed in float32 is still caught in float32.

A rejection here of a correct member in its own precision is a false alarm of the engine, never a
reason to harden the member.

In the thorough profile only (``@pytest.mark.thorough``), as a second draw of a path test_gallery
already judges on the same members in every run: each float32 member accepted in float32 by
``crosscheck`` (test_gallery's test_crosscheck_accepts_a_correct_member, which also asserts that a
member declaring a precision is judged in it) and plain32_js by ``chainrule check`` on its
declaration (test_gallery's test_check_command_accepts_a_correct_member[plain32_js], the same
assertion), both here on another seed and more examples; and plain32_js's bug rejected through
``chainrule check`` against finite differences (test_gallery's
test_a_bugged_member_is_rejected_with_the_wrong_tensor_named[plain32_js]).
"""

import shutil
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest

import tests.broken
from chainrule import Architecture, CheckFailure, crosscheck
from chainrule.cli import main
from chainrule.reference import LOSSES
from chainrule.reference.activations import Activation
from chainrule.reference.losses import Loss
from chainrule.status import Status
from tests.broken import BUGS, Broken
from tests.gallery import BUGGED, MEMBERS, PRECISIONS
from tests.test_gallery import REPO, assert_rejected_naming_the_bug, implementation, member_params

EXAMPLES = 80
SEED = 21
BUG_SEED = 22
CATALOGUE_EXAMPLES = 100  # as test_broken's 200 at its seed, halved: every bug shows on a small case
CATALOGUE_SEED = 2026
JUDGE = "finite_differences"  # rejections are shrunk against one judge, as in test_gallery
FLOAT32 = {member: arguments for member, arguments in MEMBERS.items() if PRECISIONS.get(member) == "float32"}
FLOAT32_BUGGED = {member: arguments for member, arguments in BUGGED.items() if member in FLOAT32}
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")


def check(capsys, arguments, *options):
    """``chainrule check`` run here, through ``main`` as ``python -m chainrule`` runs it (the member
    in its worker process or command all the same): (exit code, stdout and stderr). A process of
    its own would only add seconds of imports."""
    code = main(["check", *arguments, *options])
    out, err = capsys.readouterr()
    return code, out + err


def _thorough_for(params, members):
    """``params`` with those of ``members`` marked thorough (run in the thorough profile only)."""
    return [pytest.param(*p.values, id=p.id, marks=[*p.marks, pytest.mark.thorough]) if p.id in members else p for p in params]


# Judged by crosscheck in float32 in test_gallery in every run (60 examples, another seed, its
# declaration asserted there): a second draw, in the thorough profile.
@pytest.mark.thorough
@pytest.mark.parametrize("member, arguments", member_params(FLOAT32))
def test_a_float32_member_is_accepted_in_float32(member, arguments):
    source = implementation(arguments)
    try:
        summary = crosscheck(source, examples=EXAMPLES, seed=SEED)
    finally:
        getattr(source, "close", lambda: None)()
    assert summary.verdicts and not summary.unexercised, str(summary)
    assert "(judged in float32)" in str(summary), f"got no float32 judgement, expected its declaration honoured:\n{summary}"


@pytest.mark.thorough  # test_gallery's test_check_command_accepts_a_correct_member[plain32_js] in every run: a second draw
@needs_node
def test_the_check_command_accepts_plain32_js_by_its_declaration(capsys):
    code, output = check(capsys, FLOAT32["plain32_js"], "--examples", str(EXAMPLES), "--seed", str(SEED))
    assert code == 0, output
    assert output.startswith("plain32-js (judged in float32): "), output


# What a float32 member judged in float64 is told: numpy, torch and JAX hand back float32 arrays, a
# contract fault whose hint says to declare the precision; JSON has no float32, so plain32.js is
# judged on its values, and the diagnosis names float32 arithmetic. Judged by every oracle, as a
# user runs it (against finite differences alone, plain32.js's shrunk case differs only in its
# loss and the diagnosis says nothing of float32).
FLOAT64_MESSAGE = {
    "article_float32": 'fault (type): dL/dW[layer 1] is float32, expected float64 (declare precision = "float32" if it works in float32)',
    "torch_float32": 'fault (type): dL/dW[layer 1] is float32, expected float64 (declare precision = "float32" if it works in float32)',
    "plain32_js": 'Float32 rounding: ',
    "jax_float32": 'fault (type): loss is float32, expected float64 (declare precision = "float32" if it works in float32)',
}


@pytest.mark.parametrize("member, arguments", member_params(FLOAT32))
def test_a_float32_member_judged_in_float64_is_told_about_float32(member, arguments, capsys):
    code, output = check(capsys, arguments, "--examples", str(EXAMPLES), "--seed", str(SEED), "--precision", "float64")
    assert code == 1, output
    assert " is wrong on " in output.splitlines()[0], output
    assert FLOAT64_MESSAGE[member] in output and 'declare precision = "float32"' in output, \
        f"got no word of float32, expected {FLOAT64_MESSAGE[member]!r} and the advice to declare float32:\n{output}"


# plain32_js's bug goes through ``chainrule check`` against finite differences in test_gallery too
# (test_a_bugged_member_is_rejected_with_the_wrong_tensor_named[plain32_js], another seed).
@pytest.mark.parametrize("member, arguments", _thorough_for(member_params(FLOAT32_BUGGED), {"plain32_js"}))
def test_a_float32_members_bug_is_rejected_in_float32_naming_the_tensor(member, arguments, capsys):
    code, output = check(capsys, arguments, "--examples", str(EXAMPLES), "--seed", str(BUG_SEED), "--oracles", JUDGE)
    assert code == 1, output
    name = output.partition(" is wrong on ")[0]
    assert "(bug: " in name, output
    assert_rejected_naming_the_bug(member, name, output)


def test_the_shipped_suite_accepts_the_numpy_float32_member_in_float32():
    def suite(*options):
        argv = [sys.executable, "-m", "pytest", "--pyargs", "chainrule.suite", "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
                "--chainrule-no-entry-points", "--chainrule-examples", "20", "--chainrule-impl", FLOAT32["article_float32"][0], *options]
        return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=600)

    run = suite("--chainrule-precision", "float32")
    assert run.returncode == 0 and " passed" in run.stdout, run.stdout[-3000:]
    # In float64 only the member's rejection is asked for: its first failing test shows it (-x); the
    # reference's tests (they pass in float64, as the default run's tests/suite shows) are left out.
    run = suite("--chainrule-precision", "float64", "-x", "-k", "not reference")
    assert run.returncode == 1 and "is float32, expected float64" in run.stdout, run.stdout[-3000:]


# ---- the catalogue in float32 -------------------------------------------------------------------

def _keeping(dtype, function):
    """``function`` with its array result in ``dtype``: the reference's constants (np.where(z > 0,
    1.0, 0.01)) otherwise widen a float32 array to float64."""
    return None if function is None else (lambda *arrays: np.asarray(function(*arrays)).astype(dtype, copy=False))


class BrokenFloat32(Broken):
    """A catalogue bug computed in float32: params, X and Y cast to float32 once, every activation's
    and loss's array result kept float32, the gradients handed back as float32 arrays."""

    precision = "float32"
    dtype = np.float32
    original_activation = staticmethod(tests.broken._activation)

    def __init__(self, bug: str):
        super().__init__(bug)
        self.name = f"broken-float32:{bug}"

    def activation(self, name: str, bug: str) -> Activation:
        a = self.original_activation(name, bug)
        return Activation(_keeping(self.dtype, a.sigma), _keeping(self.dtype, a.sigma_prime), _keeping(self.dtype, a.vjp))

    def loss_and_gradients(self, arch, params, X, Y):
        cast = [(W.astype(self.dtype), b.astype(self.dtype)) for W, b in params]
        losses = {name: Loss(loss.value, _keeping(self.dtype, loss.output_dZ)) for name, loss in LOSSES.items()}
        with mock.patch.object(tests.broken, "_activation", self.activation), mock.patch.object(tests.broken, "LOSSES", losses):
            loss, grads = super().loss_and_gradients(arch, cast, X.astype(self.dtype), Y.astype(self.dtype))
        if self.bug == "modifies_arguments":  # the float32 update written back into the caller's arrays
            for (W, b), (W32, b32) in zip(params, cast):
                W[...], b[...] = W32, b32
        return loss, grads


def test_the_float32_catalogue_computes_in_float32():
    """Every gradient comes back float32: a step widened to float64 would carry float64 into every
    gradient computed from it."""
    rng = np.random.default_rng(0)
    arch = Architecture.parse("3-gelu-2-leaky_relu-2-softmax-2:cross_entropy")
    params = [(rng.standard_normal((m, n)), rng.standard_normal(m)) for n, m in zip(arch.sizes, arch.sizes[1:])]
    X, Y = rng.standard_normal((4, 3)), np.eye(2)[[0, 1, 1, 0]]
    for bug in BUGS:
        _, grads = BrokenFloat32(bug).loss_and_gradients(arch, [(W.copy(), b.copy()) for W, b in params], X, Y)
        dtypes = {g.dtype.name for pair in grads for g in pair}
        assert dtypes == {"float32"}, f"{bug}: got gradients of {sorted(dtypes)}, expected float32 only"


@pytest.mark.parametrize("bug", list(BUGS))
def test_every_catalogue_bug_in_float32_is_caught_in_float32(bug):
    with pytest.raises(CheckFailure) as failure:
        crosscheck(BrokenFloat32(bug), examples=CATALOGUE_EXAMPLES, seed=CATALOGUE_SEED, isolate=False)
    message = str(failure.value)
    assert failure.value.verdict.status in (Status.DISAGREE, Status.ERROR), message
    assert "is float32, expected float64" not in message, f"got judged in float64, expected float32 as declared:\n{message}"
