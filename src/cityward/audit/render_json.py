"""Render an AuditResult as report.json (for machines): the run as collected and the aggregate's
facts, under a format name that changes when the document's shape does."""

from __future__ import annotations

import json
from dataclasses import asdict

from cityward.audit.aggregate import AuditResult

REPORT_FORMAT = "cityward-audit-report/1"


def render(result: AuditResult) -> str:
    """The JSON document, as text: {format, run, aggregate}."""
    document = {"format": REPORT_FORMAT, "run": asdict(result.run), "aggregate": result.facts}
    return json.dumps(document, indent=2, default=str) + "\n"
