"""Governance rules on the device's vendor, against the city's vendor requirements file: the
SLA resolves to security terms (CW-GOV-03), the vendor's security requirements are on record
(CW-GOV-11)."""

from __future__ import annotations

from cityward.governance.context import HostContext
from cityward.governance.registry import PASSED, Judgement, failed, rule


@rule("CW-GOV-03", reads=("cityward_device.vendor_sla", "cityward_city.vendor_requirements_file"))
def vendor_sla_has_security_terms(host: HostContext) -> Judgement:
    """The SLA reference resolves to a record with security terms, still valid."""
    if missing := host.needs("vendor_sla"):
        return failed(missing)
    sla, city = host.fields["vendor_sla"], host.city
    if city.city is None or not city.city.vendor_requirements_file:
        return failed(f"SLA '{sla}' cannot be resolved: cityward_city.vendor_requirements_file is not set")
    if city.vendors is None:
        return failed(city.vendors_problem)
    found = city.vendors.sla(sla)
    if found is None:
        return failed(f"SLA '{sla}' is not in {city.vendors_path} (no security terms on record)")
    terms = found[1]
    if terms.valid_until and terms.valid_until < host.today:
        return failed(f"SLA '{sla}' expired on {terms.valid_until}")
    return PASSED


@rule("CW-GOV-11", reads=("cityward_device.vendor", "cityward_city.vendor_requirements_file"))
def vendor_security_requirements_recorded(host: HostContext) -> Judgement:
    """The vendor's security requirements are on record."""
    if missing := host.needs("vendor"):
        return failed(missing)
    city = host.city
    if city.vendors is None:
        return failed(city.vendors_problem or "cityward_city.vendor_requirements_file is not set")
    vendor = city.vendors.vendor(host.fields["vendor"])
    if vendor is None:
        return failed(f"vendor '{host.fields['vendor']}' has no record in {city.vendors_path}")
    if not vendor.security_requirements:
        return failed(f"vendor '{vendor.name}' has no security_requirements recorded")
    return PASSED
