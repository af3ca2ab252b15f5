"""The VPC's layout (CW-NET-01): one VPC, every subnet in a zone, every zone across two AZs."""

from __future__ import annotations

from pulumi_policy import ReportViolation, StackValidationArgs

from cityward.cloud.graph import Graph
from cityward.cloud.rules.registry import RuleSet
from cityward.cloud.types import KIND_TAG, SUBNET, VPC, ZONE_TAG, ZONES_TAG
from cityward.cloud.values import tags

RULES = RuleSet()


@RULES.stack("cw-net-01-one-vpc-zones-span-two-azs", control="CW-NET-01",
             description="CW-NET-01 (cityward; no Checkov/FSBP equivalent): exactly one VPC, every subnet tagged with "
                         "its zone, and every zone of the zones policy in at least two availability zones.")
def _one_vpc_zones_span_azs(args: StackValidationArgs, report: ReportViolation) -> None:
    graph = Graph(args.resources)
    vpcs = graph.of(VPC)
    if len(vpcs) != 1:
        report(f"CW-NET-01: expected exactly one VPC, found {len(vpcs)}")
    declared = {z for v in vpcs for z in str(tags(v.props).get(ZONES_TAG, "")).split(",") if z}
    azs: dict[str, set[str]] = {}
    for subnet in graph.of(SUBNET):
        subnet_tags = tags(subnet.props)
        zone = subnet_tags.get(ZONE_TAG)
        if not zone:
            report(f"CW-NET-01: subnet {subnet.name} has no '{ZONE_TAG}' tag: every subnet belongs to a zone",
                   subnet.urn)
            continue
        if zone not in declared and subnet_tags.get(KIND_TAG) != "platform":
            report(f"CW-NET-01: subnet {subnet.name} is in zone '{zone}', which the VPC's zones policy does not name",
                   subnet.urn)
        azs.setdefault(zone, set()).add(str(subnet.props.get("availabilityZone") or subnet.props.get(
            "availabilityZoneId") or "?"))
    for zone in sorted(declared | set(azs)):
        found = azs.get(zone, set())
        if len(found) < 2:
            report(f"CW-NET-01: zone '{zone}' has subnets in {len(found)} availability zone(s), at least 2 needed")
