"""Write the report files of an AuditResult: each requested format rendered once, to its file
name in the output folder."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from cityward.audit import render_html, render_json, render_junit, render_sarif
from cityward.audit.aggregate import AuditResult
from cityward.errors import CitywardError

# The formats and their files, in the order they are written.
FORMATS = {"html": "report.html", "json": "report.json", "junit": "report.junit.xml", "sarif": "report.sarif"}


def write_reports(result: AuditResult, formats: set[str], out_dir) -> list[Path]:
    """Write the requested formats (html, json, junit, sarif) to out_dir; return their paths."""
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise CitywardError(f"unknown report format(s) {', '.join(sorted(unknown))}: choose from {', '.join(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # SARIF links each rule to its control in the HTML report of the same run, when there is one.
    html_uri = (out / FORMATS["html"]).resolve().as_uri() if "html" in formats else None
    renderers = {"html": render_html.render, "json": render_json.render, "junit": render_junit.render,
                 "sarif": partial(render_sarif.render, html_uri=html_uri)}
    written = []
    for fmt in sorted(formats, key=list(FORMATS).index):
        path = out / FORMATS[fmt]
        path.write_text(renderers[fmt](result), encoding="utf-8")
        written.append(path)
    return written
