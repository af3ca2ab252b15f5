"""Audit evidence: the results of a run rolled up per control, host, zone and checklist item, and
written as HTML (for people), JSON (for machines), JUnit XML (for CI) and SARIF (for code-scanning
dashboards).

Statuses of a control on a host (`aggregate`):
  failed          a check of the control failed or errored there
  passed          at least one check passed and none failed
  not_applicable  every check said it does not apply there (e.g. a kernel control in a container)
  skipped         checks were skipped for another reason
  unreachable     the host could not be reached, so a control that is implemented (or was checked
                  on another host) could not be checked there
  not_assessed    no check of the control ran on the host (e.g. the control is still planned)
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from cityward.audit.model import AuditRun, CheckResult, HostResult
from cityward.errors import CitywardError

STATUSES = ("passed", "failed", "not_applicable", "skipped", "unreachable", "not_assessed")
FORMATS = {"html": "report.html", "json": "report.json", "junit": "report.junit.xml", "sarif": "report.sarif"}
NO_ZONE = "(no zone)"
REPORT_FORMAT = "cityward-audit-report/1"


def cell_status(checks: list[CheckResult]) -> tuple[str, str]:
    """(status, reason) of one control on one reachable host from the checks that carry its ID."""
    if not checks:
        return "not_assessed", "no check of this control ran on the host"
    bad = [c for c in checks if c.outcome in ("failed", "error")]
    if bad:
        return "failed", " | ".join(f"{c.name}: {c.reason}" if c.reason else c.name for c in bad)
    if any(c.outcome == "passed" for c in checks):
        return "passed", ""
    if all(c.outcome == "not_applicable" for c in checks):
        return "not_applicable", checks[0].reason
    skipped = next((c for c in checks if c.outcome == "skipped"), checks[0])
    return "skipped", skipped.reason


def roll_up(statuses) -> str:
    """One status for many: any failure fails; else any pass passes; then skipped, n.a., unreachable."""
    found = set(statuses)
    for status in ("failed", "passed", "skipped", "not_applicable", "unreachable"):
        if status in found:
            return status
    return "not_assessed"


def _counts(statuses) -> dict[str, int]:
    counted = Counter(statuses)
    return {status: counted.get(status, 0) for status in STATUSES}


def _host_cells(host: HostResult, control_ids: list[str], in_scope: set[str]) -> dict[str, dict]:
    if not host.reachable:
        reason = host.error or "host unreachable"
        return {cid: {"status": "unreachable", "reason": reason} if cid in in_scope else
                {"status": "not_assessed", "reason": "no check of this control ran in this audit"}
                for cid in control_ids}
    by_control: dict[str, list[CheckResult]] = {cid: [] for cid in control_ids}
    for check in host.checks:
        for cid in check.control_ids:
            if cid in by_control:
                by_control[cid].append(check)
    cells = {}
    for cid, checks in by_control.items():
        status, reason = cell_status(checks)
        if status == "not_assessed" and not host.checks and host.error:
            reason = host.error
        cells[cid] = {"status": status, "reason": reason,
                      "duration": round(sum(c.duration for c in checks), 3), "checks": len(checks)}
    return cells


def aggregate(run: AuditRun, catalog) -> dict:
    """Everything the reports show, as plain data (the `aggregate` key of report.json)."""
    control_ids = [c.id for c in catalog.controls]
    # What an unreachable host missed: the controls checked on some host, and the implemented ones.
    in_scope = {cid for host in run.hosts for check in host.checks for cid in check.control_ids}
    in_scope |= {c.id for c in catalog.controls if c.status == "implemented"}
    cells = {host.name: _host_cells(host, control_ids, in_scope) for host in run.hosts}

    controls = {}
    for control in catalog.controls:
        per_host = {name: cells[name][control.id] for name in cells}
        statuses = [cell["status"] for cell in per_host.values()]
        controls[control.id] = {
            "title": control.title,
            "mandatory": control.mandatory,
            "catalog_status": control.status,
            "iec62443": list(control.iec62443),
            "cisa_cpg": list(control.cisa_cpg),
            "sources": list(control.sources),
            "status": roll_up(statuses),
            "counts": _counts(statuses),
            "hosts": per_host,
        }

    hosts = {}
    for host in run.hosts:
        statuses = [cell["status"] for cell in cells[host.name].values()]
        hosts[host.name] = {
            "zone": host.zone,
            "reachable": host.reachable,
            "error": host.error,
            "checks": _counts_outcomes(host.checks),
            "counts": _counts(statuses),
            "status": roll_up(statuses),
        }

    zones: dict[str, dict] = {}
    for host in run.hosts:
        zone = zones.setdefault(host.zone or NO_ZONE, {"hosts": [], "counts": _counts([])})
        zone["hosts"].append(host.name)
        for status, number in hosts[host.name]["counts"].items():
            zone["counts"][status] += number

    sources = []
    for source in catalog.sources:
        items = []
        for item in source.items:
            mapped = [cid for cid in control_ids if item.id in controls[cid]["sources"]]
            item_cells = [cell["status"] for cid in mapped for cell in controls[cid]["hosts"].values()]
            items.append({
                "id": item.id,
                "title": item.title,
                "controls": mapped,
                "status": roll_up(controls[cid]["status"] for cid in mapped),
                "control_counts": _counts(controls[cid]["status"] for cid in mapped),
                "counts": _counts(item_cells),
            })
        sources.append({"id": source.id, "title": source.title, "items": items})

    mandatory_failures = [
        {"control": cid, "title": body["title"],
         "hosts": sorted(name for name, cell in body["hosts"].items() if cell["status"] == "failed")}
        for cid, body in controls.items() if body["mandatory"] and body["status"] == "failed"
    ]

    all_cells = [cell["status"] for per_host in cells.values() for cell in per_host.values()]
    all_checks = [check for host in run.hosts for check in host.checks]
    summary = {
        "hosts": len(run.hosts),
        "reachable": sum(h.reachable for h in run.hosts),
        "unreachable": sum(not h.reachable for h in run.hosts),
        "checks": _counts_outcomes(all_checks),
        "cells": _counts(all_cells),
        "controls": _counts(body["status"] for body in controls.values()),
        "controls_assessed": sum(body["status"] not in ("not_assessed", "unreachable") for body in controls.values()),
        "mandatory_failures": len(mandatory_failures),
        "verdict": "fail" if mandatory_failures or any(not h.reachable for h in run.hosts) else "pass",
    }
    unknown = sorted({cid for check in all_checks for cid in check.control_ids} - set(control_ids))
    return {
        "summary": summary,
        "controls": controls,
        "hosts": hosts,
        "zones": dict(sorted(zones.items())),
        "sources": sources,
        "mandatory_failures": mandatory_failures,
        "policy_exceptions": list(run.policy_exceptions),
        "unknown_control_ids": unknown,
    }


def _counts_outcomes(checks: list[CheckResult]) -> dict[str, int]:
    counted = Counter(check.outcome for check in checks)
    return {o: counted.get(o, 0) for o in ("passed", "failed", "error", "skipped", "not_applicable")}


def report_json(run: AuditRun, catalog, data: dict | None = None) -> str:
    document = {"format": REPORT_FORMAT, "run": asdict(run), "aggregate": data or aggregate(run, catalog)}
    return json.dumps(document, indent=2, default=str) + "\n"


def write_reports(run: AuditRun, catalog, formats: set[str], out_dir) -> list[Path]:
    """Write the requested formats (html, json, junit, sarif) to out_dir; return their paths."""
    from cityward.audit import report_html, report_junit, report_sarif

    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise CitywardError(f"unknown report format(s) {', '.join(sorted(unknown))}: choose from {', '.join(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = aggregate(run, catalog)
    html_path = out / FORMATS["html"]
    writers = {
        "html": lambda: report_html.render(run, catalog, data),
        "json": lambda: report_json(run, catalog, data),
        "junit": lambda: report_junit.render(run, catalog, data),
        "sarif": lambda: report_sarif.render(run, catalog, data,
                                             html_uri=html_path.resolve().as_uri() if "html" in formats else None),
    }
    written = []
    for fmt in sorted(formats, key=list(FORMATS).index):
        path = out / FORMATS[fmt]
        path.write_text(writers[fmt](), encoding="utf-8")
        written.append(path)
    return written
