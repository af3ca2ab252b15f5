"""Governance metadata: what the city records about each device (CW-GOV-01..05, 08, 09, 11, CW-RES-01).

These checks read the inventory the host is audited from, never the host: the host's variables
(testinfra's ansible backend) and the city's files next to the inventory (incident contacts,
vendor requirements, runbooks). Each verdict comes from the control's rule in
cityward.governance, the same code as `validate_inventory`; a host without `cityward_device`
fails CW-GOV-01. One case per registered rule (tests/unit/test_governance.py keeps the two in step).
"""

from __future__ import annotations

import pytest

from cityward.checks.outcomes import not_applicable
from cityward.governance import HostMetadata, assess


@pytest.fixture(scope="module")
def metadata(hostvars, inventory_path) -> HostMetadata:
    everyone = (hostvars.get("groups") or {}).get("all")
    return assess(hostvars["inventory_hostname"], hostvars, inventory_path, all_hosts=everyone)


@pytest.mark.parametrize("control", [
    # metadata complete and valid, zone known
    pytest.param("CW-GOV-01", marks=pytest.mark.control("CW-GOV-01"), id="CW-GOV-01"),
    # not past the vendor's end of support
    pytest.param("CW-GOV-02", marks=pytest.mark.control("CW-GOV-02"), id="CW-GOV-02"),
    # the vendor SLA has incident-notice and disclosure terms
    pytest.param("CW-GOV-03", marks=pytest.mark.control("CW-GOV-03"), id="CW-GOV-03"),
    # the city's incident contacts are valid and reviewed
    pytest.param("CW-GOV-04", marks=pytest.mark.control("CW-GOV-04"), id="CW-GOV-04"),
    # a manual-override runbook exists and was exercised
    pytest.param("CW-GOV-05", marks=pytest.mark.control("CW-GOV-05"), id="CW-GOV-05"),
    # the owner's security training is recent
    pytest.param("CW-GOV-08", marks=pytest.mark.control("CW-GOV-08"), id="CW-GOV-08"),
    # a risk review sets the data retention, and logs are kept no longer
    pytest.param("CW-GOV-09", marks=pytest.mark.control("CW-GOV-09"), id="CW-GOV-09"),
    # the vendor's security requirements are recorded
    pytest.param("CW-GOV-11", marks=pytest.mark.control("CW-GOV-11"), id="CW-GOV-11"),
    # a critical asset has a redundancy partner or a degraded mode
    pytest.param("CW-RES-01", marks=pytest.mark.control("CW-RES-01"), id="CW-RES-01"),
])
def test_governance_rule(metadata, control):
    found = metadata.verdicts[control]
    if found.status == "not_applicable":
        not_applicable(found.reason)
    if found.status != "passed":
        pytest.fail(f"{metadata.name}: {found.reason}", pytrace=False)
