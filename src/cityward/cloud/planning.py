"""The network plan as plain data: conduits -> security-group rules, NACL entries and routes.

Pure (no Pulumi): cityward.cloud.network declares resources from these specs, and tests prove the
plan without running a program. Everything a resource is named or numbered by is derived from
what it *is* (the conduit, the network, the entry), never from a position in a list, so adding a
conduit or a site adds resources and replaces none.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from cityward.errors import CitywardError
from cityward.zones import INTERNET, Conduit, ZonesPolicy

ENDPOINT_SEGMENT = "endpoints"
# The Transit Gateway's VPC attachment gets a small subnet per AZ of its own (AWS's guidance): its
# NACL admits exactly the conduit flows between field sites and zones, its table routes only locally.
TRANSIT_SEGMENT = "transit"
# Rules per NACL direction. AWS's default quota is 20; a city with field sites needs more (the
# example's ot-operations zone needs 27 outbound: its five conduits to `field` reach three
# networks each). Service Quotas lets an account raise "Rules per network ACL" to 40, its maximum:
# the plan allows 40 and the README asks the city to raise the quota before the first `pulumi up`.
NACL_RULES_PER_DIRECTION = 40
# Rule numbers are spread over 100..32000 by a hash of the entry (AWS accepts 1..32766).
RULE_NUMBER_MIN, RULE_NUMBER_MAX = 100, 32000
INTERNET_ROUTE = "0.0.0.0/0"


@dataclass(frozen=True)
class PlanConfig:
    """What the plan needs of the stack config."""

    name: str
    vpc_cidr: ipaddress.IPv4Network
    endpoint_cidr: ipaddress.IPv4Network
    ephemeral_ports: tuple[int, int] = (32768, 65535)
    source: str | Path = "<zones>"  # the zones file, named in errors
    transit_cidr: ipaddress.IPv4Network | None = None  # the transit segment, when there are field sites


# --- security-group rules ------------------------------------------------------------------------


@dataclass(frozen=True)
class SgRuleSpec:
    """One aws.vpc.SecurityGroupIngressRule/EgressRule on `zone`'s security group.

    `peer` is the other end (a zone, `internet` or the endpoints segment); `site` the peer's field
    site when the rule is for one of its networks; `cidr` None means "the peer's security group"."""

    name: str
    zone: str
    egress: bool
    protocol: str
    port: int
    peer: str
    cidr: str | None
    conduit: str  # the conduit label, tagged cityward:conduit
    description: str
    site: str | None = None


def rule_description(c: Conduit, site: str | None = None) -> str:
    # SG rule descriptions accept a limited character set and at most 255 characters.
    text = f"{c.service}: {c.purpose}" + (f" (site {site})" if site else "")
    return re.sub(r"[^a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]", " ", text)[:255]


def _peer_networks(zones: ZonesPolicy, zone: str) -> list[tuple[str | None, str]]:
    """(site or None, CIDR) of every network of `zone` (the internet: 0.0.0.0/0)."""
    return [(None, str(zones.cidr_of(zone))), *((s.name, str(s.cidr)) for s in zones.sites_of(zone))]


def sg_rules(zones: ZonesPolicy, config: PlanConfig) -> list[SgRuleSpec]:
    """Per conduit from A to B: on B's SG one ingress per network of A, on A's SG one egress per
    network of B; then each zone's HTTPS egress to the endpoints' security group."""
    n = config.name
    specs: list[SgRuleSpec] = []
    for c in zones.conduits:
        suffix = f"{c.protocol}{c.port}"
        if c.to != INTERNET:
            for site, cidr in _peer_networks(zones, c.from_):
                peer = f"{c.from_}@{site}" if site else c.from_
                specs.append(SgRuleSpec(f"{n}-{c.to}-in-{peer}-{suffix}", c.to, False, c.protocol, c.port,
                                        c.from_, cidr, c.label, rule_description(c, site), site))
        if c.from_ != INTERNET:
            for site, cidr in _peer_networks(zones, c.to):
                peer = f"{c.to}@{site}" if site else c.to
                specs.append(SgRuleSpec(f"{n}-{c.from_}-out-{peer}-{suffix}", c.from_, True, c.protocol, c.port,
                                        c.to, cidr, c.label, rule_description(c, site), site))
    for zone in zones.zones:
        specs.append(SgRuleSpec(
            f"{n}-{zone}-out-{ENDPOINT_SEGMENT}-tcp443", zone, True, "tcp", 443, ENDPOINT_SEGMENT, None,
            f"{zone}->{ENDPOINT_SEGMENT}:tcp/443",
            "Session Manager agent and AWS APIs through the interface endpoints"))
    return specs


# --- NACL entries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AclRule:
    """One stateless NACL entry (always allow: the NACL denies everything else by default)."""

    egress: bool
    protocol: str
    cidr: str
    from_port: int
    to_port: int

    @property
    def identity(self) -> str:
        direction = "out" if self.egress else "in"
        return f"{direction}/{self.protocol}/{self.cidr}/{self.from_port}-{self.to_port}"


@dataclass(frozen=True)
class AclEntry:
    rule: AclRule
    rule_no: int


def nacl_rules(zones: ZonesPolicy, zone: str, config: PlanConfig) -> list[AclRule]:
    """Stateless rules for one zone: each conduit's networks both ways plus return traffic, and
    HTTPS to the endpoints. Raises CitywardError when a direction exceeds the quota."""
    low, high = config.ephemeral_ports
    rules: list[AclRule] = []
    for c in zones.conduits_to(zone):
        for _, peer in _peer_networks(zones, c.from_):
            rules.append(AclRule(False, c.protocol, peer, c.port, c.port))
            rules.append(AclRule(True, c.protocol, peer, low, high))
    for c in zones.conduits_from(zone):
        for _, peer in _peer_networks(zones, c.to):
            rules.append(AclRule(True, c.protocol, peer, c.port, c.port))
            rules.append(AclRule(False, c.protocol, peer, low, high))
    # Session Manager and AWS APIs through the interface endpoints.
    endpoints = str(config.endpoint_cidr)
    rules.append(AclRule(True, "tcp", endpoints, 443, 443))
    rules.append(AclRule(False, "tcp", endpoints, low, high))
    return _within_quota(rules, f"zone '{zone}'", config)


def _within_quota(rules: list[AclRule], what: str, config: PlanConfig) -> list[AclRule]:
    unique = list(dict.fromkeys(rules))
    for egress in (False, True):
        count = sum(1 for r in unique if r.egress == egress)
        if count > NACL_RULES_PER_DIRECTION:
            raise CitywardError(
                f"{config.source}: {what}: its conduits need {count} "
                f"{'outbound' if egress else 'inbound'} NACL rules, over AWS's quota of "
                f"{NACL_RULES_PER_DIRECTION}"
            )
    return unique


@dataclass(frozen=True)
class SiteFlow:
    """One flow that crosses the Transit Gateway attachment: a conduit between a field site's zone
    and another zone, for one site network and the other zone's CIDR (`source` opens it)."""

    source: str
    destination: str
    protocol: str
    port: int
    conduit: str  # the conduit's label


def site_flows(zones: ZonesPolicy) -> list[SiteFlow]:
    """Every flow between a field site and a zone that a conduit declares, either direction: a
    conduit F->X opens site->X for each site of F, a conduit X->F opens X->site. Sites never
    reach each other through the VPC (the site route tables hold only zone CIDRs)."""
    flows: list[SiteFlow] = []
    for c in zones.conduits:
        if INTERNET in (c.from_, c.to):
            continue
        for site in zones.sites_of(c.from_):
            flows.append(SiteFlow(str(site.cidr), str(zones.cidr_of(c.to)), c.protocol, c.port, c.label))
        for site in zones.sites_of(c.to):
            flows.append(SiteFlow(str(zones.cidr_of(c.from_)), str(site.cidr), c.protocol, c.port, c.label))
    return flows


def transit_nacl_rules(zones: ZonesPolicy, config: PlanConfig) -> list[AclRule]:
    """The transit segment's stateless rules. A flow crossing the attachment enters the segment
    from its source and leaves toward its destination, so each site flow needs: in from the
    source and out to the destination on the conduit's port, and the replies: in from the
    destination and out to the source on the return range. Nothing else (no HTTPS to the
    endpoints: nothing runs in these subnets but the attachment's interfaces)."""
    low, high = config.ephemeral_ports
    rules: list[AclRule] = []
    for f in site_flows(zones):
        rules.append(AclRule(False, f.protocol, f.source, f.port, f.port))
        rules.append(AclRule(True, f.protocol, f.destination, f.port, f.port))
        rules.append(AclRule(False, f.protocol, f.destination, low, high))
        rules.append(AclRule(True, f.protocol, f.source, low, high))
    return _within_quota(rules, f"the {TRANSIT_SEGMENT} segment", config)


def endpoint_nacl_rules(config: PlanConfig) -> list[AclRule]:
    """The endpoints segment: HTTPS in from the VPC, its return traffic out."""
    low, high = config.ephemeral_ports
    vpc = str(config.vpc_cidr)
    return [AclRule(False, "tcp", vpc, 443, 443), AclRule(True, "tcp", vpc, low, high)]


def _hashed_number(identity: str, attempt: int) -> int:
    digest = hashlib.sha256(f"{identity}#{attempt}".encode()).digest()
    return RULE_NUMBER_MIN + int.from_bytes(digest[:8], "big") % (RULE_NUMBER_MAX - RULE_NUMBER_MIN + 1)


def number_rules(rules: list[AclRule]) -> list[AclEntry]:
    """Each rule numbered from its identity: the same entry keeps its number whatever else the NACL
    holds. Every entry allows, so the numbers order nothing that matters. On a collision (odds
    about 1 in 160 for a direction of 20 entries, 1 in 40 at 40) the entry whose identity sorts
    first keeps the number and the other rehashes: only such a pair can swap numbers when a
    conduit is added, and then the NACL is still updated in place (its entries are inline)."""
    taken: dict[tuple[bool, int], AclRule] = {}
    numbered: dict[AclRule, int] = {}
    for rule in sorted(rules, key=lambda r: r.identity):
        attempt = 0
        while (rule.egress, number := _hashed_number(rule.identity, attempt)) in taken:
            attempt += 1
        taken[(rule.egress, number)] = rule
        numbered[rule] = number
    return [AclEntry(rule, numbered[rule]) for rule in rules]


def nacl_entries(zones: ZonesPolicy, zone: str, config: PlanConfig) -> list[AclEntry]:
    """A zone's (or the endpoints or transit segment's) numbered NACL entries."""
    if zone == ENDPOINT_SEGMENT:
        rules = endpoint_nacl_rules(config)
    elif zone == TRANSIT_SEGMENT:
        rules = transit_nacl_rules(zones, config)
    else:
        rules = nacl_rules(zones, zone, config)
    return number_rules(rules)


# --- routes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteSpec:
    """One route of a zone's table; `target` is "internet-gateway" or "transit-gateway"."""

    destination: str
    target: str
    reason: str  # the conduit or site that needs it, for tags and messages


def routes(zones: ZonesPolicy, zone: str) -> list[RouteSpec]:
    """A zone's routes besides `local`: the internet for an internet-facing zone with a conduit to
    it, and each field site whose zone is this zone or one of its peers, through the transit
    gateway. Nothing else."""
    found: list[RouteSpec] = []
    z = zones.zones.get(zone)
    if z is not None and z.internet:
        # either direction: the replies to an inbound conduit leave through the gateway too
        facing = [c for c in zones.conduits if INTERNET in (c.from_, c.to) and zone in (c.from_, c.to)]
        if facing:
            found.append(RouteSpec(INTERNET_ROUTE, "internet-gateway", facing[0].label))
    reach = {zone, *zones.peers_of(zone)}
    for site in zones.sites.values():
        if site.zone in reach:
            found.append(RouteSpec(str(site.cidr), "transit-gateway", f"site {site.name} ({site.zone})"))
    return found


def split_per_az(cidr: ipaddress.IPv4Network, count: int) -> list[ipaddress.IPv4Network]:
    """The first `count` equal subnets of `cidr`, one per availability zone."""
    prefix = cidr.prefixlen + (count - 1).bit_length()
    if prefix > 28:  # AWS's smallest subnet
        raise ValueError(f"{cidr} is too small for {count} subnets of at least /28")
    return list(cidr.subnets(new_prefix=prefix))[:count]
