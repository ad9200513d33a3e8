"""Records to JSON and back: results.json is the renderer's only input.

The mapping follows the record types: a dataclass is an object of its fields, a Status its
value ("agree"), a tuple a list, None null. ``from_json(to_json(r)) == r`` for every Report,
and floats survive exactly (json writes the shortest repr that round-trips).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from enum import Enum
from pathlib import Path

from chainrule.reports.atomic import write_atomic
from chainrule.reports.records import Report

__all__ = ["FORMAT", "to_json", "from_json", "write", "read_json"]

FORMAT = 1  # bumped whenever a record's fields change meaning


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
    """The report as a JSON-ready dict."""
    return {"format": FORMAT, **_encode(report)}


def from_json(data: dict) -> Report:
    """Inverse of ``to_json``; ValueError for another format."""
    if data.get("format") != FORMAT:
        raise ValueError(f"results.json: got format {data.get('format')!r}, this chainrule reads format {FORMAT}")
    return _decode(Report, data)


def write(report: Report, path: Path) -> None:
    """results.json, written atomically."""
    write_atomic(Path(path), [json.dumps(to_json(report), indent=1, allow_nan=False), "\n"])


def read_json(path: Path) -> dict:
    """results.json as written: the renderer's input."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
