"""Python plug-ins run in a worker process (docs/contract.md, "Command line"): the hostile
gallery (tests/hostile/), each judged by ``chainrule check``, ``crosscheck`` and the pytest
options.

A plug-in that ends its process in any way gets a fault of its own kind and message, exit 1,
never a pass and never a traceback of chainrule's own, within the time limit plus a few seconds;
one that only changes global settings (numpy's error state, warning filters, torch's default
dtype, JAX's x64 flag, the working directory, sys.path) gets the verdict of its well-behaved
twin (tests/hostile/twin.py), and this process, the judges', never imports it.
"""

import os
import subprocess
import sys
import time
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from chainrule.case import Case
from chainrule.cli import main
from chainrule.judge import judge
from chainrule.oracles.registry import available
from chainrule.reference import Architecture
from chainrule.search import CheckFailure, crosscheck
from chainrule.sources.ask import answer
from chainrule.sources.faults import Fault
from chainrule.sources.implementation import IN_PROCESS
from chainrule.sources.load import open_source
from chainrule.sources.worker import WORKER

REPO = Path(__file__).resolve().parents[1]
JUDGE = "finite_differences"  # numpy only: the faults need no other judge
HANG = 3.0  # seconds: --timeout for the plug-in that holds the GIL
SLACK = 8.0  # seconds beyond the time limit a verdict may take (a worker starts, cases are judged, a 2-core CI)
GB = 1_000_000_000

# plug-in -> (spec, options, fault kind, what the message says)
ENDINGS = {
    "os._exit(0) at call 3": ("tests.hostile.faulty:ExitsZeroAtCall3", [], "exited", ["its worker process exited with status 0 during call 3"]),
    "os._exit(1) at call 3": ("tests.hostile.faulty:ExitsOneAtCall3", [], "exited", ["its worker process exited with status 1 during call 3"]),
    "SIGSEGV": (
        "tests.hostile.faulty:Segfaults", [], "crashed",
        ["its worker process was killed by signal 11 (SIGSEGV, a segmentation fault", "during call 1",
         "its stderr: Fatal Python error: Segmentation fault, at File", 'faulty.py", line'],
    ),
    "SIGKILL of itself": (
        "tests.hostile.faulty:KillsItself", [], "crashed",
        ["its worker process was killed by signal 9 (SIGKILL, sent by itself, another process, or the kernel's out-of-memory killer) during call 1"],
    ),
    "holds the GIL": (
        "tests.hostile.faulty:HoldsTheGIL", ["--timeout", f"{HANG:g}"], "timeout",
        [f"did not answer within {HANG:g} s (call 1): its worker process was killed; it was at File", " in match, called from File", "in loss_and_gradients"],
    ),
    "2 GB under a 1 GB limit": (
        "tests.hostile.faulty:AllocatesTwoGB", ["--memory-limit", str(GB)], "memory",
        [f"ran out of memory: its worker process may use {GB} bytes (0.931 GiB, --memory-limit); ", "Unable to allocate 2.00 GiB"],
    ),
}
# plug-in -> (spec, the judge of its verdict). numpy's error state and the warning filters would
# crash the judges (FloatingPointError, HypothesisDeprecationWarning) if they crossed over; torch's
# default dtype, JAX's x64 flag (the JAX oracle sets it for itself: judged by finite differences
# here, JAX compiling every case's shape is slow), the working directory and sys.path are checked
# in this process after the verdict.
SETTINGS = {
    'np.seterr(all="raise")': ("tests.hostile.seterr_raise:Backprop", JUDGE),
    'warnings.simplefilter("error")': ("tests.hostile.warnings_error:Backprop", JUDGE),
    "torch.set_default_dtype(torch.float32)": ("tests.hostile.torch_float32:Backprop", "torch"),
    "JAX x64 off": ("tests.hostile.jax_x32:Backprop", JUDGE),
    "os.chdir, sys.path": ("tests.hostile.moves:Backprop", JUDGE),
}
TWIN = "tests.hostile.twin:Polite"


@pytest.fixture(scope="module", autouse=True)
def _judges_loaded():
    """The judges imported and built once, before any verdict is timed."""
    available()


def _module(spec: str) -> str:
    return spec.partition(":")[0]


def _global_state() -> dict:
    """What a plug-in's settings would change in this process if they crossed over (the
    frameworks imported first: torch adds warning filters of its own on import)."""
    state = {}
    for framework, read in (("torch", lambda torch: torch.get_default_dtype()), ("jax", lambda jax: jax.config.jax_enable_x64)):
        try:
            state[framework] = read(__import__(framework))
        except ImportError:
            pass
    return state | {"numpy": np.geterr(), "warnings": list(warnings.filters), "cwd": os.getcwd(), "sys.path": list(sys.path)}


def _verdict(out: str) -> tuple[str, ...]:
    """A passing check's counts: the cases and how they went, the coverage cases (the sizes it
    chose within its time budget are left out: they depend on the machine's speed)."""
    first = out.splitlines()[0]
    return (first.split(";")[0],) + tuple(part.strip() for part in first.split(";") if "coverage cases" in part)


def _check(capsys, spec: str, *options: str) -> tuple[int, str, str, float]:
    start = time.monotonic()
    code = main(["check", spec, "--examples", "5", "--seed", "0", *options])
    seconds = time.monotonic() - start
    out, err = capsys.readouterr()
    return code, out, err, seconds


@pytest.mark.parametrize("plugin", list(ENDINGS))
def test_check_gives_every_way_a_worker_ends_its_own_fault(capsys, plugin):
    spec, options, kind, messages = ENDINGS[plugin]
    code, out, err, seconds = _check(capsys, spec, "--oracles", JUDGE, *options)
    assert code == 1, out + err
    assert f"fault ({kind}): " in out and all(message in out for message in messages), out
    assert "Traceback" not in out + err
    assert seconds < (HANG if kind == "timeout" else 0) + SLACK, f"{plugin}: the verdict took {seconds:.1f} s"


@pytest.mark.parametrize("plugin", list(SETTINGS))
def test_check_keeps_a_plugins_global_settings_in_its_worker(capsys, plugin):
    spec, oracle = SETTINGS[plugin]
    before = _global_state()
    code, out, err, _ = _check(capsys, spec, "--oracles", oracle)
    assert _module(spec) not in sys.modules, "the judges' process imported the plug-in"
    assert _global_state() == before
    twin = _check(capsys, TWIN, "--oracles", oracle)
    assert (code, _verdict(out)) == (twin[0], _verdict(twin[1])), out + err  # the same cases, the same verdict
    assert code == 0 and "not isolated" not in out


def test_in_process_runs_it_here_and_by_default_elsewhere(capsys, tmp_path, monkeypatch):
    where = tmp_path / "where"
    monkeypatch.setenv("CHAINRULE_WHERE", str(where))
    for option, here in (([], False), (["--in-process"], True)):
        where.unlink(missing_ok=True)
        code, out, _, _ = _check(capsys, "tests.hostile.where:Backprop", "--oracles", JUDGE, *option)
        pids = set(map(int, where.read_text().split()))
        assert code == 0 and (pids == {os.getpid()}) is here, (option, pids)
        assert ("not isolated: it ran in chainrule's own process, as asked (--in-process" in out) is here, out


def test_what_a_plugin_prints_reaches_stderr_never_the_protocol(capsys):
    code, out, err, _ = _check(capsys, "tests.hostile.noisy:Backprop", "--oracles", JUDGE)
    assert code == 0 and "noise" not in out, out
    assert "noise from print()" in err and "noise from fd 1" in err


@pytest.mark.parametrize("plugin", ["os._exit(0) at call 3", "SIGSEGV", "2 GB under a 1 GB limit"])
def test_crosscheck_gives_a_fault_for_a_spec_and_for_an_object(plugin):
    """A spec runs in a worker; so does an object that pickles (its class importable)."""
    spec, options, kind, messages = ENDINGS[plugin]
    memory = int(options[-1]) if "--memory-limit" in options else None
    module, _, name = spec.partition(":")
    for source in (spec, getattr(__import__(module, fromlist=[name]), name)()):
        with pytest.raises(CheckFailure) as caught:
            crosscheck(source, examples=5, seed=0, oracles=[JUDGE], memory_limit=memory)
        fault = caught.value.verdict.fault
        assert fault is not None and fault.kind == kind and all(message in fault.message for message in messages[:1]), fault


def test_crosscheck_keeps_global_settings_in_the_worker():
    before = _global_state()
    spec, oracle = SETTINGS['np.seterr(all="raise")']
    summary = crosscheck(spec, examples=10, seed=1, oracles=[oracle])
    assert _module(spec) not in sys.modules and _global_state() == before
    twin = crosscheck(TWIN, examples=10, seed=1, oracles=[oracle])
    assert _verdict(str(summary)) == _verdict(str(twin)) and summary.isolation == WORKER


class _Unpicklable:
    """A correct implementation that holds a lock: it cannot be pickled into a worker."""

    name = "unpicklable"
    activations = ("identity", "relu")
    losses = ("mse",)

    def __init__(self):
        import threading

        from chainrule.reference import Reference

        self.lock, self.reference = threading.Lock(), Reference()

    def loss_and_gradients(self, arch, params, X, Y):
        return self.reference.loss_and_gradients(arch, params, X, Y)


def test_crosscheck_runs_an_object_it_cannot_send_in_process_and_says_so():
    from tests.hostile.twin import Polite

    sent = crosscheck(Polite(), examples=3, seed=0, oracles=[JUDGE])
    assert sent.isolation == WORKER and "not isolated" not in str(sent)
    kept = crosscheck(_Unpicklable(), examples=3, seed=0, oracles=[JUDGE])
    assert kept.isolation.startswith(IN_PROCESS) and "does not pickle" in kept.isolation
    assert "not isolated: it ran in chainrule's own process: it cannot be sent to a worker process: it does not pickle (TypeError: " in str(kept)
    asked = crosscheck(Polite(), examples=3, seed=0, oracles=[JUDGE], isolate=False)
    assert "not isolated: it ran in chainrule's own process, as asked" in str(asked)


def test_a_worker_that_ended_is_retired_not_restarted():
    implementation = open_source("impl", "tests.hostile.faulty:ExitsZeroAtCall3")
    case = Case(Architecture.parse("2-relu-1:mse"), [(np.ones((1, 2)), np.zeros(1))], np.ones((1, 2)), np.ones((1, 1)))
    try:
        answer(implementation, case.arch, case.params, case.X, case.Y)  # calls 1 and 2
        with pytest.raises(Fault) as first:
            answer(implementation, case.arch, case.params, case.X, case.Y)
        assert first.value.kind == "exited" and implementation.source._process.poll() == 0
        start = time.monotonic()
        verdict = judge(implementation, case, available([JUDGE]))
        assert verdict.fault.kind == "stopped" and "exited with status 0 during call 3" in verdict.fault.message
        assert time.monotonic() - start < 0.5 and implementation.source.requests == 3, "asked again after it ended"
    finally:
        implementation.close()


def _junit(path: Path) -> dict[str, str]:
    outcomes = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        element = next((case.find(kind) for kind in ("failure", "error", "skipped") if case.find(kind) is not None), None)
        outcomes[case.get("name")] = "passed" if element is None else f"{element.tag}: {element.get('message', '')}\n{element.text or ''}"
    return outcomes


def test_pytest_options_judge_the_gallery(tmp_path):
    """One pytest run of the property suite with gallery plug-ins as --chainrule-impl: each ending
    fails its own test with its fault, each setting passes as its twin does."""
    endings = ["os._exit(1) at call 3", "SIGKILL of itself", "holds the GIL", "2 GB under a 1 GB limit"]
    settings = ['warnings.simplefilter("error")']  # pytest's own filterwarnings is the host's: untouched
    specs = [ENDINGS[p][0] for p in endings] + [SETTINGS[p][0] for p in settings]
    junit = tmp_path / "junit.xml"
    argv = [
        sys.executable, "-m", "pytest", "tests/suite/test_agreement.py", "-p", "no:cacheprovider", "-q", "-p", "no:xdist",
        "-k", f"agrees_with_oracle and {JUDGE}", "--chainrule-no-entry-points", "--chainrule-examples", "5",
        "--chainrule-timeout", f"{HANG:g}", "--chainrule-memory-limit", str(GB), f"--junitxml={junit}",
        *[option for spec in specs for option in ("--chainrule-impl", spec)],
    ]
    start = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=300)
    outcomes = _junit(junit)
    test = f"test_agrees_with_oracle[{JUDGE}-impl={{}}]".format
    for plugin in endings:
        spec, _, kind, messages = ENDINGS[plugin]
        outcome = outcomes[test(spec)]
        assert outcome.startswith("failure") and f"{kind}: " in outcome and messages[0] in outcome, outcome
    for spec in [SETTINGS[p][0] for p in settings]:
        assert outcomes[test(spec)] == "passed", outcomes[test(spec)]
    assert "Traceback" not in result.stdout and result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert time.monotonic() - start < 60 + HANG


def test_pytest_option_in_process_runs_it_in_pytests_process(tmp_path):
    where = tmp_path / "where"
    argv = [
        sys.executable, "-m", "pytest", "tests/suite/test_agreement.py", "-p", "no:cacheprovider", "-q", "-p", "no:xdist",
        "-k", f"agrees_with_oracle and {JUDGE} and where", "--chainrule-no-entry-points", "--chainrule-examples", "2",
        "--chainrule-in-process", "--chainrule-impl", "tests.hostile.where:Backprop",
    ]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env={**os.environ, "CHAINRULE_WHERE": str(where)})
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0 and "1 passed" in out, out[-3000:]
    assert set(map(int, where.read_text().split())) == {process.pid}
