"""The cityward policy pack. Only this file builds the PolicyPack (it starts a gRPC server and
never returns); the rules are cityward.cloud.rules, so tests and `cityward cloud plan` run them."""

from pulumi_policy import PolicyPack

from cityward.cloud.rules import ENFORCEMENT_LEVEL, POLICIES

PolicyPack(
    name="cityward-aws",
    enforcement_level=ENFORCEMENT_LEVEL,
    policies=POLICIES,
)
