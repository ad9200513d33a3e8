"""``chainrule report``: run the sweep, write DIR/results.json, then DIR/index.html from it.

    sources   the reference, each --impl, each --cmd, each installed entry point (one that cannot
              be loaded gets an error verdict, reports/sources.py)
    oracles   the built-in ones, then each --oracle, --oracle-cmd and installed chainrule.oracles
              entry point once it passes its qualification run (one that fails is a source marked
              unavailable, with its counterexample among the failures)
    cases     the article's worked example + ``--examples`` generated from ``--seed``
    records   every implementation x oracle x case, and every pair of oracles (reports/sweep.py),
              for the sources that answer networks
    failures  each failing implementation's shrunk counterexample (reports/failures.py)
    layers    each layer every source that answers layers declares, searched with
              ``--layer-examples`` cases and ``--seed`` (reports/layers.py)

Exit status as ``chainrule check``: 2 when a plug-in could not be loaded or started, or a
plugged-in oracle failed qualification (before the sweep, or on a later case where the built-in
oracles found it wrong: the others are still checked and the report still written), else 1 when
any comparison or layer disagrees or a source errs, else 0.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import platform
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from chainrule.layers.search import JUDGED
from chainrule.numerics import numerical_range
from chainrule.oracles.layers import available as layer_judges
from chainrule.oracles.registry import available
from chainrule.plugged import installed_oracle_names
from chainrule.reports import html, results
from chainrule.reports.article import article_case, article_values
from chainrule.reports.explain import article_walkthrough
from chainrule.reports.failures import counterexample, find_counterexample
from chainrule.reports.layers import layer_rows
from chainrule.reports.records import Environment, RangeRow, Report, Settings, Status, ToleranceRow
from chainrule.reports.sources import load_plugins, oracle_sources, plug_oracles
from chainrule.reports.sweep import ARTICLE, case_info, generate, sweep
from chainrule.status import Exit
from chainrule.tolerances import TOLERANCES

__all__ = ["LAYER_EXAMPLES", "build_report", "disqualified_later", "exit_status", "report_command"]

FAILED = (Status.DISAGREE, Status.ERROR)
LAYER_EXAMPLES = 20  # generated cases a declared layer, by default (--layer-examples)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _environment() -> Environment:
    return Environment(
        platform.python_version(), np.__version__, _version("torch"), _version("jax"), _version("chainrule"), platform.platform()
    )


@contextmanager
def _progress():
    """A rich progress bar on stderr (plain lines when stderr is not a terminal)."""
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=False,
    )
    with progress:
        yield progress


def build_report(impls: list[str], cmds: list[str], examples: int, seed: int, jobs: int = 1, oracles: list[tuple[str, str]] = (),
                 layer_examples: int = LAYER_EXAMPLES) -> Report:
    """Everything the report shows, with a progress bar on stderr while it works. ``oracles``:
    (kind, spec) of each plugged-in oracle ("impl", "cmd", "entry"), qualified before the sweep;
    ``layer_examples``: generated cases a declared layer."""
    started, date = time.perf_counter(), datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    loaded, implementations, sources = load_plugins(impls, cmds)
    plugins = [plugin for plugin, implementation in zip(loaded, implementations) if implementation.networks]
    networked = [implementation for implementation in implementations if implementation.networks]
    judged_layers = layer_judges()
    plugged: list = []
    try:
        builtins = available()
        plugged, plugged_sources, disqualified = plug_oracles(list(oracles), seed, builtins)
        judges = builtins + [oracle.registered for oracle in plugged]
        with _progress() as progress:
            task = progress.add_task("generating cases", total=None)
            drawn, rejected = generate(examples, seed)
            numbered = [(ARTICLE, article_case())] + [(f"case-{k:03d}", case) for k, case in enumerate(drawn, start=1)]
            progress.update(task, description="judging cases", total=len(numbered), completed=0)
            records = sweep(numbered, plugins, networked, judges, jobs, lambda n: progress.advance(task, n), plugged)
            cases = dict(numbered)
            failing = [
                (implementation, next(cases[r.case] for r in records if r.implementation == implementation.name and r.status in FAILED))
                for implementation in networked
                if any(r.implementation == implementation.name and r.status in FAILED for r in records)
            ]
            counterexamples = [  # each oracle that failed qualification, told by its own counterexample
                counterexample(SimpleNamespace(name=error.oracle), error.verdict, error.diagnosis, shrunk=True) for error in disqualified if error.verdict is not None
            ]
            if failing:
                shrink = progress.add_task("shrinking counterexamples", total=len(failing))
                for implementation, first in failing:
                    counterexamples.append(find_counterexample(implementation, judges, first, examples, seed))
                    progress.advance(shrink)
            article = article_values(networked, judges)
            ranges = progress.add_task("sweeping the numerical range", total=len(networked))
            numerics = []
            for implementation in networked:
                numerics += [RangeRow(implementation.name, *dataclasses.astuple(finding)) for finding in numerical_range(implementation, builtins)]
                progress.advance(ranges)
            searched = progress.add_task("searching the declared layers", total=sum(len(set(i.layers) & set(JUDGED)) for i in implementations))
            layers = layer_rows(implementations, judged_layers, layer_examples, seed, lambda: progress.advance(searched))
    finally:
        for implementation in implementations:
            implementation.close()
        for oracle in plugged:
            oracle.close()
    tolerances = tuple(
        ToleranceRow(kind, t.rtol, tuple((f.name, getattr(t, f.name)) for f in dataclasses.fields(t) if f.name != "reason"), t.reason)
        for kind, t in TOLERANCES.items()
    )
    settings = Settings(seed, examples, jobs, date, time.perf_counter() - started, rejected, layer_examples)
    return Report(
        settings, _environment(), tolerances, tuple(sources + oracle_sources(plugged_sources)),
        tuple(case_info(case_id, case) for case_id, case in numbered), tuple(records),
        tuple(counterexamples), article, article_walkthrough(), tuple(numerics),
        tuple(layers), tuple(judge.name for judge in judged_layers),
    )


def disqualified_later(report: Report) -> list[str]:
    """The plugged-in oracles the built-in ones found wrong on a case of the sweep (their pair records disagree)."""
    plugged = {s.name for s in report.sources if s.plugged and s.available}
    builtin = {s.name for s in report.sources if s.kind == "oracle" and not s.plugged}
    return sorted({r.implementation for r in report.records if r.implementation in plugged and r.oracle in builtin and r.status is Status.DISAGREE})


def exit_status(report: Report) -> int:
    """2 if a plug-in could not be loaded or a plugged-in oracle failed qualification (before the
    sweep or on a later case), 1 if anything disagreed or erred, a layer included (or nothing
    could judge), else 0."""
    if any(not s.available and (s.kind != "oracle" or s.plugged) for s in report.sources) or disqualified_later(report):
        return Exit.USAGE
    if not any(s.available for s in report.sources if s.kind == "oracle"):
        return Exit.DISAGREE
    failed = any(r.status in FAILED for r in report.records) or any(row.status in FAILED for row in report.layers)
    return Exit.DISAGREE if failed else Exit.AGREE


def report_command(args) -> int:
    """``chainrule report``: results.json, then index.html rendered from that file alone."""
    oracles = [("impl", spec) for spec in args.oracle] + [("cmd", spec) for spec in args.oracle_cmd]
    oracles += [("entry", name) for name in installed_oracle_names()]
    report = build_report(args.impl, args.cmd, args.examples, args.seed, args.jobs, oracles, args.layer_examples)
    for source in report.sources:
        if not source.available and (source.kind != "oracle" or source.plugged):
            print(f"chainrule: error: {source.detail}", file=sys.stderr)
    for name in disqualified_later(report):
        print(f"chainrule: error: oracle {name} (plugged in) failed qualification on a later case: the built-in oracles disagree with it "
              "there (the agreement matrix frames the cells)", file=sys.stderr)
    out = Path(args.out)
    results.write(report, out / "results.json")
    html.write(results.read_json(out / "results.json"), out / "index.html")
    print(f"{out / 'index.html'}: {len(report.cases)} cases, {len(report.records)} comparisons, {len(report.layers)} layers searched")
    return exit_status(report)
