"""Faults never give a wrong verdict: every way a plug-in can misbehave has its own message and
exit code (docs/contract.md), never a traceback and never a pass.

The fake plug-ins are written to a temporary directory: Python classes in a module, and one
command that misbehaves in the way its first argument names. ``chainrule check`` runs the Python
ones in a worker process, which checks their answers where the original objects are (a float32
array, an argument modified in place): the faults and their messages are the same as in-process.
The worker processes' own endings (exit, signal, memory) are tests/test_isolation.py's.
"""

import gc
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from chainrule.case import Case
from chainrule.cli import main
from chainrule.judge import judge
from chainrule.oracles.registry import available
from chainrule.reference import Architecture, Reference
from chainrule.search import CheckFailure, crosscheck
from chainrule.sources.ask import answer
from chainrule.sources.faults import Fault, LoadError
from chainrule.sources.implementation import with_timeout, wrap
from chainrule.sources.jsonlines import command
from chainrule.sources.load import load

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = "12"
ORACLE = "finite_differences"  # any judge will do for faults; this one needs only numpy

PYTHON_FAKES = '''
import threading
from pathlib import Path

import numpy as np
from chainrule.reference import Reference

RELEASE = threading.Event()  # the test session lets the hung call go at the end
CALLS = Path(__file__).with_name("hangs.calls")  # one line per call of Hangs, in whichever process it runs


def right(arch, params, X, Y):
    return Reference().loss_and_gradients(arch, params, X, Y)


class Raises:
    def loss_and_gradients(self, arch, params, X, Y):
        raise RuntimeError("out of memory")


class Exits:
    def loss_and_gradients(self, arch, params, X, Y):
        raise SystemExit(3)


class WrongLayers:
    def loss_and_gradients(self, arch, params, X, Y):
        loss, grads = right(arch, params, X, Y)
        return loss, grads + grads[:1]


class WrongShape:
    def loss_and_gradients(self, arch, params, X, Y):
        loss, grads = right(arch, params, X, Y)
        return loss, [(dW.ravel(), db) for dW, db in grads]


class NotAPair:
    def loss_and_gradients(self, arch, params, X, Y):
        loss, grads = right(arch, params, X, Y)
        return {"loss": loss, "grads": grads}


class LossAsText:
    def loss_and_gradients(self, arch, params, X, Y):
        loss, grads = right(arch, params, X, Y)
        return str(loss), grads


class Float32:
    def loss_and_gradients(self, arch, params, X, Y):
        loss, grads = right(arch, params, X, Y)
        return loss, [(dW.astype(np.float32), db) for dW, db in grads]


class Complex:
    def loss_and_gradients(self, arch, params, X, Y):
        loss, grads = right(arch, params, X, Y)
        return loss, [(dW + 0j, db) for dW, db in grads]


class NaNLoss:
    def loss_and_gradients(self, arch, params, X, Y):
        return float("nan"), right(arch, params, X, Y)[1]


class InfGradient:
    def loss_and_gradients(self, arch, params, X, Y):
        loss, grads = right(arch, params, X, Y)
        grads[-1][1][0] = np.inf
        return loss, grads


class Modifies:
    def loss_and_gradients(self, arch, params, X, Y):
        params[0][0][...] -= 0.01  # the update step, on the caller's weights
        return right(arch, params, X, Y)


class ReplacesParams:
    def loss_and_gradients(self, arch, params, X, Y):
        answer = right(arch, params, X, Y)
        params.clear()
        return answer


class Stateful:
    def __init__(self):
        self.calls = 0

    def loss_and_gradients(self, arch, params, X, Y):
        self.calls += 1
        loss, grads = right(arch, params, X, Y)
        return loss, [(dW, db + self.calls) for dW, db in grads]


class Hangs:
    def loss_and_gradients(self, arch, params, X, Y):
        with CALLS.open("a") as calls:
            calls.write("called\\n")
        RELEASE.wait(120)
        return right(arch, params, X, Y)


class CannotConstruct:
    def __init__(self):
        raise OSError("no GPU")


class DeclaresUnknown:
    activations = ("relu", "swish")

    def loss_and_gradients(self, arch, params, X, Y):
        return right(arch, params, X, Y)
'''

COMMAND_FAKE = '''
import json
import sys
import time

sys.path.insert(0, {repo!r})
mode = sys.argv[1]


def say(text):
    sys.stdout.write(text + "\\n")
    sys.stdout.flush()


def right(request):
    import numpy as np
    from chainrule.reference import Architecture, Reference

    arch = Architecture(request["sizes"], request["activations"], request["loss"])
    params = [(np.array(p["W"], dtype=float).reshape(m, n), np.array(p["b"], dtype=float))
              for p, n, m in zip(request["params"], arch.sizes, arch.sizes[1:])]
    X = np.array(request["X"], dtype=float).reshape(-1, arch.sizes[0])
    Y = np.array(request["Y"], dtype=float).reshape(-1, arch.sizes[-1])
    loss, grads = Reference().loss_and_gradients(arch, params, X, Y)
    return loss, [{{"W": dW.tolist(), "b": db.tolist()}} for dW, db in grads]


def shaped(request):
    """An answer of the right shape (zeros): enough for every fault, and quick without numpy."""
    sizes = request["sizes"]
    return 0.5, [{{"W": [[0.0] * n for _ in range(m)], "b": [0.0] * m}} for n, m in zip(sizes, sizes[1:])]


if mode == "crash-at-start":
    sys.stderr.write("Traceback (most recent call last):\\n  ...\\nRuntimeError: cannot open the model\\n")
    sys.exit(3)
if mode == "prints-at-start":
    say("loading the model...")
if mode == "hangs-at-start":
    time.sleep(120)

asked = 0
for line in sys.stdin:
    request = json.loads(line)
    if request.get("describe"):
        say(json.dumps({{"activations": ["swish"]}} if mode == "unknown-activation" else {{"name": "fake-" + mode}}))
        continue
    asked += 1
    if mode == "hangs":
        time.sleep(120)
    if mode == "exits" and asked == 2:
        sys.stderr.write("MemoryError: fake\\n")
        sys.exit(1)
    if mode == "error":
        say(json.dumps({{"error": "out of memory"}}))
        continue
    if mode == "malformed":
        say("{{loss: 0.5}}")
        continue
    if mode == "truncated":
        say('{{"loss": 0.5, "grads": [{{"W": [[0.1')
        continue
    if mode == "debug-print":
        say("computing the gradients...")
    if mode == "not-a-response":
        say(json.dumps({{"debug": asked}}))
    loss, grads = right(request) if mode == "ok" else shaped(request)
    if mode == "layers":
        grads = grads[:-1]
    if mode == "shape":
        grads[0]["W"] = grads[0]["W"][0]
    if mode == "type":
        loss = str(loss)
    if mode == "null":
        grads[0]["b"][0] = None
    if mode == "nan":
        grads[-1]["W"][0][0] = float("nan")  # Python's json writes NaN, which is not JSON
    if mode == "null-loss":
        loss = None
    if mode == "stateful":
        grads[-1]["b"] = [v + asked for v in grads[-1]["b"]]
    say(json.dumps({{"loss": loss, "grads": grads}}))
'''


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    """The directory with the fakes, on sys.path for the module's tests; the hung thread released after."""
    root = tmp_path_factory.mktemp("fakes")
    (root / "chainrule_fakes.py").write_text(PYTHON_FAKES)
    (root / "fake_command.py").write_text(COMMAND_FAKE.format(repo=str(REPO)))
    sys.path.insert(0, str(root))
    yield root
    module = sys.modules.pop("chainrule_fakes", None)
    if module is not None:
        module.RELEASE.set()
    sys.path.remove(str(root))


def _cmd(fakes, mode: str) -> str:
    return f"{sys.executable} {fakes / 'fake_command.py'} {mode}"


def _check(capsys, *argv) -> tuple[int, str, str]:
    code = main(["check", *argv, "--examples", EXAMPLES, "--seed", "0", "--oracles", ORACLE])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


PYTHON_FAULTS = {
    "Raises": ("raised", "raised RuntimeError: out of memory"),
    "Exits": ("raised", "raised SystemExit: 3"),
    "WrongLayers": ("layers", "returned gradients for 2 layers, the network has 1"),
    "WrongShape": ("shape", "dL/dW[layer 1] has shape (1,), expected (1, 1)"),
    "NotAPair": ("type", "returned dict, expected a (loss, grads) pair"),
    "LossAsText": ("type", "loss is str"),
    "Float32": ("type", "dL/dW[layer 1] is float32, expected float64"),
    "Complex": ("type", "dtype complex128"),
    "NaNLoss": ("non-finite", "loss is nan"),
    "InfGradient": ("non-finite", "dL/db[layer 1] contains NaN or Inf"),
    "Modifies": ("modified-arguments", "modified its arguments in place: W[layer 1]"),
    "ReplacesParams": ("modified-arguments", "the params list"),
    "Stateful": ("stateful", "state kept between calls"),
}


@pytest.mark.parametrize("fake", list(PYTHON_FAULTS))
def test_python_fault_is_the_verdict_with_exit_1(fakes, capsys, fake):
    kind, message = PYTHON_FAULTS[fake]
    code, out, _ = _check(capsys, f"chainrule_fakes:{fake}")
    assert code == 1
    assert f"fault ({kind}): " in out and message in out, out
    assert out.splitlines()[0].endswith("N=1"), "a fault on every case shrinks to the smallest one"
    assert "Reproduce:" in out and "Architecture.parse('1-" in out


@pytest.mark.parametrize(
    "target, message",
    [("chainrule_fakes:CannotConstruct", "cannot construct CannotConstruct(): OSError: no GPU"), ("chainrule_fakes:DeclaresUnknown", "unknown activations ['swish']")],
    ids=["constructor-raises", "declares-unknown-activation"],
)
def test_python_plugin_that_cannot_load_exits_2(fakes, capsys, target, message):
    code, out, err = _check(capsys, target)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_hung_python_call_is_a_timeout_asked_once_then_retired(fakes, capsys):
    """In its worker process (killed: it is not asked again, nor restarted while shrinking), then
    in this process (the thread abandoned to the call)."""
    calls = fakes / "hangs.calls"
    calls.unlink(missing_ok=True)
    start = time.monotonic()
    code, out, _ = _check(capsys, "chainrule_fakes:Hangs", "--timeout", "0.3")
    assert code == 1 and "fault (timeout): did not answer within 0.3 s (call 1): its worker process was killed" in out, out
    assert time.monotonic() - start < 10
    assert calls.read_text().count("\n") == 1, "a hung implementation must not be asked again while shrinking"
    assert "chainrule_fakes" not in sys.modules, "the judges' process imported the implementation"
    hung = load("chainrule_fakes:Hangs")
    case = Case(Architecture.parse("2-relu-1:mse"), [(np.ones((1, 2)), np.zeros(1))], np.ones((1, 2)), np.ones((1, 1)))
    with pytest.raises(CheckFailure) as caught:
        crosscheck(hung, examples=5, seed=0, oracles=[ORACLE], timeout=0.2)
    assert caught.value.verdict.fault.kind == "timeout"
    verdict = judge(hung, case, available([ORACLE]))
    assert verdict.fault.kind == "stopped" and "timeout" in verdict.fault.message
    assert calls.read_text().count("\n") == 2
    # the others are checked as usual
    assert not judge(load("reference:Reference"), case, available([ORACLE])).failed


COMMAND_FAULTS = {
    "error": ("raised", "answered with an error: out of memory"),
    "exits": ("exited", "exited with status 1 before answering request 2; its stderr: MemoryError: fake"),
    "malformed": ("protocol", "wrote '{loss: 0.5}' on stdout, which is not JSON"),
    "truncated": ("protocol", "wrote a truncated response"),
    "debug-print": ("protocol", "wrote 'computing the gradients...' on stdout"),
    "not-a-response": ("protocol", 'wrote \'{"debug": 1}\''),
    "hangs": ("timeout", "did not answer request 1 within 0.5 s: killed"),
    "layers": ("layers", "returned gradients for 0 layers, the network has 1"),
    "shape": ("shape", "dL/dW[layer 1] has shape (1,), expected (1, 1)"),
    "type": ("type", "loss is str"),
    "null": ("non-finite", "dL/db[layer 1] contains null (JSON has no NaN or Infinity"),
    "nan": ("non-finite", "dL/dW[layer 1] contains NaN or Inf"),
    "null-loss": ("non-finite", "loss is null"),
    "stateful": ("stateful", "state kept between calls"),
}


@pytest.mark.parametrize("mode", list(COMMAND_FAULTS))
def test_command_fault_is_the_verdict_with_exit_1(fakes, capsys, mode):
    kind, message = COMMAND_FAULTS[mode]
    start = time.monotonic()
    timeout = ["--timeout", "0.5"] if mode == "hangs" else []  # the others import numpy on their first answer
    code, out, _ = _check(capsys, "--cmd", _cmd(fakes, mode), *timeout)
    assert code == 1
    assert f"fault ({kind}): " in out and message in out, out
    assert "Reproduce:" in out
    assert time.monotonic() - start < 20


@pytest.mark.parametrize(
    "spec, message",
    [
        ("no-such-program-anywhere --flag", "cannot start 'no-such-program-anywhere': No such file or directory"),
        ("crash-at-start", "exited with status 3 before answering the first request, {\"describe\": true}; its stderr: RuntimeError: cannot open the model"),
        ("prints-at-start", "wrote 'loading the model...' on stdout, which is not JSON"),
        ("unknown-activation", "declares unknown activations ['swish']"),
        ("'unbalanced", "cannot split the command line"),
    ],
    ids=["not-found", "crash-at-start", "prints-at-start", "unknown-activation", "bad-quoting"],
)
def test_command_that_cannot_start_exits_2(fakes, capsys, spec, message):
    if not spec.startswith(("no-such", "'")):
        spec = _cmd(fakes, spec)
    code, out, err = _check(capsys, "--cmd", spec)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_command_that_hangs_at_start_is_killed_and_cannot_load(fakes):
    start = time.monotonic()
    with pytest.raises(LoadError, match=r"did not answer the first request, \{\"describe\": true\} within 0.3 s: killed"):
        command(_cmd(fakes, "hangs-at-start"), startup_timeout=0.3)
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("mode", ["hangs", "exits", "debug-print"])
def test_after_a_fatal_command_fault_the_process_is_gone_and_never_asked_again(fakes, mode):
    implementation = command(_cmd(fakes, mode), timeout=0.5 if mode == "hangs" else 10)
    case = Case(Architecture.parse("2-relu-1:mse"), [(np.ones((1, 2)), np.zeros(1))], np.ones((1, 2)), np.ones((1, 1)))
    try:
        with pytest.raises(Fault) as first:
            for _ in range(2):
                answer(implementation, case.arch, case.params, case.X, case.Y)
        assert first.value.fatal
        assert implementation.source._process.poll() is not None, "the process must be stopped"
        start = time.monotonic()
        verdict = judge(implementation, case, available([ORACLE]))
        assert verdict.fault.kind == "stopped" and time.monotonic() - start < 0.5
    finally:
        implementation.close()


def test_faulty_command_does_not_stop_another(fakes):
    """Two commands in one run (as in a report): one dies, the other still answers."""
    dying, healthy = command(_cmd(fakes, "exits")), command(_cmd(fakes, "ok"))
    case = Case(Architecture.parse("2-relu-1:mse"), [(np.ones((1, 2)), np.zeros(1))], np.ones((1, 2)), np.ones((1, 1)))
    try:
        judges = available([ORACLE])
        assert [judge(dying, case, judges).failed for _ in range(3)] == [True] * 3
        assert not judge(healthy, case, judges).failed
    finally:
        dying.close()
        healthy.close()


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_a_command_started_through_a_shell_is_stopped_with_all_it_started(fakes):
    implementation = command(f"sh -c '{_cmd(fakes, 'hangs')}'", timeout=0.3)
    case = Case(Architecture.parse("2-relu-1:mse"), [(np.ones((1, 2)), np.zeros(1))], np.ones((1, 2)), np.ones((1, 1)))
    try:
        verdict = judge(implementation, case, available([ORACLE]))
        assert verdict.fault.kind == "timeout"
        assert implementation.source._process.poll() is not None
    finally:
        implementation.close()


class _Sleeps:
    """Answers right, after a pause."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def loss_and_gradients(self, arch, params, X, Y):
        time.sleep(self.seconds)
        return Reference().loss_and_gradients(arch, params, X, Y)


def _threads_settle_to(count: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while threading.active_count() > count and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)
    return threading.active_count() <= count


def test_worker_threads_are_reused_and_end():
    """Each implementation's calls share one worker thread; it ends when the implementation is
    collected, and a thread abandoned to a hung call ends when that call returns."""
    case = Case(Architecture.parse("2-tanh-1:mse"), [(np.ones((1, 2)), np.zeros(1))], np.ones((1, 2)), np.ones((1, 1)))
    before = threading.active_count()
    for _ in range(10):
        implementation = wrap(_Sleeps(0.0))
        for _ in range(3):
            answer(implementation, case.arch, case.params, case.X, case.Y)
        assert threading.active_count() <= before + 1, "a new thread per call or per implementation kept"
    del implementation
    assert _threads_settle_to(before), f"{threading.active_count() - before} worker threads outlived their implementations"
    slow = with_timeout(wrap(_Sleeps(0.5)), 0.1)
    with pytest.raises(Fault) as caught:
        answer(slow, case.arch, case.params, case.X, case.Y)
    assert caught.value.kind == "timeout"
    assert _threads_settle_to(before), "the thread abandoned to a hung call did not end after the call returned"
