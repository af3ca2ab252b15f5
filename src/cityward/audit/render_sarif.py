"""Render an AuditResult as SARIF 2.1.0 (for code-scanning dashboards): one rule per control, one
result per failed or waived control on a host.

Hosts are logical locations (there is no source file to point at); mandatory controls fail at
level `error`, the others at `warning`. A waived control is a result with an accepted external
suppression (the waiver's reason as justification, approver and expiry as properties), its kind
what the checks found (a dashboard hides it as suppressed, never shows it as passed); a control
failed because its waiver expired carries that suppression as rejected. Unreachable hosts are
tool execution notifications.
"""

from __future__ import annotations

import json

from cityward import __version__
from cityward.audit.aggregate import AuditResult, Status
from cityward.resources import policies_dir

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _utc(stamp: str) -> str:
    """SARIF writes UTC times with a 'Z'."""
    return stamp.replace("+00:00", "Z") if stamp.endswith("+00:00") else stamp


def _help_uri(control_id: str, html_uri: str | None) -> str:
    # The HTML report of the same run has an anchor per control; without it, the catalog entry.
    base = html_uri or (policies_dir() / "controls.yml").resolve().as_uri()
    return f"{base}#{control_id}"


# What the checks found under a waiver, as a SARIF result kind.
_KIND = {Status.FAILED: "fail", Status.PASSED: "pass", Status.NOT_APPLICABLE: "notApplicable"}


def _suppression(waiver: dict) -> dict:
    """The waiver as SARIF's suppression: accepted while in force, rejected once expired."""
    properties = {key: waiver[key] for key in ("approver", "expires", "ticket", "entry") if waiver.get(key)}
    justification = (f"waiver expired on {waiver['expires']}: {waiver['reason']}" if waiver["expired"]
                     else waiver["reason"])
    return {"kind": "external", "status": "rejected" if waiver["expired"] else "accepted",
            "justification": justification, "properties": properties}


def _rule(control, html_uri: str | None) -> dict:
    refs = [f"IEC 62443-3-3 {sr}" for sr in control.iec62443] + [f"CISA CPG {g}" for g in control.cisa_cpg]
    return {
        "id": control.id,
        "name": control.id.replace("-", ""),
        "shortDescription": {"text": control.title},
        "fullDescription": {"text": control.verification},
        "help": {"text": f"{control.title}. Verified by: {control.verification} "
                         f"References: {', '.join(refs) or 'none'}. Source items: {', '.join(control.sources)}."},
        "helpUri": _help_uri(control.id, html_uri),
        "defaultConfiguration": {"level": "error" if control.mandatory else "warning"},
        "properties": {
            "iec62443": list(control.iec62443),
            "cisa_cpg": list(control.cisa_cpg),
            "sources": list(control.sources),
            "mandatory": control.mandatory,
            "catalog_status": control.status,
            "tags": ["cityward", *refs, *control.sources],
        },
    }


def render(result: AuditResult, *, html_uri: str | None = None) -> str:
    """The SARIF log, as text; `html_uri` is the HTML report of the same run, when there is one
    (each rule's help links to its control there, else to the catalog)."""
    run, catalog, data = result.run, result.catalog, result.facts
    rules = [_rule(control, html_uri) for control in catalog.controls]
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    results = []
    for control in catalog.controls:
        body = data["controls"][control.id]
        for host, cell in body["hosts"].items():
            if cell["status"] not in (Status.FAILED, Status.WAIVED):
                continue
            zone = data["hosts"][host]["zone"] or "no-zone"
            kind = "fail" if cell["status"] == Status.FAILED else _KIND.get(cell["found"]["status"], "review")
            verb = "failed" if cell["status"] == Status.FAILED else "waived"
            result = {
                "ruleId": control.id,
                "ruleIndex": index[control.id],
                "kind": kind,
                # SARIF: a result that is not a failure has level none.
                "level": ("error" if control.mandatory else "warning") if kind == "fail" else "none",
                "message": {"text": f"{control.id} {verb} on {host}: {cell['reason'] or control.title}"},
                "locations": [{"logicalLocations": [
                    {"name": host, "fullyQualifiedName": f"{zone}/{host}", "kind": "resource"}]}],
                "partialFingerprints": {"cityward/control-host/v1": f"{control.id}:{host}"},
                "properties": {"host": host, "zone": zone, "status": cell["status"]},
            }
            if "waiver" in cell:
                result["suppressions"] = [_suppression(cell["waiver"])]
            results.append(result)
    notifications = [
        {"level": "error", "message": {"text": f"{host.name}: {host.error or 'unreachable'}"},
         "locations": [{"logicalLocations": [{"name": host.name, "kind": "resource"}]}]}
        for host in run.hosts if not host.reachable
    ]
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "cityward",
                "version": run.cityward_version or __version__,
                "semanticVersion": run.cityward_version or __version__,
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": not notifications,
                "startTimeUtc": _utc(run.started),
                "endTimeUtc": _utc(run.finished),
                "toolExecutionNotifications": notifications,
            }],
            "automationDetails": {"id": f"cityward-audit/{run.inventory}/{run.started}"},
            "results": results,
            "properties": {"inventory": run.inventory, "summary": data["summary"]},
        }],
    }
    return json.dumps(document, indent=2) + "\n"
