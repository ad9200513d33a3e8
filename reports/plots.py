"""Geometry for the report's pictures: the log colour scale and the error histograms.

Both work on log10 of a relative error e, over [LOW, HIGH] decades; e = 0 (bit-identical
answers) sits at LOW. The template only draws what is computed here, as inline SVG and CSS.

    colour(e) = hsl(120 (1 - t), ...)   t = (log10 e - LOW) / (HIGH - LOW), clamped to [0, 1]

green for rounding noise, yellow near 1e-9, red for errors of order 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["HIGH", "LOW", "Bar", "Histogram", "colour", "histogram", "legend", "position"]

LOW, HIGH = -18, 1  # decades shown
WIDTH, HEIGHT, MARGIN = 300, 64, 14  # svg user units: plot area, and room below it for the axis labels


def position(error: float, low: int = LOW, high: int = HIGH) -> float:
    """t in [0, 1]: where log10(error) lies between ``low`` and ``high`` (0 for error 0)."""
    if error <= 0:
        return 0.0
    return min(1.0, max(0.0, (math.log10(error) - low) / (high - low)))


def colour(error: float) -> str:
    """CSS colour of a matrix cell for this worst error."""
    return f"hsl({120 * (1 - position(error)):.0f}, 70%, 78%)"


def legend() -> list[tuple[str, str]]:
    """(label, colour) stops for the scale's legend, one every three decades."""
    return [(f"1e{d}", colour(10.0**d)) for d in range(LOW, HIGH + 1, 3)]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    failed: int  # of count, the comparisons that disagreed
    label: str  # the bin's range, for the tooltip


@dataclass(frozen=True)
class Histogram:
    """Bars of log10(error), one per decade, and the tolerance's x position."""

    bars: tuple[Bar, ...]
    tolerance_x: float
    tolerance: float
    ticks: tuple[tuple[float, str], ...]
    width: int = WIDTH
    height: int = HEIGHT
    margin: int = MARGIN


def histogram(points: list[tuple[float, bool]], tolerance: float, low: int = LOW, high: int = HIGH) -> Histogram:
    """How many (error, disagreed) points fall in each decade [10^d, 10^(d+1)) from ``low`` to
    ``high``; zeros (and anything below) in the first, anything above in the last."""
    decades = high - low
    counts, failed = [0] * decades, [0] * decades
    for error, disagreed in points:
        d = min(decades - 1, int(position(error, low, high) * decades))
        counts[d] += 1
        failed[d] += disagreed
    tallest = max(counts, default=0) or 1
    step = WIDTH / decades
    bars = []
    for d, count in enumerate(counts):
        if count:
            height = max(2.0, HEIGHT * count / tallest)
            start = low + d
            span = f"1e{start} to 1e{start + 1}" if 0 < d < decades - 1 else (f"below 1e{start + 1}" if d == 0 else f"1e{start} and above")
            label = f"{span}: {count}" + (f", {failed[d]} disagreeing" if failed[d] else "")
            bars.append(Bar(d * step + 1, HEIGHT - height, step - 2, height, count, failed[d], label))
    ticks = tuple((WIDTH * position(10.0**d, low, high), f"1e{d}") for d in range(low, high + 1, 6 if decades > 12 else 3))
    return Histogram(tuple(bars), WIDTH * position(tolerance, low, high), tolerance, ticks)
