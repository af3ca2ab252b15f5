"""Governance metadata: what the city records about each device (CW-GOV-01..05, 08, 09, 11, CW-RES-01).

These checks read the inventory the host is audited from, never the host: the host's variables
(testinfra's ansible backend) and the city's files next to the inventory (incident contacts,
vendor requirements, runbooks). The verdicts come from cityward.inventory, the same code as
`validate_inventory`; a host without `cityward_device` fails CW-GOV-01.
"""

from __future__ import annotations

import pytest

from cityward.inventory import HostMetadata, assess_host


@pytest.fixture(scope="module")
def metadata(hostvars, inventory_path) -> HostMetadata:
    everyone = (hostvars.get("groups") or {}).get("all")
    return assess_host(hostvars["inventory_hostname"], hostvars, inventory_path, all_hosts=everyone)


def verdict(metadata: HostMetadata, control: str) -> None:
    found = metadata.verdicts[control]
    if found.status == "not_applicable":
        pytest.skip(found.reason)
    if found.status != "passed":
        pytest.fail(f"{metadata.name}: {found.reason}", pytrace=False)


@pytest.mark.control("CW-GOV-01")
def test_device_metadata_complete_and_zone_known(metadata):
    verdict(metadata, "CW-GOV-01")


@pytest.mark.control("CW-GOV-02")
def test_device_not_past_vendor_end_of_support(metadata):
    verdict(metadata, "CW-GOV-02")


@pytest.mark.control("CW-GOV-03")
def test_vendor_sla_has_incident_notice_and_disclosure_terms(metadata):
    verdict(metadata, "CW-GOV-03")


@pytest.mark.control("CW-GOV-04")
def test_city_incident_contacts_valid_and_reviewed(metadata):
    verdict(metadata, "CW-GOV-04")


@pytest.mark.control("CW-GOV-05")
def test_manual_override_runbook_exists_and_exercised(metadata):
    verdict(metadata, "CW-GOV-05")


@pytest.mark.control("CW-GOV-08")
def test_owner_security_training_recent(metadata):
    verdict(metadata, "CW-GOV-08")


@pytest.mark.control("CW-GOV-09")
def test_risk_review_sets_data_retention(metadata):
    verdict(metadata, "CW-GOV-09")


@pytest.mark.control("CW-GOV-11")
def test_vendor_security_requirements_recorded(metadata):
    verdict(metadata, "CW-GOV-11")


@pytest.mark.control("CW-RES-01")
def test_critical_asset_has_redundancy_or_degraded_mode(metadata):
    verdict(metadata, "CW-RES-01")
