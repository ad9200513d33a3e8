"""Hypothesis profiles: ``ci`` (deterministic, the default) and ``thorough`` (deep sweeps).

Choose with ``--hypothesis-profile=thorough`` or the environment variable HYPOTHESIS_PROFILE.
In this checkout they hold for tests/suite too; the shipped suite (``pytest --pyargs
chainrule.suite``) run from another project uses that project's profile instead.
Also ``broken_crosscheck``: one crosscheck per broken implementation per session, shared; and
one thread a process (below).

Tests marked ``thorough`` (deep sweeps: more seeds, more examples, or a path the default run
already judges, repeated at a larger scale) run only in the thorough profile (``make thorough``);
the default run skips them, saying so. The longest tests are handed out first (``SLOW_FIRST``), so
that the two workers of ``make test`` (``-n 2 --dist loadgroup``) end together.
"""

import os

# One thread a process, in this process and every one it starts (``chainrule check``, nested pytest
# runs, worker processes), as ``chainrule bench`` pins them: ``make test``'s two xdist workers
# already keep both cores busy, and the BLAS, torch and XLA thread pools of every process on top
# only contend for them (a check run in parallel with another is a fifth faster pinned). Set before
# numpy, torch or JAX is imported; a value given by the caller is kept.
for _variable, _value in {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                          "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}.items():
    os.environ.setdefault(_variable, _value)

import pytest  # noqa: E402
from hypothesis import HealthCheck, Phase, settings  # noqa: E402

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=60,
    print_blob=True,
    # no explain phase: it triples the time of a failing example
    phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "thorough",
    deadline=None,
    max_examples=2000,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The longest tests of the default run (seconds on the 2-core machine, in the order handed out):
# started first, so that what is left at the end is short. A prefix of a test id; only the order
# changes. Groups (xdist_group) are handed out before any of these, the largest first.
SLOW_FIRST = (
    "tests/test_gallery.py::test_the_shipped_suite_accepts_the_gallery",  # 50-100
    "tests/test_gallery.py::test_crosscheck_accepts_a_correct_member[jax_float32]",  # 50-75
    "tests/test_gallery.py::test_check_command_accepts_a_correct_member[jax_nn]",
    "tests/test_gallery.py::test_check_command_accepts_a_correct_member[jax_float32]",
    "tests/test_gallery.py::test_crosscheck_accepts_a_correct_member[jax_nn]",
    "tests/test_gallery.py::test_a_bugged_member_is_rejected_with_the_wrong_tensor_named[jax_nn]",
    "tests/test_sizes.py::test_size_bug_is_caught_at_default_settings_and_reported_at_its_threshold[depth_loop_bound]",  # 25-50
    "tests/test_precision.py::test_the_shipped_suite_accepts_the_numpy_float32_member_in_float32",
    "tests/test_layer_gallery.py::test_member_is_accepted[jax_custom_vjp",  # 15-20
    "tests/test_report_run.py::test_jobs_give_the_same_records_as_one_process",
    "tests/test_gallery.py::test_crosscheck_accepts_a_correct_member[torch_float16]",
    "tests/test_plugged_oracles.py::test_pytest_option_plugs_oracles_into_the_suite",  # 10-20
    "tests/test_numerics.py::test_check_warns_and_strict_numerics_fails",
    "tests/test_precision.py::test_a_float32_members_bug_is_rejected_in_float32_naming_the_tensor[torch_float32]",
    "tests/test_gallery.py::test_a_bugged_member_is_rejected_with_the_wrong_tensor_named[torch_float32]",
    "tests/test_plugged_oracles.py::test_entry_point_oracle_qualifies_then_judges_beside_the_builtins",
    "tests/test_plugins.py::test_pytest_runs_the_suite_on_every_source_one_test_id_each",
    "tests/test_isolation.py::test_pytest_options_judge_the_gallery",
    "tests/test_gallery.py::test_crosscheck_accepts_a_correct_member[torch_float32]",
    "tests/test_sizes.py::test_size_bug_is_caught_at_default_settings_and_reported_at_its_threshold[dA_tile_edge]",
    "tests/test_sizes.py::test_pytest_options_cap_every_size_drawn",
    "tests/test_gallery.py::test_crosscheck_accepts_a_correct_member[torch_bfloat16]",
    "tests/test_gallery.py::test_check_command_accepts_a_correct_member",  # 7-15 each
    "tests/test_gallery.py::test_crosscheck_accepts_a_correct_member",
    "tests/test_precision.py::test_a_float32_member_judged_in_float64_is_told_about_float32",
)


def thorough() -> bool:
    """The thorough profile is loaded (its name may carry a suffix: "thorough-with-verbose-verbosity")."""
    return settings.get_current_profile_name().startswith("thorough")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "thorough: a deep sweep, run only in the thorough Hypothesis profile (make thorough, --hypothesis-profile=thorough)")
    # pytest-xdist registers it; registered here too, so that a run with -p no:xdist still collects.
    config.addinivalue_line("markers", "xdist_group(name): the tests of one group run on one worker (--dist loadgroup)")


def _xdist_groups(config, items):
    """``--dist loadgroup``: each test of an xdist_group gets "@GROUP" at the end of its id, as
    pytest-xdist means to. pytest-xdist 3.8 writes it to ``item._nodeid``, which pytest 9.2 no longer
    reads (the id comes from ``item._id``): the groups were spread over the workers, and each worker
    ran its own copy of what they share (the catalogue's crosschecks, a module's report)."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        names = {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")}
        suffix = "@" + "_".join(sorted(names))
        if names and not item.nodeid.endswith(suffix) and hasattr(item, "_id"):
            item._id = type(item._id).parse(item.nodeid + suffix)


def pytest_collection_modifyitems(config, items):
    _xdist_groups(config, items)
    if not thorough():
        skip = pytest.mark.skip(reason="a deep sweep: the thorough Hypothesis profile only (make thorough)")
        for item in items:
            if item.get_closest_marker("thorough"):
                item.add_marker(skip)

    def rank(item):
        return next((k for k, prefix in enumerate(SLOW_FIRST) if item.nodeid.startswith(prefix)), len(SLOW_FIRST))

    items[:] = sorted(items, key=rank)  # stable: the rest keep their order


@pytest.fixture(scope="session")
def broken_crosscheck():
    """``run(bug, examples=200, seed=2026)``: crosscheck of ``tests.broken.CATALOGUE[bug]``, run at most
    once per session for each (bug, examples, seed) and shared by every test that asks (test_broken,
    test_diagnosis): the CheckFailure it raised (with ``.verdict`` and ``.diagnosis``), or the Summary
    it returned. One crosscheck of a bug takes seconds to a minute; the catalogue, minutes."""
    from chainrule.search import CheckFailure, crosscheck
    from tests.broken import CATALOGUE

    results = {}

    def run(bug: str, examples: int = 200, seed: int = 2026):
        key = (bug, examples, seed)
        if key not in results:
            try:
                results[key] = crosscheck(CATALOGUE[bug], examples=examples, seed=seed)
            except CheckFailure as failure:
                results[key] = failure
        return results[key]

    return run
