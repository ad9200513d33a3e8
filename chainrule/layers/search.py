"""The layer search: Hypothesis draws cases of each layer a source declares, judges each, and
shrinks the first failure to the smallest dims and simplest config that still fail the same way
(then chainrule.layers.reduce goes on where Hypothesis stops, and chainrule.layers.diagnosis
says what the failure needs).

Failing "the same way": the same fault kind, or a disagreement on the same first wrong array.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, Verbosity, assume, given, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Unsatisfiable

from chainrule.layers.contract import LAYER_NAMES
from chainrule.layers.diagnosis import LayerDiagnosis, diagnose
from chainrule.layers.judge import LayerVerdict, judge_layer
from chainrule.layers.reduce import reduce_spec, same_failure
from chainrule.layers.strategies import MAX_ENTRIES, Spec, build, specs, supported
from chainrule.oracles.layers import Judge, available
from chainrule.reference.layers import PAIRS
from chainrule.sources.ask_layer import Unsupported, answer_layer
from chainrule.sources.faults import Fault
from chainrule.sources.implementation import Implementation
from chainrule.status import Status

__all__ = ["CASE_SECONDS", "JUDGED", "LayerResult", "LayerSummary", "check_layer", "check_layers", "entries_budget"]

JUDGED = tuple(name for name in LAYER_NAMES if name in PAIRS)  # the contract's layers this version judges (the reference has them)
CASE_SECONDS = 0.05  # the time budget: what the largest case drawn may cost the source (2.5 s for 50 such cases)


@dataclass(frozen=True, eq=False)
class LayerResult:
    """What the search saw on one layer: how many cases agreed, were no evidence or could not be
    answered (with the source's reasons), and the reduced failure with its diagnosis, if any."""

    layer: str
    agreed: int = 0
    no_evidence: int = 0
    unsupported: tuple[str, ...] = ()
    failure: LayerVerdict | None = None
    spec: Spec | None = None
    diagnosis: LayerDiagnosis | None = None
    seconds: float = 0.0

    @property
    def status(self) -> Status:
        if self.failure is not None:
            return self.failure.status
        if self.agreed:
            return Status.AGREE
        return Status.NO_EVIDENCE if self.no_evidence else Status.SKIPPED


@dataclass(frozen=True, eq=False)
class LayerSummary:
    implementation: str
    results: tuple[LayerResult, ...]
    judges: tuple[str, ...]
    not_judged: tuple[str, ...] = ()  # declared layers of the contract this version does not judge yet

    @property
    def failed(self) -> bool:
        return any(r.failure is not None for r in self.results)

    @property
    def judged(self) -> bool:
        """Whether any case was judged at all (a check in which nothing could be judged fails)."""
        return any(r.agreed or r.failure is not None for r in self.results)


class _Failed(Exception):
    def __init__(self, verdict: LayerVerdict, spec: Spec):
        super().__init__(verdict.failure_kind)
        self.verdict, self.spec = verdict, spec


def check_layer(implementation: Implementation, layer: str, judges: list[Judge], examples: int = 100, seed: int = 0,
                max_entries: int = MAX_ENTRIES) -> LayerResult:
    """``examples`` cases of ``layer`` judged; the first failure reduced and diagnosed."""
    start = time.perf_counter()
    counts = {"agreed": 0, "no_evidence": 0}
    reasons: dict[str, None] = {}
    first: list[LayerVerdict] = []

    @hypothesis_seed(seed)
    @settings(max_examples=examples, database=None, deadline=None, derandomize=False, verbosity=Verbosity.quiet,
              suppress_health_check=list(HealthCheck), phases=(Phase.generate, Phase.shrink), report_multiple_bugs=False)
    @given(specs(layer, implementation.layer_configs, max_entries))
    def prop(spec: Spec) -> None:
        if implementation.retired is not None:
            return
        case = build(spec)
        assume(case is not None and supported(case, implementation.layer_configs))
        verdict = judge_layer(implementation, case, judges, confirm=False)
        if verdict.failed and (not first or same_failure(verdict, first[0])):
            first[:1] = [verdict]
            raise _Failed(verdict, spec)
        if verdict.status is Status.SKIPPED:  # not exercised: the search spends its cases elsewhere
            reasons[verdict.unsupported] = None
            reject()
        if not first:
            if verdict.status is Status.AGREE:
                counts["agreed"] += 1
            elif not verdict.failed:
                counts["no_evidence"] += 1

    try:
        prop()
    except Unsatisfiable:  # every case drawn was unsupported
        pass
    except _Failed as failed:
        spec, verdict = reduce_spec(implementation, failed.spec, failed.verdict, judges)
        verdict = judge_layer(implementation, verdict.case, judges)  # confirmed by every judge
        diagnosis = diagnose(implementation, spec, verdict, judges)
        return LayerResult(layer, counts["agreed"], counts["no_evidence"], tuple(reasons), verdict, spec, diagnosis,
                           time.perf_counter() - start)
    return LayerResult(layer, counts["agreed"], counts["no_evidence"], tuple(reasons), seconds=time.perf_counter() - start)


_CALIBRATION = {"linear": (16, 16, 16), "layer_norm": (16, 16, 1), "batch_norm": (4, 4, 16), "group_norm": (4, 2, 2, 16),
                "embedding": (16, 16, 16), "cross_entropy": (16, 16), "conv1d": (1, 16, 16, 16, 1), "conv2d": (1, 4, 4, 8, 8, 1, 1),
                "max_pool2d": (1, 1, 16, 16), "avg_pool2d": (1, 1, 16, 16), "attention": (1, 1, 16, 16, 16, 16)}
# ^ dims of about 256 entries; (16, 16) for the others
_REQUIRED = {"dropout": (("p", 0.5),), "max_pool2d": (("kernel_size", 1),), "avg_pool2d": (("kernel_size", 1),)}  # config without defaults


def _seconds(implementation: Implementation, layer: str, dims: tuple[int, ...]) -> tuple[float, int]:
    """Seconds the source takes to answer one case of these dims (asked twice, as every case is), and its entries."""
    case = build(Spec(layer, _REQUIRED.get(layer, ()), dims))
    start = time.perf_counter()
    answer_layer(implementation, case.layer, case.config, case.inputs, case.dy)
    return time.perf_counter() - start, case.inputs[case.differentiable[0]].size


def entries_budget(implementation: Implementation, layer: str, max_entries: int = MAX_ENTRIES) -> int:
    """At most how many entries a case of ``layer`` may have for the source to answer it within
    CASE_SECONDS more than a case of one entry a dim: its seconds per entry timed between a case of
    about 256 entries and one of 1 (a per-call cost, such as JAX compiling each new shape, is no
    reason for smaller cases). A power of two between 16 and ``max_entries``; ``max_entries`` when
    the source is fast, faults or declines."""
    large = _CALIBRATION.get(layer, (16, 16))
    try:
        _seconds(implementation, layer, large)  # a first call starts things up
        seconds, entries = _seconds(implementation, layer, large)
        if seconds <= CASE_SECONDS:
            return max_entries
        small, _ = _seconds(implementation, layer, tuple(2 if layer.endswith("_norm") else 1 for _ in large))
    except (Fault, Unsupported):
        return max_entries
    allowed = CASE_SECONDS * entries / max(seconds - small, 1e-9)
    return int(min(max_entries, max(16, 1 << int(math.log2(max(allowed, 1.0))))))


def check_layers(implementation: Implementation, layers: tuple[str, ...] | None = None, examples: int = 100, seed: int = 0,
                 judges: list[Judge] | None = None, max_entries: int = MAX_ENTRIES, progress=None) -> LayerSummary:
    """Every layer the source declares (or ``layers`` among them) checked: one LayerResult each,
    its cases within the source's time budget (``entries_budget``)."""
    judges = judges if judges is not None else available()
    wanted = [name for name in JUDGED if name in implementation.layers and (layers is None or name in layers)]
    explicit = implementation.layers != LAYER_NAMES  # a source without a ``layers`` declaration is asked what is judged, silently
    not_judged = tuple(name for name in implementation.layers if explicit and name not in JUDGED and (layers is None or name in layers))
    results = []
    for layer in wanted:
        results.append(check_layer(implementation, layer, judges, examples, seed, entries_budget(implementation, layer, max_entries)))
        if progress is not None:
            progress(results[-1])
    return LayerSummary(implementation.name, tuple(results), tuple(j.name for j in judges), not_judged)
