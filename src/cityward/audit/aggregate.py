"""Aggregate an audit once: from the AuditRun that collect gathered and the control catalog,
judge every control on every host and roll the statuses up per control, host, zone and checklist
item, into the AuditResult every renderer reads. Pure: it reads nothing and writes nothing.

Statuses of a control on a host (Status):
  failed          a check of the control failed or errored there
  passed          at least one check passed and none failed
  not_applicable  every check said it does not apply there (e.g. a kernel control in a container)
  skipped         checks were skipped for another reason
  unreachable     the host could not be reached, so a control that is implemented (or was checked
                  on another host) could not be checked there
  not_assessed    no check of the control ran on the host (e.g. the control is still planned)
  waived          a waiver of the city (AuditRun.waivers) covers the control on the host: whatever
                  the checks found (kept beside it as `found`), never "passed"; a waiver past its
                  expiry on the day the audit started waives nothing: the control is failed there

A waiver judges a reachable host only: an unreachable host's controls stay unreachable.

The independent scanners' findings (HostResult.scanners, CW-GOV-07) are shown next to the controls
they map to (a cell's `scanner_findings`) and listed per host (`scanners`); a mapped finding whose
control a city waiver in force covers on the host is "waived" with that waiver's reason. A finding
changes no control's status: the control's own checks and CW-GOV-07's judge.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from cityward.audit.model import OUTCOMES, AuditRun, CheckResult, HostResult, Outcome
from cityward.catalog import Catalog


class Status(StrEnum):
    """The status of a control on a host, and rolled up (see the module's docstring)."""

    PASSED = "passed"
    FAILED = "failed"
    WAIVED = "waived"
    NOT_APPLICABLE = "not_applicable"
    SKIPPED = "skipped"
    UNREACHABLE = "unreachable"
    NOT_ASSESSED = "not_assessed"


STATUSES = tuple(Status)  # in the order every count lists them
NO_ZONE = "(no zone)"


@dataclass(frozen=True)
class AuditResult:
    """What the renderers take: the run as collected, the catalog it was judged against, and the
    facts `aggregate` derived from the two: report.json's `aggregate` key, as JSON-ready data (its
    statuses and outcomes are Status and Outcome members, which are strings)."""

    run: AuditRun
    catalog: Catalog
    facts: dict

    @property
    def mandatory_failures(self) -> list[dict]:
        """The mandatory controls that failed: {control, title, hosts} each."""
        return self.facts["mandatory_failures"]


def cell_status(checks: list[CheckResult]) -> tuple[Status, str]:
    """(status, reason) of one control on one reachable host from the checks that carry its ID."""
    if not checks:
        return Status.NOT_ASSESSED, "no check of this control ran on the host"
    bad = [c for c in checks if c.outcome in (Outcome.FAILED, Outcome.ERROR)]
    if bad:
        return Status.FAILED, " | ".join(f"{c.name}: {c.reason}" if c.reason else c.name for c in bad)
    if any(c.outcome == Outcome.PASSED for c in checks):
        return Status.PASSED, ""
    if all(c.outcome == Outcome.NOT_APPLICABLE for c in checks):
        return Status.NOT_APPLICABLE, checks[0].reason
    skipped = next((c for c in checks if c.outcome == Outcome.SKIPPED), checks[0])
    return Status.SKIPPED, skipped.reason


# Which status wins a roll-up, first to last (none of them: not assessed). A waiver outranks a
# pass: a control waived anywhere is never reported as passed.
_PRECEDENCE = (Status.FAILED, Status.WAIVED, Status.PASSED, Status.SKIPPED, Status.NOT_APPLICABLE,
               Status.UNREACHABLE)


def roll_up(statuses) -> Status:
    """One status for many: any failure fails; else any waiver waives; else any pass passes; then
    skipped, n.a., unreachable."""
    found = set(statuses)
    for status in _PRECEDENCE:
        if status in found:
            return status
    return Status.NOT_ASSESSED


def _counts(statuses) -> dict[Status, int]:
    counted = Counter(statuses)
    return {status: counted.get(status, 0) for status in STATUSES}


def _host_cells(host: HostResult, control_ids: list[str], in_scope: set[str]) -> dict[str, dict]:
    if not host.reachable:
        reason = host.error or "host unreachable"
        return {cid: {"status": Status.UNREACHABLE, "reason": reason} if cid in in_scope else
                {"status": Status.NOT_ASSESSED, "reason": "no check of this control ran in this audit"}
                for cid in control_ids}
    by_control: dict[str, list[CheckResult]] = {cid: [] for cid in control_ids}
    for check in host.checks:
        for cid in check.control_ids:
            if cid in by_control:
                by_control[cid].append(check)
    cells = {}
    for cid, checks in by_control.items():
        status, reason = cell_status(checks)
        if status == Status.NOT_ASSESSED and not host.checks and host.error:
            reason = host.error
        cells[cid] = {"status": status, "reason": reason,
                      "duration": round(sum(c.duration for c in checks), 3), "checks": len(checks)}
    return cells


def audit_day(run: AuditRun) -> date:
    """The day the audit started (UTC): the day waivers are judged against, so that the same run
    aggregates the same way whenever it is rendered."""
    try:
        return date.fromisoformat(run.started[:10])
    except ValueError:
        return date.today()


def _waiver_note(waiver: dict) -> str:
    ticket = f", ticket {waiver['ticket']}" if waiver.get("ticket") else ""
    return f"approved by {waiver['approver']}, expires {waiver['expires']}{ticket}"


def _found_text(cell: dict) -> str:
    status = str(cell["status"]).replace("_", " ")
    return f"{status}: {cell['reason']}" if cell["reason"] else status


def waive(cell: dict, waiver: dict, day: date) -> dict:
    """A reachable host's cell under the waiver that covers it: waived, or failed when the waiver
    expired before `day`; what the checks found stays in `found`."""
    found = {"status": cell["status"], "reason": cell["reason"]}
    expired = date.fromisoformat(waiver["expires"]) < day
    detail = {key: waiver.get(key) for key in ("entry", "reason", "approver", "expires", "ticket")}
    if expired:
        reason = (f"waiver expired on {waiver['expires']} ({waiver['reason']}; {_waiver_note(waiver)}): renew or "
                  f"remove it; the checks found {_found_text(found)}")
        return {**cell, "status": Status.FAILED, "reason": reason, "found": found,
                "waiver": {**detail, "expired": True}}
    reason = f"waived: {waiver['reason']} ({_waiver_note(waiver)}); the checks found {_found_text(found)}"
    return {**cell, "status": Status.WAIVED, "reason": reason, "found": found, "waiver": {**detail, "expired": False}}


def _apply_waivers(run: AuditRun, cells: dict[str, dict[str, dict]], day: date) -> list[dict]:
    """Waive the cells the run's waivers cover (in place); each waiver as the report lists it."""
    audited_hosts = {host.name for host in run.hosts if host.reachable}
    listed = []
    for waiver in run.waivers:
        audited = [name for name in waiver["hosts"] if name in audited_hosts]
        for name in audited:
            if waiver["control"] in cells[name]:
                cells[name][waiver["control"]] = waive(cells[name][waiver["control"]], waiver, day)
        listed.append({**waiver, "audited_hosts": audited,
                       "expired": date.fromisoformat(waiver["expires"]) < day})
    return listed


def _scanners(run: AuditRun, cells: dict[str, dict[str, dict]]) -> dict[str, list[dict]]:
    """Each reachable host's scanners with their findings (a mapped finding under a city waiver in
    force: waived), and each mapped finding added to its control's cell as `scanner_findings`."""
    listed = {}
    for host in run.hosts:
        if not host.reachable:
            continue
        scanners = []
        for scanner in host.scanners:
            findings = []
            for finding in scanner.get("findings", []):
                finding = dict(finding)
                cell = cells[host.name].get(finding.get("control") or "")
                if cell is not None and finding["disposition"] == "mapped":
                    if cell["status"] == Status.WAIVED:
                        finding["disposition"] = "waived"
                        finding["reason"] = f"city waiver of {finding['control']}: {cell['waiver']['reason']}"
                    cell.setdefault("scanner_findings", []).append({"scanner": scanner["name"], **finding})
                findings.append(finding)
            scanners.append({**scanner, "findings": findings})
        listed[host.name] = scanners
    return listed


def aggregate(run: AuditRun, catalog: Catalog) -> AuditResult:
    """The run judged against the catalog and its waivers: everything the reports show (once per
    audit)."""
    control_ids = [c.id for c in catalog.controls]
    # What an unreachable host missed: the controls checked on some host, and the implemented ones.
    in_scope = {cid for host in run.hosts for check in host.checks for cid in check.control_ids}
    in_scope |= {c.id for c in catalog.controls if c.status == "implemented"}
    cells = {host.name: _host_cells(host, control_ids, in_scope) for host in run.hosts}
    waivers = _apply_waivers(run, cells, audit_day(run))
    scanners = _scanners(run, cells)

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
         "hosts": sorted(name for name, cell in body["hosts"].items() if cell["status"] == Status.FAILED)}
        for cid, body in controls.items() if body["mandatory"] and body["status"] == Status.FAILED
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
        "controls_assessed": sum(body["status"] not in (Status.NOT_ASSESSED, Status.UNREACHABLE)
                                 for body in controls.values()),
        "mandatory_failures": len(mandatory_failures),
        "waivers": {"in_force": sum(not w["expired"] for w in waivers), "expired": sum(w["expired"] for w in waivers)},
        "verdict": "fail" if mandatory_failures or any(not h.reachable for h in run.hosts) else "pass",
    }
    unknown = sorted({cid for check in all_checks for cid in check.control_ids} - set(control_ids))
    facts = {
        "summary": summary,
        "controls": controls,
        "hosts": hosts,
        "zones": dict(sorted(zones.items())),
        "sources": sources,
        "mandatory_failures": mandatory_failures,
        "policy_exceptions": list(run.policy_exceptions),
        "waivers": waivers,
        "scanners": scanners,
        "unknown_control_ids": unknown,
    }
    return AuditResult(run=run, catalog=catalog, facts=facts)


def _counts_outcomes(checks: list[CheckResult]) -> dict[Outcome, int]:
    counted = Counter(check.outcome for check in checks)
    return {outcome: counted.get(outcome, 0) for outcome in OUTCOMES}
