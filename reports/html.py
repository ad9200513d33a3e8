"""results.json -> index.html: one autoescaped Jinja2 template, inline CSS and SVG.

The page needs no network and no JavaScript: every style is in a <style> element, every
picture an inline <svg>, and collapsed sections are <details>. Autoescaping is on for the
whole template, so a plug-in's name or error message is always text, never markup.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from chainrule.reports.atomic import write_atomic
from chainrule.reports.results import from_json
from chainrule.reports.views import view

__all__ = ["environment", "render", "write"]


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("chainrule.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _stream(data: dict):
    return environment().get_template("report.html").generate(v=view(from_json(data)))


def render(data: dict) -> str:
    """The page for a results.json dict."""
    return "".join(_stream(data))


def write(data: dict, path: Path) -> None:
    """Render straight into a temporary file beside ``path``, then move it into place."""
    write_atomic(Path(path), _stream(data))
