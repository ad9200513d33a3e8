"""One layer case judged: the source's y and gradients against each judge, entry by entry.

Floors come from the reference under Monte Carlo arithmetic (chainrule.layers.floors), in the
source's precision. An entry is compared with a judge only where the judge is evidence there:
an exact judge (torch, JAX) where it agrees with the reference within the floor, finite
differences where their own error estimate is finite; a judge's own error never counts against
the answer. An entry is wrong when it is off by more than

    floor + ULPS * eps * max |expected|   (+ SAFETY * the estimate's own error, for finite differences)

where the floor is the reference's own rounding at that entry, and the second term, over the
whole array's scale, is a formula's: a textbook gelu, 0.5 x (1 + erf(x / sqrt 2)), loses digits
to cancellation where erf is near -1 that the reference's x * ndtr(x) keeps.

Which judges: the cheap ones on every case (torch; finite differences up to FD_ENTRIES
differentiable entries; JAX where it has compiled the question's shapes already), and every
judge, JAX included, on a case some judge disputes: each failure is confirmed by all of them.
Above FD_ENTRIES, finite differences judge along one random direction an input, and name the
wrong entries behind a failing direction by group testing.

Declared conventions change the contract's answer for the reference and every judge alike:
a kink's derivative (relu, leaky_relu at an exact 0) replaces the contract's there, and
max_pool2d's tie rule ("last", "split") moves a tied window's gradient by the reference's own
difference between that rule and the contract's "first". An undeclared convention that is all
that differs (a kink's derivative at exact zeros, or another tie rule) is told as one.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from chainrule.contract import KINK_DERIVATIVES, SUBDIFFERENTIAL
from chainrule.kinks import convention_note, tie_note
from chainrule.layers.contract import TIE_RULES
from chainrule.layers.case import LayerCase
from chainrule.layers.floors import Floors, floors
from chainrule.noise import SAFETY
from chainrule.oracles.layers import Judge
from chainrule.oracles.layers.finite_differences import directional
from chainrule.reference.layers.pooling import max_pool2d_dx
from chainrule.sources.ask_layer import Unsupported, answer_layer
from chainrule.sources.faults import Fault
from chainrule.sources.implementation import Implementation
from chainrule.status import Status, strongest

__all__ = ["FD_ENTRIES", "ULPS", "Entrywise", "LayerComparison", "LayerVerdict", "judge_layer"]

ULPS = 16  # rounding of another correct formula, in units of its precision's eps times the array's scale
GROUP_TESTED = 4  # wrong entries group testing names at most, behind one failing direction
FD_ENTRIES = 512  # differentiable entries up to which finite differences judge every entry; above, along one random direction an input


@dataclass(frozen=True, eq=False)
class Entrywise:
    """One array of the answer (``y`` or an input's gradient) against one judge."""

    name: str
    got: np.ndarray
    expected: np.ndarray
    bound: np.ndarray  # absolute, per entry: what it may be off by
    trusted: np.ndarray  # bool: entries the judge is evidence for

    @functools.cached_property
    def bad(self) -> list[tuple[int, ...]]:
        wrong = self.trusted & ~(np.abs(self.got - self.expected) <= self.bound)
        return [tuple(int(i) for i in index) for index in np.argwhere(wrong)]

    direction: bool = False  # a 0-d array: <grads[name], v> along a random direction v, not the gradient itself

    @property
    def label(self) -> str:
        """``y``, ``grads['x']``, or ``<grads['x'], v>`` along a random direction"""
        label = "y" if self.name == "y" else f"grads[{self.name!r}]"
        return f"<{label}, v>" if self.direction else label

    @property
    def error(self) -> float:
        """The worst difference over the compared entries, relative to the array's largest value (expected or got)."""
        difference = float(np.where(self.trusted, np.abs(self.got - self.expected), 0.0).max(initial=0.0))
        scale = max(float(np.abs(self.expected).max(initial=0.0)), float(np.abs(self.got).max(initial=0.0)))
        return difference / scale if difference else 0.0


@dataclass(frozen=True, eq=False)
class LayerComparison:
    judge: str
    arrays: tuple[Entrywise, ...]
    note: str = ""

    @property
    def status(self) -> Status:
        if any(a.bad for a in self.arrays):
            return Status.DISAGREE
        return Status.AGREE if any(a.trusted.any() for a in self.arrays) else Status.NO_EVIDENCE

    @property
    def wrong(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.arrays if a.bad)


@dataclass(frozen=True, eq=False)
class LayerVerdict:
    """A layer source's answer on one case, compared with each judge (or its fault, or why it could not answer)."""

    implementation: str
    case: LayerCase
    comparisons: tuple[LayerComparison, ...] = ()
    fault: Fault | None = None
    unsupported: str = ""
    notes: tuple[str, ...] = field(default=())
    seconds: float = 0.0
    convention: str = ""  # what differs, when all that differs is an undeclared convention ("relu'(0) = 1", "tie rule 'last'")

    @property
    def status(self) -> Status:
        if self.unsupported:
            return Status.SKIPPED
        if self.fault is not None:
            return Status.ERROR
        return strongest(c.status for c in self.comparisons)

    @property
    def failed(self) -> bool:
        return self.status.failed

    @property
    def wrong(self) -> tuple[str, ...]:
        """The arrays off against some judge, in the order y, then the inputs'."""
        names = {name for c in self.comparisons for name in c.wrong}
        return tuple(n for n in ("y", *self.case.differentiable) if n in names)

    @property
    def failure_kind(self) -> str:
        """"disagree", the fault's kind, or "" when it did not fail."""
        if self.fault is not None:
            return self.fault.kind
        return "disagree" if self.failed else ""


Adjust = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]  # grads['x'] and its error under a declared convention


def _tie_shift(case: LayerCase, rule: str) -> np.ndarray:
    """How max_pool2d's grads['x'] under ``rule`` differs from the contract's (zero outside tied windows)."""
    x, dy = case.inputs["x"], case.dy
    return max_pool2d_dx(case.config, x, dy, rule) - max_pool2d_dx(case.config, x, dy, "first")


def _declared(case: LayerCase, implementation: Implementation) -> Adjust | None:
    """How the source's declared convention for this layer changes every judge's grads['x'] and
    its error (None: none declared): at x's exact zeros, dy times the declared derivative; at tied
    windows, the declared tie rule's gradient."""
    rule = implementation.tie_rules.get(case.layer, "first")
    if rule != "first":
        shift = _tie_shift(case, rule)
        return lambda expected, error: (expected + shift, error)
    value = implementation.kink_derivatives.get(case.layer)
    if case.layer not in KINK_DERIVATIVES or value is None:
        return None
    kinks = case.inputs["x"] == 0
    return lambda expected, error: (np.where(kinks, case.dy * value, expected), np.where(kinks, 0.0, error))


def _ask_judge(judge: Judge, case: LayerCase, reference: Floors, adjust: Adjust | None, eps: float):
    """The judge's (y, grads) as {name: (expected, bound, trusted)}, and a note on where it is no evidence."""
    y, grads, *rest = judge.vjp(case.layer, case.config, case.inputs, case.dy)
    errors = rest[0] if rest else {}  # finite differences give each entry's own error
    arrays, untrusted = {}, 0
    for name, expected, plain, floor in [("y", y, reference.y, reference.y_floor)] + [
        (n, grads[n], reference.grads[n], reference.floors[n]) for n in case.differentiable
    ]:
        expected = np.asarray(expected, dtype=np.float64)
        error = np.asarray(errors[name], dtype=np.float64) if name in errors else np.zeros_like(expected)
        if name == "x" and adjust is not None:  # the declared convention, honoured by the reference and every judge
            expected, error = adjust(expected, error)
            plain, _ = adjust(plain, error)
        bound = floor + ULPS * eps * float(np.abs(plain).max(initial=0.0)) + SAFETY * error
        with np.errstate(invalid="ignore"):
            trusted = np.isfinite(expected) & np.isfinite(error) & (np.abs(expected - plain) <= bound)
        untrusted += int((~trusted).sum())
        arrays[name] = (expected, bound, trusted)
    note = f"{judge.name} is no evidence at {untrusted} entries (its own error, or off the reference there)" if untrusted else ""
    return arrays, note


def judge_layer(implementation: Implementation, case: LayerCase, judges: list[Judge], reference: Floors | None = None,
                confirm: bool = True) -> LayerVerdict:
    """The implementation's answer on ``case`` (rounded to its precision first) against every judge;
    ``confirm`` False: a disputed case is not put to the judges that compile per shape (the search
    and its shrinking, whose last failure is judged again by every judge)."""
    precision = implementation.precision
    case = case.in_precision(precision)
    reference = reference if reference is not None else floors(case, precision)
    start = time.perf_counter()
    try:
        y, grads = answer_layer(implementation, case.layer, case.config, case.inputs, case.dy)
    except Unsupported as unsupported:
        return LayerVerdict(implementation.name, case, unsupported=str(unsupported) or "unsupported", seconds=time.perf_counter() - start)
    except Fault as fault:
        return LayerVerdict(implementation.name, case, fault=fault, seconds=time.perf_counter() - start)
    seconds = time.perf_counter() - start
    adjust = _declared(case, implementation)
    got = {"y": np.asarray(y, dtype=np.float64)} | {n: np.asarray(g, dtype=np.float64) for n, g in grads.items()}
    entries = sum(case.inputs[n].size for n in case.differentiable)
    sized = [j for j in judges if j.exact or entries <= FD_ENTRIES]  # finite differences: every entry, small cases
    cheap = [j for j in sized if j.cheap(case.layer, case.config, case.inputs, case.dy)]
    comparisons, notes = [], []

    def ask(judge: Judge) -> None:
        arrays, note = _ask_judge(judge, case, reference, adjust, precision.eps)
        comparisons.append(LayerComparison(judge.name, tuple(
            Entrywise(name, got[name], expected, bound, trusted) for name, (expected, bound, trusted) in arrays.items()), note))

    for judge in cheap:
        ask(judge)
    if entries > FD_ENTRIES:
        comparisons.append(_along_directions(case, reference, got, precision.eps))
    if (confirm and any(c.status is Status.DISAGREE for c in comparisons)) or not any(j.exact for j in cheap):
        for judge in sized:  # a dispute: every judge, the ones that compile per shape too
            if judge not in cheap:
                ask(judge)
    convention = ""
    if any(c.status is Status.DISAGREE for c in comparisons) and adjust is None:
        convention, note = _convention(case, comparisons)
        notes.append(note)
    return LayerVerdict(implementation.name, case, tuple(comparisons), notes=tuple(filter(None, notes)), seconds=seconds,
                        convention=convention)


def _directional(case: LayerCase, reference: Floors, got: dict[str, np.ndarray], name: str, v: np.ndarray, eps: float) -> Entrywise:
    """<grads[name], v> against d/dt <y(name + t v), dy>, bounded by |v| times the floors, the
    array's rounding and SAFETY times the estimate's own error; trusted where the reference agrees."""
    value, error = directional(case.layer, case.config, case.inputs, case.dy, {name: v})
    plain = float(np.sum(reference.grads[name] * v))
    bound = (float(np.sum(np.abs(v) * reference.floors[name])) + SAFETY * error
             + ULPS * eps * float(np.abs(reference.grads[name]).max()) * float(np.abs(v).sum()))
    trusted = math.isfinite(value) and math.isfinite(error) and abs(value - plain) <= bound
    return Entrywise(name, np.array(float(np.sum(got[name] * v))), np.array(value), np.array(bound), np.array(trusted), True)


def _group_tested(case: LayerCase, reference: Floors, got: dict[str, np.ndarray], name: str, v: np.ndarray, eps: float,
                  most: int = GROUP_TESTED) -> list[tuple[int, ...]]:
    """The wrong entries behind a failing direction, by group testing: the direction restricted to
    each half of the entries it moves, the failing halves halved again, depth first, down to
    single entries (at most ``most`` of them, found with about 2 log2(entries) directional
    derivatives each, however many entries are wrong)."""
    found, groups = [], [np.flatnonzero(v)]
    while groups and len(found) < most:
        group = groups.pop()
        if len(group) == 1:
            found.append(tuple(int(i) for i in np.unravel_index(group[0], v.shape)))
            continue
        for half in reversed(np.array_split(group, 2)):  # the first half on top of the stack
            restricted = np.zeros_like(v)
            restricted.flat[half] = v.flat[half]
            if _directional(case, reference, got, name, restricted, eps).bad:
                groups.append(half)
    return sorted(found)


def _along_directions(case: LayerCase, reference: Floors, got: dict[str, np.ndarray], eps: float) -> LayerComparison:
    """Finite differences on a case too large to difference entry by entry: for each differentiable
    input, one random direction v (seeded by the case's size), and where <grads[n], v> is off, its
    wrong entries found by group testing (named in the comparison's note)."""
    rng = np.random.default_rng(case.size)
    arrays, notes = [], []
    for name in case.differentiable:
        v = rng.standard_normal(case.inputs[name].shape)
        array = _directional(case, reference, got, name, v, eps)
        arrays.append(array)
        if array.bad:
            entries = _group_tested(case, reference, got, name, v, eps)
            notes.append(f"grads[{name!r}] wrong at {', '.join(str(list(i)) for i in entries)} (group testing along the direction)")
    note = "along one random direction an input (too many entries to difference each)"
    return LayerComparison("finite_differences", tuple(arrays), "; ".join([note, *notes]))


def _convention(case: LayerCase, comparisons: list[LayerComparison]) -> tuple[str, str]:
    """(the convention, a note) when only grads['x'] differs, and only as another convention
    would have it: a kinked elementwise layer's derivative at exact zeros of x, or max_pool2d's
    tie rule at tied windows. ("", "") when it is not that; ("", a note) when it is a value outside
    the subdifferential (wrong, not a convention)."""
    bad = [(a, index) for c in comparisons for a in c.arrays for index in a.bad]
    if not bad or any(a.name != "x" or a.direction for a, _ in bad):
        return "", ""
    if case.layer == "max_pool2d":
        for rule in TIE_RULES[1:]:
            shift = _tie_shift(case, rule)
            entrywise = [a for c in comparisons for a in c.arrays if a.name == "x" and not a.direction]
            if all(np.all(~a.trusted | (np.abs(a.got - (a.expected + shift)) <= a.bound)) for a in entrywise):
                return f"tie rule {rule!r}", tie_note(case.layer, rule)
        return "", ""
    if case.layer not in KINK_DERIVATIVES:
        return "", ""
    x, dy = case.inputs["x"], case.dy
    if any(x[index] != 0 or dy[index] == 0 for _, index in bad):
        return "", ""
    values = {round(float(a.got[index] / dy[index]), 12) for a, index in bad}
    if len(values) != 1:
        return "", ""
    (value,) = values
    low, high = SUBDIFFERENTIAL[case.layer]
    return (f"{case.layer}'(0) = {value:g}" if low <= value <= high else ""), convention_note(case.layer, value)
