"""Governance rules on the device record itself: complete and valid (CW-GOV-01), not past the
vendor's end of support (CW-GOV-02), its owner trained within 12 months (CW-GOV-08)."""

from __future__ import annotations

from cityward.governance.context import HostContext
from cityward.governance.registry import PASSED, Judgement, failed, rule

# Support ending within this many days needs a replacement plan on record.
EOL_NOTICE_DAYS = 180


@rule("CW-GOV-01", reads=("cityward_zone", "cityward_zones", "cityward_zones_file", "cityward_device",
                          "cityward_inventory_schema"))
def metadata_complete_and_zone_known(host: HostContext) -> Judgement:
    """The zone and the device record are complete and valid (the problems gathered for the host)."""
    if host.problems:
        return failed("; ".join(map(str, host.problems)))
    return PASSED


@rule("CW-GOV-02", reads=("cityward_device.support_end_of_life", "cityward_device.replacement_plan"))
def vendor_support_not_ended(host: HostContext) -> Judgement:
    """Life cycle against the vendor's end of support."""
    if missing := host.needs("support_end_of_life"):
        return failed(missing)
    eol = host.fields["support_end_of_life"]
    left = (eol - host.today).days
    if left < 0:
        return failed(f"vendor support ended {eol} ({-left} days ago)")
    if left <= EOL_NOTICE_DAYS and not host.fields.get("replacement_plan"):
        return failed(f"vendor support ends {eol} (in {left} days) and no replacement_plan is recorded")
    return PASSED


@rule("CW-GOV-08", reads=("cityward_device.training_last_completed", "cityward_device.owner"))
def owner_training_recent(host: HostContext) -> Judgement:
    """The device owner's security training is recorded within 12 months."""
    if "training_last_completed" not in host.fields:
        owner = host.fields.get("owner", "(unknown owner)")
        return failed(f"no valid training_last_completed for owner '{owner}'")
    if stale := host.stale(host.fields["training_last_completed"], "owner training last completed"):
        return failed(stale)
    return PASSED
