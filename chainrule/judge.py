"""One case judged: the source's answer against every oracle, each disagreement adjudicated.

The case's rounding sensitivity (``chainrule.tolerances.sensitivity``) is computed once here and
handed to every comparison of the case.

Which judge decides at which size (``sized_judges``, used by ``judge_by_size``): the exact
frameworks compare every entry at every size the search draws (torch always; JAX on networks
that fit the one padded shape it has compiled, ``COMPILED_SHAPE``, since each new shape costs
it seconds of compilation); finite differences compare every entry up to
``FINITE_DIFFERENCES_WORK`` (N x parameters), above which they cost more than the rest of the
case together. Where no exact framework is at hand, the judges there are kept at every size.
Above ``threshold`` parameters (``check --arch``), random directional derivatives.

``size_budget`` measures an implementation's seconds per multiply-add before a search, so that
the sizes drawn stay within a time budget (``CASE_SECONDS`` a case) instead of reaching the
per-call timeout.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from chainrule.case import Case, random_case
from chainrule.compare import Comparison, compare
from chainrule.contract import KINK_DERIVATIVES, REQUIRED_OUTPUT
from chainrule.directional import THRESHOLD, as_comparison, directional_check
from chainrule.kinks import convention_note
from chainrule.local import on_own_functions
from chainrule.noise import SAFETY
from chainrule.oracles.base import OracleGradients, OracleInfo
from chainrule.oracles.registry import Registered
from chainrule.plugged import Disqualified
from chainrule.reference import Architecture
from chainrule.sources.ask import answer
from chainrule.sources.faults import Fault
from chainrule.sources.implementation import Implementation
from chainrule.status import Status
from chainrule.tolerances import TOLERANCES, Sensitivity, sensitivity
from chainrule.verdict import CaseVerdict, format_failure

__all__ = [
    "CASE_SECONDS", "COMPILED_SHAPE", "FINITE_DIFFERENCES_WORK", "SizeBudget", "adjudicate", "ask_oracles", "judge", "judge_by_size",
    "judge_oracle", "least_squares", "size_budget", "sized_judges",
]

FINITE_DIFFERENCES_WORK = 4_096  # N x parameters up to which finite differences judge every entry (milliseconds)
COMPILED_SHAPE = 8  # JAX judges a network whose depth, widths and N are all at most this: its one compiled padded shape
EXPLAINABLE_FAULTS = ("raised", "non-finite")  # faults its own functions' numerical range may explain (chainrule.local)
CASE_SECONDS = 0.3  # the time budget: what the largest case drawn may cost its implementation (60 s for 200 such cases)


def ask_oracles(case: Case, judges: list[Registered]) -> dict[str, tuple[OracleGradients, float]]:
    """Every judge's answer on the case, with the seconds it took (a plugged-in oracle's only where it judges: OracleInfo.supports)."""
    answers = {}
    for registered in judges:
        if not registered.info.supports(case.arch):
            continue
        start = time.perf_counter()
        result = registered.oracle.gradients(case.arch, case.params, case.X, case.Y)
        answers[registered.info.name] = (result, time.perf_counter() - start)
    return answers


def adjudicate(
    comparison: Comparison, registered: Registered, case: Case, loss: float, grads, bounds: Sensitivity, source=None
) -> Comparison:
    """A disagreement with an oracle that can refine (finite differences): re-estimate every
    disputed entry by Richardson extrapolation and compare again, as PyTorch's OpInfo re-runs a
    disputed sample in higher precision, until no entry left unrefined is disputed (a refined
    entry can shrink its tensor's scale and bring another into dispute). Every one: an entry
    left unrefined could carry the plain difference's truncation error h^2 L'''/6 into a verdict.
    A refined entry whose difference from the answer lies within SAFETY times the estimate's own
    error (its Richardson tableau's) is no evidence: the judge's own error never counts against
    the answer (an O(h^2) remainder where the exact gradient is 0)."""
    if comparison.status is not Status.DISAGREE or not hasattr(registered.oracle, "refine_with_errors"):
        return comparison
    pairs = [comparison.tensors[i : i + 2] for i in range(0, len(comparison.tensors), 2)]
    grads_fd = [[W.expected.copy(), b.expected.copy()] for W, b in pairs]
    trusted = [[W.trusted.copy(), b.trusted.copy()] for W, b in pairs]
    refined: dict = {}
    again = comparison
    while again.status is Status.DISAGREE:
        disputed = [(t.tensor, tuple(int(i) for i in index)) for t in again.disagreeing for index in t.bad]
        disputed = [entry for entry in disputed if entry not in refined]
        if not disputed:  # only the loss disagrees, or every disputed entry is refined already
            break
        estimates = registered.oracle.refine_with_errors(case.arch, case.params, case.X, case.Y, disputed)
        refined.update(estimates)
        for (tensor, index), (value, error) in estimates.items():
            l, which = tensor.slot
            got = float(np.asarray(grads[l][which], dtype=np.float64)[index])
            grads_fd[l][which][index] = value
            # NaN: crossed a kink; a difference within the estimate's own error: no evidence either way
            trusted[l][which][index] = trusted[l][which][index] and value == value and not abs(got - value) <= SAFETY * error
        expected = OracleGradients(comparison.loss_expected, [tuple(p) for p in grads_fd], [tuple(p) for p in trusted])
        again = compare(loss, grads, expected, registered.info, bounds, source=source)
    if not refined:
        return comparison
    return dataclasses.replace(again, note=f"{len(refined)} disputed entries re-estimated by Richardson extrapolation")


def judge(implementation: Implementation, case: Case, judges: list[Registered], answers=None, bounds: Sensitivity | None = None) -> CaseVerdict:
    """The implementation's answer on one case against every judge (answers and the case's
    floors may be precomputed, for the case as it is in the implementation's precision:
    Case.in_precision, which this applies). A case outside the chain rule's domain is not asked:
    its verdict says why (``outside``) and decides nothing. A disagreement, or a raised or
    non-finite fault, is then judged on its own functions (chainrule.local.on_own_functions)."""
    rounded = case.in_precision(implementation.precision)
    if rounded is not case and (answers is not None or bounds is not None):
        raise ValueError(f"judge: the case is not representable in {implementation.precision}, and its answers or floors were given")
    case = rounded
    bounds = bounds if bounds is not None else sensitivity(case.arch, case.params, case.X, case.Y, implementation.precision)
    if bounds.outside:
        return CaseVerdict(implementation.name, case, outside=bounds.outside)
    judges = [r for r in judges if r.info.supports(case.arch)]  # a plugged-in oracle judges only what it declares
    answers = answers if answers is not None else ask_oracles(case, judges)
    start = time.perf_counter()
    try:
        loss, grads = answer(implementation, case.arch, case.params, case.X, case.Y, bounds)
    except Fault as fault:
        verdict = CaseVerdict(implementation.name, case, fault=fault, seconds=time.perf_counter() - start)
        return on_own_functions(implementation, verdict, bounds) if fault.kind in EXPLAINABLE_FAULTS else verdict
    seconds = time.perf_counter() - start
    comparisons = []
    for registered in judges:
        expected, _ = answers[registered.info.name]
        comparison = _compare_declared(implementation, registered, case, expected, loss, grads, bounds)
        comparisons.append(adjudicate(comparison, registered, case, loss, grads, bounds))
    comparisons, overruled = _plugged_adjudicated(implementation, case, judges, comparisons, answers, bounds)
    notes = ()
    if any(c.status is Status.DISAGREE for c in comparisons) and not implementation.kink_derivatives:
        notes = tuple(filter(None, [_kink_convention(case, judges, answers, loss, grads, bounds)]))
    verdict = CaseVerdict(implementation.name, case, tuple(comparisons), seconds=seconds, notes=notes + overruled)
    return on_own_functions(implementation, verdict, bounds, (loss, grads)) if verdict.status is Status.DISAGREE else verdict


def _plugged_adjudicated(implementation: Implementation, case: Case, judges: list[Registered], comparisons: list[Comparison], answers, bounds):
    """A plugged-in oracle is never trusted over the built-in ones (chainrule.plugged). Where it
    alone rejects the answer, its own answer is judged by the built-in oracles that accepted it:
    wrong there, it is disqualified (Disqualified: the check stops, exit 2, since a false alarm is
    as bad as a missed bug); within their tolerance (tolerances do not chain), its comparison is
    set aside as no evidence. Where it accepts an answer the built-in ones reject, the answer fails
    and a note says whether the oracle is itself wrong there. Each note says which side was closer.
    (comparisons, notes)."""
    builtin = [(r, c) for r, c in zip(judges, comparisons) if not r.info.plugged]
    if not builtin or len(builtin) == len(comparisons):
        return comparisons, ()
    rejected = [(r, c) for r, c in builtin if c.status is Status.DISAGREE]
    adjudicated, notes = [], []
    for registered, comparison in zip(judges, comparisons):
        rejects = comparison.status is Status.DISAGREE
        if not registered.info.plugged or rejects == bool(rejected) or (not rejects and comparison.status is not Status.AGREE):
            adjudicated.append(comparison)
            continue
        name = registered.info.name
        against = [(b, c, judge_oracle(registered, b, case, answers, bounds)) for b, c in (rejected or builtin)]
        wrong = [(b, c, ruling) for b, c, ruling in against if ruling.status is Status.DISAGREE]
        if rejects and wrong:
            b, c, ruling = wrong[0]
            own = CaseVerdict(name, case, tuple(ruling for _, _, ruling in against))
            raise Disqualified(name, (
                f"oracle {name} (plugged in) failed qualification on a later case: on {case.describe()}: it rejects "
                f"{implementation.name}'s answer, which every built-in oracle accepts; judged by {b.info.name}, its own answer is off "
                f"(worst relative error {ruling.worst_error:.3g}) where {implementation.name}'s is within tolerance ({c.worst_error:.3g}): "
                f"the built-in side is closer. {name} is not used: the check stops without a verdict on {implementation.name}.\n\n"
                f"{format_failure(own)}"), verdict=own)
        if rejects:
            worst = max(ruling.worst_error for _, _, ruling in against)
            note = (f"{name} (plugged in) rejects this answer, but its own answer is within tolerance of the built-in oracles "
                    f"(worst relative error {worst:.3g}), which accept it: tolerances do not chain, the built-in side decides; set aside")
            adjudicated.append(dataclasses.replace(comparison, status=Status.NO_EVIDENCE, note="; ".join(filter(None, [comparison.note, note]))))
            notes.append(note)
            continue
        adjudicated.append(comparison)
        if wrong:
            b, c, ruling = wrong[0]
            closer = "the answer judged" if c.worst_error < ruling.worst_error else name
            notes.append(f"{name} (plugged in) agrees with this answer, but is itself off against {b.info.name} here (worst relative error "
                         f"{ruling.worst_error:.3g}, the answer's {c.worst_error:.3g}; closer: {closer}): the built-in oracles decide")
        else:
            notes.append(f"{name} (plugged in) agrees with this answer and is itself within tolerance of "
                         f"{', '.join(b.info.name for b, _, _ in against)}: tolerances do not chain; the built-in oracles decide")
    return adjudicated, tuple(notes)


def _compare_declared(implementation: Implementation, registered: Registered, case: Case, expected, loss, grads, bounds) -> Comparison:
    """An answer against one oracle, the implementation's declared kink conventions honoured: an
    oracle that can compute with them is asked again and judges exactly; one that cannot reports
    a difference at the kinks as a convention."""
    declared = implementation.kink_derivatives
    if not declared or not expected.kinks & declared.keys():
        return compare(loss, grads, expected, registered.info, bounds)
    if registered.info.honours_declarations:
        again = registered.oracle.gradients(case.arch, case.params, case.X, case.Y, kink_derivatives=declared)
        return compare(loss, grads, again, registered.info, bounds)
    source = OracleInfo(implementation.name, "", "", True, kink_derivatives=dict(KINK_DERIVATIVES) | declared)
    return compare(loss, grads, expected, registered.info, bounds, source=source)


def least_squares(value: float, step: float, at_value, at_step, got) -> float:
    """The value of a scalar in the oracle's network (a derivative at the kinks, an activation's
    constant) that best explains the answer ``got``: one Gauss-Newton step from ``value``, with
    the gradients ``at_value`` and ``at_step`` (computed at value + step) giving the direction.
    NaN when the gradients do not move with it."""
    flat = lambda grads: np.concatenate([np.asarray(g, dtype=np.float64).ravel() for pair in grads for g in pair])  # noqa: E731
    base = flat(at_value)
    direction, residual = (flat(at_step) - base) / step, flat(got) - base
    with np.errstate(all="ignore"):
        return value + float(direction @ residual / (direction @ direction))


def _kink_convention(case: Case, judges: list[Registered], answers, loss, grads, bounds) -> str:
    """When the answer agrees once d sigma/dz at the case's exact kinks takes another value: that
    value, inferred by least squares (the gradient is affine in it), and what it means."""
    honouring = [r for r in judges if r.info.honours_declarations]
    if not honouring:
        return ""
    judge_, (expected, _) = honouring[0], answers[honouring[0].info.name]
    if len(expected.kinks) != 1:
        return ""
    (name,) = expected.kinks
    contract = KINK_DERIVATIVES[name]
    moved = judge_.oracle.gradients(case.arch, case.params, case.X, case.Y, kink_derivatives={name: contract + 1.0})
    value = least_squares(contract, 1.0, expected.grads, moved.grads, grads)
    if not math.isfinite(value):
        return ""
    value = round(value, 12)
    at_value = judge_.oracle.gradients(case.arch, case.params, case.X, case.Y, kink_derivatives={name: value})
    if compare(loss, grads, at_value, judge_.info, bounds).status is not Status.AGREE:
        return ""
    return convention_note(name, value)


def judge_oracle(judged: Registered, judging: Registered, case: Case, answers, bounds: Sensitivity | None = None) -> Comparison:
    """One oracle's answer (from ``answers``, as ask_oracles gives them) judged by another, each
    side's kink convention stated, a disagreement adjudicated as for any source."""
    bounds = bounds if bounds is not None else sensitivity(case.arch, case.params, case.X, case.Y)
    got, _ = answers[judged.info.name]
    expected, _ = answers[judging.info.name]
    comparison = compare(got.loss, got.grads, expected, judging.info, bounds, source=judged.info)
    return adjudicate(comparison, judging, case, got.loss, got.grads, bounds, source=judged.info)


def judge_by_size(
    implementation: Implementation, case: Case, judges: list[Registered], threshold: int = THRESHOLD, bounds: Sensitivity | None = None
) -> CaseVerdict:
    """One case by the method its size calls for, recorded in ``verdict.judged_by``: up to
    ``threshold`` parameters every entry against the judges its size calls for (``judge``,
    ``sized_judges``); above it, where every-entry finite differences would take hours, random
    directional derivatives that name the wrong entries (chainrule.directional), and no
    framework is asked."""
    if case.arch.parameter_count <= threshold:
        return judge(implementation, case, sized_judges(case, judges), bounds=bounds)
    case = case.in_precision(implementation.precision)
    start = time.perf_counter()
    try:
        loss, grads = answer(implementation, case.arch, case.params, case.X, case.Y)
    except Fault as fault:
        return CaseVerdict(implementation.name, case, fault=fault, seconds=time.perf_counter() - start, judged_by="directional")
    seconds = time.perf_counter() - start
    tolerance = TOLERANCES["directional"].at_least(SAFETY * implementation.precision.eps)  # an answer rounded to its precision
    result = directional_check((loss, grads), case.arch, case.params, case.X, case.Y, tolerance=tolerance)
    return CaseVerdict(implementation.name, case, (as_comparison(result, grads),), seconds=seconds, judged_by="directional")


def _cheap(registered: Registered, case: Case) -> bool:
    """Whether this judge answers the case in about the time the rest of the case takes."""
    if registered.info.name == "jax":
        return max(case.arch.sizes) <= COMPILED_SHAPE and case.batch_size <= COMPILED_SHAPE and case.arch.depth <= COMPILED_SHAPE
    if not registered.info.exact:  # finite differences: every parameter perturbed, the layers after it rerun
        return case.work <= FINITE_DIFFERENCES_WORK
    return True


def sized_judges(case: Case, judges: list[Registered]) -> list[Registered]:
    """The judges that decide a case of this size (in their order): the cheap ones (``_cheap``),
    and the first exact one among them all whenever none of the cheap ones is exact, or the
    first judge when there is no exact one at all. A plugged-in oracle judges only what it
    declares, and is never the one exact judge kept for the built-in ones."""
    judges = [r for r in judges if r.info.supports(case.arch)]
    kept = [r for r in judges if _cheap(r, case)]
    if judges and not any(r.info.exact and not r.info.plugged for r in kept):
        needed = next((r for r in judges if r.info.exact and not r.info.plugged), judges[0])
        kept = [r for r in judges if r in kept or r is needed]
    return kept


# --- the time budget -------------------------------------------------------------------------

_RUNGS = ((2, 1), (8, 4), (16, 8), (32, 16), (64, 32))  # (width, N) of the cases timed, cheapest first; the first warms up
_ENOUGH_SECONDS = 0.02  # a rung that took this long measures the rate well enough


@dataclass(frozen=True)
class SizeBudget:
    """What an implementation's time allows: cases of at most ``max_work`` multiply-adds (N x
    parameters; None: no limit needed), from ``seconds_per_work`` measured on ``measured`` (the
    implementation asked twice, as every case asks it). ``fault``: the verdict of a calibration
    call that broke the contract fatally (a hang, a dead command), which ends the check."""

    max_work: int | None
    seconds_per_work: float
    measured: str = ""
    fault: CaseVerdict | None = None

    def __str__(self) -> str:
        rate = f"{self.seconds_per_work * 1e6:.2g} µs a multiply-add measured on {self.measured}"
        if self.max_work is None:
            return f"the time budget allows every size: {rate}"
        return f"within the time budget: cases of at most {self.max_work:,} multiply-adds (N x parameters, about {CASE_SECONDS:g} s) at {rate}"

    def reached(self, cases: list[Case]) -> str:
        """The summary's words: the largest width, N and depth among ``cases``, and this budget."""
        if not cases:
            return ""
        width, batch, depth = (max(f(c) for c in cases) for f in (lambda c: max(c.arch.sizes), lambda c: c.batch_size, lambda c: c.arch.depth))
        return f"sizes up to width {width}, N {batch}, depth {depth} ({self})"


def _calibration_case(implementation: Implementation, width: int, batch: int, depth: int, seed: int) -> Case | None:
    """A random case of two layers (one if ``depth`` is 1) of ``width`` units, in what the
    implementation declares: its first smooth hidden activation, its first usable loss."""
    activations = implementation.activations
    hidden = next((a for a in activations if a not in ("softmax", "identity")), next((a for a in activations if a != "softmax"), None))
    for loss in implementation.losses:
        output = REQUIRED_OUTPUT.get(loss) or ("identity" if "identity" in activations else hidden)
        if output in activations:
            if depth > 1 and hidden is not None:
                return random_case(Architecture((width, width, width), (hidden, output), loss), batch, seed)
            return random_case(Architecture((width, width), (output,), loss), batch, seed)
    return None


def size_budget(implementation: Implementation, width: int, batch: int, depth: int, seed: int = 0) -> SizeBudget:
    """Times the implementation on cases of growing size (``_RUNGS`` within ``width`` and
    ``batch``; the first only warms up) until one takes ``_ENOUGH_SECONDS``, and allows cases
    expected to take at most CASE_SECONDS (or a quarter of its per-call timeout). max_work is a
    power of two, so that the same implementation on a similar machine gets the same sizes; None
    when its time would never limit sizes up to ``width``, ``batch`` and ``depth``."""
    allowed = min(CASE_SECONDS, (implementation.timeout or math.inf) / 4)
    rate, measured, seen = 0.0, "", set()
    for rung, (rung_width, rung_batch) in enumerate(_RUNGS):
        shape = (min(rung_width, width), min(rung_batch, batch))
        case = _calibration_case(implementation, *shape, depth, seed) if shape not in seen else None
        if case is None or (rung > 1 and rate * case.work > allowed / 2):
            break
        seen.add(shape)
        case = case.in_precision(implementation.precision)
        start = time.perf_counter()
        try:
            answer(implementation, case.arch, case.params, case.X, case.Y)
        except Fault as fault:
            seconds = time.perf_counter() - start
            verdict = CaseVerdict(implementation.name, case, fault=fault, seconds=seconds) if fault.fatal else None
            return SizeBudget(None, rate, measured, verdict)
        seconds = time.perf_counter() - start
        rate, measured = seconds / case.work, case.describe()
        if rung > 0 and seconds >= _ENOUGH_SECONDS:  # the first rung also starts things up (a worker, a cache): never enough
            break
    largest = batch * min(THRESHOLD, depth * (width + 1) * width)  # the search stays at or below THRESHOLD parameters
    if rate == 0.0 or rate * largest <= allowed:
        return SizeBudget(None, rate, measured)
    return SizeBudget(1 << max(0, int(math.log2(allowed / rate))), rate, measured)
