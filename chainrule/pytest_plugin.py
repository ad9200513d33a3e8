"""pytest plugin: ``--impl MODULE:ATTR`` and ``--cmd COMMAND`` add gradient sources to the suite.

Any test that takes the ``implementation`` fixture runs once per source: the reference, then
each ``--impl`` and ``--cmd`` in order, then every implementation installed under the entry-point
group ``chainrule.implementations``, with the source in the test id (``reference``,
``impl=SPEC``, ``cmd=COMMAND``, ``entry=NAME``). ``--max-examples N`` overrides the Hypothesis
profile's example count; ``--impl-timeout SECONDS`` the per-call limit.

A source that cannot be loaded or started errors its own tests only; one that hangs or dies is
retired and fails its remaining tests at once; the other sources are checked as usual. At the
end, the terminal summary says what each source declared it does not support (never
exercised, never counted as agreement) and which were retired.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

__all__ = ["REFERENCE"]

REFERENCE = "reference:Reference"
_LOADED = pytest.StashKey[list]()


def pytest_addoption(parser):
    group = parser.getgroup("chainrule", "chainrule gradient sources")
    group.addoption("--impl", action="append", default=[], metavar="MODULE:ATTR", help="also check this Python implementation (repeatable)")
    group.addoption("--cmd", action="append", default=[], metavar="COMMAND", help="also check this JSON-lines command (repeatable)")
    group.addoption("--max-examples", type=int, default=None, metavar="N", help="Hypothesis examples per property")
    group.addoption("--impl-timeout", type=float, default=None, metavar="SECONDS", help="seconds per call before a source counts as hung (default 10)")
    group.addoption("--no-entry-points", action="store_true", help="leave out implementations installed as entry points")


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    config.stash[_LOADED] = []
    examples = config.getoption("--max-examples", None)
    if examples:
        settings.register_profile("chainrule-max-examples", settings(settings.default, max_examples=examples))
        settings.load_profile("chainrule-max-examples")


def _sources(config) -> list[tuple[str, str]]:
    """(kind, spec) for every source the run judges: the reference first."""
    entry_points = []
    if not config.getoption("--no-entry-points"):
        from oracles.plugins import entry_point_names

        entry_points = [("entry", name) for name in entry_point_names()]
    impls = [("impl", s) for s in config.getoption("--impl")]
    return [("impl", REFERENCE)] + impls + [("cmd", c) for c in config.getoption("--cmd")] + entry_points


def _ours(metafunc) -> bool:
    """True unless a conftest or test module defines its own ``implementation`` fixture (another
    project's tests may use the name): plugin fixtures have an empty base id."""
    definitions = getattr(metafunc, "_arg2fixturedefs", {}).get("implementation")
    return not definitions or getattr(definitions[-1], "baseid", "") == ""


def pytest_generate_tests(metafunc):
    if "implementation" in metafunc.fixturenames and _ours(metafunc):
        sources = _sources(metafunc.config)
        ids = ["reference" if spec == REFERENCE else f"{kind}={spec}" for kind, spec in sources]
        metafunc.parametrize("implementation", sources, ids=ids, indirect=True, scope="session")


def _open(kind: str, spec: str, timeout: float | None):
    from oracles.crosscheck import as_implementation
    from oracles.plugins import load_entry_point, with_timeout

    if kind == "cmd":
        from oracles.jsonlines import command

        return command(spec) if timeout is None else command(spec, timeout=timeout)
    loaded = load_entry_point(spec) if kind == "entry" else as_implementation(spec)
    return loaded if timeout is None else with_timeout(loaded, timeout)


@pytest.fixture(scope="session")
def implementation(request):
    """The gradient source under test, loaded once per session (a command: started once, stopped at the end)."""
    from oracles.plugins import LoadError

    kind, spec = request.param
    try:
        loaded = _open(kind, spec, request.config.getoption("--impl-timeout"))
    except (LoadError, ValueError) as error:
        pytest.fail(f"cannot load {spec}: {error}", pytrace=False)
    request.config.stash[_LOADED].append((f"{kind}={spec}", loaded))
    yield loaded
    loaded.close()


def pytest_terminal_summary(terminalreporter, config):
    lines = []
    for label, loaded in config.stash.get(_LOADED, []):
        if loaded.unexercised:
            lines.append(f"{label}: not exercised (outside what it declares it supports): {', '.join(loaded.unexercised)}")
        if loaded.retired is not None:
            lines.append(f"{label}: retired after a fatal fault ({loaded.retired.kind}): {loaded.retired.message}")
    if lines:
        terminalreporter.section("chainrule")
        for line in lines:
            terminalreporter.write_line(line)
