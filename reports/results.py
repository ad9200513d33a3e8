"""Records to JSON and back: results.json is the renderer's only input.

The mapping follows the record types: a dataclass is an object of its fields, a Status its
value ("agree"), a tuple a list, None null, beside a top-level ``schema_version`` (an int) that
``from_json`` requires to be this one's. ``from_json(to_json(r)) == r`` for every Report, and
floats survive exactly (json writes the shortest repr that round-trips).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from enum import Enum
from pathlib import Path

from chainrule import __version__
from chainrule.reports.atomic import write_atomic
from chainrule.reports.records import Report

__all__ = ["SCHEMA_VERSION", "to_json", "from_json", "write", "read_json"]

SCHEMA_VERSION = 3  # results.json's top-level "schema_version"; raised whenever a record's fields are added, removed or change meaning
# 2: Source.plugged (plugged-in oracles, chainrule.plugged), Source.precision, Record.allowance
# 3: Report.layers (LayerRow: each declared layer of each source searched), Report.layer_judges, Settings.layer_examples, Source.networks


def _encode(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    return value


def _decode(kind, value):
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return kind(**{f.name: _decode(hints[f.name], value[f.name]) for f in dataclasses.fields(kind)})
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(value)
    if origin is tuple:  # tuple[X, ...] or tuple[X, Y]
        kinds = [args[0]] * len(value) if args[-1] is Ellipsis else args
        return tuple(_decode(k, v) for k, v in zip(kinds, value))
    if origin in (typing.Union, types.UnionType):  # X | None
        return None if value is None else _decode(next(a for a in args if a is not type(None)), value)
    if kind is float:
        return float(value)  # json reads 1.0 written as 1.0, but an int-valued float may come back as int
    return value


def to_json(report: Report) -> dict:
    """The report as a JSON-ready dict, its ``schema_version`` first."""
    return {"schema_version": SCHEMA_VERSION, **_encode(report)}


def from_json(data: dict) -> Report:
    """Inverse of ``to_json``; ValueError naming both versions when ``schema_version`` is not this one's."""
    version = data.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:  # True == 1, but is no version
        got = "no schema_version" if "schema_version" not in data else f"schema_version {version!r}"
        raise ValueError(
            f"results.json: got {got}, this chainrule ({__version__}) reads schema_version {SCHEMA_VERSION}; "
            "write it again with this chainrule's `chainrule report`"
        )
    return _decode(Report, data)


def write(report: Report, path: Path) -> None:
    """results.json, written atomically."""
    write_atomic(Path(path), [json.dumps(to_json(report), indent=1, allow_nan=False), "\n"])


def read_json(path: Path) -> dict:
    """results.json as written: the renderer's input."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
