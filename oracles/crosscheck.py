"""Judging a gradient source: ask every oracle, compare, and search for the smallest failure.

``judge`` answers one case. ``crosscheck`` lets Hypothesis generate cases, and when one fails,
shrink it to the smallest network, batch and values that still fail: the counterexample a
person can read.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, assume, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import FlakyFailure

from reference.architecture import REQUIRED_OUTPUT, Architecture

from .base import OracleGradients
from .tolerances import sensitivity
from .compare import Comparison, Status, compare
from .kinks import rounding_ambiguous
from .reduce import reduce_case
from .plugins import Fault, Implementation, answer, load, with_timeout, wrap
from .registry import Registered, available, registry
from .strategies import Case, architectures, cases
from .verdict import CaseVerdict, format_failure
from .directional import THRESHOLD, as_comparison, directional_check
from .diagnosis import diagnose

__all__ = ["CheckFailure", "NoOracle", "Summary", "adjudicate", "ask_oracles", "judge", "judge_case", "coverage_cases", "random_case", "crosscheck", "as_implementation"]


class NoOracle(AssertionError):
    """No oracle is available: a check with no judge must fail, never pass vacuously."""


class CheckFailure(AssertionError):
    """The implementation disagrees with an oracle; carries the minimal counterexample and, once
    the search is over, its diagnosis (``.diagnosis``: oracles.diagnosis.Diagnosis, else None)."""

    def __init__(self, verdict: CaseVerdict, seed: int):
        self.verdict = verdict
        self.seed = seed
        self.diagnosis = None
        super().__init__(format_failure(verdict) + f"\n(seed {seed})")

    def diagnosed(self, implementation: Implementation, judges: list[Registered]) -> "CheckFailure":
        """Itself, with the diagnosis of its verdict in ``.diagnosis`` and in its message.
        Called once, on the final (shrunk) failure: diagnosing re-judges variations of the case."""
        self.diagnosis = diagnose(implementation, self.verdict, judges)
        self.args = (format_failure(self.verdict, self.diagnosis) + f"\n(seed {self.seed})",)
        return self


@dataclass(frozen=True)
class Summary:
    """What a passing crosscheck saw."""

    implementation: str
    oracles: tuple[str, ...]
    verdicts: tuple[CaseVerdict, ...]
    seed: int
    rejected: int  # cases whose kinks sat within rounding of 0 (no source can be judged there)
    unexercised: tuple[str, ...] = ()  # activations and losses outside what it declares: never drawn, never agreement
    covered: tuple[CaseVerdict, ...] = ()  # one per declared (hidden, output, loss) pairing, after the search

    def count(self, status: Status) -> int:
        return sum(v.status is status for v in self.verdicts)

    def __str__(self) -> str:
        return (
            f"{self.implementation}: {len(self.verdicts)} cases against {', '.join(self.oracles)}: "
            f"{self.count(Status.AGREE)} agree, {self.count(Status.CONVENTION)} differ only by a kink convention, "
            f"{self.count(Status.NO_EVIDENCE)} without evidence (seed {self.seed})"
            + (f"; then {len(self.covered)} coverage cases, one per declared pairing of activations and loss, agree" if self.covered else "")
            + (f"\nnot exercised (outside what it declares it supports): {', '.join(self.unexercised)}" if self.unexercised else "")
        )


class _Retired(BaseException):
    """A fatal fault (a hang, a command that died): out of Hypothesis at once, neither retried
    nor shrunk, since the implementation can no longer be asked. Not an Exception, so that
    Hypothesis lets it through as it does KeyboardInterrupt."""

    def __init__(self, verdict: CaseVerdict):
        super().__init__(verdict)
        self.verdict = verdict


def as_implementation(source) -> Implementation:
    """A spec string, an Implementation, or any contract object."""
    if isinstance(source, Implementation):
        return source
    if isinstance(source, str):
        return load(source)
    return wrap(source)


def ask_oracles(case: Case, judges: list[Registered]) -> dict[str, tuple[OracleGradients, float]]:
    """Every judge's answer on the case, with the seconds it took."""
    answers = {}
    for registered in judges:
        start = time.perf_counter()
        result = registered.oracle.gradients(case.arch, case.params, case.X, case.Y)
        answers[registered.info.name] = (result, time.perf_counter() - start)
    return answers


def adjudicate(comparison: Comparison, registered: Registered, case: Case, loss: float, grads, source=None) -> Comparison:
    """A disagreement with an oracle that can refine (finite differences): re-estimate every
    disputed entry more precisely (Richardson extrapolation) and compare again, as PyTorch's
    OpInfo re-runs a disputed sample in higher precision. Every one: an entry left unrefined
    could carry the plain difference's truncation error h^2 L'''/6 into a verdict."""
    if comparison.status is not Status.DISAGREE or not hasattr(registered.oracle, "refine"):
        return comparison
    disputed = [(t.layer - 1, 0 if t.kind == "W" else 1, tuple(int(i) for i in index)) for t in comparison.disagreeing for index in t.bad]
    if not disputed:  # only the loss disagrees: nothing to refine
        return comparison
    refined = registered.oracle.refine(case.arch, case.params, case.X, case.Y, disputed)
    pairs = [comparison.tensors[i : i + 2] for i in range(0, len(comparison.tensors), 2)]
    grads_fd = [(W.expected.copy(), b.expected.copy()) for W, b in pairs]
    trusted = [(W.trusted.copy(), b.trusted.copy()) for W, b in pairs]
    for (l, which, index), value in refined.items():
        grads_fd[l][which][index] = value
        trusted[l][which][index] = trusted[l][which][index] and value == value  # NaN: crossed a kink
    again = compare(loss, grads, OracleGradients(comparison.loss_expected, grads_fd, trusted, sensitivity=sensitivity(case.arch, case.params, case.X, case.Y)), registered.info, source=source)
    note = f"{len(refined)} disputed entries re-estimated by Richardson extrapolation"
    return Comparison(again.oracle, again.status, again.loss_got, again.loss_expected, again.loss_error, again.tensors, note)


def judge(implementation: Implementation, case: Case, judges: list[Registered], answers=None) -> CaseVerdict:
    """The implementation's answer on one case against every judge (answers may be precomputed)."""
    answers = answers if answers is not None else ask_oracles(case, judges)
    start = time.perf_counter()
    try:
        loss, grads = answer(implementation, case.arch, case.params, case.X, case.Y)
    except Fault as fault:
        return CaseVerdict(implementation.name, case, fault=fault, seconds=time.perf_counter() - start)
    seconds = time.perf_counter() - start
    comparisons = []
    for registered in judges:
        expected, _ = answers[registered.info.name]
        comparison = compare(loss, grads, expected, registered.info)
        comparisons.append(adjudicate(comparison, registered, case, loss, grads))
    return CaseVerdict(implementation.name, case, tuple(comparisons), seconds=seconds)


def judge_case(implementation: Implementation, case: Case, judges: list[Registered], threshold: int = THRESHOLD) -> CaseVerdict:
    """One case by the method its size calls for, recorded in ``verdict.method``: up to
    ``threshold`` parameters every entry against each judge (``judge``); above it, where every-entry
    finite differences would take hours, random directional derivatives that name the wrong
    entries (oracles.directional), and no framework is asked."""
    if case.arch.parameter_count <= threshold:
        return judge(implementation, case, judges)
    start = time.perf_counter()
    try:
        loss, grads = answer(implementation, case.arch, case.params, case.X, case.Y)
    except Fault as fault:
        return CaseVerdict(implementation.name, case, fault=fault, seconds=time.perf_counter() - start, method="directional")
    seconds = time.perf_counter() - start
    result = directional_check((loss, grads), case.arch, case.params, case.X, case.Y)
    return CaseVerdict(implementation.name, case, (as_comparison(result, grads),), seconds=seconds, method="directional")


def _still_fails(implementation: Implementation, case: Case, judges: list[Registered]) -> bool:
    if implementation.retired is not None or rounding_ambiguous(case.arch, case.params, case.X):
        return False
    return judge_case(implementation, case, judges).failed


def _deciding_judge(verdict: CaseVerdict, judges: list[Registered]) -> list[Registered]:
    """The first judge (registry order: the fastest exact one first) that rejected the verdict.

    Shrinking re-asks hundreds of cases; one judge that already rejected the failing case is
    enough to keep it failing, and the shrunk case is judged by all of them afterwards."""
    rejecting = {c.oracle for c in verdict.comparisons if c.status is Status.DISAGREE}
    chosen = [r for r in judges if r.info.name in rejecting] or judges
    return chosen[:1]


def _coverage(implementation: Implementation, judges: list[Registered], seed: int) -> tuple[CaseVerdict, ...]:
    """Judge the coverage cases after a passing search; the first failure raises CheckFailure."""
    verdicts = []
    for case in coverage_cases(implementation, seed):
        if rounding_ambiguous(case.arch, case.params, case.X):
            continue
        verdict = judge_case(implementation, case, judges)
        verdicts.append(verdict)
        if verdict.failed:
            raise CheckFailure(verdict, seed)
    return tuple(verdicts)


def coverage_cases(implementation: Implementation, seed: int) -> list[Case]:
    """One random case per supported (hidden activation, output activation, loss), batch 2:
    judged after a passing search, so no pairing the implementation declares is left to chance."""
    hidden = [name for name in implementation.activations if name != "softmax"]
    covered = []
    for loss in implementation.losses:
        required = REQUIRED_OUTPUT.get(loss)
        for output in [required] if required else implementation.activations:
            if output not in implementation.activations:
                continue
            for middle in hidden:
                covered.append(random_case(Architecture((3, 3, 3), (middle, output), loss), 2, seed + len(covered)))
    return covered


def random_case(arch, batch: int, seed: int) -> Case:
    """A case of the given architecture with random float64 values from ``seed``: W(l) ~ N(0, 1/fan-in),
    b ~ N(0, 0.01), X ~ N(0, 1); Y ~ N(0, 1) for mse, probability rows for cross_entropy, U(0, 1) for
    binary_cross_entropy."""
    rng = np.random.default_rng(seed)
    params = [(rng.standard_normal((m, n)) / np.sqrt(n), 0.1 * rng.standard_normal(m)) for n, m in zip(arch.sizes, arch.sizes[1:])]
    X = rng.standard_normal((batch, arch.sizes[0]))
    shape = (batch, arch.sizes[-1])
    if arch.loss == "cross_entropy":
        Y = rng.dirichlet(np.ones(shape[1]), size=batch)
    elif arch.loss == "binary_cross_entropy":
        Y = rng.random(shape)
    else:
        Y = rng.standard_normal(shape)
    return Case(arch, params, X, Y)


def crosscheck(
    implementation, examples: int = 200, seed: int | None = None, oracles: list[str] | None = None, on_verdict=None,
    timeout: float | None = None,
) -> Summary:
    """Judge ``implementation`` on ``examples`` generated cases against every available oracle.

    Returns a Summary when everything agrees; raises CheckFailure (an AssertionError) with the
    shrunk counterexample otherwise, and NoOracle when there is nothing to judge with.
    ``timeout``: seconds per call before the implementation counts as hung (default: its own,
    plugins.DEFAULT_TIMEOUT unless it was loaded with another; ``math.inf``: no limit).
    """
    implementation = as_implementation(implementation)
    if timeout is not None:
        implementation = with_timeout(implementation, timeout)
    judges = available(oracles)
    if not judges:
        reasons = "; ".join(f"{r.info.name}: {r.info.reason}" for r in registry())
        raise NoOracle(f"no oracle is available to judge {implementation.name} ({reasons})")
    seed = random.randrange(2**32) if seed is None else seed
    strategy = cases(architectures(activations=implementation.activations, losses=implementation.losses))
    verdicts: list[CaseVerdict] = []
    rejected = 0
    deciding = judges  # once a case fails, shrinking asks only one judge that rejected it

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=False,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate, Phase.shrink),
        verbosity=Verbosity.quiet,
    )
    @hypothesis_seed(seed)
    @given(strategy)
    def search(case: Case) -> None:
        nonlocal rejected, deciding
        if rounding_ambiguous(case.arch, case.params, case.X):
            rejected += 1
            assume(False)
        verdict = judge_case(implementation, case, deciding)
        verdicts.append(verdict)
        if on_verdict is not None:
            on_verdict(verdict)
        if verdict.fault is not None and verdict.fault.fatal:
            raise _Retired(verdict)
        if verdict.failed:
            deciding = _deciding_judge(verdict, deciding)
            raise CheckFailure(verdict, seed)

    try:
        search()
        covered = _coverage(implementation, judges, seed)
    except CheckFailure as failure:
        case = reduce_case(failure.verdict.case, lambda c: _still_fails(implementation, c, deciding))
        final = judge_case(implementation, case, judges)  # the reduced case, before every judge
        raise CheckFailure(final if final.failed else failure.verdict, seed).diagnosed(implementation, judges) from None
    except _Retired as retired:
        raise CheckFailure(retired.verdict, seed).diagnosed(implementation, judges) from None
    except FlakyFailure as error:
        failures = [e for e in error.exceptions if isinstance(e, CheckFailure)]
        if not failures:
            raise
        raise failures[0].diagnosed(implementation, judges) from None
    names = tuple(r.info.name for r in judges)
    return Summary(implementation.name, names, tuple(verdicts), seed, rejected, implementation.unexercised, covered)
