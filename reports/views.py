"""What the page shows, derived from a Report (read from results.json) and nothing else.

- verdicts: per implementation, the strongest status over its cases (chainrule.status.strongest: a wrong
  gradient before a fault, with the count and worst error of each), where a
  case's status is the strongest over its oracles;
- matrix: per (source, oracle) pair, the worst error over the cases compared (AGREE or
  DISAGREE: a convention difference is listed apart, NO_EVIDENCE compared nothing); a pair of
  oracles is one set of records, shown in both cells; a plugged-in oracle (Source.plugged) is a
  column and a row like any oracle, marked as plugged in;
- coverage: cases per activation x loss and per depth x batch size, with the failing ones;
- distributions: a histogram of every compared pair's errors with its tolerance;
- layers: per layer of the contract (rows) and judged source (columns), the layer search's status
  with the cases that agreed, "not declared" where the source does not declare the layer; a
  failing cell links to its counterexample below the matrix, unsupported reasons are footnotes.

A source's verdict is the strongest status of its networks' cases and of its layers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from chainrule.contract import ACTIVATION_NAMES, LOSS_NAMES
from chainrule.layers.contract import LAYER_NAMES
from chainrule.reports import plots
from chainrule.reports.records import LayerRow, Record, Report, Source, Status
from chainrule.status import strongest

__all__ = ["View", "view"]

COMPARED = (Status.AGREE, Status.DISAGREE)
FAILED = (Status.DISAGREE, Status.ERROR)
ARTICLE_RTOL = 1e-6  # the article prints at most 8 digits; finite differences reach them to ~1e-7, any classic bug misses by far more


def _number(x: float) -> str:
    """Compact: 10 significant digits, as the article writes them (-0.985, 1.815)."""
    return format(float(x) + 0.0, ".10g")


def _error(x: float | None) -> str:
    return "—" if x is None else ("0" if x == 0 else f"{x:.1e}")


@dataclass(frozen=True)
class Verdict:
    name: str
    status: str  # a Status value
    text: str


@dataclass(frozen=True)
class Cell:
    text: str
    count: int
    status: str  # "agree", "disagree", "none", "self"
    colour: str
    title: str


@dataclass(frozen=True)
class LayerCell:
    """One (layer, source) cell of the layers' matrix."""

    text: str  # the status, or "not declared"
    count: int  # cases that agreed
    status: str  # a Status value, or "undeclared"
    title: str
    failure: str = ""  # the id of its counterexample below the matrix
    note: int = 0  # the number of its footnote (why some cases could not be answered); 0: none


@dataclass(frozen=True)
class Distribution:
    implementation: str
    oracle: str
    method: str
    plot: plots.Histogram


@dataclass(frozen=True)
class Grid:
    """A coverage table: rows x columns of (cases checked, cases failing)."""

    title: str
    row_label: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, tuple[tuple[int, int], ...]], ...]


@dataclass(frozen=True)
class View:
    report: Report
    verdicts: tuple[Verdict, ...]
    oracles: tuple[str, ...]
    matrix: tuple[tuple[str, str, tuple[Cell, ...]], ...]  # (source, kind, cells per oracle)
    legend: tuple[tuple[str, str], ...]
    grids: tuple[Grid, ...]
    distributions: tuple[Distribution, ...]
    conventions: tuple[tuple[Record, str], ...]  # with the case's description
    failures: tuple  # (Counterexample, [(Disagreement, [(TensorView, rows of (got, expected, bad, title))])])
    article: tuple[tuple[str, str, tuple[tuple[str, bool], ...]], ...]  # (label, published, (value, matches) per source)
    cases: tuple[tuple[str, str, str, str], ...]  # (id, description, status, how it was judged)
    plugged: tuple[str, ...] = ()  # the oracles among ``oracles`` that are plugged in (chainrule.plugged), marked as such
    layer_sources: tuple[str, ...] = ()  # the layers' matrix's columns: every judged source that could be loaded
    layer_matrix: tuple[tuple[str, tuple[LayerCell, ...]], ...] = ()  # (layer, cells per source), the contract's layers in order
    layer_failures: tuple[tuple[str, LayerRow], ...] = ()  # (id, row) of each failing layer
    layer_notes: tuple[tuple[int, LayerRow], ...] = ()  # (number, row) of each layer some of whose cases it could not answer


def _case_statuses(records: list[Record]) -> dict[str, Status]:
    by_case = defaultdict(list)
    for record in records:
        by_case[record.case].append(record.status)
    return {case: strongest(statuses) for case, statuses in by_case.items()}


def _verdict(source: Source, records: list[Record], layers: list[LayerRow], oracles: tuple[str, ...]) -> Verdict:
    if not source.available:
        return Verdict(source.name, Status.ERROR.value, f"error: {source.detail}")
    parts = ([_network_verdict(records, oracles)] if source.networks else []) + ([_layer_verdict(layers)] if layers else [])
    text = "; ".join(text for _, text in parts) + (f"; {source.detail}" if source.detail else "")
    return Verdict(source.name, strongest(status for status, _ in parts).value, text)


def _layer_verdict(layers: list[LayerRow]) -> tuple[Status, str]:
    """Its layers: the failing ones first (with the arrays they get wrong), then how many agree."""
    failing = [f"{row.layer} ({', '.join(row.wrong) or row.status.value})" for row in layers if row.status in FAILED]
    parts = [f"WRONG on {', '.join(failing)}"] if failing else []
    parts.append(f"{sum(row.status is Status.AGREE for row in layers)} of {len(layers)} agree ({sum(row.agreed for row in layers)} cases)")
    unjudged = [row.layer for row in layers if row.status in (Status.NO_EVIDENCE, Status.SKIPPED)]
    parts += [f"not shown to agree: {', '.join(unjudged)}"] if unjudged else []
    return strongest(row.status for row in layers), "layers: " + "; ".join(parts)


def _network_verdict(records: list[Record], oracles: tuple[str, ...]) -> tuple[Status, str]:
    if not oracles:
        return Status.PENDING, "not checked: no oracle is available"
    cases = _case_statuses(records)
    count = {status: sum(s is status for s in cases.values()) for status in Status}
    status = strongest(cases.values())
    parts = []  # what matters first: wrong gradients, then faults
    if count[Status.DISAGREE]:
        worst = max(r.worst_error for r in records if r.status is Status.DISAGREE)
        parts.append(f"DISAGREES on {count[Status.DISAGREE]} of {len(cases)} cases against {', '.join(oracles)} (worst relative error {worst:.3g})")
    if count[Status.ERROR]:
        faults = sorted({r.note for r in records if r.status is Status.ERROR})
        parts.append(f"error on {count[Status.ERROR]} of {len(cases)} cases: {faults[0]}")
    if not parts:
        parts.append(f"agrees on {count[Status.AGREE]} cases against {', '.join(oracles)}" if status is Status.AGREE else "never shown to agree")
    text = "; ".join(parts)
    extras = [(Status.CONVENTION, "differ only by a kink convention"), (Status.NO_EVIDENCE, "without evidence"), (Status.SKIPPED, "skipped (not supported)")]
    return status, text + "".join(f"; {count[s]} {what}" for s, what in extras if count[s])


def _pair(records: list[Record], row: str, column: str) -> list[Record]:
    return [r for r in records if (r.implementation, r.oracle) in ((row, column), (column, row))]


def _cell(records: list[Record], row: str, column: str) -> Cell:
    if row == column:
        return Cell("—", 0, "self", "", "an oracle against itself")
    compared = [r for r in _pair(records, row, column) if r.status in COMPARED]
    if not compared:
        return Cell("—", 0, "none", "", "no case compared")
    worst = max(r.worst_error for r in compared)
    disagreeing = sum(r.status is Status.DISAGREE for r in compared)
    status = Status.DISAGREE if disagreeing else Status.AGREE
    title = f"{row} vs {column}: worst relative error {worst!r} over {len(compared)} cases" + (f", {disagreeing} disagreeing" if disagreeing else "")
    return Cell(_error(worst), len(compared), status.value, plots.colour(worst), title)


def _grids(report: Report, failed_cases: set[str]) -> tuple[Grid, ...]:
    def tally(key_row, key_column, rows, columns):
        counts = defaultdict(lambda: [0, 0])
        for case in report.cases:
            for r in key_row(case):
                counts[r, key_column(case)][0] += 1
                counts[r, key_column(case)][1] += case.id in failed_cases
        return tuple((str(r), tuple(tuple(counts[r, c]) for c in columns)) for r in rows)

    depths = range(1, max([5] + [c.depth for c in report.cases]) + 1)
    batches = range(1, max([4] + [c.batch for c in report.cases]) + 1)
    return (
        Grid("Activation × loss", "activation", LOSS_NAMES, tally(lambda c: set(c.activations), lambda c: c.loss, ACTIVATION_NAMES, LOSS_NAMES)),
        Grid("Depth × batch size", "depth", tuple(f"N={n}" for n in batches), tally(lambda c: (c.depth,), lambda c: f"N={c.batch}", depths, [f"N={n}" for n in batches])),
    )


ALLOWANCE_DECADES = (-12, 6)  # the histograms' range in units of what was allowed: agreement far below 1, wrong answers far above


def _distributions(report: Report, rows: list[str], oracles: tuple[str, ...]) -> tuple[Distribution, ...]:
    """Per (source, oracle): the worst error of each case in units of what was allowed there (the
    larger of rtol scale(T) and the case's noise floor in the source's precision), so that 1 is
    the bound for every source and every case."""
    plotted = []
    for row in rows:
        for column in oracles:
            compared = [r for r in report.records if r.implementation == row and r.oracle == column and r.status in COMPARED and r.allowance is not None]
            if compared:
                points = [(r.allowance, r.status is Status.DISAGREE) for r in compared]
                plotted.append(Distribution(row, column, compared[0].method, plots.histogram(points, 1.0, *ALLOWANCE_DECADES)))
    return tuple(plotted)


def _failures(report: Report):
    """Counterexamples with each tensor laid out as rows of (got, expected, bad) cells."""
    shaped = []
    for example in report.counterexamples:
        disagreements = []
        for disagreement in example.disagreements:
            tensors = []
            for tensor in disagreement.tensors:
                columns = tensor.shape[-1] if tensor.shape else 1
                bad = {i[0] * columns + i[1] if len(i) == 2 else (i[0] if i else 0) for i in tensor.bad}
                cells = [(f"{g:.6g}", f"{e:.6g}", k in bad, f"got {g!r}, expected {e!r}") for k, (g, e) in enumerate(zip(tensor.got, tensor.expected))]
                tensors.append((tensor, [cells[r : r + columns] for r in range(0, len(cells), columns)]))
            disagreements.append((disagreement, tensors))
        shaped.append((example, disagreements))
    return tuple(shaped)


UNDECLARED = "not declared"


def _layer_cell(row: LayerRow | None, failure: str, note: int) -> LayerCell:
    if row is None:
        return LayerCell(UNDECLARED, 0, "undeclared", "not among the layers it declares")
    told = [f"{row.source}, {row.layer}: {row.agreed} cases agree"]
    told += [f"{row.no_evidence} without evidence"] if row.no_evidence else []
    told += [f"wrong: {', '.join(row.wrong)} (the counterexample below)"] if row.wrong else []
    told += [f"could not answer: {'; '.join(row.unsupported)}"] if row.unsupported else []
    told += [f"{row.seconds:.1f} s"] if row.seconds is not None else []
    return LayerCell(row.status.value, row.agreed, row.status.value, "; ".join(told), failure, note)


def _layers(report: Report, columns: tuple[str, ...]) -> tuple:
    """The layers' matrix (the contract's layers that were searched x ``columns``), its failures with their ids, its footnotes."""
    rows = {(row.source, row.layer): row for row in report.layers}
    failures = tuple((f"layer-failure-{k}", row) for k, row in enumerate(r for r in report.layers if r.counterexample is not None))
    notes = tuple((k, row) for k, row in enumerate((r for r in report.layers if r.unsupported), start=1))
    failure_of = {(row.source, row.layer): anchor for anchor, row in failures}
    note_of = {(row.source, row.layer): k for k, row in notes}

    def cell(key: tuple[str, str]) -> LayerCell:
        return _layer_cell(rows.get(key), failure_of.get(key, ""), note_of.get(key, 0))

    searched = [layer for layer in LAYER_NAMES if any(row.layer == layer for row in report.layers)]  # the layers this version judges
    return tuple((layer, tuple(cell((source, layer)) for source in columns)) for layer in searched), failures, notes


def _article(report: Report) -> tuple:
    article = report.article
    rows = []
    for k, (label, published) in enumerate(zip(article.labels, article.published)):
        values = tuple(
            (_number(s.values[k]), math.isclose(s.values[k], published, rel_tol=ARTICLE_RTOL)) if s.values else ("—", False)
            for s in article.sources
        )
        rows.append((label, _number(published), values))
    return tuple(rows)


def _cases(report: Report, oracles: tuple[str, ...]) -> tuple:
    by_case = defaultdict(list)
    for record in report.records:
        by_case[record.case].append(record)
    rows = []
    for case in report.cases:
        records = by_case[case.id]
        methods = []
        for oracle in oracles:
            judged = [r for r in records if r.oracle == oracle and r.method]
            notes = sorted({r.note for r in judged if r.note})
            if judged:
                methods.append(f"{oracle} ({judged[0].method}{': ' + '; '.join(notes) if notes else ''})")
        rows.append((case.id, case.description, strongest(r.status for r in records).value, ", ".join(methods)))
    return tuple(rows)


def view(report: Report) -> View:
    """Everything the template draws."""
    oracles = tuple(s.name for s in report.sources if s.kind == "oracle" and s.available)
    judged = [s for s in report.sources if s.kind != "oracle"]
    layers_of = defaultdict(list)
    for row in report.layers:
        layers_of[row.source].append(row)
    verdicts = tuple(_verdict(s, [r for r in report.records if r.implementation == s.name], layers_of[s.name], oracles) for s in judged)
    rows = [s.name for s in judged if s.available and s.networks] + list(oracles)
    layer_sources = tuple(s.name for s in judged if s.available)
    kinds = {s.name: ("oracle, plugged in" if s.plugged else s.kind) + ("" if s.precision == "float64" else f", {s.precision}") for s in report.sources}
    matrix = tuple((row, kinds[row], tuple(_cell(report.records, row, column) for column in oracles)) for row in rows)
    failed_cases = {r.case for r in report.records if r.status in FAILED}
    descriptions = {c.id: c.description for c in report.cases}
    conventions = tuple((r, descriptions[r.case]) for r in report.records if r.status is Status.CONVENTION)
    return View(
        report, verdicts, oracles, matrix, tuple(plots.legend()), _grids(report, failed_cases),
        _distributions(report, rows, oracles), conventions, _failures(report),
        _article(report), _cases(report, oracles), tuple(s.name for s in report.sources if s.plugged and s.available),
        layer_sources, *_layers(report, layer_sources),
    )
