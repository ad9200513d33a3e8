"""pytest plugin: ``--impl MODULE:ATTR`` and ``--cmd COMMAND`` add gradient sources to the suite.

Any test that takes the ``implementation`` fixture runs once per source: the reference, then
each ``--impl`` and ``--cmd`` in order, with the source's name in the test id.
``--max-examples N`` overrides the Hypothesis profile's example count.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

__all__ = ["REFERENCE"]

REFERENCE = "reference:Reference"


def pytest_addoption(parser):
    group = parser.getgroup("chainrule", "chainrule gradient sources")
    group.addoption("--impl", action="append", default=[], metavar="MODULE:ATTR", help="also check this Python implementation (repeatable)")
    group.addoption("--cmd", action="append", default=[], metavar="COMMAND", help="also check this JSON-lines command (repeatable)")
    group.addoption("--max-examples", type=int, default=None, metavar="N", help="Hypothesis examples per property")


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    examples = config.getoption("--max-examples", None)
    if examples:
        settings.register_profile("chainrule-max-examples", settings(settings.default, max_examples=examples))
        settings.load_profile("chainrule-max-examples")


def _sources(config) -> list[tuple[str, str]]:
    """(kind, spec) for every source the run judges: the reference first."""
    return [("impl", REFERENCE)] + [("impl", s) for s in config.getoption("--impl")] + [("cmd", c) for c in config.getoption("--cmd")]


def pytest_generate_tests(metafunc):
    if "implementation" in metafunc.fixturenames:
        sources = _sources(metafunc.config)
        ids = ["reference" if spec == REFERENCE else f"{kind}={spec}" for kind, spec in sources]
        metafunc.parametrize("implementation", sources, ids=ids, indirect=True, scope="session")


@pytest.fixture(scope="session")
def implementation(request):
    """The gradient source under test, loaded once per session."""
    from oracles.crosscheck import as_implementation
    from oracles.plugins import LoadError

    kind, spec = request.param
    try:
        if kind == "cmd":
            from oracles.jsonlines import command

            return command(spec)
        return as_implementation(spec)
    except LoadError as error:
        pytest.fail(f"cannot load {spec}: {error}", pytrace=False)
