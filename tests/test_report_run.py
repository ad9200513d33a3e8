"""The report's sweep: deterministic cases, oracles judged in the right direction, --jobs changing nothing."""

import dataclasses

import pytest

from chainrule.kinks import rounding_ambiguous
from chainrule.oracles.base import OracleInfo
from chainrule.oracles.registry import Registered, available
from chainrule.reference import Reference
from chainrule.reports import sources
from chainrule.reports.records import LayerRow, Record, Source, Status
from chainrule.reports.run import exit_status
from chainrule.reports.sources import load_plugins
from chainrule.reports.sweep import CHUNK, generate, oracle_pairs, sweep
from chainrule.sources.faults import LoadError
from chainrule.sources.implementation import wrap
from tests.test_report_records import _report


def test_installed_entry_points_are_judged_and_a_broken_one_only_reported(monkeypatch):
    def load_entry_point(name):
        if name == "broken-install":
            raise LoadError("entry point broken-install = nowhere:Thing: cannot load: ModuleNotFoundError: nowhere")
        return wrap(Reference(), name)

    monkeypatch.setattr(sources, "entry_point_names", lambda: ["installed", "broken-install"])
    opened = sources.open_source  # entry points are faked here, where a worker process would not see them

    def open_source(kind, spec, *args, **kwargs):
        return load_entry_point(spec) if kind == "entry" else opened(kind, spec, *args, **kwargs)

    monkeypatch.setattr(sources, "open_source", open_source)
    plugins, implementations, listed = load_plugins([], [])
    assert [(p.kind, p.spec, p.name) for p in plugins] == [("impl", "chainrule.reference:Reference", "reference"), ("entry", "installed", "reference [installed]")]
    assert [i.name for i in implementations] == ["reference", "reference [installed]"]  # names stay unique: records are keyed by them
    assert [(s.name, s.available) for s in listed] == [("reference", True), ("reference [installed]", True), ("broken-install", False)]
    assert "cannot load" in listed[-1].detail


def _fingerprint(cases):
    return [case.reproduction() for case in cases]


def test_cases_are_the_same_for_the_same_seed():
    first, rejected = generate(15, seed=3)
    again, rejected_again = generate(15, seed=3)
    assert _fingerprint(first) == _fingerprint(again) and rejected == rejected_again
    assert len(first) + rejected == 15
    assert _fingerprint(generate(15, seed=4)[0]) != _fingerprint(first)
    assert not any(rounding_ambiguous(c.arch, c.params, c.X) for c in first)


def _oracle(name: str, exact: bool) -> Registered:
    return Registered(OracleInfo(name, name, "1", True, exact=exact), None)


def test_the_approximate_oracle_judges_and_between_exact_ones_the_first():
    torch, jax, fd = _oracle("torch", True), _oracle("jax", True), _oracle("finite_differences", False)
    pairs = [(judged.info.name, judge.info.name) for judged, judge in oracle_pairs([torch, jax, fd])]
    assert pairs == [("jax", "torch"), ("torch", "finite_differences"), ("jax", "finite_differences")]
    assert [(a.info.name, b.info.name) for a, b in oracle_pairs([fd, torch])] == [("torch", "finite_differences")]


def test_jobs_give_the_same_records_as_one_process():
    judges = available()
    if not judges:
        pytest.skip("no oracle available")
    plugins, implementations, _ = load_plugins(["tests.broken:bias_averaged"], [])
    cases, _ = generate(CHUNK + 4, seed=5)  # more than one chunk, so the order of chunks matters
    numbered = [(f"case-{k}", case) for k, case in enumerate(cases)]
    untimed = lambda records: [dataclasses.replace(r, seconds=None) for r in records]  # noqa: E731
    one = sweep(numbered, plugins, implementations, judges, jobs=1)
    two = sweep(numbered, plugins, implementations, judges, jobs=2)
    assert untimed(two) == untimed(one)
    assert any(r.status is Status.DISAGREE for r in one)


@pytest.mark.parametrize(
    "change, expected",
    [
        ({}, 0),
        ({"records": (Record("reference", "torch", "article", Status.DISAGREE),)}, 1),
        ({"records": (Record("reference", "torch", "article", Status.ERROR),)}, 1),
        ({"records": (Record("reference", "torch", "article", Status.CONVENTION),)}, 0),
        ({"layers": (LayerRow("reference", "relu", Status.AGREE, 3), LayerRow("reference", "softmax", Status.DISAGREE, 1))}, 1),
        ({"layers": (LayerRow("reference", "embedding", Status.ERROR),)}, 1),
        ({"layers": (LayerRow("reference", "dropout", Status.SKIPPED, unsupported=("p=1",)),)}, 0),
        ({"sources": (Source("x:Y", "plugin", "x:Y", "cannot import", available=False), Source("torch", "oracle", "torch"))}, 2),
        ({"sources": (Source("torch", "oracle", "torch", "not installed", available=False),)}, 1),
    ],
    ids=["agree", "disagree", "error", "convention-is-no-failure", "layer-disagrees", "layer-errs", "unanswered-layer-is-no-failure",
         "unloadable-plugin", "no-oracle"],
)
def test_exit_status_as_check(change, expected):
    base = dataclasses.replace(
        _report(),
        sources=(Source("reference", "reference", "reference:Reference"), Source("torch", "oracle", "torch")),
        records=(Record("reference", "torch", "article", Status.AGREE),),
        layers=(),
    )
    assert exit_status(dataclasses.replace(base, **change)) == expected
