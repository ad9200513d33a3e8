"""``chainrule bench``: every ratio printed as ``name: value``, threads pinned in a child process.

Timings are never asserted: the code paths run on tiny networks, and the figures are numbers.
"""

import io
import math
import re
import subprocess
import sys

import pytest

from chainrule import bench
from chainrule.cli import main

pytestmark = pytest.mark.xdist_group("bench")  # one worker runs the module's one bench (``report``), not each worker its own

# One shape for three sizes: JAX compiles each primitive once per shape, which is most of the time here.
TINY = bench.Plan(
    {"tiny": bench.Net((3, 2, 2), 1), "small": bench.Net((4, 6, 3), 2), "medium": bench.Net((4, 6, 3), 2), "large": bench.Net((4, 6, 3), 2)},
    repeats=1, naive_sample=5, crosscheck_examples=2, crosscheck_repeats=1, min_sample=0.001, layer_examples=1,
)


@pytest.fixture(scope="module")
def report():
    out = io.StringIO()
    ratios = bench.run(TINY, out=out)
    return ratios, out.getvalue()


def test_every_ratio_is_printed_as_name_colon_number(report):
    ratios, text = report
    for name in bench.RATIOS:
        lines = re.findall(rf"^{name}: (\S+)$", text, flags=re.MULTILINE)
        assert len(lines) == 1, f"{name}: got {len(lines)} lines 'name: value', expected 1\n{text}"
        value = float(lines[0])
        assert math.isfinite(value) and value > 0, f"{name}: got {lines[0]!r}, expected a positive number"
        assert value == pytest.approx(ratios[name], rel=1e-5)


def test_report_has_median_and_min_of_every_figure(report):
    _, text = report
    for figure in ("reference loss+gradient", "torch eager loss+gradient", "jax eager loss+gradient",
                   "jax jit loss+gradient (steady)", "finite_differences oracle (structural)",
                   "naive per-entry central differences", "torch gradcheck fast_mode",
                   "directional check, one wrong entry", "crosscheck per architecture", "layer case, judged as the engine does",
                   "layer case, every judge on every case"):
        assert figure in text, f"figure {figure!r} missing from the report"
    assert "median" in text and "min" in text


def test_wrong_entry_is_named_in_the_report(report):
    _, text = report
    assert re.search(r"disagree, \d+ loss evaluations, named \[\(1, 'W', \(\d+, \d+\)\)\]", text), text
    assert "NOT localized" not in text


def test_bench_command_pins_threads_in_a_child(monkeypatch):
    seen = {}

    def fake_run(command, env):
        seen["command"], seen["env"] = command, env
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.delenv(bench.CHILD, raising=False)
    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    assert main(["bench", "--quick"]) == 0
    assert seen["command"] == [sys.executable, "-m", "chainrule", "bench", "--quick"]
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        assert seen["env"][variable] == "1", variable
    assert seen["env"][bench.CHILD] == "1"
