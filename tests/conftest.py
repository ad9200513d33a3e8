"""Hypothesis profiles: ``ci`` (deterministic, the default) and ``thorough`` (deep sweeps).

Choose with ``--hypothesis-profile=thorough`` or the environment variable HYPOTHESIS_PROFILE.
In this checkout they hold for tests/suite too; the shipped suite (``pytest --pyargs
chainrule.suite``) run from another project uses that project's profile instead.
Also ``broken_crosscheck``: one crosscheck per broken implementation per session, shared.
"""

import os

import pytest
from hypothesis import HealthCheck, Phase, settings

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
