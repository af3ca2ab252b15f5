"""Governance rules on critical assets (criticality critical or high): a manual-override runbook,
exercised within 12 months (CW-GOV-05), and a redundancy partner or a degraded mode (CW-RES-01)."""

from __future__ import annotations

from cityward.city_files import resolve
from cityward.governance.context import CRITICAL, HostContext
from cityward.governance.registry import PASSED, Judgement, failed, not_applicable, rule
from cityward.hostvars import records_problem


@rule("CW-GOV-05", reads=("cityward_device.criticality", "cityward_device.runbook"))
def manual_override_runbook_exercised(host: HostContext) -> Judgement:
    """Critical assets have a manual-override runbook in the city's records, exercised within 12 months."""
    if missing := host.needs("criticality"):
        return failed(missing)
    criticality, runbook = host.fields["criticality"], host.fields.get("runbook")
    if runbook is None and criticality not in CRITICAL:
        return not_applicable(f"not applicable: criticality {criticality} needs no manual-override runbook")
    if runbook is None:
        return failed(f"criticality {criticality} but no valid cityward_device.runbook")
    path = resolve(host.dirs, runbook.path)
    if confined := records_problem(host.dirs, runbook.path):  # a system file must not pass for a runbook
        return failed(f"runbook {confined}")
    if not path.is_file():
        return failed(f"runbook {path} not found")
    if path.stat().st_size == 0:
        return failed(f"runbook {path} is empty")
    if stale := host.stale(runbook.last_exercised, "runbook last exercised"):
        return failed(stale)
    return PASSED


@rule("CW-RES-01", reads=("cityward_device.criticality", "cityward_device.redundancy",
                          "cityward_device.degraded_mode"))
def critical_asset_has_redundancy(host: HostContext) -> Judgement:
    """Critical assets name a redundancy partner (a host of the inventory) or a degraded mode."""
    if missing := host.needs("criticality"):
        return failed(missing)
    criticality = host.fields["criticality"]
    if criticality not in CRITICAL:
        return not_applicable(f"not applicable: criticality {criticality} needs no redundancy declaration")
    if not host.fields.get("redundancy"):
        return failed(f"criticality {criticality} but no cityward_device.redundancy "
                      "(a partner host, or 'none' with a degraded_mode)")
    if host.pairing:
        return failed("; ".join(f"field {where}: {msg}" for where, msg in host.pairing))
    return PASSED
