"""The search: ``crosscheck`` lets Hypothesis generate cases for a gradient source and, when one
fails, shrinks it to the smallest network, batch and values that still fail (then
chainrule.reduce removes what Hypothesis cannot see): the counterexample a person can read.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, Verbosity, assume, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import FlakyFailure

from chainrule.case import Case, random_case
from chainrule.contract import REQUIRED_OUTPUT
from chainrule.diagnosis import diagnose
from chainrule.judge import judge_by_size
from chainrule.kinks import rounding_ambiguous
from chainrule.oracles.registry import Registered, available, registry
from chainrule.reduce import reduce_case
from chainrule.reference import Architecture
from chainrule.sources.implementation import Implementation, with_timeout
from chainrule.sources.load import as_implementation
from chainrule.status import Status
from chainrule.strategies import architectures, cases
from chainrule.verdict import CaseVerdict, format_failure

__all__ = ["CheckFailure", "NoOracle", "Summary", "coverage_cases", "crosscheck"]


class NoOracle(AssertionError):
    """No oracle is available: a check with no judge must fail, never pass vacuously."""


class CheckFailure(AssertionError):
    """The implementation disagrees with an oracle; carries the minimal counterexample and, once
    the search is over, its diagnosis (``.diagnosis``: chainrule.diagnosis.Diagnosis, else None)."""

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


def _still_fails(implementation: Implementation, case: Case, judges: list[Registered]) -> bool:
    if implementation.retired is not None or rounding_ambiguous(case.arch, case.params, case.X):
        return False
    return judge_by_size(implementation, case, judges).failed


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
        verdict = judge_by_size(implementation, case, judges)
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
        verdict = judge_by_size(implementation, case, deciding)
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
        final = judge_by_size(implementation, case, judges)  # the reduced case, before every judge
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
