"""pytest plugin: ``--chainrule-impl MODULE:ATTR`` and ``--chainrule-cmd COMMAND`` add gradient
sources to the property suite (``pytest --pyargs chainrule.suite``).

Any test that takes the ``implementation`` fixture runs once per source: the reference, then
each ``--chainrule-impl`` and ``--chainrule-cmd`` in order, then every implementation installed
under the entry-point group ``chainrule.implementations`` (unless ``--chainrule-no-entry-points``),
with the source in the test id (``reference``, ``impl=SPEC``, ``cmd=COMMAND``, ``entry=NAME``).
``--chainrule-examples N`` loads a Hypothesis profile of N examples per property;
``--chainrule-timeout SECONDS`` sets the per-call limit. Python implementations run in a worker
process each (``--chainrule-memory-limit BYTES``), or with ``--chainrule-in-process`` in pytest's own.
``--chainrule-max-width W``, ``--chainrule-max-batch N`` and ``--chainrule-max-depth D`` cap the
sizes every chainrule strategy draws in the session (the suite, and ``crosscheck`` in your own
tests), for implementations with known limits (chainrule.strategies.limit_sizes).
``--chainrule-oracle MODULE:ATTR`` and ``--chainrule-oracle-cmd COMMAND`` (repeatable), and every
oracle installed under ``chainrule.oracles`` (unless ``--chainrule-no-entry-points``), plug in
oracles: every suite test that takes an ``oracle`` runs once per built-in oracle and once per
plugged-in one (test id ``oracle-impl=SPEC``, ``oracle-cmd=COMMAND``, ``oracle-entry=NAME``), which is
loaded and qualified once per session (``plugged_oracle``); one that cannot be loaded or fails
qualification errors its own tests with why, and the terminal summary says how each qualified.

A source that cannot be loaded or started errors its own tests only; one that hangs or dies is
retired and fails its remaining tests at once; the other sources are checked as usual. At the
end, the terminal summary says what each source declared it does not support (never
exercised, never counted as agreement) and which were retired; under pytest-xdist the workers
send their lines to the controller, which prints them once.

The plugin loads into every pytest run of the environment, so it stays out of the way: every
option carries the ``chainrule-`` prefix, nothing is imported until a test asks for a source,
and no Hypothesis profile is loaded unless ``--chainrule-examples`` is given.
"""

from __future__ import annotations

import pytest

__all__: list[str] = []

_LOADED = pytest.StashKey[list]()  # (label, Implementation) for each source this process loaded
_FROM_WORKERS = pytest.StashKey[list]()  # summary lines the xdist workers sent (controller only)
_WORKEROUTPUT_KEY = "chainrule_summary"


def pytest_addoption(parser):
    group = parser.getgroup("chainrule", "chainrule gradient sources")
    group.addoption("--chainrule-impl", action="append", default=[], metavar="MODULE:ATTR", help="also check this Python implementation (repeatable)")
    group.addoption("--chainrule-cmd", action="append", default=[], metavar="COMMAND", help="also check this JSON-lines command (repeatable)")
    group.addoption("--chainrule-examples", type=int, default=None, metavar="N", help="Hypothesis examples per property (default: the loaded profile's)")
    group.addoption("--chainrule-timeout", type=float, default=None, metavar="SECONDS", help="seconds per call before a source counts as hung (default 10)")
    group.addoption("--chainrule-no-entry-points", action="store_true", help="leave out implementations (and oracles) installed as entry points")
    group.addoption(
        "--chainrule-oracle", action="append", default=[], metavar="MODULE:ATTR",
        help="plug in this Python source as an oracle of the suite (repeatable): it judges once it passes a qualification run",
    )
    group.addoption("--chainrule-oracle-cmd", action="append", default=[], metavar="COMMAND", help="plug in this JSON-lines command as an oracle (repeatable)")
    group.addoption(
        "--chainrule-in-process", action="store_true",
        help="run Python implementations in pytest's own process (for debugging) instead of a worker process each",
    )
    group.addoption(
        "--chainrule-memory-limit", type=int, default=None, metavar="BYTES",
        help="memory each Python implementation's worker process may use (default: the machine's physical memory)",
    )
    group.addoption(
        "--chainrule-precision", default=None, metavar="P",
        help="judge every source in this precision: float64, float32, bfloat16 or float16 (default: each one's declared, else float64)",
    )
    for name, what in (("width", "units in any layer"), ("batch", "examples (N)"), ("depth", "layers")):
        group.addoption(
            f"--chainrule-max-{name}", type=int, default=None, metavar="N",
            help=f"at most this many {what} in any case chainrule draws (the suite, crosscheck), for an implementation with known limits",
        )


@pytest.hookimpl(trylast=True)  # after Hypothesis's own plugin loads --hypothesis-profile: N examples on top of it
def pytest_configure(config):
    config.stash[_LOADED] = []
    config.stash[_FROM_WORKERS] = []
    examples = config.getoption("--chainrule-examples")
    if examples is not None:
        from hypothesis import settings

        settings.register_profile("chainrule-examples", settings(settings.default, max_examples=examples))
        settings.load_profile("chainrule-examples")
    given = config.getoption("--chainrule-precision")
    if given is not None:
        from chainrule.precision import precision

        try:
            precision(given)
        except ValueError as error:
            raise pytest.UsageError(f"--chainrule-precision: {error}") from None
    bounds = {name: config.getoption(f"--chainrule-max-{name}") for name in ("width", "batch", "depth")}
    if any(bound is not None for bound in bounds.values()):
        from chainrule.strategies import limit_sizes

        try:
            limit_sizes(**bounds)
        except ValueError as error:
            raise pytest.UsageError(f"--chainrule-max-*: {error}") from None


def _sources(config) -> list[tuple[str, str]]:
    """(kind, spec) for every source the run judges: the reference first."""
    from chainrule.sources.load import REFERENCE, entry_point_names

    entry_points = [] if config.getoption("--chainrule-no-entry-points") else [("entry", name) for name in entry_point_names()]
    impls = [("impl", spec) for spec in config.getoption("--chainrule-impl")]
    cmds = [("cmd", spec) for spec in config.getoption("--chainrule-cmd")]
    return [("impl", REFERENCE)] + impls + cmds + entry_points


def _ours(metafunc) -> bool:
    """True unless a conftest or test module defines its own ``implementation`` fixture (another
    project's tests may use the name): plugin fixtures have an empty base id."""
    definitions = getattr(metafunc, "_arg2fixturedefs", {}).get("implementation")
    return not definitions or getattr(definitions[-1], "baseid", "") == ""


def pytest_generate_tests(metafunc):
    if "implementation" in metafunc.fixturenames and _ours(metafunc):
        from chainrule.sources.load import REFERENCE

        sources = _sources(metafunc.config)
        ids = ["reference" if spec == REFERENCE else f"{kind}={spec}" for kind, spec in sources]
        metafunc.parametrize("implementation", sources, ids=ids, indirect=True, scope="session")


@pytest.fixture(scope="session")
def implementation(request):
    """The gradient source under test, loaded once per session (a command: started once, stopped at the end)."""
    from chainrule.sources.faults import LoadError
    from chainrule.sources.implementation import with_precision
    from chainrule.sources.load import open_source

    kind, spec = request.param
    try:
        loaded = with_precision(open_source(
            kind, spec, request.config.getoption("--chainrule-timeout"), isolate=not request.config.getoption("--chainrule-in-process"),
            memory_limit=request.config.getoption("--chainrule-memory-limit"),
        ), request.config.getoption("--chainrule-precision"))
    except (LoadError, ValueError) as error:
        pytest.fail(f"cannot load {spec}: {error}", pytrace=False)
    request.config.stash[_LOADED].append((f"{kind}={spec}", loaded))
    yield loaded
    loaded.close()


_ORACLES = pytest.StashKey[dict]()  # (kind, spec) -> the plugged-in oracle's Registered, or the error that stops it


def plugged_oracle_specs(config) -> list[tuple[str, str]]:
    """(kind, spec) of every plugged-in oracle of the session: each --chainrule-oracle, each
    --chainrule-oracle-cmd, then (unless --chainrule-no-entry-points) every one installed under
    the entry-point group chainrule.oracles. Loads nothing."""
    from chainrule.plugged import installed_oracle_names

    entry_points = [] if config.getoption("--chainrule-no-entry-points") else [("entry", name) for name in installed_oracle_names()]
    return ([("impl", spec) for spec in config.getoption("--chainrule-oracle")]
            + [("cmd", spec) for spec in config.getoption("--chainrule-oracle-cmd")] + entry_points)


def plugged_oracle(config, kind: str, spec: str):
    """The plugged-in oracle ``spec`` as a judge (chainrule.oracles.registry.Registered): loaded
    and qualified against the available built-in oracles once per session, closed at its end.
    A test that asks for one that cannot be loaded, or that fails qualification, fails with why
    ("failed qualification" and its counterexample)."""
    found = config.stash.setdefault(_ORACLES, {})
    if (kind, spec) not in found:
        from chainrule.oracles.registry import available
        from chainrule.plugged import Disqualified, open_oracle, qualify
        from chainrule.search import crosscheck
        from chainrule.sources.faults import LoadError

        try:
            oracle = open_oracle(kind, spec, config.getoption("--chainrule-timeout"), isolate=not config.getoption("--chainrule-in-process"),
                                 memory_limit=config.getoption("--chainrule-memory-limit"))
        except LoadError as error:
            found[kind, spec] = f"cannot load oracle {spec}: {error}"
        else:
            config.add_cleanup(oracle.close)
            try:
                qualify(oracle, available(), 0, crosscheck)
                found[kind, spec] = oracle.registered
            except Disqualified as error:
                found[kind, spec] = str(error)
    if isinstance(found[kind, spec], str):
        pytest.fail(found[kind, spec], pytrace=False)
    return found[kind, spec]


def _summary_lines(config) -> list[str]:
    """What the sources this process loaded never exercised, and which were retired."""
    lines = []
    for label, loaded in config.stash.get(_LOADED, []):
        if loaded.unexercised:
            lines.append(f"{label}: not exercised (outside what it declares it supports): {', '.join(loaded.unexercised)}")
        if loaded.retired is not None:
            lines.append(f"{label}: retired after a fatal fault ({loaded.retired.kind}): {loaded.retired.message}")
    for (kind, spec), judge in config.stash.get(_ORACLES, {}).items():
        lines.append(f"oracle {kind}={spec}: " + (str(judge.oracle.qualification) if not isinstance(judge, str) else judge.split("\n")[0]))
    return lines


def pytest_sessionfinish(session):
    """On an xdist worker: hand the summary lines to the controller, which loaded no source."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_WORKEROUTPUT_KEY] = _summary_lines(session.config)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent without xdist
def pytest_testnodedown(node, error):
    """On the xdist controller: collect what a finished worker sent (nothing if it crashed)."""
    lines = getattr(node, "workeroutput", {}).get(_WORKEROUTPUT_KEY, [])
    node.config.stash[_FROM_WORKERS].extend(lines)


def pytest_terminal_summary(terminalreporter, config):
    lines = list(dict.fromkeys(_summary_lines(config) + config.stash.get(_FROM_WORKERS, [])))  # each once, in order
    if lines:
        terminalreporter.section("chainrule")
        for line in lines:
            terminalreporter.write_line(line)
