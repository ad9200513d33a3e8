"""Plugged-in oracles: any gradient source can judge, once it qualifies (docs/oracles.md,
"Plugging in an oracle").

A source given as ``--oracle MODULE:ATTR``, ``--oracle-cmd COMMAND``, an entry point of the group
``chainrule.oracles`` or an item of ``crosscheck(..., oracles=[...])`` is loaded as any
implementation is (``chainrule.sources.load.open_source``: a worker process or a command, with
the same timeouts and fault handling) and wrapped as an oracle, ``PluggedOracle``, which asks it
through ``chainrule.sources.ask.answer`` and never directly.

Before it judges, ``qualify`` checks it with the engine itself (``crosscheck``, handed in by the
caller) against the built-in oracles. One that fails, faults while judging, or is found wrong by
the built-in oracles on a case where its answer would decide the verdict (chainrule.judge) raises
``Disqualified``: the check stops with exit 2 and the words "failed qualification".
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import time
from dataclasses import dataclass

import numpy as np

from chainrule.contract import ACTIVATION_NAMES, KINK_DERIVATIVES, KINKED, LOSS_NAMES
from chainrule.oracles.base import OracleGradients, OracleInfo
from chainrule.oracles.registry import ORACLE_TARGETS, Registered, available
from chainrule.sources.ask import answer
from chainrule.sources.faults import Fault, LoadError
from chainrule.sources.implementation import Implementation
from chainrule.sources.load import as_implementation, open_source

__all__ = [
    "ENTRY_POINT_GROUP", "FAILED", "QUALIFICATION_EXAMPLES", "Disqualified", "PluggedOracle", "Qualification", "as_oracle",
    "declared", "installed_oracle_names", "open_oracle", "qualify", "resolve",
]

ENTRY_POINT_GROUP = "chainrule.oracles"
QUALIFICATION_EXAMPLES = 100  # generated cases of a qualification run, before its coverage cases (one per declared pairing)
FAILED = "failed qualification"
_KINDS = {"impl": "--oracle", "cmd": "--oracle-cmd", "entry": f"entry point in {ENTRY_POINT_GROUP}", "object": "object"}


class Disqualified(Exception):
    """A plugged-in oracle that cannot judge: it failed its qualification run, faulted while
    judging, or the built-in oracles found it wrong where its answer would have decided a verdict.
    ``verdict`` (chainrule.verdict.CaseVerdict) is the oracle's own counterexample where there is
    one, ``diagnosis`` what it most likely means; the message always says "failed qualification"."""

    def __init__(self, oracle: str, text: str, verdict=None, diagnosis=None, seed: int | None = None):
        self.oracle, self.verdict, self.diagnosis, self.seed = oracle, verdict, diagnosis, seed
        super().__init__(text)


@dataclass(frozen=True)
class Qualification:
    """A passed qualification run: the oracle judged as an implementation by the built-in ones."""

    oracle: str
    against: tuple[str, ...]  # the built-in oracles that judged it
    examples: int  # generated cases asked for
    cases: int  # generated cases judged (those set aside near kinks or outside the domain are not)
    coverage: int  # coverage cases judged after them, one per declared pairing and size edge
    seed: int
    seconds: float

    def __str__(self) -> str:
        return (f"oracle {self.oracle} (plugged in) qualified: {self.cases} cases and {self.coverage} coverage cases "
                f"agree with {', '.join(self.against)} (qualification run of {self.examples} examples, seed {self.seed}, {self.seconds:.1f} s)")


def _kinks(arch, params, X: np.ndarray) -> frozenset[str]:
    """The kinked activations with a pre-activation exactly 0 in this case (OracleGradients.kinks)."""
    from chainrule.oracles.finite_differences import ACTIVATIONS  # the judges' own sigma table

    kinked = [l for l, name in enumerate(arch.activations) if name in KINKED]
    found, a = set(), X
    with np.errstate(all="ignore"):
        for (W, b), name in zip(params[: kinked[-1] + 1] if kinked else (), arch.activations):
            z = a @ W.T + b
            if name in KINKED and (z == 0).any():
                found.add(name)
            a = ACTIVATIONS[name](z)
    return frozenset(found)


def _precision_name(implementation: Implementation) -> str:
    """The precision it declares ("float64" unless it says otherwise; issue 11's Implementation.precision where present)."""
    declared = getattr(implementation, "precision", None) or getattr(implementation.source, "precision", None) or "float64"
    return str(getattr(declared, "name", declared))


class PluggedOracle:
    """A loaded gradient source as a judge: ``info`` (an OracleInfo marked ``plugged``, with what
    it declares) and ``gradients``, asked through chainrule.sources.ask.answer. A fault while it
    judges raises Disqualified. ``qualification`` is set once it has qualified."""

    def __init__(self, implementation: Implementation, spec: str, kind: str):
        source = implementation.source
        precision = _precision_name(implementation)
        if precision != "float64":
            raise LoadError(f"{spec}: an oracle must work in float64; it declares precision {precision!r}, and a judge's "
                            "rounding would be taken for the judged one's errors")
        version = getattr(source, "version", None)
        self.implementation, self.spec, self.kind = implementation, spec, kind
        self.qualification: Qualification | None = None
        self.info = OracleInfo(
            implementation.name, "plugged in", "" if version is None else str(version), True,
            kink_derivatives=dict(KINK_DERIVATIVES) | implementation.kink_derivatives, plugged=True,
            activations=implementation.activations, losses=implementation.losses,
        )

    def __repr__(self) -> str:
        return f"PluggedOracle({self.info.name!r}, {_KINDS.get(self.kind, self.kind)} {self.spec!r})"

    @property
    def registered(self) -> Registered:
        return Registered(self.info, self)

    def renamed(self, name: str) -> None:
        self.info = dataclasses.replace(self.info, name=name)

    def gradients(self, arch, params, X, Y) -> OracleGradients:
        try:
            loss, grads = answer(self.implementation, arch, params, X, Y)
        except Fault as fault:
            where = f"{arch}, N={len(X)}"
            raise Disqualified(self.info.name, (
                f"oracle {self.info.name} (plugged in) {FAILED}: it faulted while judging {where} ({fault.kind}: {fault.message}); "
                "a judge that cannot answer cannot judge, so the check stops")) from None
        return OracleGradients(loss, [(np.asarray(W), np.asarray(b)) for W, b in grads], None, _kinks(arch, params, X))

    def close(self) -> None:
        self.implementation.close()


def installed_oracle_names() -> list[str]:
    """The names of the oracles installed under the entry-point group ``chainrule.oracles`` (loads nothing)."""
    return sorted(point.name for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def open_oracle(kind: str, spec: str, timeout: float | None = None, *, isolate: bool = True, memory_limit: int | None = None) -> PluggedOracle:
    """The oracle of that kind ("impl" MODULE:ATTR, "cmd" a command, "entry" an installed entry
    point's name in ``chainrule.oracles``), loaded as any plug-in (chainrule.sources.load.open_source:
    a worker process unless ``isolate=False``); LoadError (exit 2) when it cannot be. Close it when done."""
    target = spec
    if kind == "entry":
        points = {point.name: point for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
        if spec not in points:
            raise LoadError(f"no entry point {spec!r} in group {ENTRY_POINT_GROUP}; installed: {', '.join(sorted(points)) or 'none'}")
        target = points[spec].value.partition("[")[0].strip()  # MODULE:ATTR, its extras left aside
    implementation = open_source("cmd" if kind == "cmd" else "impl", target, timeout, isolate=isolate, memory_limit=memory_limit)
    try:
        return PluggedOracle(implementation, spec, kind)
    except LoadError:
        implementation.close()
        raise


def as_oracle(source, timeout: float | None = None, *, isolate: bool = True, memory_limit: int | None = None) -> tuple[PluggedOracle, bool]:
    """``(oracle, opened)`` for a PluggedOracle (as it is), a plugged Registered, an Implementation,
    a MODULE:ATTR string or any contract object (in a worker process when it can be sent to one);
    ``opened``: started here, to be closed by the caller."""
    if isinstance(source, PluggedOracle):
        return source, False
    if isinstance(source, Registered) and isinstance(source.oracle, PluggedOracle):
        return source.oracle, False
    if isinstance(source, Implementation):
        return PluggedOracle(source, source.name, "impl"), False
    if isinstance(source, str):
        return open_oracle("impl", source, timeout, isolate=isolate, memory_limit=memory_limit), True
    implementation = as_implementation(source, isolate=isolate, memory_limit=memory_limit)
    try:
        return PluggedOracle(implementation, f"{type(source).__module__}.{type(source).__qualname__} object", "object"), True
    except LoadError:
        implementation.close()
        raise


def resolve(oracles, timeout: float | None = None, *, isolate: bool = True, memory_limit: int | None = None) -> tuple[list[Registered], list[PluggedOracle], list[PluggedOracle]]:
    """``(built-in judges, plugged-in oracles, those opened here)`` for crosscheck's ``oracles``:
    None (every available built-in oracle), or a list of built-in names (``"torch"``), names of
    installed oracles (entry points), and sources (``as_oracle``). The built-in judges are the
    named ones, or all available when none is named: a plugged-in oracle never judges alone.
    ValueError for an unknown name; LoadError for a source that cannot be loaded."""
    if oracles is None:
        return available(), [], []
    if isinstance(oracles, str):
        raise ValueError(f"oracles: got the string {oracles!r}, expected a list (of names or sources)")
    names, plugged, opened = [], [], []
    given = {item.spec for item in oracles if isinstance(item, PluggedOracle) and item.kind == "entry"}
    try:
        for item in oracles:
            if isinstance(item, str) and item in given:  # an installed oracle given both by name and opened: once
                continue
            if isinstance(item, Registered) and not item.info.plugged:
                names.append(item.info.name)
            elif isinstance(item, str) and ":" not in item and item in ORACLE_TARGETS:
                names.append(item)
            elif isinstance(item, str) and ":" not in item:
                installed = installed_oracle_names()
                if item not in installed:
                    raise ValueError(f"oracles: got {item!r}, known: {', '.join(ORACLE_TARGETS)}; installed ({ENTRY_POINT_GROUP}): "
                                     f"{', '.join(installed) or 'none'}; or a source (MODULE:ATTR, an object)")
                oracle = open_oracle("entry", item, timeout, isolate=isolate, memory_limit=memory_limit)
                plugged.append(oracle)
                opened.append(oracle)
            else:
                oracle, here = as_oracle(item, timeout, isolate=isolate, memory_limit=memory_limit)
                plugged.append(oracle)
                opened += [oracle] if here else []
        builtins = available(names or None)
    except BaseException:
        for oracle in opened:
            oracle.close()
        raise
    taken = {r.info.name for r in builtins}
    for oracle in plugged:
        if oracle.info.name in taken:
            oracle.renamed(f"{oracle.info.name} [{oracle.spec}]")
        taken.add(oracle.info.name)
    return builtins, plugged, opened


def qualify(oracle: PluggedOracle, builtins: list[Registered], seed: int, check, examples: int = QUALIFICATION_EXAMPLES) -> Qualification:
    """The qualification run: ``check`` (chainrule.search.crosscheck) judges the oracle as an
    implementation, on ``examples`` generated cases and the coverage cases of what it declares,
    against the built-in oracles ``builtins``. Its Qualification (also kept on the oracle, and
    reused for the same judges); Disqualified, with its counterexample and diagnosis, if it fails."""
    against = tuple(r.info.name for r in builtins)
    if oracle.qualification is not None and set(against) <= set(oracle.qualification.against):
        return oracle.qualification
    start = time.perf_counter()
    try:
        summary = check(oracle.implementation, examples=examples, seed=seed, oracles=list(against), range_sweep=False)
    except AssertionError as failure:  # CheckFailure: the oracle's own smallest counterexample
        if not hasattr(failure, "verdict"):
            raise
        raise Disqualified(oracle.info.name, (
            f"oracle {oracle.info.name} (plugged in, {_KINDS.get(oracle.kind, oracle.kind)} {oracle.spec}) {FAILED} against "
            f"{', '.join(against)} (a qualification run of {examples} examples, seed {seed}, {time.perf_counter() - start:.1f} s): "
            f"it is not used, and nothing was judged with it. Its counterexample:\n\n{failure}"),
            verdict=failure.verdict, diagnosis=failure.diagnosis, seed=seed) from None
    qualification = Qualification(oracle.info.name, against, examples, len(summary.verdicts), len(summary.covered), seed, time.perf_counter() - start)
    oracle.qualification = qualification
    return qualification


def declared(oracle: PluggedOracle) -> str:
    """What it declares, in one line: version, activations, losses, precision, kink conventions."""
    info = oracle.info
    activations = "all" if set(info.activations or ACTIVATION_NAMES) >= set(ACTIVATION_NAMES) else ", ".join(info.activations)
    losses = "all" if set(info.losses or LOSS_NAMES) >= set(LOSS_NAMES) else ", ".join(info.losses)
    kinks = ", ".join(f"{name}'(0) = {value:g}" for name, value in info.kink_derivatives.items()
                      if value is not None and value != KINK_DERIVATIVES[name])
    precision = _precision_name(oracle.implementation)
    kinks = kinks or "the contract's"
    version = f"version {info.version}, " if info.version else ""
    return f"{version}activations: {activations}; losses: {losses}; precision {precision}; kinks: {kinks}"
