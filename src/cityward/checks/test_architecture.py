"""CW-GOV-01 on the host: the architecture the device record names is the host's.

A city's estate mixes amd64 servers and arm64 field gateways; a record that names the wrong one
misleads whoever orders a replacement, stages an update or reads the SBOM. The record's field is
optional: a record without it says nothing to check.
"""

from __future__ import annotations

import pytest

from cityward.audit.sbom import ARCH_QUERY
from cityward.checks.outcomes import not_applicable


@pytest.mark.control("CW-GOV-01")
def test_the_recorded_architecture_is_the_hosts(host, hostvars):
    recorded = (hostvars.get("cityward_device") or {}).get("architecture")
    if not recorded:
        not_applicable("not applicable: the device record names no architecture")
    found = host.check_output(ARCH_QUERY).strip()
    assert found == recorded, (f"{hostvars['inventory_hostname']}: cityward_device.architecture is {recorded}, "
                               f"the host runs {found}")
