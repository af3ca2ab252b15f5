"""The cityward policy pack. Only this file builds the PolicyPack (it starts a gRPC server and
never returns); the rules live in cityward_rules.py so tests and `cityward cloud plan` import them."""

from cityward_rules import ENFORCEMENT_LEVEL, POLICIES
from pulumi_policy import PolicyPack

PolicyPack(
    name="cityward-aws",
    enforcement_level=ENFORCEMENT_LEVEL,
    policies=POLICIES,
)
