"""Governance rule on the city's incident contacts: they exist, name a CSIRT and were reviewed
within 12 months (CW-GOV-04)."""

from __future__ import annotations

from cityward.governance.context import HostContext
from cityward.governance.registry import PASSED, Judgement, failed, rule


@rule("CW-GOV-04", reads=("cityward_city", "cityward_city.incident_contacts_file"))
def incident_contacts_valid_and_reviewed(host: HostContext) -> Judgement:
    """The city's incident contacts are valid (a CSIRT among them) and reviewed this year."""
    city = host.city
    if city.city is None:
        return failed("; ".join(map(str, city.problems)) or "no cityward_city")
    if city.contacts is None:
        return failed(city.contacts_problem)
    if stale := host.stale(city.contacts.reviewed, "incident contacts last reviewed"):
        return failed(stale)
    return PASSED
