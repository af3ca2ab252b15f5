"""The zones policy (CW-NET-13): the pack enforces it itself, whatever the resources' tags say.

The rules are built for one zones policy, the file the stack was built from (`RULES.policies(zones)`;
without one, a single rule refuses every plan), and judge every security-group rule, NACL entry and
route by its addresses and ports against the policy's conduits: a flow is allowed only if a conduit
(from-zone -> to-zone, protocol, port) declares it. Zones are found from addresses (a subnet's
CIDR, a rule's peer CIDR), never from a tag a program could forge; the one tag read is a security
group's own zone (a security group has no address), and rules check it against the policy.

Everything here decides on a first preview: CIDRs, ports and protocols are known then, and
references (a rule's security group, a route's table) are followed through property dependencies
(cityward.cloud.graph). What still cannot be decided is a violation (fail closed).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pulumi_policy import ReportViolation, StackValidationArgs

from cityward.cloud.graph import UNKNOWN, Graph, has, items, peek
from cityward.cloud.rules.registry import RuleSet, Scope
from cityward.cloud.types import (
    DEFAULT_ROUTE_TABLE,
    INTERNET_GATEWAY,
    NETWORK_ACL,
    NETWORK_ACL_ASSOCIATION,
    NETWORK_ACL_RULE,
    ROUTE,
    ROUTE_TABLE,
    ROUTE_TABLE_ASSOCIATION,
    SECURITY_GROUP,
    SG_EGRESS,
    SG_INGRESS,
    SG_RULE_LEGACY,
    SUBNET,
    VPC,
    VPN_GATEWAY,
    ZONE_TAG,
    ZONES_HASH_TAG,
)
from cityward.cloud.values import WORLD, network, number, protocol_name
from cityward.zones import INTERNET, ZonesPolicy

RULES = RuleSet()
PLATFORM = "endpoints"  # the interface-endpoint segment: AWS APIs on tcp/443, no conduit of its own
# the Transit Gateway attachment's segment: only the conduit flows between field sites and zones cross it
TRANSIT = "transit"
HTTPS = ("tcp", 443, 443)
# Stateless NACLs pass return traffic on the client's ephemeral ports: a range above 1023 (clients
# use 32768-60999 or 49152-65535). A single port is never a return range, so an admin port cannot
# pass as a reply.
RETURN_RANGE = (1024, 65535)
MIN_RETURN_PORTS = 1024


def is_return_range(low: int, high: int) -> bool:
    return RETURN_RANGE[0] <= low and high <= RETURN_RANGE[1] and high - low + 1 >= MIN_RETURN_PORTS


# Route targets by the key that names them; all but the gateway endpoint can carry traffic out.
ROUTE_TARGETS = {
    "natGatewayId": "NAT gateway", "egressOnlyGatewayId": "egress-only internet gateway",
    "networkInterfaceId": "network interface", "instanceId": "instance", "transitGatewayId": "transit gateway",
    "vpcPeeringConnectionId": "VPC peering connection", "carrierGatewayId": "carrier gateway",
    "localGatewayId": "local gateway", "coreNetworkArn": "Cloud WAN core network", "vpcEndpointId": "VPC endpoint",
}
TO_INTERNET = ("internet gateway", "NAT gateway", "egress-only internet gateway")


def policy_digest(zones: ZonesPolicy) -> str:
    """What the stack tags its VPC with, so the pack can tell it enforces the same policy."""
    data = json.dumps(zones.as_data(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()


@dataclass(frozen=True)
class Peer:
    """Where an address range lies: a zone of the policy, the internet, the endpoint segment, the
    whole VPC (the endpoints admit it), or nowhere decidable (`None` zone with a reason)."""

    zone: str | None
    reason: str = ""

    def __str__(self) -> str:
        return self.zone or self.reason


def _ports(props: Any, proto_key: str) -> tuple[str, int, int] | None:
    """(protocol, from, to) a rule opens; None when not decidable. All protocols -> ('-1', 0, 65535)."""
    proto = peek(props, proto_key)
    if proto is UNKNOWN or proto is None:
        return None
    proto = protocol_name(proto)
    if proto == "-1":
        return ("-1", 0, 65535)
    low, high = number(peek(props, "fromPort")), number(peek(props, "toPort"))
    if low is None and high is None:
        return (proto, 0, 65535)
    return (proto, low if low is not None else high, high if high is not None else low)


class ZoneMap:
    """The zones policy plus what the plan says about the platform segment and the VPC."""

    def __init__(self, zones: ZonesPolicy, graph: Graph) -> None:
        self.zones = zones
        self.graph = graph
        self.networks: list[tuple[Any, str]] = []  # (network, zone) for zone and site CIDRs
        for zone in zones.zones:
            self.networks.extend((n, zone) for n in zones.networks_of(zone))
        self.platform = self._segment(PLATFORM)
        self.transit = self._segment(TRANSIT)
        self.vpcs = [n for v in graph.of(VPC) if (n := network(peek(v.props, "cidrBlock"))) is not None]

    def _segment(self, tag: str) -> list[Any]:
        """A segment outside every zone, by its subnets' tag and addresses. Its per-AZ subnets
        together cover its CIDR: collapse them before comparing."""
        return list(ipaddress.collapse_addresses(
            n for s in self.graph.of(SUBNET)
            if peek(peek(s.props, "tags") or {}, ZONE_TAG) == tag
            and (n := network(peek(s.props, "cidrBlock"))) is not None and n.version == 4
            and self.zone_of(n) is None))

    def site_of(self, net: Any) -> Any:
        return self.zones.site_of(net)

    def zone_of(self, net: Any) -> str | None:
        return self.zones.zone_of(net)

    def peer(self, cidr: Any) -> Peer:
        if cidr is UNKNOWN:
            return Peer(None, "an address unknown at preview")
        if str(cidr) in WORLD:
            return Peer(INTERNET)
        net = network(cidr)
        if net is None:
            return Peer(None, f"{cidr!r}, not an address range")
        zone = self.zone_of(net)
        if zone:
            return Peer(zone)
        if any(net.version == p.version and net.subnet_of(p) for p in self.platform):
            return Peer(PLATFORM)
        if any(net.version == p.version and net.subnet_of(p) for p in self.transit):
            return Peer(TRANSIT)
        if net in self.vpcs:
            return Peer("vpc")
        spans = sorted({z for n, z in self.networks if net.version == n.version and net.overlaps(n)})
        if spans:
            return Peer(None, f"{cidr}, which spans zones {', '.join(spans)}")
        return Peer(None, f"{cidr}, which is in no zone or field site of the zones policy")

    def conduit(self, src: str, dst: str, proto: str, port: int) -> bool:
        return any(c.from_ == src and c.to == dst and c.protocol == proto and c.port == port
                   for c in self.zones.conduits)

    def any_conduit(self, src: str, dst: str, proto: str) -> bool:
        return any(c.from_ == src and c.to == dst and c.protocol == proto for c in self.zones.conduits)

    def sg_zone(self, rule: Any, key: str = "securityGroupId") -> str | None | Any:
        """The zone a rule's security group declares (UNKNOWN: the group cannot be followed)."""
        group = self.graph.ref(rule, key, SECURITY_GROUP)
        if group is UNKNOWN:
            return UNKNOWN
        if group is None:
            return None
        zone = peek(peek(group.props, "tags") or {}, ZONE_TAG)
        return zone if isinstance(zone, str) else None


def flow_allowed(zmap: ZoneMap, zone: str, peer: str, inbound: bool, spec: tuple[str, int, int],
                 stateless: bool) -> bool:
    """Is a rule on `zone` that lets `spec` in from (or out to) `peer` declared by the policy?"""
    proto, low, high = spec
    if proto not in ("tcp", "udp"):
        return False
    src, dst = (peer, zone) if inbound else (zone, peer)
    if low == high and zmap.conduit(src, dst, proto, low):
        return True
    # the interface endpoints: every zone reaches them on tcp/443 (Session Manager, AWS APIs)
    if spec == HTTPS and (dst == PLATFORM and (src in zmap.zones.zones or src == "vpc")):
        return True
    if stateless and is_return_range(low, high):
        # return traffic of a connection the other side opened: the reverse conduit exists
        if zmap.any_conduit(dst, src, proto):
            return True
        if proto == "tcp" and PLATFORM in (src, dst) and (src == "vpc" or dst == "vpc" or
                                                          {src, dst} - {PLATFORM} <= set(zmap.zones.zones)):
            return True
    return False


def _spec_text(spec: tuple[str, int, int]) -> str:
    proto, low, high = spec
    return "all traffic" if proto == "-1" else f"{proto}/{low}" + (f"-{high}" if high != low else "")


def _missing(zone: str, peer: str, inbound: bool, spec: tuple[str, int, int]) -> str:
    src, dst = (peer, zone) if inbound else (zone, peer)
    return f"no conduit {src}->{dst}:{_spec_text(spec)} in the zones policy"


# --- the rules -------------------------------------------------------------------------------


def _zone_rule(name: str, *, description: str) -> Callable:
    """Declare the decorated `check(zmap, report)` a CW-NET-13 rule built for one zones policy: it
    judges the stack through the ZoneMap of that policy and the stack's Graph."""

    def register(check: Callable[[ZoneMap, ReportViolation], None]) -> Callable:
        def build(zones: ZonesPolicy) -> Callable:
            def validate(args: StackValidationArgs, report: ReportViolation) -> None:
                check(ZoneMap(zones, Graph(args.resources)), report)

            return validate

        RULES.zoned(name, control="CW-NET-13", description=description)(build)
        return check

    return register


@RULES.zoned("cw-net-13-stack-built-from-zones-policy", control="CW-NET-13",
             description="CW-NET-13 (cityward): the VPC carries the digest of the zones policy the pack enforces, so "
                         "the stack and the pack read the same file.")
def _stack_built_from(zones: ZonesPolicy) -> Callable:
    digest = policy_digest(zones)

    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        for vpc in Graph(args.resources).of(VPC):
            tagged = peek(peek(vpc.props, "tags") or {}, ZONES_HASH_TAG)
            if tagged != digest:
                report(f"CW-NET-13: VPC {vpc.name} was built from another zones policy (tag {ZONES_HASH_TAG} "
                       f"{tagged!r}, the pack enforces {digest[:12]}...): plan with the zones file the stack names",
                       vpc.urn)

    return validate


@_zone_rule("cw-net-13-subnets-in-zones",
            description="CW-NET-13 (cityward; IEC 62443-3-3 SR 5.1): every subnet lies in one zone of the zones "
                        "policy by its address and says so, or is the interface-endpoint or the transit (Transit "
                        "Gateway attachment) segment.")
def _subnets_in_zones(zmap: ZoneMap, report: ReportViolation) -> None:
    graph = zmap.graph
    for subnet in graph.of(SUBNET):
        cidr = peek(subnet.props, "cidrBlock")
        tag = peek(peek(subnet.props, "tags") or {}, ZONE_TAG)
        peer = zmap.peer(cidr)
        if peer.zone in (PLATFORM, TRANSIT) and tag == peer.zone:
            continue
        if peer.zone is None or peer.zone in (INTERNET, "vpc", PLATFORM, TRANSIT):
            report(f"CW-NET-13: subnet {subnet.name} ({cidr}) is in no zone: {peer}", subnet.urn)
        elif tag != peer.zone:
            report(f"CW-NET-13: subnet {subnet.name} ({cidr}) lies in zone '{peer.zone}' but is tagged "
                   f"{ZONE_TAG}={tag!r}", subnet.urn)


def _sg_rule_entries(rule: Any) -> Iterator[tuple[bool, Any, str]]:
    """(inbound, peer value, peer key) of an aws.vpc rule or a legacy SecurityGroupRule."""
    p = rule.props
    if rule.resource_type in (SG_INGRESS, SG_EGRESS):
        inbound = rule.resource_type == SG_INGRESS
        for key in ("cidrIpv4", "cidrIpv6", "referencedSecurityGroupId", "prefixListId"):
            if has(p, key):
                yield inbound, peek(p, key), key
    else:
        inbound = peek(p, "type") == "ingress"
        for key in ("cidrBlocks", "ipv6CidrBlocks"):
            for cidr in items(peek(p, key)):
                yield inbound, cidr, "cidrIpv4"
        for key in ("sourceSecurityGroupId", "prefixListIds"):
            if has(p, key):
                yield inbound, peek(p, key), "referencedSecurityGroupId" if key == "sourceSecurityGroupId" else key


@_zone_rule("cw-net-13-sg-rules-from-conduits",
            description="CW-NET-13 (cityward; IEC 62443-3-3 SR 5.2; cf. FSBP EC2.18/EC2.19): every security-group "
                        "rule opens only a flow a conduit of the zones policy declares, judged by its addresses and "
                        "ports, not its tags.")
def _sg_rules_from_conduits(zmap: ZoneMap, report: ReportViolation) -> None:
    graph, zones = zmap.graph, zmap.zones
    known = set(zones.zones) | {PLATFORM}
    for group in graph.of(SECURITY_GROUP):
        zone = peek(peek(group.props, "tags") or {}, ZONE_TAG)
        if zone not in known:
            report(f"CW-NET-13: security group {group.name} names no zone of the zones policy "
                   f"({ZONE_TAG}={zone!r})", group.urn)
    for rule in graph.of(SG_INGRESS, SG_EGRESS, SG_RULE_LEGACY):
        zone = zmap.sg_zone(rule)
        if zone is UNKNOWN:
            report(f"CW-NET-13: rule {rule.name}: cannot decide at preview which security group it "
                   "belongs to", rule.urn)
            continue
        if zone not in known:
            report(f"CW-NET-13: rule {rule.name} sits on a security group outside the zones policy", rule.urn)
            continue
        spec = _ports(rule.props, "ipProtocol" if rule.resource_type != SG_RULE_LEGACY else "protocol")
        if spec is None:
            report(f"CW-NET-13: rule {rule.name}: cannot decide at preview which protocol it opens", rule.urn)
            continue
        for inbound, value, key in _sg_rule_entries(rule):
            if key == "referencedSecurityGroupId":
                ref = zmap.sg_zone(rule, "referencedSecurityGroupId" if rule.resource_type != SG_RULE_LEGACY
                                   else "sourceSecurityGroupId")
                peer = Peer(ref) if isinstance(ref, str) else Peer(None, "a security group outside the zones "
                                                                      "policy or unknown at preview")
            elif key.startswith("prefixList"):
                # an AWS service prefix list (S3 through the gateway endpoint): HTTPS out only
                peer = Peer(PLATFORM if not inbound else None, "a prefix list")
            else:
                peer = zmap.peer(value)
            if peer.zone is None:
                report(f"CW-NET-13: rule {rule.name} on zone '{zone}' opens {_spec_text(spec)} "
                       f"{'from' if inbound else 'to'} {peer}: no conduit can declare it", rule.urn)
            elif not flow_allowed(zmap, zone, peer.zone, inbound, spec, stateless=False):
                report(f"CW-NET-13: rule {rule.name} opens {_spec_text(spec)} {'from' if inbound else 'to'} "
                       f"zone '{peer.zone}' {'into' if inbound else 'out of'} zone '{zone}': "
                       f"{_missing(zone, peer.zone, inbound, spec)}", rule.urn)


def _nacl_zones(graph: Graph, zmap: ZoneMap, nacl: Any) -> set[str] | Any:
    """Zones of the subnets a NACL serves (by their CIDRs); UNKNOWN if an association cannot be followed."""
    subnets = [graph.ref(a, "subnetId", SUBNET) for a in graph.referencing(nacl, "networkAclId",
                                                                           NETWORK_ACL_ASSOCIATION)]
    subnets += [s for s in graph.of(SUBNET) if peek(s.props, "id") in items(peek(nacl.props, "subnetIds"))]
    if any(s is UNKNOWN for s in subnets):
        return UNKNOWN
    zones = {zmap.peer(peek(s.props, "cidrBlock")).zone for s in subnets if s is not None}
    if not zones:  # serving no subnet: judge it as the zone it declares
        zones = {peek(peek(nacl.props, "tags") or {}, ZONE_TAG)}
    return zones


def _nacl_entries(graph: Graph, nacl_or_rule: Any) -> Iterator[tuple[Any, bool, Any, Any]]:
    """(nacl, inbound, entry props, cidr) of every allow entry, inline or as NetworkAclRule."""
    p = nacl_or_rule.props
    if nacl_or_rule.resource_type == NETWORK_ACL_RULE:
        if str(peek(p, "ruleAction", "")).lower() == "allow":
            nacl = graph.ref(nacl_or_rule, "networkAclId", NETWORK_ACL)
            for key in ("cidrBlock", "ipv6CidrBlock"):
                if has(p, key):
                    yield nacl, not peek(p, "egress"), p, peek(p, key)
        return
    for direction, inbound in (("ingress", True), ("egress", False)):
        for entry in items(peek(p, direction)):
            if entry is UNKNOWN or str(peek(entry, "action", "")).lower() == "allow":
                for key in ("cidrBlock", "ipv6CidrBlock"):
                    if entry is UNKNOWN or has(entry, key):
                        yield nacl_or_rule, inbound, entry, UNKNOWN if entry is UNKNOWN else peek(entry, key)


@_zone_rule("cw-net-13-nacl-entries-from-conduits",
            description="CW-NET-13 (cityward; IEC 62443-3-3 SR 5.2; cf. FSBP EC2.21): every network ACL allow entry "
                        "is a conduit of the zones policy or its return traffic, for the zones of the subnets the "
                        "NACL serves.")
def _nacl_entries_from_conduits(zmap: ZoneMap, report: ReportViolation) -> None:
    graph, zones = zmap.graph, zmap.zones
    for resource in graph.of(NETWORK_ACL, NETWORK_ACL_RULE):
        for nacl, inbound, entry, cidr in _nacl_entries(graph, resource):
            served = UNKNOWN if nacl is UNKNOWN else (_nacl_zones(graph, zmap, nacl) if nacl else set())
            if served is UNKNOWN or entry is UNKNOWN:
                report(f"CW-NET-13: network ACL entry of {resource.name}: cannot decide at preview which "
                       "subnets it serves or what it allows", resource.urn)
                continue
            spec = _ports(entry, "protocol")
            peer = zmap.peer(cidr)
            for zone in sorted(z for z in served if z is not None) or ["(no zone)"]:
                if zone == TRANSIT and spec is not None and peer.zone is not None:
                    problem = _transit_entry_problem(zmap, cidr, inbound, spec)
                    if problem:
                        report(f"CW-NET-13: network ACL {resource.name} ({TRANSIT}) allows {_spec_text(spec)} "
                               f"{'in from' if inbound else 'out to'} {problem}", resource.urn)
                elif spec is None or peer.zone is None or zone not in set(zones.zones) | {PLATFORM}:
                    report(f"CW-NET-13: network ACL {resource.name} ({zone}) allows "
                           f"{_spec_text(spec) if spec else 'an unknown protocol'} "
                           f"{'from' if inbound else 'to'} {peer}: no conduit can declare it", resource.urn)
                elif not flow_allowed(zmap, zone, peer.zone, inbound, spec, stateless=True):
                    report(f"CW-NET-13: network ACL {resource.name} allows {_spec_text(spec)} "
                           f"{'in from' if inbound else 'out to'} zone '{peer.zone}' ({cidr}) on zone '{zone}': "
                           f"{_missing(zone, peer.zone, inbound, spec)}", resource.urn)


def _transit_entry_problem(zmap: ZoneMap, cidr: Any, inbound: bool, spec: tuple[str, int, int]) -> str | None:
    """Why an entry of the transit segment's NACL is not a conduit flow between a field site and a
    zone (or its return traffic); None when it is one. A flow crossing the attachment enters the
    segment from its source and leaves toward its destination on the conduit's port; its replies
    enter from the destination and leave toward the source on the return range."""
    proto, low, high = spec
    net = network(cidr)
    site = zmap.site_of(net) if net is not None else None
    zone = None if site is not None or net is None else zmap.zone_of(net)
    if site is not None:
        end, where = site.zone, f"field site '{site.name}' ({cidr})"
    elif zone is not None:
        end, where = zone, f"zone '{zone}' ({cidr})"
    else:
        return f"{zmap.peer(cidr)}: only field sites and zones meet across the Transit Gateway attachment"
    with_sites = {s.zone for s in zmap.zones.sites.values()}
    reply = proto in ("tcp", "udp") and is_return_range(low, high)
    # (is `end` the flow's source?, the port the conduit must name; None: any, for a reply)
    readings = ([(inbound, low)] if low == high else []) + ([(not inbound, None)] if reply else [])
    for is_source, port in readings:
        for c in zmap.zones.conduits:
            if INTERNET in (c.from_, c.to) or c.protocol != proto or (port is not None and c.port != port):
                continue
            here, there = (c.from_, c.to) if is_source else (c.to, c.from_)
            # a site meets any zone its zone has a conduit with; a zone meets only zones with sites
            if here == end and (site is not None or there in with_sites):
                return None
    other = "another zone" if site is not None else "a zone with field sites"
    is_source = inbound if low == high or not reply else not inbound
    src, dst = (f"'{end}'", other) if is_source else (other, f"'{end}'")
    what = "the return range" if reply and low != high else _spec_text(spec)
    return f"{where}: no conduit from {src} to {dst} on {what} crosses the Transit Gateway attachment"


def _route_target(graph: Graph, holder: Any, route: Any, key_prefix: str = "") -> str | Any:
    """What a route sends traffic to ('local', 'internet gateway', ...); UNKNOWN if undecidable."""
    gateway = peek(route, "gatewayId")
    if gateway == "local":
        return "local"
    if gateway is not None:
        if isinstance(gateway, str) and gateway.startswith("igw-"):
            return "internet gateway"
        if isinstance(gateway, str) and gateway.startswith("vgw-"):
            return "virtual private gateway"
        # inline routes depend on the whole 'routes' property; a Route resource on 'gatewayId'
        target = (graph.ref(holder, "gatewayId", INTERNET_GATEWAY, VPN_GATEWAY) if not key_prefix
                  else graph.dependency(holder, key_prefix, INTERNET_GATEWAY, VPN_GATEWAY))
        if target is UNKNOWN or target is None:
            return UNKNOWN if gateway is UNKNOWN else "gateway outside this stack"
        return "internet gateway" if target.resource_type == INTERNET_GATEWAY else "virtual private gateway"
    for key, label in ROUTE_TARGETS.items():
        if has(route, key):
            return label
    return "local"


def _route_tables_zones(graph: Graph, zmap: ZoneMap, table: Any) -> set[str] | Any:
    subnets = [graph.ref(a, "subnetId", SUBNET)
               for a in graph.referencing(table, "routeTableId", ROUTE_TABLE_ASSOCIATION)]
    if any(s is UNKNOWN for s in subnets):
        return UNKNOWN
    zones = {zmap.peer(peek(s.props, "cidrBlock")).zone for s in subnets if s is not None}
    return zones or {peek(peek(table.props, "tags") or {}, ZONE_TAG)}


@_zone_rule("cw-net-13-routes-from-conduits",
            description="CW-NET-13 (cityward; IEC 62443-3-3 SR 5.2; CISA CPG 2.X): OT route tables never lead "
                        "toward the internet (internet, egress-only or NAT gateway, network interface, instance, "
                        "Transit Gateway, peering) except to declared field sites of a conduit; internet routes only "
                        "where a conduit to the internet exists.")
def _routes_from_conduits(zmap: ZoneMap, report: ReportViolation) -> None:
    graph = zmap.graph
    routes: list[tuple[Any, Any, Any, str]] = []  # (table, holder, route props, key of the target)
    for table in graph.of(ROUTE_TABLE, DEFAULT_ROUTE_TABLE):
        routes.extend((table, table, r, "routes") for r in items(peek(table.props, "routes")))
    for route in graph.of(ROUTE):
        routes.append((graph.ref(route, "routeTableId", ROUTE_TABLE, DEFAULT_ROUTE_TABLE), route, route.props, ""))
    for table, holder, route, key in routes:
        if table is UNKNOWN or route is UNKNOWN:
            report(f"CW-NET-13: route {holder.name}: cannot decide at preview which route table it is in "
                   "or where it leads", holder.urn)
            continue
        if table is None:
            continue  # a table outside this stack: CW-NET-02 judges the subnets it serves
        served = _route_tables_zones(graph, zmap, table)
        target = _route_target(graph, holder, route, key)
        dest = next((peek(route, k) for k in ("cidrBlock", "destinationCidrBlock", "ipv6CidrBlock",
                                              "destinationIpv6CidrBlock", "destinationPrefixListId")
                     if has(route, k)), None)
        if served is UNKNOWN or target is UNKNOWN:
            report(f"CW-NET-13: route to {dest} in {table.name}: cannot decide at preview which subnets the "
                   "table serves or what the route targets", holder.urn)
            continue
        if TRANSIT in served and target != "local":
            report(f"CW-NET-13: route table {table.name} (the {TRANSIT} segment) sends {dest} to a {target}: "
                   "the Transit Gateway attachment's subnets route only inside the VPC (local)", holder.urn)
        if target == "local" or target == "VPC endpoint":
            continue  # inside the VPC, or an S3/DynamoDB gateway endpoint (AWS's network)
        for zone in (sorted(z for z in served if z is not None and z != TRANSIT)
                     or ([] if TRANSIT in served else ["(no zone)"])):
            problem = _route_problem(zmap, zone, dest, target)
            if problem:
                report(f"CW-NET-13: route table {table.name} (zone '{zone}') sends {dest} to a {target}: "
                       f"{problem}", holder.urn)


def _route_problem(zmap: ZoneMap, zone: str, dest: Any, target: str) -> str | None:
    if zone not in zmap.zones.zones:
        return "the table serves no zone of the zones policy"
    if target in TO_INTERNET:
        if zmap.zones.zones[zone].is_ot:
            return "OT zones never route toward the internet"
        if not any(c.from_ == zone and c.to == INTERNET for c in zmap.zones.conduits):
            return f"no conduit {zone}->internet in the zones policy"
        return None
    if target == "transit gateway":
        net = network(dest)
        sites = [s for s in zmap.zones.sites.values() if net is not None and net.version == 4 and net.subnet_of(s.cidr)]
        if not sites:
            return f"{dest} is no field site of the zones policy"
        site = sites[0]
        if site.zone != zone and site.zone not in zmap.zones.peers_of(zone):
            return f"no conduit between zone '{zone}' and zone '{site.zone}' of site '{site.name}'"
        return None
    if zmap.zones.zones[zone].is_ot:
        return f"OT zones route only to declared field sites; a route through a {target} can reach the internet"
    return "no conduit declares a route through it"


@RULES.stack("cw-net-13-zones-policy-loaded", control="CW-NET-13", scope=Scope.NO_ZONES,
             description="CW-NET-13 (cityward): the pack enforces the city's zones policy, so it must have one.")
def _no_policy(args: StackValidationArgs, report: ReportViolation) -> None:
    report("CW-NET-13: the policy pack has no zones policy: set CITYWARD_ZONES_FILE to the file the stack's "
           "zonesFile names (cityward cloud plan does this itself)")
