"""The report's plain records: what a run found, before any of it is written or drawn.

One ``Record`` per (implementation, oracle, case), and one ``LayerRow`` per (source, declared
layer). Each is created with every field present and the pessimistic status PENDING; only a check
moves it on (``decided``, ``faulted``, ``skipped``; a LayerRow is made from its layer's search),
so a record that no check reached can never read as agreement.

The judged source is the reference, a plug-in, or an oracle judged by another oracle. The
worst error of a record is the comparison's: max over compared entries of
|got - expected| / scale(T) per tensor T, and the loss's relative error (chainrule/tolerances.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chainrule.sources.faults import Fault
from chainrule.status import Status

if TYPE_CHECKING:  # the renderer of results.json loads no judge and no engine
    from chainrule.compare import Comparison

__all__ = [
    "Article", "ArticleSource", "CaseInfo", "Counterexample", "Disagreement", "Environment", "LayerRow",
    "RangeRow", "Record", "Report", "Settings", "Source", "Status", "TensorView", "ToleranceRow",
]

@dataclass(frozen=True)
class Record:
    """One judged source's answer on one case against one oracle."""

    implementation: str  # the judged side: "reference", a plug-in's name, or an oracle judged by another
    oracle: str  # the judging oracle
    case: str  # CaseInfo.id
    status: Status = Status.PENDING
    worst_error: float | None = None  # None until compared
    compared: int = 0  # gradient entries the oracle vouched for
    seconds: float | None = None  # the judged source's time to answer (twice for plug-ins: answer() asks twice)
    method: str = ""  # the tolerance row that judged it: "exact" or "finite_differences"
    note: str = ""  # refinement done, fault message, or why skipped
    allowance: float | None = None  # the worst error in units of what was allowed (Comparison.worst_allowance): above 1 disagrees

    def decided(self, comparison: Comparison, seconds: float, method: str) -> "Record":
        return dataclasses.replace(
            self,
            status=comparison.status,
            worst_error=comparison.worst_error,
            compared=sum(t.compared for t in comparison.tensors),
            seconds=seconds,
            method=method,
            note=comparison.note,
            allowance=comparison.worst_allowance,
        )

    def faulted(self, fault: Fault, seconds: float) -> "Record":
        return dataclasses.replace(self, status=Status.ERROR, seconds=seconds, note=f"{fault.kind}: {fault.message}")

    def skipped(self, reason: str) -> "Record":
        return dataclasses.replace(self, status=Status.SKIPPED, note=reason)


@dataclass(frozen=True)
class Source:
    """A gradient source of the run."""

    name: str
    kind: str  # "reference", "oracle" or "plugin"
    spec: str  # how it was named: MODULE:ATTR, a command, or the oracle's framework
    detail: str = ""  # framework and version, or why it could not be loaded / is unavailable
    available: bool = True
    plugged: bool = False  # a plugged-in oracle (kind "oracle"): what it declares and its qualification in detail; unavailable when it failed
    precision: str = "float64"  # the precision it is judged in (chainrule.precision), as it declares
    networks: bool = True  # it answers networks (loss_and_gradients); False for a source of layers only


@dataclass(frozen=True)
class CaseInfo:
    """What a case exercised (for the coverage grid and the case table)."""

    id: str
    description: str  # Case.describe(): "3-relu-2-identity-2:mse, N=1"
    activations: tuple[str, ...]
    loss: str
    depth: int
    batch: int


@dataclass(frozen=True)
class TensorView:
    """One disagreeing gradient tensor, flattened row-major; ``bad`` holds the entries beyond tolerance."""

    name: str
    shape: tuple[int, ...]
    got: tuple[float, ...]
    expected: tuple[float, ...]
    bad: tuple[tuple[int, ...], ...]
    error: float
    tolerance: float


@dataclass(frozen=True)
class Disagreement:
    """A counterexample's answer against one oracle that disagreed."""

    oracle: str
    loss_got: float
    loss_expected: float
    loss_error: float
    tensors: tuple[TensorView, ...]
    agreeing: tuple[str, ...]  # names of the tensors that did agree
    note: str = ""


@dataclass(frozen=True)
class LayerRow:
    """One declared layer of one source, as the layer search saw it (chainrule.layers.search.LayerResult):
    PENDING until searched; a failure is the search's reduced case, told as ``chainrule check`` tells it."""

    source: str  # the Source's name
    layer: str  # a name of chainrule.layers.contract.LAYER_NAMES
    status: Status = Status.PENDING
    agreed: int = 0  # generated cases that agreed (before the first failure, if any)
    no_evidence: int = 0  # cases no judge could vouch for
    unsupported: tuple[str, ...] = ()  # why it could not answer some cases (its NotImplementedError messages)
    wrong: tuple[str, ...] = ()  # the failure's wrong arrays ("y", then the inputs' names); () for a fault
    seconds: float | None = None  # the search's wall time on this layer, shrinking included
    counterexample: str | None = None  # chainrule.layers.text.format_layer_failure with the diagnosis; None without a failure


@dataclass(frozen=True)
class RangeRow:
    """One numerical-range finding (chainrule.numerics.RangeFinding) of one implementation."""

    implementation: str
    probe: str
    passed_up_to: float  # largest |z| that passed
    failed_at: float  # the z that failed first
    what: str
    advice: str


@dataclass(frozen=True)
class Counterexample:
    """The smallest failing case found for an implementation, told in full."""

    implementation: str
    description: str
    reproduction: str  # Case.reproduction(): copy-pastable Python
    shrunk: bool  # False when the shrinking search did not reproduce the sweep's failure
    fault: str  # "kind: message" when the implementation misbehaved, else ""
    disagreements: tuple[Disagreement, ...]
    text: str  # chainrule.verdict.format_failure
    diagnosis: str = ""  # chainrule.diagnosis


@dataclass(frozen=True)
class ArticleSource:
    """One source's values for the article's quantities (in Article.labels order)."""

    name: str
    values: tuple[float, ...]
    error: str = ""  # why there are no values


@dataclass(frozen=True)
class Article:
    """The worked example: the article's printed numbers beside every source's."""

    description: str  # Case.describe() of the article's case
    labels: tuple[str, ...]
    published: tuple[float, ...]
    sources: tuple[ArticleSource, ...]


@dataclass(frozen=True)
class ToleranceRow:
    """A row of chainrule.tolerances.TOLERANCES: its rtol (drawn on the error plots), every number, the reason."""

    kind: str
    rtol: float
    numbers: tuple[tuple[str, float], ...]  # (field, value) for each numeric field of the Tolerance
    reason: str


@dataclass(frozen=True)
class Environment:
    python: str
    numpy: str
    torch: str
    jax: str
    chainrule: str
    platform: str


@dataclass(frozen=True)
class Settings:
    seed: int
    examples: int
    jobs: int
    date: str  # ISO 8601, UTC, when the run started
    seconds: float  # wall time of the run
    rejected: int  # generated cases set aside (chainrule/evidence.py): a kink within rounding of 0, or outside the chain rule's domain
    layer_examples: int  # generated cases a declared layer (--layer-examples)


@dataclass(frozen=True)
class Report:
    """Everything a report shows; results.json is this, and index.html is drawn from that JSON."""

    settings: Settings
    environment: Environment
    tolerances: tuple[ToleranceRow, ...]
    sources: tuple[Source, ...]
    cases: tuple[CaseInfo, ...]
    records: tuple[Record, ...]
    counterexamples: tuple[Counterexample, ...]
    article: Article
    explain: str
    numerical_range: tuple[RangeRow, ...] = ()  # warnings: where each implementation stops being finite or within rounding
    layers: tuple[LayerRow, ...] = ()  # every declared layer of every source that answers layers, in source order, then the contract's
    layer_judges: tuple[str, ...] = ()  # the layer judges (chainrule.oracles.layers) that judged them
