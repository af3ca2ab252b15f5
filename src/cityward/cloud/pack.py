"""The whole policy pack for one zones policy: what `policies/pulumi` serves to the Pulumi engine
and what `cityward cloud plan` evaluates in-process.

The rules are cityward.cloud.rules (one module per service); the zone and site rules need the
city's zones policy, the same file the stack was built from. The pack process finds it in
CITYWARD_ZONES_FILE (the README shows the command line); the offline plan hands over the policy
it loaded from the stack config.
"""

from __future__ import annotations

import os

from pulumi_policy import Policy

from cityward.cloud import rules
from cityward.errors import CitywardError
from cityward.zones import ZonesPolicy, load_zones

ZONES_ENV = "CITYWARD_ZONES_FILE"
ENFORCEMENT_LEVEL = rules.ENFORCEMENT_LEVEL


def policies(zones: ZonesPolicy | None) -> list[Policy]:
    """Every rule of the pack; without a zones policy the zone rules refuse the plan (fail closed)."""
    return rules.policies(zones)


def zones_from_environment() -> ZonesPolicy | None:
    """The zones policy named by CITYWARD_ZONES_FILE, None when unset; a bad file is one error line."""
    path = os.environ.get(ZONES_ENV)
    if not path:
        return None
    try:
        return load_zones(path)
    except CitywardError as exc:
        raise CitywardError(f"{ZONES_ENV}: {exc}") from None
