"""The cityward policy pack: every CrossGuard rule, as data, in the order the pack runs them.

Each rule module holds the rules of one service or concern, declared on their validators:

    vpc_layout, vpc_routing, security_groups, nacls, vpc_defaults, flow_logs, log_groups, kms,
    endpoints, instances, s3, iam, cloudtrail, session_manager, detection  (in every pack)
    zones, sites  (built for the city's zones policy)

beside three helpers: registry (the rule record, its declaration, the fail-closed policy it
becomes), exposure (what may face the internet) and policy_documents (reading IAM documents).

`RULES` lists every rule (`.control`, `.references`, `.policy`) in pack order (ORDER: the plan
lists violations in it; a declared rule missing from it, or a name in it no module declares, fails
the import); `POLICIES` the policies every pack holds, whatever its zones policy; `policies(zones)`
the pack for one zones policy (None: without one, the zone rules reduce to one that refuses every
plan). policies/pulumi serves `policies(zones)` through cityward.cloud.pack, and `cityward cloud plan`
evaluates it in-process.
"""

from __future__ import annotations

from pulumi_policy import Policy

from cityward.cloud.rules import (
    cloudtrail,
    detection,
    endpoints,
    flow_logs,
    iam,
    instances,
    kms,
    log_groups,
    nacls,
    s3,
    security_groups,
    session_manager,
    sites,
    vpc_defaults,
    vpc_layout,
    vpc_routing,
    zones,
)
from cityward.cloud.rules.registry import ENFORCEMENT_LEVEL, Rule, Scope
from cityward.zones import ZonesPolicy

__all__ = ["ENFORCEMENT_LEVEL", "POLICIES", "RULES", "Rule", "Scope", "policies"]

MODULES = (vpc_layout, vpc_routing, security_groups, nacls, vpc_defaults, flow_logs, log_groups, kms, endpoints,
           instances, s3, iam, cloudtrail, session_manager, detection, zones, sites)

# The order the engine runs the rules and the plan lists their violations.
ORDER = (
    # the network, its logs, keys, instances, storage, roles and trail (CW-NET-01..12)
    "cw-net-01-one-vpc-zones-span-two-azs",
    "cw-net-02-ot-subnets-no-internet-route",
    "cw-net-02-igw-routes-dmz-only",
    "cw-net-03-sg-no-world-admin-ports",
    "cw-net-03-nacl-no-world-admin-ports",
    "cw-net-03-sg-world-ingress-web-only",
    "cw-net-03-nacl-world-ingress-web-or-return",
    "cw-net-03-sg-rules-are-separate-resources",
    "cw-net-03-sg-rules-trace-to-conduit",
    "cw-net-03-sg-no-all-traffic-egress-to-world",
    "cw-net-04-default-sg-no-rules",
    "cw-net-04-default-nacl-no-rules",
    "cw-net-04-defaults-adopted",
    "cw-net-05-vpc-flow-logs",
    "cw-net-05-flow-log-traffic-all",
    "cw-net-05-log-group-kms",
    "cw-net-05-log-group-retention-365",
    "cw-net-06-kms-key-rotation",
    "cw-net-07-endpoint-private-dns",
    "cw-net-07-session-manager-endpoints",
    "cw-net-07-endpoint-sg-https-from-vpc",
    "cw-net-07-ssh-only-from-management",
    "cw-net-08-imdsv2-required",
    "cw-net-08-imdsv2-account-default",
    "cw-net-08-no-public-ip-on-launch",
    "cw-net-09-ebs-encryption-by-default",
    "cw-net-09-ebs-encryption-declared",
    "cw-net-10-s3-public-access-block",
    "cw-net-10-s3-account-public-access-block-declared",
    "cw-net-11-human-roles-require-mfa",
    "cw-net-11-operator-role-declared",
    "cw-net-12-cloudtrail-multi-region-validated",
    "cw-net-12-cloudtrail-kms",
    "cw-net-12-cloudtrail-cloudwatch-logs",
    "cw-net-12-cloudtrail-declared",
    # operator access: Session Manager and the endpoints' confinement
    "cw-net-11-operator-sessions-scoped-to-zones",
    "cw-net-15-session-document-logs-encrypted",
    "cw-net-15-session-preferences-declared",
    "cw-net-15-instance-role-writes-session-logs",
    "cw-net-16-endpoint-policy-this-account",
    "cw-net-16-s3-gateway-endpoint",
    # detective controls
    "cw-net-14-guardduty-enabled",
    "cw-net-14-security-hub-standards",
    "cw-net-14-config-recorder-all-resources",
    "cw-net-14-config-managed-rules",
    "cw-net-15-change-alarms",
    "cw-net-15-alert-topic-encrypted-subscribed",
    "cw-net-15-trail-bucket-access-logging",
    "cw-net-15-resolver-query-logging",
    # without a zones policy: this one alone; with one, the zone and site rules
    "cw-net-13-zones-policy-loaded",
    "cw-net-13-stack-built-from-zones-policy",
    "cw-net-13-subnets-in-zones",
    "cw-net-13-sg-rules-from-conduits",
    "cw-net-13-nacl-entries-from-conduits",
    "cw-net-13-routes-from-conduits",
    "cw-net-16-sites-have-vpn-on-tgw",
    "cw-net-16-customer-gateways-are-sites",
    "cw-net-16-tgw-no-default-route-tables",
    "cw-net-16-vpc-attachment-in-transit-segment",
    "cw-net-16-tgw-no-propagation",
    "cw-net-16-tgw-route-tables-known",
    "cw-net-16-site-routes-follow-conduits",
    "cw-net-16-vpc-routes-to-declared-sites",
    "cw-net-16-vpn-tunnels-ikev2-strong",
)


def _in_order(declared: list[Rule]) -> list[Rule]:
    by_name = {rule.name: rule for rule in declared}
    if len(by_name) != len(declared) or set(by_name) != set(ORDER) or len(ORDER) != len(set(ORDER)):
        unordered = sorted(set(by_name) - set(ORDER))
        undeclared = sorted(set(ORDER) - set(by_name))
        raise RuntimeError(f"cityward.cloud.rules: ORDER and the declared rules differ (not in ORDER: {unordered}; "
                           f"not declared: {undeclared}; or a name twice)")
    return [by_name[name] for name in ORDER]


RULES: list[Rule] = _in_order([rule for module in MODULES for rule in module.RULES])
POLICIES: list[Policy] = [rule.policy for rule in RULES if rule.scope is Scope.ANY]


def policies(zones: ZonesPolicy | None) -> list[Policy]:
    """The pack for a zones policy: every rule it holds, the zone and site rules built from `zones`."""
    return [rule.build(zones) for rule in RULES if rule.serves(zones)]
