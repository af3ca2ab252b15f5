"""Governance rules: what the city must record about each device and about itself (asset
inventory, vendor SLAs and requirements, life cycle, incident contacts, manual-override
runbooks, training, risk reviews, redundancy) for the governance controls to pass, as one
registered rule per control.

    CW-GOV-01  metadata complete and valid, zone known        CW-GOV-02  not past vendor end of support
    CW-GOV-03  vendor SLA resolves to security terms          CW-GOV-04  incident contacts valid and reviewed
    CW-GOV-05  manual-override runbook exists and exercised   CW-GOV-08  owner training within 12 months
    CW-GOV-09  risk review with a data-retention limit        CW-GOV-11  vendor security requirements recorded
    CW-RES-01  critical assets declare redundancy or a degraded mode

`RULES` maps each control ID to its `Rule` (`.control`, `.reads`: the host variables and record
fields it reads, `.judge`: the function). `assess()` gathers one host's context once and gives
every rule's verdict; `cityward check` (cityward.inventory.validate_inventory) and the audit's
checks (src/cityward/checks/test_metadata.py) both call it. The records' schema is
cityward.device; the city's files are read by cityward.city_files.
"""

from __future__ import annotations

# Each rule module registers its rules when imported; the order does not matter (verdicts come in
# control-ID order).
from cityward.governance import city_contacts, device_record, resilience, retention, vendor  # noqa: F401
from cityward.governance.assessment import HostMetadata, assess
from cityward.governance.registry import RULES, Rule, Verdict

__all__ = ["RULES", "HostMetadata", "Rule", "Verdict", "assess"]
