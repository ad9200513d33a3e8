"""Sizes: the search reaches wide layers, large batches and deep networks; a size-dependent bug
comes out at its threshold with the pattern named; the judges and the sizes fit the time there is.

The catalogue of size-dependent bugs is tests/broken_sizes.py. Each bug is caught here on one
seed at default settings; scripts or a session can sweep more (``python -m tests.test_sizes
SEEDS``) and the measurement is in the issue's report.
"""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chainrule.case import random_case
from chainrule.cli import main
from chainrule.judge import COMPILED_SHAPE, FINITE_DIFFERENCES_WORK, size_budget, sized_judges
from chainrule.oracles.registry import available
from chainrule.reference import Architecture, Reference
from chainrule.search import CheckFailure, crosscheck
from chainrule.sources.load import as_implementation
from tests.broken_sizes import BUGS, CATALOGUE, THRESHOLDS, Sleepy

REPO = Path(__file__).resolve().parent.parent
SEED = 0  # one seed in CI; the sweep over five is a measurement (see __main__ below)


def _threshold_size(case, where: str) -> int:
    sizes = case.arch.sizes
    return {
        "fan-in": lambda: max(sizes[:-1]), "hidden": lambda: max(sizes[1:-1], default=0), "units": lambda: max(sizes[1:]),
        "N": lambda: case.batch_size, "depth": lambda: case.arch.depth,
    }[where]()


_CAUGHT: dict[tuple[str, int], CheckFailure] = {}
SHARED = pytest.mark.xdist_group("size-dW_tile_edge")  # the tests reading dW_tile_edge's one crosscheck, on one worker


def _caught(bug: str, seed: int) -> CheckFailure:
    """The crosscheck of ``bug`` at default settings, run once per (bug, seed) in a process and read
    by every test that asks (dW_tile_edge's by two)."""
    if (bug, seed) not in _CAUGHT:
        with pytest.raises(CheckFailure) as caught:
            crosscheck(CATALOGUE[bug], examples=200, seed=seed)
        _CAUGHT[bug, seed] = caught.value
    return _CAUGHT[bug, seed]


@pytest.mark.parametrize("bug", [pytest.param(bug, marks=[SHARED] if bug == "dW_tile_edge" else []) for bug in BUGS])
def test_size_bug_is_caught_at_default_settings_and_reported_at_its_threshold(bug):
    """Caught with the default 200 examples; the counterexample has exactly the threshold size
    (9 inputs, not 129) and nothing else grown; the diagnosis names the size pattern."""
    failure = _caught(bug, SEED)
    case, (where, size, tag) = failure.verdict.case, THRESHOLDS[bug]
    assert _threshold_size(case, where) == size, f"{bug}: {where} should be {size}: {case.describe()}"
    others = [w for w in case.arch.sizes if w != size] + ([case.batch_size] if where != "N" else [])
    assert max(others, default=1) <= 3 and (where == "depth" or case.arch.depth <= 2), f"{bug}: grown beyond the threshold: {case.describe()}"
    patterns = failure.diagnosis.patterns
    assert any(p == tag or (p.startswith("size:") and p.endswith(tag)) for p in patterns), f"{bug}: {patterns}\n{failure.diagnosis}"


@SHARED
def test_a_tile_edge_is_named_with_the_sizes_that_fail_and_agree():
    summary = _caught("dW_tile_edge", SEED).diagnosis.summary
    assert re.search(r"it fails when (layer 1|hidden layer 1) has more than 8 (inputs|units)", summary), summary
    assert "and not a multiple of 8: 9, 10 and 17 fail, 8 and 16 agree" in summary, summary


# --- which judge decides at which size -------------------------------------------------------


def _names(case, names=None):
    return [r.info.name for r in sized_judges(case, available(names))]


def test_judges_by_size():
    every = [r.info.name for r in available()]
    small = random_case(Architecture.parse("3-tanh-4-identity-2:mse"), 4, 0)
    wide = random_case(Architecture.parse(f"{COMPILED_SHAPE + 1}-tanh-4-identity-2:mse"), 4, 0)
    big = random_case(Architecture.parse("64-tanh-64-identity-2:mse"), 4, 0)
    assert big.work > FINITE_DIFFERENCES_WORK >= wide.work
    assert _names(small) == every, "a small case is judged by every oracle"
    assert "jax" not in _names(wide) and "finite_differences" in _names(wide), _names(wide)
    assert "finite_differences" not in _names(big) and "jax" not in _names(big), _names(big)
    assert _names(big, ["finite_differences"]) == ["finite_differences"], "with nothing exact, finite differences judge at every size"
    if "jax" in every:
        assert _names(big, ["jax", "finite_differences"]) == ["jax"], "without torch, JAX judges a big case"


# --- the time budget -------------------------------------------------------------------------


def test_a_slow_implementation_is_kept_within_its_time_budget_and_never_hangs():
    """50 µs a multiply-add (a scalar engine's speed): unbounded, the search's largest cases take
    a minute a call; the budget keeps every case under CASE_SECONDS, well within a 2 s timeout."""
    slow = as_implementation(Sleepy(50e-6), isolate=False)
    budget = size_budget(slow, 129, 64, 10)
    assert budget.max_work is not None and 1_000 <= budget.max_work <= 8_192, budget
    summary = crosscheck(Sleepy(50e-6), examples=40, seed=1, timeout=2.0, isolate=False)
    allowed = re.search(r"within the time budget: cases of at most ([\d,]+) multiply-adds", str(summary))
    assert allowed, summary
    max_work = int(allowed.group(1).replace(",", ""))
    judged = [v.case for v in summary.verdicts + summary.covered]
    assert all(c.work <= max_work or max(c.arch.sizes) <= 6 and c.batch_size <= 4 for c in judged), [c.describe() for c in judged]
    assert max(max(c.arch.sizes) for c in judged) > 6, "the budget still leaves room above the toy sizes"


def test_a_fast_implementation_is_not_limited():
    budget = size_budget(as_implementation(Reference(), isolate=False), 129, 64, 10)
    assert budget.max_work is None, budget


# --- aiming it -------------------------------------------------------------------------------


def test_bounds_are_kept_by_the_search_and_the_coverage_cases():
    summary = crosscheck(Reference(), examples=60, seed=3, max_width=12, max_batch=5, max_depth=3, isolate=False)
    judged = [v.case for v in summary.verdicts + summary.covered]
    assert all(max(c.arch.sizes) <= 12 and c.batch_size <= 5 and c.arch.depth <= 3 for c in judged), [c.describe() for c in judged]
    deep = [v.case for v in summary.covered if v.case.arch.depth == 3 and max(v.case.arch.sizes) == 3]
    wide = [v.case for v in summary.covered if max(v.case.arch.sizes) == 9 and v.case.batch_size == 5]
    assert len(deep) == len(wide) == 3, "a deep and a wide coverage case per declared loss"
    assert "sizes up to width" in str(summary), summary


def test_check_takes_size_bounds_and_rejects_bad_ones(capsys):
    argv = ["check", "chainrule.reference:Reference", "--examples", "30", "--seed", "2", "--in-process", "--layer-examples", "2"]
    assert main(argv + ["--max-width", "7", "--max-batch", "3", "--max-depth", "2"]) == 0
    out = capsys.readouterr().out
    reached = out.partition("sizes up to width ")[2].split(" (")[0]  # "W, N n, depth d"
    width, batch, depth = (int(part.split()[-1]) for part in reached.split(", "))
    assert width <= 7 and batch <= 3 and depth <= 2, out
    assert main(argv + ["--max-width", "0"]) == 2


def test_pytest_options_cap_every_size_drawn(tmp_path):
    (tmp_path / "test_drawn.py").write_text(textwrap.dedent('''
        from hypothesis import given, settings
        from chainrule.strategies import architectures, cases

        @settings(max_examples=200, database=None)
        @given(cases(architectures(max_width=129, max_depth=10), max_batch=64))
        def test_within(case):
            assert max(case.arch.sizes) <= 12 and case.batch_size <= 5 and case.arch.depth <= 3, case.describe()
    '''))
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path / "test_drawn.py"), "--rootdir", str(tmp_path)]
    capped = subprocess.run(argv + ["--chainrule-max-width", "12", "--chainrule-max-batch", "5", "--chainrule-max-depth", "3"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert capped.returncode == 0, capped.stdout[-3000:] + capped.stderr[-2000:]
    uncapped = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert uncapped.returncode == 1 and "test_within" in uncapped.stdout, uncapped.stdout[-3000:]


if __name__ == "__main__":  # the sweep: python -m tests.test_sizes 1 2 3 4 5
    for bug in BUGS:
        for seed in map(int, sys.argv[1:] or ["0"]):
            try:
                crosscheck(CATALOGUE[bug], examples=200, seed=seed)
                print(f"{bug} seed {seed}: NOT caught", flush=True)
            except CheckFailure as failure:
                where, size, _ = THRESHOLDS[bug]
                found = _threshold_size(failure.verdict.case, where)
                print(f"{bug} seed {seed}: {failure.verdict.case.describe()} ({where} {found}, threshold {size})", flush=True)
                print(f"    {failure.diagnosis.summary}", flush=True)
