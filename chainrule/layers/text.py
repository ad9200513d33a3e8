"""How a layer check is told: a failure as the smallest case, the wrong arrays, the diagnosis and
code that reproduces it; a passing layer as one line; both as the --json document's fields
(chainrule.jsonverdict: "layers")."""

from __future__ import annotations

from chainrule.layers.judge import LayerVerdict
from chainrule.layers.search import LayerResult, LayerSummary
from chainrule.status import Status

__all__ = ["format_layer_failure", "format_layer_summary", "layer_fields", "verdict_fields"]

MAX_ENTRIES_SHOWN = 6


def format_layer_failure(verdict: LayerVerdict, diagnosis=None, spec: str | None = None) -> str:
    """The failure as text; ``spec``: the source's MODULE:ATTR, which the reproduction then loads."""
    case = verdict.case
    if verdict.convention:
        lines = [f"{verdict.implementation} differs from the contract by an undeclared convention only ({verdict.convention}) on {case.describe()}"]
    else:
        lines = [f"{verdict.implementation} is wrong on {case.describe()}"]
    if verdict.fault is not None:
        lines.append(f"  fault ({verdict.fault.kind}): {verdict.fault.message}")
    for comparison in verdict.comparisons:
        if comparison.status is not Status.DISAGREE:
            continue
        lines.append(f"  against {comparison.judge}:")
        for array in comparison.arrays:
            if not array.bad:
                continue
            lines.append(f"    {array.label}: {len(array.bad)} of {array.got.size} entries differ (worst relative error {array.error:.3g})")
            for index in array.bad[:MAX_ENTRIES_SHOWN]:
                at = f"[{', '.join(map(str, index))}]" if index else ""
                lines.append(f"      {array.label}{at}: got {float(array.got[index])!r}, expected {float(array.expected[index])!r} ({comparison.judge})")
        agreeing = [a.label for a in comparison.arrays if not a.bad]
        if agreeing:
            lines.append(f"    agree: {', '.join(agreeing)}")
        if comparison.note:
            lines.append(f"    note: {comparison.note}")
    lines += [f"  note: {note}" for note in verdict.notes]
    if diagnosis is not None:
        lines += ["", "diagnosis:"] + [f"  {line}" for line in str(diagnosis).splitlines()]
    lines += ["", "Reproduce:", case.reproduction(spec)]
    return "\n".join(lines)


def _line(result: LayerResult) -> str:
    if result.failure is not None and result.failure.convention:
        return f"{result.layer}: CONVENTION ({result.failure.convention}, undeclared)"
    if result.failure is not None:
        return f"{result.layer}: {result.failure.failure_kind.upper()} ({', '.join(result.failure.wrong) or result.failure.failure_kind})"
    parts = [f"{result.agreed} cases agree"]
    if result.no_evidence:
        parts.append(f"{result.no_evidence} without evidence")
    if result.unsupported:
        parts.append(f"not exercised where it raised NotImplementedError: {'; '.join(result.unsupported[:3])}")
    return f"{result.layer}: {', '.join(parts)}"


def format_layer_summary(summary: LayerSummary) -> str:
    lines = [f"{summary.implementation}: layers judged by {', '.join(summary.judges)}"]
    lines += [f"  {_line(r)}" for r in summary.results]
    if summary.not_judged:
        lines.append(f"  not judged by this version of chainrule (declared, in the contract): {', '.join(summary.not_judged)}")
    return "\n".join(lines)


def _counterexample(verdict: LayerVerdict, diagnosis) -> dict:
    case = verdict.case
    return {
        "case": case.describe(), "layer": case.layer, "config": case.config, "shapes": {n: list(s) for n, s in case.shapes.items()},
        "inputs": {n: a.tolist() for n, a in case.inputs.items()}, "dy": case.dy.tolist(), "reproduction": case.reproduction(),
        "fault": None if verdict.fault is None else {"kind": verdict.fault.kind, "message": verdict.fault.message},
        "wrong": list(verdict.wrong), "convention": verdict.convention or None, "notes": list(verdict.notes),
        "disagreements": [
            {"oracle": c.judge, "arrays": [
                {"array": a.label, "worst_relative_error": a.error, "differing": len(a.bad), "compared": int(a.trusted.sum()),
                 "entries": [{"index": list(i), "got": float(a.got[i]), "expected": float(a.expected[i])} for i in a.bad[:MAX_ENTRIES_SHOWN]]}
                for a in c.arrays if a.bad]}
            for c in verdict.comparisons if c.status is Status.DISAGREE],
        "diagnosis": None if diagnosis is None else {"wrong": list(diagnosis.wrong), "shapes": list(diagnosis.shapes), "needs": list(diagnosis.needs)},
    }


def _result(result: LayerResult) -> dict:
    return {
        "layer": result.layer, "status": result.status.value, "agreed": result.agreed, "no_evidence": result.no_evidence,
        "unsupported": list(result.unsupported),
        "counterexample": None if result.failure is None else _counterexample(result.failure, result.diagnosis),
    }


def layer_fields(summary: LayerSummary, seed: int) -> dict:
    """The --json fields of a layer search."""
    return {"seed": seed, "oracles": list(summary.judges), "layers": [_result(r) for r in summary.results]}


def verdict_fields(verdict: LayerVerdict, seed: int) -> dict:
    """The --json fields of one --layer case."""
    result = LayerResult(verdict.case.layer, int(verdict.status is Status.AGREE), int(verdict.status is Status.NO_EVIDENCE),
                         (verdict.unsupported,) if verdict.unsupported else (), verdict if verdict.failed else None)
    return {"seed": seed, "oracles": [c.judge for c in verdict.comparisons], "layers": [_result(result)]}
