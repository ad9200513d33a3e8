"""results.json carries a top-level ``schema_version``; a reader refuses any other version."""

import json

import pytest

from chainrule.reports.records import Article, Environment, Record, Report, Settings, Source, Status
from chainrule.reports.results import SCHEMA_VERSION, from_json, read_json, to_json, write


def _report() -> Report:
    return Report(
        Settings(seed=7, examples=3, jobs=1, date="2026-01-01T00:00:00+00:00", seconds=0.1 + 0.2, rejected=0, layer_examples=20),
        Environment("3.11", "2.0", "2.13", "not installed", "0.2.0", "Linux"),
        (),
        (Source("reference", "reference", "chainrule.reference:Reference"),),
        (),
        (Record("reference", "torch", "article", Status.AGREE, 1.2e-16, 14, 0.001, "exact", ""),),
        (),
        Article("3-relu-2-identity-2:mse, N=1", ("L",), (0.5001125,), ()),
        "walkthrough\n",
    )


def test_schema_version_is_written_and_read_back(tmp_path):
    assert SCHEMA_VERSION == 3
    write(_report(), tmp_path / "results.json")
    data = read_json(tmp_path / "results.json")
    assert next(iter(data)) == "schema_version" and data["schema_version"] == 3 and "format" not in data
    assert from_json(data) == _report()
    assert json.loads(json.dumps(to_json(_report()))) == data


@pytest.mark.parametrize(
    "change, got",
    [
        ({"schema_version": 4}, "got schema_version 4"),
        ({"schema_version": 2}, "got schema_version 2"),
        ({"schema_version": "3"}, "got schema_version '3'"),
        ({"schema_version": True}, "got schema_version True"),
        ({"schema_version": None}, "got schema_version None"),
    ],
    ids=["newer", "older", "string", "bool", "null"],
)
def test_another_schema_version_is_refused_naming_both(change, got):
    data = to_json(_report()) | change
    with pytest.raises(ValueError, match="results.json") as refused:
        from_json(data)
    assert got in str(refused.value) and f"reads schema_version {SCHEMA_VERSION}" in str(refused.value)


def test_a_results_json_without_schema_version_is_refused():
    data = {key: value for key, value in to_json(_report()).items() if key != "schema_version"}
    with pytest.raises(ValueError, match=f"got no schema_version, .* reads schema_version {SCHEMA_VERSION}"):
        from_json(data | {"format": 1})  # what chainrule wrote before schema_version
