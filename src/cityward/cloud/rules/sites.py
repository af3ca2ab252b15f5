"""Field-site connectivity (CW-NET-16): field sites reach the city's zones over site-to-site VPN on
a Transit Gateway whose route tables admit only the conduits of the zones policy.

`RULES.policies(zones)` builds the rules for the zones policy the stack used. They are stack rules: they
join customer gateways, VPN connections, TGW route tables, their associations and routes through
`graph.Graph`, by id once ids are known and by the engine's property dependencies on a first
preview. A site's route table is recognised by following its association to the VPN attachment,
the VPN connection, its customer gateway and that gateway's address, which names the site in the
policy. What a rule cannot follow is a violation ("cannot decide at preview: ..."): it fails closed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from ansible_collections.cityward.hardening.plugins.plugin_utils.zones import Site
from pulumi_policy import ReportViolation, StackValidationArgs

from cityward.cloud.graph import UNKNOWN, Graph, items, peek
from cityward.cloud.rules.registry import RuleSet
from cityward.cloud.types import (
    CUSTOMER_GATEWAY,
    SUBNET,
    TGW,
    TGW_ASSOCIATION,
    TGW_DEFAULT_ASSOCIATION,
    TGW_DEFAULT_PROPAGATION,
    TGW_PROPAGATION,
    TGW_ROUTE,
    TGW_ROUTE_TABLE,
    VPC,
    VPC_ATTACHMENT,
    VPN,
    ZONE_TAG,
)
from cityward.cloud.values import cannot_decide, network, number
from cityward.zones import ZonesPolicy

# What a tunnel may negotiate. Absent lists mean AWS's defaults, which include IKEv1, AES128, SHA1
# and the MODP groups 2, 5, 22-24: each list must be set, and set to these only.
IKE_VERSIONS = {"ikev2"}
STRONG_ENCRYPTION = {"AES256", "AES256-GCM-16"}
STRONG_INTEGRITY = {"SHA2-256", "SHA2-384", "SHA2-512"}
STRONG_DH_GROUPS = {15, 16, 17, 18, 19, 20, 21}  # MODP >= 3072 bits and the NIST elliptic curves
SEE = "CW-NET-16 (cityward: field sites only through conduits)"  # how every description starts

RULES = RuleSet()


class _Sites:
    """The stack's site connectivity, joined: gateway -> site, VPN -> site, attachment -> owner."""

    def __init__(self, zones: ZonesPolicy, args: StackValidationArgs) -> None:
        self.zones = zones
        self.graph = Graph(args.resources)
        self.by_address = {str(s.customer_gateway.address): s for s in zones.sites.values()}

    def site_of_gateway(self, gateway: Any) -> Site | None:
        address = peek(gateway.props, "ipAddress")
        return UNKNOWN if address is UNKNOWN else self.by_address.get(address)

    def gateway_of(self, vpn: Any) -> Any:
        return self.graph.ref(vpn, "customerGatewayId", CUSTOMER_GATEWAY)

    def site_of_vpn(self, vpn: Any) -> Site | None:
        gateway = self.gateway_of(vpn)
        return gateway if gateway in (None, UNKNOWN) else self.site_of_gateway(gateway)

    def attachment(self, resource: Any, key: str) -> Any:
        """The VPN connection or VPC attachment whose TGW attachment `key` names; None when none of
        this stack; UNKNOWN when the id is unknown and the dependencies do not say."""
        value = peek(resource.props, key)
        if value is None:
            return None
        if value is UNKNOWN:
            return self.graph.dependency(resource, key, VPN, VPC_ATTACHMENT)
        for vpn in self.graph.of(VPN):
            if peek(vpn.props, "transitGatewayAttachmentId") == value:
                return vpn
        for attachment in self.graph.of(VPC_ATTACHMENT):
            if peek(attachment.props, "id") == value:
                return attachment
        return None

    def table_of(self, resource: Any) -> Any:
        return self.graph.ref(resource, "transitGatewayRouteTableId", TGW_ROUTE_TABLE)

    def tables(self) -> dict[str, tuple[Any, list[Any]]]:
        """Per route table URN: (the table, the owners of the attachments associated with it).
        Associations whose table or attachment cannot be followed are left out (another rule
        reports them)."""
        found: dict[str, tuple[Any, list[Any]]] = {t.urn: (t, []) for t in self.graph.of(TGW_ROUTE_TABLE)}
        for association in self.graph.of(TGW_ASSOCIATION):
            table, owner = self.table_of(association), self.attachment(association, "transitGatewayAttachmentId")
            if table not in (None, UNKNOWN) and owner not in (None, UNKNOWN):
                found[table.urn][1].append(owner)
        return found

    def routes_of(self, table: Any) -> list[Any]:
        return [r for r in self.graph.of(TGW_ROUTE) if self.table_of(r) is table]

    def zone_of_network(self, cidr: ipaddress.IPv4Network) -> tuple[str | None, Site | None]:
        """(zone, site) whose network contains `cidr`: a zone's CIDR gives (zone, None), a site's
        (its zone, the site); (None, None) when no single network of the policy contains it."""
        return self.zones.zone_of(cidr), self.zones.site_of(cidr)


def _site_rule(name: str, *, description: str, checkov: tuple[str, ...] = (),
               security_hub: tuple[str, ...] = (), cis: tuple[str, ...] = ()) -> Callable:
    """Declare the decorated `check(sites, report)` a CW-NET-16 rule built for one zones policy: it
    judges the stack's site connectivity joined for that policy (`_Sites`)."""

    def register(check: Callable[[_Sites, ReportViolation], None]) -> Callable:
        def build(zones: ZonesPolicy) -> Callable:
            def validate(args: StackValidationArgs, report: ReportViolation) -> None:
                check(_Sites(zones, args), report)

            return validate

        RULES.zoned(name, control="CW-NET-16", description=description, checkov=checkov,
                    security_hub=security_hub, cis=cis)(build)
        return check

    return register


# --- the rules -------------------------------------------------------------------------------


@_site_rule("cw-net-16-sites-have-vpn-on-tgw",
            description=f"{SEE}: every field site of the zones policy has a customer gateway with its address and a "
                        "VPN connection on this stack's Transit Gateway carrying only the site's network (AWS "
                        "guidance for OT: site-to-site VPN; no Checkov / FSBP / CIS AWS equivalent)")
def _sites_have_vpn(s: _Sites, report: ReportViolation) -> None:
    """Every site of the policy: a customer gateway with its address (type ipsec.1), a VPN connection
    on it that terminates on a TGW of this stack and carries only the site's network."""
    gateways = s.graph.of(CUSTOMER_GATEWAY)
    vpns = s.graph.of(VPN)
    for site in s.zones.sites.values():
        label = f"field site '{site.name}' (zone '{site.zone}')"
        mine = [g for g in gateways if s.site_of_gateway(g) is site]
        if not mine:
            unsure = any(s.site_of_gateway(g) is UNKNOWN for g in gateways)
            report(cannot_decide(f"{label}: a customer gateway's address is unknown") if unsure else
                   f"{label} has no customer gateway with its address {site.customer_gateway.address}")
            continue
        for gateway in mine:
            if peek(gateway.props, "type") != "ipsec.1":
                report(f"customer gateway {gateway.name} of {label}: type must be ipsec.1", gateway.urn)
            on_it = [v for v in vpns if s.gateway_of(v) is gateway]
            if not on_it:
                unsure = any(s.gateway_of(v) is UNKNOWN for v in vpns)
                report(cannot_decide(f"{label}: a VPN connection's customer gateway is unknown") if unsure else
                       f"customer gateway {gateway.name} of {label} has no VPN connection: the site has no "
                       "way in through a conduit", gateway.urn)
            for vpn in on_it:
                local = peek(vpn.props, "localIpv4NetworkCidr")
                cidr = None if local is UNKNOWN else network(local, version=4)
                if local is UNKNOWN:
                    report(cannot_decide(f"VPN connection {vpn.name}: its tunnels' site-side CIDR is unknown"), vpn.urn)
                elif cidr is None or not cidr.subnet_of(site.cidr):
                    report(f"VPN connection {vpn.name} of {label}: localIpv4NetworkCidr is {local or 'unset'} "
                           f"(0.0.0.0/0 when unset); the tunnels must carry only the site's {site.cidr}", vpn.urn)
    for vpn in vpns:
        gateway = s.gateway_of(vpn)
        if gateway is None:
            report(f"VPN connection {vpn.name}: its customer gateway is not declared in this stack", vpn.urn)
        elif gateway is UNKNOWN:
            report(cannot_decide(f"VPN connection {vpn.name}: which customer gateway it uses"), vpn.urn)
        if peek(vpn.props, "vpnGatewayId") is not None:
            report(f"VPN connection {vpn.name} terminates on a virtual private gateway: field sites connect "
                   "on the Transit Gateway, whose route tables follow the conduits", vpn.urn)
        tgw = s.graph.ref(vpn, "transitGatewayId", TGW)
        if tgw is None:
            report(f"VPN connection {vpn.name} is not on a Transit Gateway of this stack", vpn.urn)
        elif tgw is UNKNOWN:
            report(cannot_decide(f"VPN connection {vpn.name}: which Transit Gateway it terminates on"), vpn.urn)


@_site_rule("cw-net-16-customer-gateways-are-sites",
            description=f"{SEE}: every customer gateway is a field site of the zones policy, with the site's ASN")
def _gateways_are_sites(s: _Sites, report: ReportViolation) -> None:
    for gateway in s.graph.of(CUSTOMER_GATEWAY):
        site = s.site_of_gateway(gateway)
        if site is UNKNOWN:
            report(cannot_decide(f"customer gateway {gateway.name}: its address is unknown"), gateway.urn)
        elif site is None:
            address = peek(gateway.props, "ipAddress")
            report(f"customer gateway {gateway.name} ({address}) is no field site of the zones policy: "
                   "declare the site (zone, CIDR, address) before connecting it", gateway.urn)
        elif number(peek(gateway.props, "bgpAsn")) != site.customer_gateway.bgp_asn:
            report(f"customer gateway {gateway.name} of field site '{site.name}': bgpAsn "
                   f"{peek(gateway.props, 'bgpAsn')} is not the site's {site.customer_gateway.bgp_asn}", gateway.urn)


@_site_rule("cw-net-16-tgw-no-default-route-tables", checkov=("CKV_AWS_331",), security_hub=("EC2.23",),
            description=f"{SEE}: Transit Gateways have default route-table association and propagation disabled "
                        "and do not auto-accept shared attachments; VPC attachments use no default route table "
                        "(FSBP EC2.23, Checkov CKV_AWS_331, AWS Config ec2-transit-gateway-auto-vpc-attach-disabled)")
def _no_default_route_tables(s: _Sites, report: ReportViolation) -> None:
    for tgw in s.graph.of(TGW):
        for key in ("defaultRouteTableAssociation", "defaultRouteTablePropagation"):
            value = peek(tgw.props, key)
            if value is UNKNOWN:
                report(cannot_decide(f"Transit Gateway {tgw.name}: {key}"), tgw.urn)
            elif value != "disable":
                report(f"Transit Gateway {tgw.name}: {key} is {value or 'unset (enable)'}; it must be 'disable' "
                       "so that no attachment routes anywhere but through its declared route table", tgw.urn)
        accept = peek(tgw.props, "autoAcceptSharedAttachments")
        if accept is UNKNOWN or accept not in (None, "disable"):
            report(f"Transit Gateway {tgw.name}: autoAcceptSharedAttachments is {accept!r}; attachments "
                   "from other accounts must be accepted one by one", tgw.urn)
    for attachment in s.graph.of(VPC_ATTACHMENT):
        for key in ("transitGatewayDefaultRouteTableAssociation", "transitGatewayDefaultRouteTablePropagation"):
            value = peek(attachment.props, key)
            if value is UNKNOWN:
                report(cannot_decide(f"VPC attachment {attachment.name}: {key}"), attachment.urn)
            elif value is not False:
                shown = "unset (true)" if value is None else repr(value)
                report(f"VPC attachment {attachment.name}: {key} is {shown}; it must be false", attachment.urn)
    for resource in s.graph.of(TGW_DEFAULT_ASSOCIATION):
        report(f"{resource.name} sets a default association route table on the Transit Gateway: every new "
               "attachment would route through it", resource.urn)


TRANSIT_SEGMENT = "transit"  # the segment the stack gives the attachment (its NACL holds the site flows)


def _attachment_subnets(s: _Sites, attachment: Any) -> list[Any]:
    """The subnets an attachment uses: by id when known, else the subnets `subnetIds` was computed from."""
    ids = items(peek(attachment.props, "subnetIds"))
    if ids and all(i is not UNKNOWN for i in ids):
        return [s.graph.named(i, SUBNET) for i in ids]
    return s.graph.dependencies(attachment, "subnetIds", SUBNET) or [UNKNOWN]


@_site_rule("cw-net-16-vpc-attachment-in-transit-segment",
            description=f"{SEE}: each Transit Gateway has one VPC attachment, of this stack's VPC, in the transit "
                        "segment's subnets (whose NACL admits only the field sites' conduit flows)")
def _one_attachment_in_transit(s: _Sites, report: ReportViolation) -> None:
    vpcs = s.graph.of(VPC)
    for tgw in s.graph.of(TGW):
        attached = [a for a in s.graph.of(VPC_ATTACHMENT) if s.graph.ref(a, "transitGatewayId", TGW) in (tgw, UNKNOWN)]
        if len(attached) > 1:
            report(f"Transit Gateway {tgw.name} has {len(attached)} VPC attachments "
                   f"({', '.join(a.name for a in attached)}): field sites reach this stack's VPC alone", tgw.urn)
    for attachment in s.graph.of(VPC_ATTACHMENT):
        vpc = s.graph.ref(attachment, "vpcId", VPC)
        if vpc is UNKNOWN:
            report(cannot_decide(f"VPC attachment {attachment.name}: its VPC"), attachment.urn)
        elif vpc not in vpcs:
            report(f"VPC attachment {attachment.name} attaches a VPC outside this stack", attachment.urn)
        for subnet in _attachment_subnets(s, attachment):
            if subnet is UNKNOWN:
                report(cannot_decide(f"VPC attachment {attachment.name}: its subnets"), attachment.urn)
                continue
            zone = None if subnet is None else peek(peek(subnet.props, "tags") or {}, ZONE_TAG)
            if zone != TRANSIT_SEGMENT:
                where = "a subnet outside this stack" if subnet is None else f"subnet {subnet.name} ({zone})"
                report(f"VPC attachment {attachment.name} sits in {where}; it belongs in the transit segment, "
                       "whose NACL admits only the field sites' conduit flows", attachment.urn)


@_site_rule("cw-net-16-tgw-no-propagation",
            description=f"{SEE}: no TGW route propagation at all; only static routes generated from the conduits")
def _no_propagation(s: _Sites, report: ReportViolation) -> None:
    for resource in s.graph.of(TGW_PROPAGATION, TGW_DEFAULT_PROPAGATION):
        report(f"{resource.name} propagates an attachment's routes into a TGW route table: only the static "
               "routes generated from the conduits may exist", resource.urn)


@_site_rule("cw-net-16-tgw-route-tables-known",
            description=f"{SEE}: every TGW route and association names a route table and an attachment of this "
                        "stack, and a field site's route table serves that site's VPN alone")
def _route_tables_known(s: _Sites, report: ReportViolation) -> None:
    """Every association and route names a route table and an attachment of this stack; a site's
    route table serves that site's VPN alone (else the others would share its routes)."""
    for resource in s.graph.of(TGW_ASSOCIATION, TGW_ROUTE):
        what = "TGW route table association" if resource.resource_type == TGW_ASSOCIATION else "TGW route"
        table = s.table_of(resource)
        if table is UNKNOWN:
            report(cannot_decide(f"{what} {resource.name}: which route table it belongs to"), resource.urn)
        elif table is None:
            report(f"{what} {resource.name} is in a route table not declared in this stack", resource.urn)
        if resource.resource_type == TGW_ROUTE and peek(resource.props, "blackhole") is True:
            continue
        owner = s.attachment(resource, "transitGatewayAttachmentId")
        if owner is UNKNOWN:
            report(cannot_decide(f"{what} {resource.name}: which attachment it names"), resource.urn)
        elif owner is None:
            report(f"{what} {resource.name} names an attachment that is neither this stack's VPC attachment "
                   "nor a field site's VPN", resource.urn)
        elif owner.resource_type == VPN and resource.resource_type == TGW_ASSOCIATION:
            site = s.site_of_vpn(owner)
            if site is UNKNOWN:
                report(cannot_decide(f"{what} {resource.name}: which field site VPN {owner.name} serves"), resource.urn)
    for table, owners in s.tables().values():
        if len(owners) > 1 and any(o.resource_type == VPN for o in owners):
            names = ", ".join(sorted(o.name for o in owners))
            report(f"TGW route table {table.name} serves a field site's VPN and other attachments ({names}): "
                   "each site's VPN has a route table of its own", table.urn)


@_site_rule("cw-net-16-site-routes-follow-conduits",
            description=f"{SEE}: a field site's TGW routes reach only its own zone and the zones its zone has a "
                        "conduit with (zones through the VPC attachment, sites through their own VPN)")
def _site_routes_follow_conduits(s: _Sites, report: ReportViolation) -> None:
    for table, owners in s.tables().values():
        if len(owners) != 1 or owners[0].resource_type != VPN:
            continue
        site = s.site_of_vpn(owners[0])
        if site in (None, UNKNOWN):
            continue  # reported by the route-tables rule (unknown) or the customer-gateway rule (foreign)
        allowed = {site.zone, *s.zones.peers_of(site.zone)}
        for route in s.routes_of(table):
            _judge_site_route(s, route, site, allowed, report)


def _route_destination(s: _Sites, route: Any, label: str, report: ReportViolation) -> tuple | None:
    """(destination, zone, field site) a TGW route leads to; None for a blackhole route, or when
    the destination is unknown (reported: fail closed)."""
    if peek(route.props, "blackhole") is True:
        return None
    destination = peek(route.props, "destinationCidrBlock")
    if destination is UNKNOWN:
        report(cannot_decide(f"{label}: its destination"), route.urn)
        return None
    cidr = network(destination, version=4)
    return (destination, *((None, None) if cidr is None else s.zone_of_network(cidr)))


def _judge_site_route(s: _Sites, route: Any, site: Site, allowed: set[str], report: ReportViolation) -> None:
    label = f"TGW route {route.name} of field site '{site.name}' (zone '{site.zone}')"
    found = _route_destination(s, route, label, report)
    if found is None:
        return
    destination, zone, to_site = found
    if zone is None:
        report(f"{label} goes to {destination}, which is no single network of the zones policy", route.urn)
        return
    if zone not in allowed:
        report(f"{label} goes to {destination} in zone '{zone}': a VPN route to a zone without a conduit "
               f"(none between '{site.zone}' and '{zone}')", route.urn)
        return
    target = s.attachment(route, "transitGatewayAttachmentId")
    if target is UNKNOWN:
        report(cannot_decide(f"{label}: which attachment it sends {destination} to"), route.urn)
    elif to_site is None and (target is None or target.resource_type != VPC_ATTACHMENT):
        report(f"{label} sends zone '{zone}' ({destination}) elsewhere than to the VPC attachment", route.urn)
    elif to_site is not None and (target is None or target.resource_type != VPN
                                  or s.site_of_vpn(target) is not to_site):
        report(f"{label} sends field site '{to_site.name}' ({destination}) elsewhere than to that site's VPN",
               route.urn)


@_site_rule("cw-net-16-vpc-routes-to-declared-sites",
            description=f"{SEE}: the VPC attachment's TGW routes go only to declared field-site CIDRs, each through "
                        "that site's VPN attachment")
def _vpc_routes_to_sites(s: _Sites, report: ReportViolation) -> None:
    for table, owners in s.tables().values():
        if not owners or any(o.resource_type != VPC_ATTACHMENT for o in owners):
            continue
        for route in s.routes_of(table):
            label = f"TGW route {route.name} of the VPC attachment's route table"
            found = _route_destination(s, route, label, report)
            if found is None:
                continue
            destination, _, site = found
            if site is None:
                report(f"{label} goes to {destination}, which is no field site of the zones policy", route.urn)
                continue
            target = s.attachment(route, "transitGatewayAttachmentId")
            if target is UNKNOWN or (target is not None and target.resource_type == VPN
                                     and s.site_of_vpn(target) is UNKNOWN):
                report(cannot_decide(f"{label}: which VPN it sends {destination} to"), route.urn)
            elif target is None or target.resource_type != VPN or s.site_of_vpn(target) is not site:
                report(f"{label} sends field site '{site.name}' ({destination}) elsewhere than to that site's "
                       "VPN attachment", route.urn)


@_site_rule("cw-net-16-vpn-tunnels-ikev2-strong",
            description=f"{SEE}: VPN connections use static routes, and both tunnels IKEv2 only with AES-256, SHA-2 "
                        "and DH groups of at least 3072 bits or elliptic curves in both phases (complements FSBP "
                        "EC2.20; NIST SP 800-77r1)")
def _tunnels_strong(s: _Sites, report: ReportViolation) -> None:
    for vpn in s.graph.of(VPN):
        problems = []
        if peek(vpn.props, "staticRoutesOnly") is not True:
            problems.append("staticRoutesOnly is not true (BGP would let the site announce any network)")
        for tunnel in (1, 2):
            problems.extend(_tunnel_problems(vpn.props, tunnel))
        if problems:
            report(f"VPN connection {vpn.name}: {'; '.join(problems)}", vpn.urn)


def _tunnel_problems(props: Any, tunnel: int) -> list[str]:
    prefix = f"tunnel{tunnel}"
    wanted = {"IkeVersions": IKE_VERSIONS,
              "Phase1EncryptionAlgorithms": STRONG_ENCRYPTION, "Phase2EncryptionAlgorithms": STRONG_ENCRYPTION,
              "Phase1IntegrityAlgorithms": STRONG_INTEGRITY, "Phase2IntegrityAlgorithms": STRONG_INTEGRITY,
              "Phase1DhGroupNumbers": STRONG_DH_GROUPS, "Phase2DhGroupNumbers": STRONG_DH_GROUPS}
    problems = []
    for suffix, strong in wanted.items():
        key = prefix + suffix
        values = items(peek(props, key))
        if UNKNOWN in values:
            problems.append(cannot_decide(f"{key}"))
            continue
        if "DhGroup" in suffix:
            values = [number(v) for v in values]
        weak = sorted(str(v) for v in values if v not in strong)
        if not values:
            problems.append(f"{key} is unset (AWS then allows weak proposals)")
        elif weak:
            problems.append(f"{key} allows {', '.join(weak)}")
    return problems
