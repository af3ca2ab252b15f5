"""The segmented VPC and its zones as ComponentResources, declared from cityward.cloud.planning.

A segment (a zone, the endpoints segment, or the transit segment that holds the Transit Gateway's
VPC attachment when the policy has field sites) is one subnet per availability zone, a route table
with its routes INLINE and a NACL with its entries INLINE: the table and the NACL are each one
resource, updated in place when conduits change, and a route or entry added outside Pulumi is
removed by the next `pulumi up`. Security-group rules stay separate aws.vpc resources (CW-NET-03).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from cityward.cloud import planning
from cityward.cloud.declare import child, tags
from cityward.cloud.planning import split_per_az
from cityward.cloud.rules.zones import policy_digest
from cityward.cloud.types import ZONES_HASH_TAG
from cityward.zones import ZonesPolicy

if TYPE_CHECKING:
    from cityward.cloud.network_config import NetworkConfig

ENDPOINT_SEGMENT = planning.ENDPOINT_SEGMENT
TRANSIT_SEGMENT = planning.TRANSIT_SEGMENT


def plan_config(config: NetworkConfig) -> planning.PlanConfig:
    return planning.PlanConfig(config.name, config.vpc_cidr, config.endpoint_cidr, config.ephemeral_ports,
                               config.zones_file, config.transit_cidr)


def _acl_entries(entries: list[planning.AclEntry], egress: bool) -> list[dict[str, Any]]:
    return [{"rule_no": e.rule_no, "action": "allow", "protocol": e.rule.protocol, "cidr_block": e.rule.cidr,
             "from_port": e.rule.from_port, "to_port": e.rule.to_port}
            for e in sorted(entries, key=lambda e: e.rule_no) if e.rule.egress == egress]


class _Segment:
    """Subnets, route table and NACL of one segment, declared under `parent`."""

    def __init__(self, parent: pulumi.Resource, config: NetworkConfig, vpc: aws.ec2.Vpc, name: str, kind: str,
                 cidr: ipaddress.IPv4Network, entries: list[planning.AclEntry], routes: list[dict[str, Any]],
                 route_options: dict[str, Any] | None = None) -> None:
        n = config.name
        zone_tags = {"cityward:zone": name, "cityward:zone-kind": kind}
        self.route_table = aws.ec2.RouteTable(
            f"{n}-{name}-rt", vpc_id=vpc.id, routes=routes, tags=tags(f"{n}-{name}-rt", **zone_tags),
            opts=child(parent, **(route_options or {})))
        self.nacl = aws.ec2.NetworkAcl(
            f"{n}-{name}-nacl", vpc_id=vpc.id,
            ingress=_acl_entries(entries, False), egress=_acl_entries(entries, True),
            tags=tags(f"{n}-{name}-nacl", **zone_tags), opts=child(parent))
        self.subnets: list[aws.ec2.Subnet] = []
        for az, subnet_cidr in zip(config.availability_zones, split_per_az(cidr, len(config.availability_zones)),
                                   strict=True):
            subnet = aws.ec2.Subnet(
                f"{n}-{name}-{az}",
                vpc_id=vpc.id,
                cidr_block=str(subnet_cidr),
                availability_zone=az,
                map_public_ip_on_launch=False,  # CW-NET-08: public addresses only by explicit EIP/LB
                tags=tags(f"{n}-{name}-{az}", **zone_tags),
                opts=child(parent),
            )
            self.subnets.append(subnet)
            aws.ec2.RouteTableAssociation(f"{n}-{name}-{az}-rt", subnet_id=subnet.id,
                                          route_table_id=self.route_table.id, opts=child(parent))
            aws.ec2.NetworkAclAssociation(f"{n}-{name}-{az}-nacl", subnet_id=subnet.id,
                                          network_acl_id=self.nacl.id, opts=child(parent))


class SegmentedVpc(pulumi.ComponentResource):
    """The VPC, its adopted (emptied) defaults, the internet gateway when a zone faces the
    internet, the endpoints segment with its security group (CW-NET-01/04/07) and, when the policy
    has field sites, the transit segment for the Transit Gateway attachment (`transit`: subnets,
    a route table with no route beyond `local`, a NACL admitting only the sites' conduit flows;
    no security group: only the attachment's interfaces live there)."""

    def __init__(self, zones: ZonesPolicy, config: NetworkConfig) -> None:
        n = config.name
        super().__init__("cityward:cloud:SegmentedVpc", n)
        self.vpc = aws.ec2.Vpc(
            f"{n}-vpc",
            cidr_block=str(config.vpc_cidr),
            enable_dns_support=True,
            enable_dns_hostnames=True,  # needed for private DNS on the interface endpoints
            # the pack checks it enforces the very policy the stack was built from (CW-NET-13)
            tags=tags(f"{n}-vpc", **{"cityward:zones": ",".join(zones.zones),
                                     ZONES_HASH_TAG: policy_digest(zones)}),
            opts=child(self),
        )
        self._defaults(n)
        self.internet_gateway = None
        if any(z.internet for z in zones.zones.values()):
            self.internet_gateway = aws.ec2.InternetGateway(f"{n}-igw", vpc_id=self.vpc.id, tags=tags(f"{n}-igw"),
                                                            opts=child(self))
        segment = _Segment(self, config, self.vpc, ENDPOINT_SEGMENT, "platform", config.endpoint_cidr,
                           planning.nacl_entries(zones, ENDPOINT_SEGMENT, plan_config(config)), [])
        self.subnets, self.route_table, self.nacl = segment.subnets, segment.route_table, segment.nacl
        self.transit: _Segment | None = None
        if zones.sites:
            if config.transit_cidr is None:  # check_layout refuses it first; never attach elsewhere
                raise ValueError("field sites need the transit segment (transitSubnetCidr)")
            self.transit = _Segment(self, config, self.vpc, TRANSIT_SEGMENT, "platform", config.transit_cidr,
                                    planning.nacl_entries(zones, TRANSIT_SEGMENT, plan_config(config)), [])
        self.security_group = aws.ec2.SecurityGroup(
            f"{n}-{ENDPOINT_SEGMENT}-sg",
            name=f"{n}-{ENDPOINT_SEGMENT}",
            description="cityward interface endpoints: HTTPS from the VPC only",
            vpc_id=self.vpc.id,
            revoke_rules_on_delete=True,
            tags=tags(f"{n}-{ENDPOINT_SEGMENT}-sg", **{"cityward:zone": ENDPOINT_SEGMENT}),
            opts=child(self),
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{n}-{ENDPOINT_SEGMENT}-in-vpc-tcp443",
            security_group_id=self.security_group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4=str(config.vpc_cidr),
            description="HTTPS to AWS APIs and Session Manager from inside the VPC",
            tags=tags(f"{n}-{ENDPOINT_SEGMENT}-in-vpc-tcp443", **{"cityward:conduit": "vpc->endpoints:tcp/443"}),
            opts=child(self),
        )
        self.register_outputs({"vpcId": self.vpc.id})

    def _defaults(self, n: str) -> None:
        """Adopt the VPC's default SG, NACL and route table and leave them empty (CW-NET-04)."""
        aws.ec2.DefaultSecurityGroup(f"{n}-default-sg", vpc_id=self.vpc.id, tags=tags(f"{n}-default-sg-unused"),
                                     opts=child(self))
        aws.ec2.DefaultNetworkAcl(
            f"{n}-default-nacl",
            default_network_acl_id=self.vpc.default_network_acl_id,
            tags=tags(f"{n}-default-nacl-unused"),
            # every subnet is associated with its zone NACL explicitly; AWS moves it off the default
            opts=child(self, ignore_changes=["subnetIds"]),
        )
        aws.ec2.DefaultRouteTable(
            f"{n}-default-rt",
            default_route_table_id=self.vpc.default_route_table_id,
            routes=[],
            tags=tags(f"{n}-default-rt-unused"),
            opts=child(self),
        )


class Zone(pulumi.ComponentResource):
    """One zone of the policy: subnets, route table, NACL, security group and its rules
    (CW-NET-01/02/03). `transit` is (transit gateway, VPC attachment) when field sites exist."""

    def __init__(self, name: str, zones: ZonesPolicy, config: NetworkConfig, vpc: SegmentedVpc,
                 transit: tuple[Any, Any] | None = None) -> None:
        n = config.name
        super().__init__("cityward:cloud:Zone", f"{n}-{name}")
        zone = zones.zone(name)
        plan = plan_config(config)
        routes, route_options = [], {}
        for route in planning.routes(zones, name):
            if route.target == "internet-gateway" and vpc.internet_gateway is not None:
                routes.append({"cidr_block": route.destination, "gateway_id": vpc.internet_gateway.id})
            elif route.target == "transit-gateway" and transit is not None:
                routes.append({"cidr_block": route.destination, "transit_gateway_id": transit[0].id})
                # a route to the gateway is accepted only once the VPC is attached to it
                route_options = {"depends_on": [transit[1]]}
        segment = _Segment(self, config, vpc.vpc, name, zone.kind, zone.cidr,
                           planning.nacl_entries(zones, name, plan), routes, route_options)
        self.subnets, self.route_table, self.nacl = segment.subnets, segment.route_table, segment.nacl
        self.security_group = aws.ec2.SecurityGroup(
            f"{n}-{name}-sg",
            name=f"{n}-{name}",
            description=f"cityward zone {name} ({zone.kind}): conduits from the zones policy only",
            vpc_id=vpc.vpc.id,
            revoke_rules_on_delete=True,
            tags=tags(f"{n}-{name}-sg", **{"cityward:zone": name, "cityward:zone-kind": zone.kind}),
            opts=child(self),
        )
        for spec in planning.sg_rules(zones, plan):
            if spec.zone == name:
                self._rule(spec, vpc)
        self.register_outputs({"securityGroupId": self.security_group.id})

    def _rule(self, spec: planning.SgRuleSpec, vpc: SegmentedVpc) -> None:
        extra = {"cityward:conduit": spec.conduit}
        if spec.site:
            extra["cityward:site"] = spec.site
        peer: dict[str, Any] = ({"cidr_ipv4": spec.cidr} if spec.cidr is not None
                                else {"referenced_security_group_id": vpc.security_group.id})
        kind = aws.vpc.SecurityGroupEgressRule if spec.egress else aws.vpc.SecurityGroupIngressRule
        kind(
            spec.name,
            security_group_id=self.security_group.id,
            ip_protocol=spec.protocol,
            from_port=spec.port,
            to_port=spec.port,
            description=spec.description,
            tags=tags(spec.name, **extra),
            opts=child(self),
            **peer,
        )
