"""Loading a gradient source: ``package.module:attribute`` (an instance, or a class constructible
with no arguments), an installed entry point in the group ``chainrule.implementations``, or a
command speaking JSON lines (chainrule.sources.jsonlines). ``open_source`` is the one way in for
the command line, the pytest plugin and the report.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys

from chainrule.sources.faults import LoadError
from chainrule.sources.implementation import Implementation, with_timeout, wrap

__all__ = [
    "ENTRY_POINT_GROUP", "KINDS", "REFERENCE", "as_implementation", "entry_point_implementations", "entry_point_names",
    "load", "load_entry_point", "open_source",
]

ENTRY_POINT_GROUP = "chainrule.implementations"
REFERENCE = "chainrule.reference:Reference"
KINDS = ("impl", "cmd", "entry")  # MODULE:ATTR, a JSON-lines command, an entry point's name


def open_source(kind: str, spec: str, timeout: float | None = None) -> Implementation:
    """The source of that kind (one of KINDS), loaded or started, with ``timeout`` seconds per call
    (None: the default); LoadError (exit code 2) when it cannot be."""
    if kind == "cmd":
        from chainrule.sources.jsonlines import command

        return command(spec) if timeout is None else command(spec, timeout=timeout)
    loaded = load_entry_point(spec) if kind == "entry" else load(spec)
    return loaded if timeout is None else with_timeout(loaded, timeout)


def as_implementation(source) -> Implementation:
    """A spec string, an Implementation, or any contract object."""
    if isinstance(source, Implementation):
        return source
    if isinstance(source, str):
        return load(source)
    return wrap(source)


def _import_from_working_directory(module_name: str):
    """Import as ``python -m`` would: modules in the working directory can be named. sys.path is
    restored afterwards, so nothing outlives the load."""
    saved = list(sys.path)
    sys.path.insert(0, "")
    try:
        return importlib.import_module(module_name)
    finally:
        sys.path[:] = saved


def _instance(target: object, spec: str, attribute: str) -> object:
    if isinstance(target, type):
        try:
            return target()
        except Exception as error:
            raise LoadError(f"{spec}: cannot construct {attribute}(): {type(error).__name__}: {error}") from None
    return target


def load(spec: str) -> Implementation:
    """``package.module:attribute`` -> Implementation; LoadError with a one-line reason otherwise."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise LoadError(f"{spec!r}: expected MODULE:ATTR, e.g. {REFERENCE}")
    try:
        module = _import_from_working_directory(module_name)
    except Exception as error:  # any import failure is the plug-in's, reported in one line
        raise LoadError(f"{spec}: cannot import {module_name!r}: {type(error).__name__}: {error}") from None
    try:
        target = getattr(module, attribute)
    except AttributeError:
        raise LoadError(f"{spec}: module {module_name!r} has no attribute {attribute!r}") from None
    return wrap(_instance(target, spec, attribute), spec)


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda point: point.name)


def entry_point_names() -> list[str]:
    """The names of the installed implementations (loads nothing)."""
    return [point.name for point in _entry_points()]


def _load_point(point: importlib.metadata.EntryPoint) -> Implementation:
    spec = f"entry point {point.name} = {point.value}"
    try:
        target = point.load()
    except Exception as error:
        raise LoadError(f"{spec}: cannot load: {type(error).__name__}: {error}") from None
    return wrap(_instance(target, spec, point.attr or point.value), point.name)


def load_entry_point(name: str) -> Implementation:
    """The installed implementation of that entry-point name; LoadError if missing or broken."""
    for point in _entry_points():
        if point.name == name:
            return _load_point(point)
    raise LoadError(f"no entry point {name!r} in group {ENTRY_POINT_GROUP}; installed: {', '.join(entry_point_names()) or 'none'}")


def entry_point_implementations() -> list[tuple[str, Implementation | LoadError]]:
    """Every installed implementation, by entry-point name: loaded, or the LoadError saying why not.
    One that cannot be loaded never stops the others."""
    found: list[tuple[str, Implementation | LoadError]] = []
    for point in _entry_points():
        try:
            found.append((point.name, _load_point(point)))
        except LoadError as error:
            found.append((point.name, error))
    return found
