"""The cityward policy pack. Only this file builds the PolicyPack (it starts a gRPC server and
never returns); the rules are cityward.cloud.pack, so tests and `cityward cloud plan` run them.

The zone and site rules (CW-NET-13, CW-NET-16) enforce the city's zones policy: give the pack the
file the stack's `zonesFile` names, e.g.
    CITYWARD_ZONES_FILE=policies/zones.yml pulumi preview --policy-pack policies/pulumi
Without it those rules refuse every plan (they never pass by default)."""

from pulumi_policy import PolicyPack

from cityward.cloud.pack import ENFORCEMENT_LEVEL, policies, zones_from_environment

PolicyPack(
    name="cityward-aws",
    enforcement_level=ENFORCEMENT_LEVEL,
    policies=policies(zones_from_environment()),
)
