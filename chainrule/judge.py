"""One case judged: the source's answer against every oracle, each disagreement adjudicated.

The case's rounding sensitivity (``chainrule.tolerances.sensitivity``) is computed once here and
handed to every comparison of the case.
"""

from __future__ import annotations

import dataclasses
import time

from chainrule.case import Case
from chainrule.compare import Comparison, compare
from chainrule.directional import THRESHOLD, as_comparison, directional_check
from chainrule.oracles.base import OracleGradients
from chainrule.oracles.registry import Registered
from chainrule.sources.ask import answer
from chainrule.sources.faults import Fault
from chainrule.sources.implementation import Implementation
from chainrule.status import Status
from chainrule.tolerances import Sensitivity, sensitivity
from chainrule.verdict import CaseVerdict

__all__ = ["adjudicate", "ask_oracles", "judge", "judge_by_size", "judge_oracle"]


def ask_oracles(case: Case, judges: list[Registered]) -> dict[str, tuple[OracleGradients, float]]:
    """Every judge's answer on the case, with the seconds it took."""
    answers = {}
    for registered in judges:
        start = time.perf_counter()
        result = registered.oracle.gradients(case.arch, case.params, case.X, case.Y)
        answers[registered.info.name] = (result, time.perf_counter() - start)
    return answers


def adjudicate(
    comparison: Comparison, registered: Registered, case: Case, loss: float, grads, bounds: Sensitivity, source=None
) -> Comparison:
    """A disagreement with an oracle that can refine (finite differences): re-estimate every
    disputed entry by Richardson extrapolation and compare again, as PyTorch's OpInfo re-runs a
    disputed sample in higher precision. Every one: an entry left unrefined could carry the plain
    difference's truncation error h^2 L'''/6 into a verdict."""
    if comparison.status is not Status.DISAGREE or not hasattr(registered.oracle, "refine"):
        return comparison
    disputed = [(t.tensor, tuple(int(i) for i in index)) for t in comparison.disagreeing for index in t.bad]
    if not disputed:  # only the loss disagrees: nothing to refine
        return comparison
    refined = registered.oracle.refine(case.arch, case.params, case.X, case.Y, disputed)
    pairs = [comparison.tensors[i : i + 2] for i in range(0, len(comparison.tensors), 2)]
    grads_fd = [[W.expected.copy(), b.expected.copy()] for W, b in pairs]
    trusted = [[W.trusted.copy(), b.trusted.copy()] for W, b in pairs]
    for (tensor, index), value in refined.items():
        l, which = tensor.slot
        grads_fd[l][which][index] = value
        trusted[l][which][index] = trusted[l][which][index] and value == value  # NaN: crossed a kink
    expected = OracleGradients(comparison.loss_expected, [tuple(p) for p in grads_fd], [tuple(p) for p in trusted])
    again = compare(loss, grads, expected, registered.info, bounds, source=source)
    note = f"{len(refined)} disputed entries re-estimated by Richardson extrapolation"
    return dataclasses.replace(again, note=note)


def judge(implementation: Implementation, case: Case, judges: list[Registered], answers=None) -> CaseVerdict:
    """The implementation's answer on one case against every judge (answers may be precomputed)."""
    answers = answers if answers is not None else ask_oracles(case, judges)
    start = time.perf_counter()
    try:
        loss, grads = answer(implementation, case.arch, case.params, case.X, case.Y)
    except Fault as fault:
        return CaseVerdict(implementation.name, case, fault=fault, seconds=time.perf_counter() - start)
    seconds = time.perf_counter() - start
    bounds = sensitivity(case.arch, case.params, case.X, case.Y)
    comparisons = []
    for registered in judges:
        expected, _ = answers[registered.info.name]
        comparison = compare(loss, grads, expected, registered.info, bounds)
        comparisons.append(adjudicate(comparison, registered, case, loss, grads, bounds))
    return CaseVerdict(implementation.name, case, tuple(comparisons), seconds=seconds)


def judge_oracle(judged: Registered, judging: Registered, case: Case, answers, bounds: Sensitivity | None = None) -> Comparison:
    """One oracle's answer (from ``answers``, as ask_oracles gives them) judged by another, each
    side's kink convention stated, a disagreement adjudicated as for any source."""
    bounds = bounds if bounds is not None else sensitivity(case.arch, case.params, case.X, case.Y)
    got, _ = answers[judged.info.name]
    expected, _ = answers[judging.info.name]
    comparison = compare(got.loss, got.grads, expected, judging.info, bounds, source=judged.info)
    return adjudicate(comparison, judging, case, got.loss, got.grads, bounds, source=judged.info)


def judge_by_size(implementation: Implementation, case: Case, judges: list[Registered], threshold: int = THRESHOLD) -> CaseVerdict:
    """One case by the method its size calls for, recorded in ``verdict.judged_by``: up to
    ``threshold`` parameters every entry against each judge (``judge``); above it, where
    every-entry finite differences would take hours, random directional derivatives that name
    the wrong entries (chainrule.directional), and no framework is asked."""
    if case.arch.parameter_count <= threshold:
        return judge(implementation, case, judges)
    start = time.perf_counter()
    try:
        loss, grads = answer(implementation, case.arch, case.params, case.X, case.Y)
    except Fault as fault:
        return CaseVerdict(implementation.name, case, fault=fault, seconds=time.perf_counter() - start, judged_by="directional")
    seconds = time.perf_counter() - start
    result = directional_check((loss, grads), case.arch, case.params, case.X, case.Y)
    return CaseVerdict(implementation.name, case, (as_comparison(result, grads),), seconds=seconds, judged_by="directional")
