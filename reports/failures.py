"""Each failing implementation's minimal counterexample, as a record.

The sweep only says that an implementation failed somewhere. The counterexample comes from
``chainrule.crosscheck`` with the report's seed and example count, which lets
Hypothesis shrink a failing case to the smallest network, batch and values that still fail.
Should that search not fail (it draws from the implementation's declared activations only),
the sweep's first failing case is told instead, marked as not shrunk.

The diagnosis (``chainrule.diagnosis``: what the bug most likely is) goes with it: crosscheck
diagnoses its shrunk failure itself; the sweep's case is diagnosed here.
"""

from __future__ import annotations

import numpy as np

from chainrule.case import Case
from chainrule.compare import TensorComparison
from chainrule.diagnosis import diagnose
from chainrule.judge import judge
from chainrule.oracles.registry import Registered
from chainrule.plugged import Disqualified
from chainrule.reports.records import Counterexample, Disagreement, TensorView
from chainrule.search import CheckFailure, crosscheck
from chainrule.sources.implementation import Implementation
from chainrule.status import Status
from chainrule.verdict import CaseVerdict, format_failure

__all__ = ["counterexample", "find_counterexample"]


def _tensor(tensor: TensorComparison) -> TensorView:
    return TensorView(
        tensor.name,
        tuple(int(n) for n in tensor.got.shape),
        tuple(float(v) for v in np.ravel(tensor.got)),
        tuple(float(v) for v in np.ravel(tensor.expected)),
        tuple(tuple(int(i) for i in index) for index in tensor.bad),
        tensor.error,
        tensor.tolerance,
    )


def counterexample(implementation: Implementation, verdict: CaseVerdict, diagnosis, shrunk: bool) -> Counterexample:
    """A failing verdict as a record: every disagreeing tensor side by side, bad entries listed."""
    disagreements = tuple(
        Disagreement(
            comparison.oracle,
            comparison.loss_got,
            comparison.loss_expected,
            comparison.loss_error,
            tuple(_tensor(t) for t in comparison.disagreeing),
            tuple(t.name for t in comparison.tensors if t.agrees),
            comparison.note,
        )
        for comparison in verdict.comparisons
        if comparison.status is Status.DISAGREE
    )
    fault = f"{verdict.fault.kind}: {verdict.fault.message}" if verdict.fault is not None else ""
    return Counterexample(
        implementation.name,
        verdict.case.describe(),
        verdict.case.reproduction(),
        shrunk,
        fault,
        disagreements,
        format_failure(verdict, diagnosis),
        str(diagnosis) if diagnosis is not None else "",
    )


def find_counterexample(implementation: Implementation, judges: list[Registered], first_failure: Case, examples: int, seed: int) -> Counterexample:
    """The shrunk counterexample, or the sweep's first failing case when the search finds none."""
    try:
        crosscheck(implementation, examples=examples, seed=seed, oracles=list(judges))  # plugged-in judges: qualified already
    except CheckFailure as failure:
        return counterexample(implementation, failure.verdict, failure.diagnosis, shrunk=True)
    except Disqualified:  # a plugged-in oracle found wrong on the way: the built-in oracles tell the sweep's case
        judges = [r for r in judges if not r.info.plugged]
    verdict = judge(implementation, first_failure, judges)
    return counterexample(implementation, verdict, diagnose(implementation, verdict, judges), shrunk=False)
