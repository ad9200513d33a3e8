"""The gradient sources of a report: the reference, each --impl, each --cmd, every implementation
installed under the entry-point group ``chainrule.implementations``, and the oracles: the
built-in ones, then the plugged-in ones (each --oracle, each --oracle-cmd, every oracle installed
under ``chainrule.oracles``), which judge once they pass their qualification run
(``plug_oracles``); one that cannot be loaded or fails qualification is an unavailable Source
with why, and judges nothing.

Python plug-ins (the reference too) run in a worker process each (chainrule.sources.worker):
the report's process never imports them. A plug-in that cannot be loaded or started does not
stop the others: it becomes a Source with ``available=False`` and the one-line reason, and the
report gives it an error verdict.
Names are made unique (a second source called "reference" is listed with its spec), since
records are keyed by name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from chainrule.oracles.registry import Registered, registry
from chainrule.plugged import Disqualified, PluggedOracle, declared, open_oracle, qualify
from chainrule.reports.records import Source
from chainrule.sources.faults import LoadError
from chainrule.sources.implementation import Implementation
from chainrule.sources.load import REFERENCE, entry_point_names, open_source

__all__ = ["REFERENCE", "Plugin", "load_plugins", "open_plugin", "oracle_sources", "plug_oracles"]


@dataclass(frozen=True)
class Plugin:
    """How to (re)open a judged implementation: kind "impl" (MODULE:ATTR), "cmd" (a command) or
    "entry" (an installed entry point's name)."""

    kind: str
    spec: str
    name: str = ""  # the unique name it is reported under, once loaded


def open_plugin(plugin: Plugin) -> Implementation:
    """Load or start it, a Python one in a worker process (LoadError when it cannot be); close it when done."""
    implementation = open_source(plugin.kind, plugin.spec)
    return dataclasses.replace(implementation, name=plugin.name) if plugin.name else implementation


def load_plugins(impls: list[str], cmds: list[str]) -> tuple[list[Plugin], list[Implementation], list[Source]]:
    """The reference, every --impl, every --cmd, then every installed entry point, in that order:
    (the loaded plug-ins, their implementations, every source including those that failed to load)."""
    wanted = [Plugin("impl", REFERENCE)] + [Plugin("impl", s) for s in impls] + [Plugin("cmd", c) for c in cmds]
    wanted += [Plugin("entry", name) for name in entry_point_names()]
    plugins, implementations, sources, taken = [], [], [], {r.info.name for r in registry()}
    for position, plugin in enumerate(wanted):
        kind = "plugin" if position else "reference"
        try:
            implementation = open_plugin(plugin)
        except LoadError as error:
            sources.append(Source(plugin.spec, kind, plugin.spec, str(error), available=False))
            continue
        name = implementation.name if implementation.name not in taken else f"{implementation.name} [{plugin.spec}]"
        taken.add(name)
        plugins.append(dataclasses.replace(plugin, name=name))
        implementations.append(dataclasses.replace(implementation, name=name))
        unexercised = implementation.unexercised if implementation.networks else ()  # one of layers only has its layers' matrix
        sources.append(Source(name, kind, plugin.spec, f"not exercised (outside what it declares): {', '.join(unexercised)}" if unexercised else "",
                              precision=implementation.precision.name, networks=implementation.networks))
    return plugins, implementations, sources


def oracle_sources(plugged: list[Source] = ()) -> list[Source]:
    """Every known oracle, available or not, with its framework and version (or why it is
    missing), then the plugged-in ones (``plug_oracles``)."""
    sources = []
    for registered in registry():
        info = registered.info
        detail = f"{info.framework} {info.version}, {'exact' if info.exact else 'approximate'}" if info.available else info.reason
        sources.append(Source(info.name, "oracle", info.framework, detail, info.available))
    return sources + list(plugged)


def plug_oracles(specs: list[tuple[str, str]], seed: int, judges: list[Registered]) -> tuple[list[PluggedOracle], list[Source], list]:
    """Each plugged-in oracle ``(kind, spec)`` ("impl", "cmd", "entry") loaded and qualified against
    the built-in ``judges`` with the report's ``seed``: (the qualified ones, a Source for every one,
    the failed qualifications as chainrule.plugged.Disqualified). The qualified ones are the
    caller's to close."""
    from chainrule.search import crosscheck

    qualified, sources, failed = [], [], []
    taken = {r.info.name for r in registry()}
    for kind, spec in specs:
        try:
            oracle = open_oracle(kind, spec)
        except LoadError as error:
            sources.append(Source(spec, "oracle", spec, str(error), available=False, plugged=True))
            continue
        if oracle.info.name in taken:
            oracle.renamed(f"{oracle.info.name} [{spec}]")
        taken.add(oracle.info.name)
        try:
            qualification = qualify(oracle, judges, seed, crosscheck)
        except Disqualified as error:
            oracle.close()
            failed.append(error)
            sources.append(Source(oracle.info.name, "oracle", spec, f"{declared(oracle)}; {str(error).split(chr(10))[0]}", available=False, plugged=True))
            continue
        qualified.append(oracle)
        sources.append(Source(oracle.info.name, "oracle", spec, f"plugged in: {declared(oracle)}; {qualification}", plugged=True))
    return qualified, sources, failed
