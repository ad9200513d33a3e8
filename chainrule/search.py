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
from chainrule.directional import THRESHOLD
from chainrule.evidence import KINK, evidence
from chainrule.judge import SizeBudget, judge_by_size, size_budget
from chainrule.numerics import RangeFinding, numerical_range
from chainrule.oracles.registry import Registered, registry
from chainrule.plugged import Disqualified, Qualification, qualify, resolve
from chainrule.reduce import reduce_case
from chainrule.reference import Architecture
from chainrule.sources.implementation import IN_PROCESS, Implementation, with_precision, with_timeout
from chainrule.sources.load import as_implementation
from chainrule.status import Status
from chainrule.strategies import SEARCH, Sizes, architectures, cases, coverage_shapes, size_limits
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

    def diagnosed(self, implementation: Implementation, judges: list[Registered], limits: Sizes | None = None) -> "CheckFailure":
        """Itself, with the diagnosis of its verdict in ``.diagnosis`` and in its message.
        Called once, on the final (shrunk) failure: diagnosing re-judges variations of the case
        (sizes within ``limits``)."""
        self.diagnosis = diagnose(implementation, self.verdict, judges, limits=limits)
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
    outside: int = 0  # cases set aside outside the chain rule's domain (the plain formulas overflow or lose their precision)
    numerical_range: tuple[RangeFinding, ...] = ()  # where it stops being finite or within rounding: warnings
    isolation: str = ""  # where its calls ran (Implementation.isolation): a worker process, or this process and why
    sizes: str = ""  # the largest sizes judged (search and coverage), and the time budget that bounded them (SizeBudget.reached)
    precision: str = "float64"  # the precision it was judged in (declared, or crosscheck's precision=)
    qualifications: tuple[Qualification, ...] = ()  # each plugged-in oracle's qualification run, before it judged (chainrule.plugged)

    def count(self, status: Status) -> int:
        return sum(v.status is status for v in self.verdicts)

    def __str__(self) -> str:
        return (
            f"{self.implementation}" + (f" (judged in {self.precision})" if self.precision != "float64" else "")
            + f": {len(self.verdicts)} cases against {', '.join(self.oracles)}: "
            f"{self.count(Status.AGREE)} agree, {self.count(Status.CONVENTION)} differ only by a kink convention, "
            f"{self.count(Status.NO_EVIDENCE)} without evidence (seed {self.seed})"
            + (f"; {self.sizes}" if self.sizes else "")
            + (f"; {self.outside} set aside outside the chain rule's domain (the plain formulas overflow or lose their precision there)" if self.outside else "")
            + (f"; then {len(self.covered)} coverage cases, one per declared pairing of activations and loss, agree" if self.covered else "")
            + (f"\nnot exercised (outside what it declares it supports): {', '.join(self.unexercised)}" if self.unexercised else "")
            + "".join(f"\nnumerical range (warning): {finding}" for finding in self.numerical_range)
            + (f"\nnot isolated: it ran {self.isolation}" if self.isolation.startswith(IN_PROCESS) else "")
            + "".join(f"\n{qualification}" for qualification in self.qualifications)
        )


class _Stopped(BaseException):
    """A plugged-in oracle disqualified while judging (chainrule.plugged.Disqualified): out of
    Hypothesis at once, as _Retired, and raised again from crosscheck."""

    def __init__(self, disqualified: Disqualified):
        super().__init__(disqualified)
        self.disqualified = disqualified


class _Retired(BaseException):
    """A fatal fault (a hang, a command that died): out of Hypothesis at once, neither retried
    nor shrunk, since the implementation can no longer be asked. Not an Exception, so that
    Hypothesis lets it through as it does KeyboardInterrupt."""

    def __init__(self, verdict: CaseVerdict):
        super().__init__(verdict)
        self.verdict = verdict


def _still_fails(implementation: Implementation, case: Case, judges: list[Registered], kind: str) -> bool:
    """The case is evidence about the chain rule and fails the way the original did (a
    disagreement never becomes a fault on the way, nor a fault another fault)."""
    if implementation.retired is not None:
        return False
    case = case.in_precision(implementation.precision)
    found = evidence(case, implementation.precision)
    if found.set_aside:
        return False
    return judge_by_size(implementation, case, judges, bounds=found.bounds).failure_kind == kind


def _deciding_judge(verdict: CaseVerdict, judges: list[Registered]) -> list[Registered]:
    """The first judge (registry order: the fastest exact one first) that rejected the verdict.

    Shrinking re-asks hundreds of cases; one judge that already rejected the failing case is
    enough to keep it failing, and the shrunk case is judged by all of them afterwards."""
    rejecting = {c.oracle for c in verdict.comparisons if c.status is Status.DISAGREE}
    chosen = [r for r in judges if r.info.name in rejecting] or judges
    return chosen[:1]


def _coverage(implementation: Implementation, judges: list[Registered], seed: int, sizes: Sizes, budget: SizeBudget) -> tuple[CaseVerdict, ...]:
    """Judge the coverage cases after a passing search; the first failure raises CheckFailure."""
    verdicts = []
    for case in coverage_cases(implementation, seed, sizes, budget.max_work):
        case = case.in_precision(implementation.precision)
        found = evidence(case, implementation.precision)
        if found.set_aside:
            continue
        verdict = judge_by_size(implementation, case, judges, bounds=found.bounds)
        verdicts.append(verdict)
        if verdict.failed:
            raise CheckFailure(verdict, seed)
    return tuple(verdicts)


def _findings(*verdicts: tuple[CaseVerdict, ...]) -> tuple[RangeFinding, ...]:
    """The numerical-range findings of judged cases (chainrule.local), the first per function."""
    found = {}
    for verdict in (v for group in verdicts for v in group):
        if verdict.finding is not None:
            found.setdefault(verdict.finding.probe, verdict.finding)
    return tuple(found.values())


def coverage_cases(implementation: Implementation, seed: int, sizes: Sizes = SEARCH, max_work: int | None = None) -> list[Case]:
    """One random case per supported (hidden activation, output activation, loss), batch 2:
    judged after a passing search, so no pairing the implementation declares is left to chance.
    Then per declared loss a wide and a deep case (strategies.coverage_shapes, within ``sizes``
    and ``max_work``), so no tile's edge or depth within the bounds is left to chance either."""
    hidden = [name for name in implementation.activations if name != "softmax"]
    covered = []
    middle = next((name for name in hidden if name != "identity"), hidden[0] if hidden else None)
    for loss in implementation.losses if middle is not None else ():
        output = REQUIRED_OUTPUT.get(loss) or ("identity" if "identity" in implementation.activations else middle)
        if output in implementation.activations:
            covered += [random_case(arch, n, seed + len(covered) + k) for k, (arch, n) in enumerate(coverage_shapes(middle, output, loss, sizes, THRESHOLD, max_work))]
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
    timeout: float | None = None, isolate: bool = True, memory_limit: int | None = None,
    max_width: int | None = None, max_batch: int | None = None, max_depth: int | None = None, precision: str | None = None,
    range_sweep: bool = True,
) -> Summary:
    """Judge ``implementation`` on ``examples`` generated cases against every available oracle.

    Returns a Summary when everything agrees; raises CheckFailure (an AssertionError) with the
    shrunk counterexample otherwise, and NoOracle when there is nothing to judge with.
    ``timeout``: seconds per call before the implementation counts as hung (default: its own,
    plugins.DEFAULT_TIMEOUT unless it was loaded with another; ``math.inf``: no limit).
    ``isolate``: a spec (MODULE:ATTR) or an object that can be sent to one (it pickles) runs in a
    worker process with ``memory_limit`` bytes, stopped at the end; any other object runs in this
    process, and the Summary says why (``isolation``). An Implementation runs where it was loaded.
    ``max_width``, ``max_batch``, ``max_depth``: the largest layer, N and number of layers drawn
    (default strategies.SEARCH: 129, 64, 10), for implementations with known limits; within them,
    the sizes drawn stay within a time budget measured on the implementation (judge.size_budget).
    ``precision``: the one it is judged in (chainrule.precision; default: the one it declares,
    else float64): it is sent only cases exactly representable there, and judged within the noise
    of the article's formulas evaluated in that precision.
    ``oracles``: None (every available built-in oracle), or a list of built-in names and sources
    to plug in as oracles (chainrule.plugged.resolve: MODULE:ATTR, objects, Implementations,
    names of installed ``chainrule.oracles`` entry points); each plugged-in one must first pass a
    qualification run (``Summary.qualifications``) and judges only what it declares; one that
    fails, faults or is found wrong raises chainrule.plugged.Disqualified ("failed qualification").
    ``range_sweep``: False leaves out the numerical-range sweep (as a qualification run does).
    """
    sizes = size_limits(SEARCH.bounded(max_width, max_batch, max_depth))  # ValueError before anything starts
    opened = not isinstance(implementation, Implementation)  # started here (perhaps a worker): stopped here
    implementation = as_implementation(implementation, isolate=isolate, memory_limit=memory_limit)
    if timeout is not None:
        implementation = with_timeout(implementation, timeout)
    implementation = with_precision(implementation, precision)
    try:
        builtins, plugged, opened_oracles = resolve(oracles, timeout, isolate=isolate, memory_limit=memory_limit)
    except BaseException:
        if opened and implementation.isolated:
            implementation.close()
        raise
    judges = builtins
    if not judges:
        for oracle in opened_oracles:
            oracle.close()
        reasons = "; ".join(f"{r.info.name}: {r.info.reason}" for r in registry())
        raise NoOracle(f"no oracle is available to judge {implementation.name} ({reasons})")
    seed = random.randrange(2**32) if seed is None else seed
    budget = size_budget(implementation, sizes.width, sizes.batch, sizes.depth)
    architecture = architectures(activations=implementation.activations, losses=implementation.losses, max_width=sizes.width, max_depth=sizes.depth)
    strategy = cases(architecture, max_batch=sizes.batch, max_parameters=THRESHOLD, max_work=budget.max_work)
    verdicts: list[CaseVerdict] = []
    rejected = outside = 0
    deciding = judges  # once a case fails, shrinking asks only one judge that rejected it
    kind = ""  # the first failure's kind: shrinking keeps it

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
        nonlocal rejected, outside, deciding, kind
        case = case.in_precision(implementation.precision)
        found = evidence(case, implementation.precision)
        if found.set_aside:
            rejected += found.set_aside == KINK
            outside += found.set_aside != KINK
            assume(False)
        try:
            verdict = judge_by_size(implementation, case, deciding, bounds=found.bounds)
        except Disqualified as disqualified:
            raise _Stopped(disqualified) from None
        if kind and verdict.failure_kind != kind:  # shrinking: a failure of another kind is not this one
            return
        verdicts.append(verdict)
        if on_verdict is not None:
            on_verdict(verdict)
        if verdict.fault is not None and verdict.fault.fatal:
            raise _Retired(verdict)
        if verdict.failed:
            deciding, kind = _deciding_judge(verdict, deciding), verdict.failure_kind
            raise CheckFailure(verdict, seed)

    try:
        if budget.fault is not None:  # it hung or died while being timed
            raise _Retired(budget.fault)
        qualified = tuple(qualify(oracle, builtins, seed, crosscheck) for oracle in plugged)  # Disqualified: nothing is judged
        judges = deciding = builtins + [oracle.registered for oracle in plugged]
        search()
        covered = _coverage(implementation, judges, seed, sizes, budget)
        ranges = (numerical_range(implementation, builtins) if range_sweep else ()) + _findings(verdicts, covered)
    except CheckFailure as failure:
        failed = failure.verdict
        case = reduce_case(failed.case, lambda c: _still_fails(implementation, c, deciding, failed.failure_kind))
        final = judge_by_size(implementation, case, judges)  # the reduced case, before every judge
        raise CheckFailure(final if final.failed else failed, seed).diagnosed(implementation, judges, sizes) from None
    except _Retired as retired:
        raise CheckFailure(retired.verdict, seed).diagnosed(implementation, judges, sizes) from None
    except _Stopped as stopped:
        raise stopped.disqualified from None
    except FlakyFailure as error:
        failures = [e for e in error.exceptions if isinstance(e, CheckFailure)]
        if not failures:
            raise
        raise failures[0].diagnosed(implementation, judges, sizes) from None
    finally:
        if opened and implementation.isolated:
            implementation.close()
        for oracle in opened_oracles:
            oracle.close()
    names = tuple(r.info.name for r in judges)
    return Summary(implementation.name, names, tuple(verdicts), seed, rejected, implementation.unexercised, covered, outside, ranges, isolation=implementation.isolation,
                   sizes=budget.reached([v.case for v in (*verdicts, *covered)]), precision=implementation.precision.name, qualifications=qualified)
