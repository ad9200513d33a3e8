"""The verdict of ``chainrule check --json``: one JSON document for CI.

Every key is always present (null where it does not apply). Schema, version 1:

    schema_version     1; raised when a key is removed or changes meaning (new keys may appear)
    chainrule_version  "0.2.0"
    implementation     its name; the spec as given when it could not be loaded; null if none was parsed
    precision          the precision it was judged in ("float64", "float32", "bfloat16", "float16"); null if not loaded
    status             "agree" | "disagree" | "error" (a fault, or no oracle to judge) | "usage-error"
                       | "numerical-range" (findings under --strict-numerics: exit 1)
                       | "failed-qualification" (a plugged-in oracle cannot judge: exit 2, no verdict on the implementation)
    exit_code          0 | 1 | 2, the command's own
    message            null, or the one line also written to stderr (usage error, no oracle)
    seed               int | null;  examples: int | null (cases asked for; null with --arch)
    arch               the --arch given, else null
    oracles            names of the oracles that judged (plugged-in ones after the built-in ones)
    qualifications     [{"oracle", "against", "examples", "cases", "coverage", "seed", "seconds"}]: each plugged-in
                       oracle's passed qualification run (chainrule.plugged.Qualification); [] when none was plugged in
    layers             [{"layer", "status", "agreed", "no_evidence", "unsupported", "counterexample"}]: each layer a
                       layer source declares (docs/layers.md), its counterexample null or {"case", "config", "shapes",
                       "inputs", "dy", "reproduction", "fault", "wrong", "disagreements", "notes", "diagnosis"}; [] for networks only
    disqualified       null, or {"oracle", "message", "counterexample"}: the plugged-in oracle that failed qualification,
                       with its own counterexample (as below) or null (it faulted while judging)
    counts             {"cases", "agree", "convention", "no_evidence", "coverage", "rejected" (a kink within
                       rounding of 0), "outside" (outside the chain rule's domain)} | null (null on failure)
    not_exercised      activations and losses it declares it does not support (never drawn)
    numerical_range    [{"probe", "passed_up_to", "failed_at", "what", "advice", "text"}]: where it stops
                       being finite or within rounding (chainrule.numerics); warnings unless --strict-numerics
    counterexample     null, or {"architecture", "batch_size", "params": [{"W", "b"}, ...], "X", "Y",
                       "reproduction" (Python text), "command" (the chainrule command line), "judged_by", "fault": {"kind", "message"} | null,
                       "disagreements": [{"oracle", "loss": {"got", "expected", "relative_error"} | null,
                       "tensors": [{"tensor", "layer", "kind", "worst_relative_error", "tolerance", "differing",
                       "compared", "entries": [{"index", "got", "expected"}, ...]}], "agreeing", "note"}],
                       "notes", "diagnosis": {"patterns", "summary", "lines"} | null}

Floats are written in the shortest form that reads back as the same float64. NaN and the
infinities, which JSON cannot hold, are written as the strings "nan", "inf" and "-inf".
"""

from __future__ import annotations

import dataclasses
import json
import math

from chainrule import __version__
from chainrule.status import Exit, Status

__all__ = ["SCHEMA_VERSION", "STATUSES", "STATUS_OF_EXIT", "agreed", "disqualified", "dumps", "failed", "layers_only", "problem"]

SCHEMA_VERSION = 1
MAX_ENTRIES = 6  # entries listed per disagreeing tensor, worst first (as the text verdict shows)
STATUSES = ("agree", "disagree", "error", "numerical-range", "usage-error", "failed-qualification")
STATUS_OF_EXIT = {Exit.AGREE: "agree", Exit.DISAGREE: "disagree", Exit.USAGE: "usage-error"}


def _document(status: str, exit_code: Exit, implementation: str | None, **fields) -> dict:
    document = {
        "schema_version": SCHEMA_VERSION, "chainrule_version": __version__, "implementation": implementation,
        "precision": None, "status": status, "exit_code": int(exit_code), "message": None, "seed": None, "examples": None,
        "arch": None, "oracles": [], "counts": None, "not_exercised": [], "numerical_range": [], "counterexample": None,
        "qualifications": [], "disqualified": None, "layers": [],
    }
    unknown = set(fields) - set(document)
    if unknown:
        raise TypeError(f"not in schema {SCHEMA_VERSION}: {sorted(unknown)}")
    return document | fields


def _counts(verdicts, covered=(), rejected: int = 0, outside: int = 0) -> dict:
    count = lambda status: sum(v.status is status for v in verdicts)  # noqa: E731
    return {
        "cases": len(verdicts), "agree": count(Status.AGREE), "convention": count(Status.CONVENTION),
        "no_evidence": count(Status.NO_EVIDENCE), "coverage": len(covered), "rejected": rejected, "outside": outside,
    }


def agreed(summary=None, *, examples: int | None = None, verdict=None, seed: int | None = None, arch: str | None = None,
           not_exercised=(), strict_numerics: bool = False, precision: str | None = None) -> dict:
    """A pass: a crosscheck ``summary`` (chainrule.search.Summary), or one agreeing ``verdict``
    (--arch). Numerical-range findings are warnings, or a failure under ``strict_numerics``."""
    if summary is not None:
        findings = [dataclasses.asdict(finding) | {"text": str(finding)} for finding in summary.numerical_range]
        failing = strict_numerics and bool(findings)
        return _document(
            "numerical-range" if failing else "agree", Exit.DISAGREE if failing else Exit.AGREE, summary.implementation,
            seed=summary.seed, examples=examples, oracles=list(summary.oracles),
            counts=_counts(summary.verdicts, summary.covered, summary.rejected, summary.outside), not_exercised=list(summary.unexercised),
            numerical_range=findings, precision=summary.precision,
            qualifications=[dataclasses.asdict(qualification) for qualification in summary.qualifications],
        )
    return _document(
        "agree", Exit.AGREE, verdict.implementation, seed=seed, arch=arch, oracles=[c.oracle for c in verdict.comparisons],
        counts=_counts([verdict]), not_exercised=list(not_exercised), precision=precision,
    )


def failed(verdict, *, seed: int, diagnosis=None, oracles=(), examples: int | None = None, arch: str | None = None,
           not_exercised=(), command: str | None = None, precision: str | None = None) -> dict:
    """A failing ``verdict`` (chainrule.verdict.CaseVerdict), the smallest counterexample, its
    diagnosis and the ``command`` that reproduces it; ``oracles`` name the judges when no
    comparison does (a fault)."""
    return _document(
        "error" if verdict.status is Status.ERROR else "disagree", Exit.DISAGREE, verdict.implementation,
        seed=seed, examples=examples, arch=arch, oracles=[c.oracle for c in verdict.comparisons] or list(oracles),
        not_exercised=list(not_exercised), counterexample=_counterexample(verdict, diagnosis, command), precision=precision,
    )


def disqualified(error, implementation: str | None, *, seed: int | None = None, examples: int | None = None) -> dict:
    """A plugged-in oracle that failed qualification (chainrule.plugged.Disqualified): exit 2, no
    verdict on the implementation; the oracle's own counterexample where there is one."""
    example = None if error.verdict is None else _counterexample(error.verdict, error.diagnosis, None)
    return _document(
        "failed-qualification", Exit.USAGE, implementation, message=str(error).split("\n\n")[0], seed=error.seed if error.seed is not None else seed,
        examples=examples, disqualified={"oracle": error.oracle, "message": str(error), "counterexample": example},
    )


def layers_only(code: Exit, implementation: str, fields: dict, *, examples: int) -> dict:
    """A check of layers only (chainrule.layers.text.layer_fields gives ``fields``: seed, layers, oracles)."""
    return _document(STATUS_OF_EXIT[code], code, implementation, examples=examples, **fields)


def problem(exit_code: Exit, message: str, implementation: str | None = None, **fields) -> dict:
    """No verdict: a usage error (exit 2), or nothing to judge with (exit 1, status "error")."""
    status = "usage-error" if exit_code == Exit.USAGE else "error"
    return _document(status, exit_code, implementation, message=message, **fields)


def _counterexample(verdict, diagnosis, command: str | None) -> dict:
    case = verdict.case
    return {
        "architecture": str(case.arch),
        "batch_size": case.batch_size,
        "params": [{"W": W.tolist(), "b": b.tolist()} for W, b in case.params],
        "X": case.X.tolist(),
        "Y": case.Y.tolist(),
        "reproduction": case.reproduction(),
        "command": command,
        "judged_by": verdict.judged_by,
        "fault": None if verdict.fault is None else {"kind": verdict.fault.kind, "message": verdict.fault.message},
        "disagreements": [_disagreement(c) for c in verdict.comparisons if c.status is Status.DISAGREE],
        "notes": list(verdict.notes),
        "diagnosis": None if diagnosis is None else {
            "patterns": list(diagnosis.patterns), "summary": diagnosis.summary, "lines": list(diagnosis.lines),
        },
    }


def _disagreement(comparison) -> dict:
    loss = None if comparison.loss_agrees else {
        "got": comparison.loss_got, "expected": comparison.loss_expected, "relative_error": comparison.loss_error,
    }
    return {
        "oracle": comparison.oracle,
        "loss": loss,
        "tensors": [_tensor(t) for t in comparison.disagreeing],
        "agreeing": [t.name for t in comparison.tensors if t.agrees],
        "note": comparison.note,
    }


def _tensor(tensor) -> dict:
    bad = tensor.bad
    return {
        "tensor": tensor.name, "layer": tensor.layer, "kind": tensor.kind,
        "worst_relative_error": tensor.error, "tolerance": tensor.tolerance, "differing": len(bad), "compared": tensor.compared,
        "entries": [
            {"index": [int(i) for i in index], "got": float(tensor.got[index]), "expected": float(tensor.expected[index])}
            for index in bad[:MAX_ENTRIES]
        ],
    }


def _json_safe(value):
    """Non-finite floats as "nan", "inf", "-inf"; every other value as it is."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def dumps(document: dict) -> str:
    """The document as strict JSON (never NaN or Infinity), on one line."""
    return json.dumps(_json_safe(document), allow_nan=False)
