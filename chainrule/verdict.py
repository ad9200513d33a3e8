"""One case judged: the source's answer against every oracle, and how a failure is told."""

from __future__ import annotations

from dataclasses import dataclass, field

from chainrule.case import Case
from chainrule.compare import Comparison, TensorComparison
from chainrule.findings import RangeFinding
from chainrule.sources.faults import Fault
from chainrule.status import Status, strongest

__all__ = ["CaseVerdict", "format_failure", "format_entry"]

MAX_ENTRIES_SHOWN = 6


@dataclass(frozen=True)
class CaseVerdict:
    """An implementation's answer on one case, compared with each oracle (or the fault it made)."""

    implementation: str
    case: Case
    comparisons: tuple[Comparison, ...] = ()
    fault: Fault | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default=())
    judged_by: str = "oracles"  # "oracles" (every entry, each oracle) or "directional" (chainrule.directional)
    outside: str = ""  # why the case lies outside the chain rule's domain (then nothing was asked)
    # why a disagreement or fault here is no chain-rule failure: its own functions' numerical range
    # or rounding explain it (chainrule.local), with the finding that says where ("" and None: not so)
    explanation: str = ""
    finding: RangeFinding | None = None

    @property
    def status(self) -> Status:
        """ERROR on a fault; DISAGREE if any oracle disagrees; else the strongest evidence there is.
        NO_EVIDENCE when its own functions explain a disagreement or fault (``explanation``)."""
        if self.explanation:
            return Status.NO_EVIDENCE
        if self.fault is not None:
            return Status.ERROR
        if self.outside:
            return Status.NO_EVIDENCE
        return strongest(c.status for c in self.comparisons)

    @property
    def failure_kind(self) -> str:
        """"disagree", the fault's kind, or "" when it did not fail."""
        if self.explanation:
            return ""
        if self.fault is not None:
            return self.fault.kind
        return "disagree" if self.failed else ""

    @property
    def failed(self) -> bool:
        return self.status.failed

    @property
    def worst_error(self) -> float:
        return max((c.worst_error for c in self.comparisons if c.status is not Status.CONVENTION), default=0.0)


def format_entry(tensor: TensorComparison, index: tuple[int, ...], oracle: str, where: str) -> str:
    """``dL/dW[layer 1][0, 2]: got -0.2537, expected -0.2538 (torch) [3-relu-2-identity-2:mse, N=1]``"""
    position = ", ".join(str(int(i)) for i in index)
    return f"{tensor.name}[{position}]: got {float(tensor.got[index])!r}, expected {float(tensor.expected[index])!r} ({oracle}) [{where}]"


def format_failure(verdict: CaseVerdict, diagnosis=None) -> str:
    """The minimal counterexample as text: what disagrees, where, what it most likely means
    (``diagnosis``, an chainrule.diagnosis.Diagnosis, when given), and how to rebuild the case."""
    case = verdict.case
    lines = [f"{verdict.implementation} is wrong on {case.describe()}"]
    if verdict.fault is not None:
        lines.append(f"  fault ({verdict.fault.kind}): {verdict.fault.message}")
    for comparison in verdict.comparisons:
        if comparison.status is not Status.DISAGREE:
            continue
        agreeing = [t.name for t in comparison.tensors if t.agrees]
        lines.append(f"  against {comparison.oracle}:")
        if not comparison.loss_agrees:
            lines.append(f"    loss: got {comparison.loss_got!r}, expected {comparison.loss_expected!r} ({comparison.oracle})")
        for tensor in comparison.disagreeing:
            bad = tensor.bad
            lines.append(f"    {tensor.name}: {len(bad)} of {tensor.compared} entries differ (worst relative error {tensor.error:.3g})")
            for index in bad[:MAX_ENTRIES_SHOWN]:
                lines.append("      " + format_entry(tensor, index, comparison.oracle, case.describe()))
        if agreeing:
            lines.append(f"    agree: {', '.join(agreeing)}")
        if comparison.note:
            lines.append(f"    note: {comparison.note}")
    lines += [f"  note: {note}" for note in verdict.notes]
    if diagnosis is not None:
        lines += ["", "diagnosis:"] + [f"  {line}" for line in str(diagnosis).splitlines()]
    lines += ["", "Reproduce:", case.reproduction()]
    return "\n".join(lines)
