"""The sweep: the article's case and Hypothesis-generated ones, every source judged on each.

Cases come from ``chainrule.strategies.cases()`` through a ``@given`` function run in the
generate phase only, seeded, with no example database: the same seed and count give the same
cases on every machine. A case whose kink lies within rounding of 0 proves nothing about
anyone (chainrule/kinks.py) and is set aside, counted.

Each case asks the oracles once; every implementation is judged on those same answers
(``chainrule.judge.judge``), and every two oracles are judged against each other. In a pair
the approximate oracle judges (its tolerance and its trust mask are the ones that apply: a
finite difference across a kink is no evidence), with Richardson refinement of disputed
entries (``adjudicate``); between two exact oracles, the earlier in the registry judges.

A plugged-in oracle (chainrule.plugged, qualified before the sweep) judges only the cases it
declares (the others' records are skipped) and is judged by the built-in oracles. Where it alone
rejects an answer every built-in oracle accepts and is itself wrong there (chainrule.judge), its
record on that answer is set aside as no evidence, saying so, and its own pair records show the
disagreement (``chainrule report`` exits 2 then: it failed qualification on a later case).

``--jobs N`` spreads chunks of cases over N processes; each reopens the plug-ins (and the
plugged-in oracles) itself. Every record depends on its case alone, so the records are the same
for any N (timings aside).
"""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed

from chainrule.case import Case
from chainrule.evidence import evidence
from chainrule.judge import ask_oracles, judge, judge_oracle
from chainrule.oracles.registry import Registered, available
from chainrule.plugged import Disqualified, PluggedOracle, open_oracle
from chainrule.precision import FLOAT64
from chainrule.reports.records import CaseInfo, Record, Status
from chainrule.reports.sources import Plugin, open_plugin
from chainrule.sources.implementation import Implementation
from chainrule.strategies import cases
from chainrule.tolerances import sensitivity, tolerance_row

__all__ = ["ARTICLE", "case_info", "generate", "oracle_pairs", "records_of_case", "sweep"]

ARTICLE = "article"  # the id of the article's worked example among the cases
CHUNK = 8  # cases per task with --jobs


def generate(examples: int, seed: int) -> tuple[list[Case], int]:
    """``examples`` cases drawn from ``cases()`` with this seed: (the usable ones, how many were set aside)."""
    drawn, rejected = [], 0

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=False,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    @hypothesis_seed(seed)
    @given(cases())
    def collect(case: Case) -> None:
        nonlocal rejected
        if evidence(case).set_aside:
            rejected += 1
        else:
            drawn.append(case)

    collect()
    return drawn, rejected


def case_info(case_id: str, case: Case) -> CaseInfo:
    return CaseInfo(case_id, case.describe(), case.arch.activations, case.arch.loss, case.arch.depth, case.batch_size)


def oracle_pairs(judges: list[Registered]) -> list[tuple[Registered, Registered]]:
    """(judged, judge) for every two oracles: an approximate oracle judges an exact one; else the earlier judges."""
    return [(b, a) if a.info.exact <= b.info.exact else (a, b) for a, b in itertools.combinations(judges, 2)]


def records_of_case(case_id: str, case: Case, implementations: list[Implementation], judges: list[Registered]) -> list[Record]:
    """Every record of one case: each implementation against each oracle, then each pair of oracles.
    An implementation that declares another precision is asked the case rounded to it (the oracles
    asked again on that one) and judged within that precision's floors; where the case lies outside
    the chain rule's domain in that precision, its records are skipped with why."""
    answers = ask_oracles(case, judges)
    bounds = sensitivity(case.arch, case.params, case.X, case.Y)
    in_precision = {FLOAT64: (case, answers, bounds)}
    records = []
    outside = "outside the activations and losses the oracle declares"
    for implementation in implementations:
        blank = [Record(implementation.name, registered.info.name, case_id) for registered in judges]
        if not implementation.supports(case.arch):
            records += [record.skipped("outside the activations and losses it declares") for record in blank]
            continue
        precision = implementation.precision
        if precision not in in_precision:
            rounded = case.in_precision(precision)
            in_precision[precision] = (rounded, ask_oracles(rounded, judges), sensitivity(rounded.arch, rounded.params, rounded.X, rounded.Y, precision))
        mine, answers, bounds = in_precision[precision]
        if bounds.outside:
            records += [record.skipped(f"outside the chain rule's domain in {precision}: {bounds.outside}") for record in blank]
            continue
        set_aside = {}
        try:
            verdict = judge(implementation, mine, judges, answers, bounds)
        except Disqualified as error:  # a plugged-in oracle wrong where its answer would decide: the built-in ones judge
            verdict = judge(implementation, mine, [r for r in judges if r.info.name != error.oracle], answers, bounds)
            set_aside[error.oracle] = str(error).split("\n")[0]
        decided = {comparison.oracle: comparison for comparison in verdict.comparisons}
        for record, registered in zip(blank, judges):
            name = registered.info.name
            if name in set_aside:
                records.append(dataclasses.replace(record, status=Status.NO_EVIDENCE, note=set_aside[name]))
            elif verdict.explanation:  # its own functions' numerical range explains it (chainrule.local): no evidence
                note = verdict.explanation + (f" ({verdict.finding})" if verdict.finding is not None else "")
                records.append(dataclasses.replace(record, status=Status.NO_EVIDENCE, seconds=verdict.seconds, note=note))
            elif verdict.fault is not None:
                records.append(record.faulted(verdict.fault, verdict.seconds))
            elif name not in decided:
                records.append(record.skipped(outside))
            else:
                records.append(record.decided(decided[name], verdict.seconds, tolerance_row(registered.info)))
    case, answers, bounds = in_precision[FLOAT64]
    for judged, judging in oracle_pairs(judges):
        if not (judged.info.supports(case.arch) and judging.info.supports(case.arch)):
            records.append(Record(judged.info.name, judging.info.name, case_id).skipped(outside))
            continue
        comparison = judge_oracle(judged, judging, case, answers, bounds)
        seconds = answers[judged.info.name][1]
        records.append(Record(judged.info.name, judging.info.name, case_id).decided(comparison, seconds, tolerance_row(judging.info)))
    return records


_worker: dict = {}  # per process with --jobs: the reopened implementations and the judges


def _start_worker(plugins: list[Plugin], oracles: list[tuple[str, str, str]] = ()) -> None:
    """Reopen the plug-ins and the plugged-in oracles ``(kind, spec, name)``, qualified in the parent already."""
    _worker["implementations"] = [open_plugin(plugin) for plugin in plugins]
    plugged = [open_oracle(kind, spec) for kind, spec, _ in oracles]
    for oracle, (_, _, name) in zip(plugged, oracles):
        oracle.renamed(name)
    _worker["judges"] = available() + [oracle.registered for oracle in plugged]


def _judge_chunk(chunk: list[tuple[str, Case]]) -> list[Record]:
    return [record for case_id, case in chunk for record in records_of_case(case_id, case, _worker["implementations"], _worker["judges"])]


def sweep(
    numbered: list[tuple[str, Case]],
    plugins: list[Plugin],
    implementations: list[Implementation],
    judges: list[Registered],
    jobs: int = 1,
    advance: Callable[[int], None] = lambda done: None,
    oracles: list[PluggedOracle] = (),
) -> list[Record]:
    """Every record over the cases, in case order; ``advance(n)`` after each n cases judged.
    ``oracles``: the plugged-in ones among ``judges``, reopened by each process with ``jobs``."""
    if jobs <= 1:
        records = []
        for case_id, case in numbered:
            records += records_of_case(case_id, case, implementations, judges)
            advance(1)
        return records
    chunks = [numbered[i : i + CHUNK] for i in range(0, len(numbered), CHUNK)]
    context = multiprocessing.get_context("spawn")  # fork after torch/jax start threads can deadlock
    records = []
    reopen = [(oracle.kind, oracle.spec, oracle.info.name) for oracle in oracles]
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker, initargs=(plugins, reopen)) as pool:
        for chunk, chunk_records in zip(chunks, pool.map(_judge_chunk, chunks)):
            records += chunk_records
            advance(len(chunk))
    return records
