"""Render an AuditResult as the console summary `cityward audit` prints: the check outcomes per
zone, then each host's error, each mandatory control that failed, each policy exception and each
waiver of the city with the hosts it covers (in force: waived; expired: failed), and each
independent scanner's result per host (CW-GOV-07)."""

from __future__ import annotations

from collections import Counter

from cityward.audit.aggregate import NO_ZONE, AuditResult
from cityward.audit.model import Outcome

COLUMNS = ("hosts", Outcome.PASSED, Outcome.FAILED, Outcome.ERROR, Outcome.NOT_APPLICABLE, Outcome.SKIPPED,
           "unreachable")


def summary_table(result: AuditResult) -> str:
    """Check outcomes per zone, with the hosts and the unreachable ones, and a total."""
    rows: dict[str, Counter] = {}
    for host in result.run.hosts:
        counter = rows.setdefault(host.zone or NO_ZONE, Counter())
        counter["hosts"] += 1
        if not host.reachable:
            counter["unreachable"] += 1
        counter.update(check.outcome for check in host.checks)
    lines = [f"{'ZONE':<15}" + "".join(f"{c.replace('_', ' ').upper():>16}" for c in COLUMNS)]
    total = Counter()
    for zone, counter in sorted(rows.items()):
        total.update(counter)
        lines.append(f"{zone:<15}" + "".join(f"{counter[c]:>16}" for c in COLUMNS))
    lines.append(f"{'TOTAL':<15}" + "".join(f"{total[c]:>16}" for c in COLUMNS))
    return "\n".join(lines)


def render(result: AuditResult) -> str:
    """The summary, as lines of text (no trailing newline)."""
    lines = [summary_table(result)]
    lines += [f"{host.name}: {host.error}" for host in result.run.hosts if not host.reachable or host.error]
    lines += [f"FAIL {failure['control']} {failure['title']} on {', '.join(failure['hosts'])}"
              for failure in result.mandatory_failures]
    lines += [f"policy exception: {line}" for line in result.run.policy_exceptions]
    lines += [_waiver_line(waiver) for waiver in result.facts.get("waivers", []) if waiver["audited_hosts"]]
    lines += [_scanner_line(host, scanner) for host, scanners in result.facts.get("scanners", {}).items()
              for scanner in scanners]
    return "\n".join(lines)


def _scanner_line(host: str, scanner: dict) -> str:
    """One line per scanner and host: its version and findings, or why it gave none."""
    if scanner["status"] != "ran":
        return f"SCANNER {scanner['name']} on {host}: {scanner['status'].replace('_', ' ').upper()}: {scanner['error']}"
    severity = Counter(f["severity"] for f in scanner["findings"])
    unmapped = Counter(f["severity"] for f in scanner["findings"] if f["disposition"] == "unmapped")
    waived = sum(f["disposition"] == "waived" for f in scanner["findings"])
    summary = scanner.get("summary") or {}
    index = f", hardening index {summary['hardening_index']}" if "hardening_index" in summary else ""
    return (f"SCANNER {scanner['name']} {scanner['version']} on {host}{index}: {severity['warning']} warnings "
            f"({unmapped['warning']} unmapped), {severity['suggestion']} suggestions ({unmapped['suggestion']} "
            f"unmapped), {waived} waived")


def _waiver_line(waiver: dict) -> str:
    hosts = ", ".join(waiver["audited_hosts"])
    ticket = f", ticket {waiver['ticket']}" if waiver.get("ticket") else ""
    who = f"approved by {waiver['approver']}, expires {waiver['expires']}{ticket}"
    if waiver["expired"]:
        return (f"EXPIRED WAIVER {waiver['control']} on {hosts}: expired on {waiver['expires']}, counted as failed "
                f"({waiver['reason']}; {who})")
    return f"WAIVED {waiver['control']} on {hosts}: {waiver['reason']} ({who})"
