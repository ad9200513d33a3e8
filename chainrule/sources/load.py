"""Loading a gradient source, of networks, layers or both (chainrule.sources.implementation):
``package.module:attribute`` (an instance, or a class constructible with no arguments), an
installed entry point in the group ``chainrule.implementations``, or a command speaking JSON
lines (chainrule.sources.jsonlines). ``open_source`` is the one way in for
the command line, the pytest plugin and the report.

Python implementations are loaded and run in a worker process (chainrule.sources.worker) unless
``isolate=False``: this process never imports their modules. ``load`` and ``load_entry_point``
load in this process, for ``--in-process`` and for the worker itself.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import os
import pickle
import sys
import tempfile

from chainrule.sources.faults import LoadError
from chainrule.sources.implementation import IN_PROCESS, Implementation, with_timeout, wrap

__all__ = [
    "ENTRY_POINT_GROUP", "KINDS", "REFERENCE", "as_implementation", "entry_point_implementations", "entry_point_names",
    "load", "load_entry_point", "load_object", "open_source",
]

ENTRY_POINT_GROUP = "chainrule.implementations"
REFERENCE = "chainrule.reference:Reference"
KINDS = ("impl", "cmd", "entry")  # MODULE:ATTR, a JSON-lines command, an entry point's name
AS_ASKED = f"{IN_PROCESS}, as asked (--in-process, isolate=False)"  # the isolation of one kept here on purpose


def open_source(
    kind: str, spec: str, timeout: float | None = None, *, isolate: bool = True, memory_limit: int | None = None
) -> Implementation:
    """The source of that kind (one of KINDS), loaded or started, with ``timeout`` seconds per call
    (None: the default); LoadError (exit code 2) when it cannot be. A Python implementation
    ("impl", "entry") runs in a worker process with ``memory_limit`` bytes (None: the machine's
    physical memory), or with ``isolate=False`` in this process. Close it when done."""
    if kind == "cmd":
        from chainrule.sources.jsonlines import command

        return command(spec) if timeout is None else command(spec, timeout=timeout)
    if isolate:
        from chainrule.sources.implementation import DEFAULT_TIMEOUT
        from chainrule.sources.worker import worker

        return worker(kind, spec, DEFAULT_TIMEOUT if timeout is None else timeout, memory_limit)
    loaded = load_entry_point(spec) if kind == "entry" else load(spec)
    loaded = with_timeout(loaded, timeout) if timeout is not None else loaded
    return dataclasses.replace(loaded, isolation=AS_ASKED)


def as_implementation(source, *, isolate: bool = False, memory_limit: int | None = None) -> Implementation:
    """A spec string (MODULE:ATTR), an Implementation (as it is), or any contract object.

    With ``isolate``, a spec runs in a worker process, and so does an object that can be sent to
    one: pickled, its class importable from its module. Any other object runs in this process,
    and its ``isolation`` says why."""
    if isinstance(source, Implementation):
        return source
    if isinstance(source, str):
        return open_source("impl", source, isolate=isolate, memory_limit=memory_limit)
    if not isolate:
        return wrap(source, isolation=AS_ASKED)
    return _sent_to_worker(source, memory_limit)


def _sent_to_worker(source, memory_limit: int | None) -> Implementation:
    """``source`` pickled into a worker process; in this process if it cannot be, saying why."""
    from chainrule.sources.worker import worker

    cls = type(source)
    label = f"{cls.__module__}.{cls.__qualname__} object"
    if cls.__module__ == "__main__":
        reason = "its class is defined in __main__, which a worker process cannot import"
    else:
        try:
            data = pickle.dumps(source)
        except Exception as error:  # any failure to pickle: it stays here
            reason = f"it does not pickle ({type(error).__name__}: {error})"
        else:
            with tempfile.NamedTemporaryFile(prefix="chainrule-", suffix=".pickle", delete=False) as file:
                file.write(data)
            try:
                return worker("pickle", file.name, memory_limit=memory_limit, label=label)
            except LoadError as error:
                reason = str(error)
            finally:
                os.unlink(file.name)
    return wrap(source, isolation=f"{IN_PROCESS}: it cannot be sent to a worker process: {reason}")


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
    """``package.module:attribute`` -> Implementation in this process; LoadError with a one-line reason otherwise."""
    return wrap(*load_object("impl", spec))


def load_object(kind: str, spec: str) -> tuple[object, str]:
    """The contract object of kind "impl" (MODULE:ATTR) or "entry" (an entry point's name),
    imported into this process, with the label its messages use; LoadError otherwise."""
    if kind == "entry":
        return _load_point(_entry_point(spec))
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
    return _instance(target, spec, attribute), spec


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda point: point.name)


def entry_point_names() -> list[str]:
    """The names of the installed implementations (loads nothing)."""
    return [point.name for point in _entry_points()]


def _load_point(point: importlib.metadata.EntryPoint) -> tuple[object, str]:
    spec = f"entry point {point.name} = {point.value}"
    try:
        target = point.load()
    except Exception as error:
        raise LoadError(f"{spec}: cannot load: {type(error).__name__}: {error}") from None
    return _instance(target, spec, point.attr or point.value), point.name


def _entry_point(name: str) -> importlib.metadata.EntryPoint:
    for point in _entry_points():
        if point.name == name:
            return point
    raise LoadError(f"no entry point {name!r} in group {ENTRY_POINT_GROUP}; installed: {', '.join(entry_point_names()) or 'none'}")


def load_entry_point(name: str) -> Implementation:
    """The installed implementation of that entry-point name, in this process; LoadError if missing or broken."""
    return wrap(*load_object("entry", name))


def entry_point_implementations(isolate: bool = True) -> list[tuple[str, Implementation | LoadError]]:
    """Every installed implementation, by entry-point name: loaded (each in a worker process
    unless ``isolate=False``), or the LoadError saying why not. One that cannot be loaded never
    stops the others."""
    found: list[tuple[str, Implementation | LoadError]] = []
    for name in entry_point_names():
        try:
            found.append((name, open_source("entry", name, isolate=isolate)))
        except LoadError as error:
            found.append((name, error))
    return found
