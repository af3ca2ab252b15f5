"""Security groups (CW-NET-03, CW-NET-07): nothing admin-facing or beyond the web ports open to the
internet, no all-traffic egress to it, every rule a separate resource traced to its conduit, and
SSH only from the management zone."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from pulumi_policy import ReportViolation, ResourceValidationArgs, StackValidationArgs

from cityward.cloud.graph import UNKNOWN, Graph, peek
from cityward.cloud.rules.exposure import WEB_PORTS, admin_ports_in, covers, web_only
from cityward.cloud.rules.registry import RuleSet
from cityward.cloud.types import (
    CONDUIT_TAG,
    DEFAULT_SG,
    KIND_TAG,
    SECURITY_GROUP,
    SG_EGRESS,
    SG_INGRESS,
    SG_RULE_LEGACY,
    SUBNET,
)
from cityward.cloud.values import (
    WORLD,
    all_protocols,
    cannot_decide,
    has_ports,
    inside,
    listify,
    number,
    port_range,
    protocol_name,
    tags,
)

RULES = RuleSet()
SG_INGRESS_TYPES = (SG_INGRESS, SG_RULE_LEGACY, SECURITY_GROUP)


def _ingress_entries(args: ResourceValidationArgs) -> Iterable[tuple[list[str], tuple[int, int], str]]:
    """(source CIDRs, port range, protocol) of every ingress a security-group-ish resource opens."""
    p = args.props
    if args.resource_type == SG_INGRESS:
        yield [c for c in (p.get("cidrIpv4"), p.get("cidrIpv6")) if c], port_range(p, "ipProtocol"), \
            protocol_name(p.get("ipProtocol"))
    elif args.resource_type == SG_RULE_LEGACY and p.get("type") == "ingress":
        yield listify(p.get("cidrBlocks")) + listify(p.get("ipv6CidrBlocks")), port_range(p, "protocol"), \
            protocol_name(p.get("protocol"))
    elif args.resource_type in (SECURITY_GROUP, DEFAULT_SG):
        for rule in listify(p.get("ingress")):
            yield listify(rule.get("cidrBlocks")) + listify(rule.get("ipv6CidrBlocks")), \
                port_range(rule, "protocol"), protocol_name(rule.get("protocol"))


@RULES.resource("cw-net-03-sg-no-world-admin-ports", control="CW-NET-03", types=SG_INGRESS_TYPES,
                checkov=("CKV_AWS_24", "CKV_AWS_25"), security_hub=("EC2.13", "EC2.14"),
                description="CW-NET-03 (Checkov CKV_AWS_24, CKV_AWS_25; FSBP EC2.13, EC2.14): no security-group "
                            "ingress from 0.0.0.0/0 or ::/0 to SSH, RDP or other admin ports.")
def _sg_no_world_admin(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for cidrs, ports, proto in _ingress_entries(args):
        world = [c for c in cidrs if c in WORLD]
        hits = admin_ports_in(ports)
        if world and hits and proto in ("tcp", "-1", "all"):
            report(f"CW-NET-03: ingress from {world[0]} reaches admin port(s) {', '.join(hits)}")


@RULES.resource("cw-net-03-sg-world-ingress-web-only", control="CW-NET-03", types=SG_INGRESS_TYPES,
                security_hub=("EC2.18",),
                description="CW-NET-03 (FSBP EC2.18): unrestricted security-group ingress only to tcp 80/443; OT "
                            "protocols such as Modbus/TCP 502 or DNP3 20000 are never open to the internet.")
def _sg_world_only_web(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for cidrs, ports, proto in _ingress_entries(args):
        world = [c for c in cidrs if c in WORLD]
        if world and has_ports(proto) and not web_only(proto, ports):
            report(f"CW-NET-03: ingress from {world[0]} to {proto} {ports[0]}-{ports[1]}: only tcp "
                   f"{'/'.join(map(str, WEB_PORTS))} may be open to the internet (OT protocols never)")


@RULES.resource("cw-net-03-sg-rules-are-separate-resources", control="CW-NET-03", types=(SECURITY_GROUP,),
                description="CW-NET-03 (cityward): security groups carry no inline rules; each conduit is an "
                            "aws.vpc.SecurityGroupIngressRule/EgressRule so it can be traced and reviewed.")
def _sg_no_inline_rules(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for direction in ("ingress", "egress"):
        if listify(args.props.get(direction)):
            report(f"CW-NET-03: security group {args.name} declares inline {direction} rules; declare each "
                   "conduit as an aws.vpc.SecurityGroupIngressRule/EgressRule")


@RULES.resource("cw-net-03-sg-rules-trace-to-conduit", control="CW-NET-03", types=(SG_INGRESS, SG_EGRESS),
                checkov=("CKV_AWS_23",),
                description="CW-NET-03 (Checkov CKV_AWS_23 for descriptions): every security-group rule has a "
                            "description and a cityward:conduit tag (from->to:proto/port) that matches the port it "
                            "opens.")
def _sg_rule_traces_conduit(args: ResourceValidationArgs, report: ReportViolation) -> None:
    p = args.props
    conduit = str(tags(p).get(CONDUIT_TAG, ""))
    if not p.get("description"):
        report(f"CW-NET-03: rule {args.name} has no description")
    head, _, tail = conduit.partition(":")
    proto, _, port = tail.partition("/")
    if "->" not in head or proto not in ("tcp", "udp") or not port.isdigit():
        report(f"CW-NET-03: rule {args.name} has no '{CONDUIT_TAG}' tag of the form from->to:proto/port "
               f"(got {conduit!r}); every rule must come from a conduit")
        return
    if protocol_name(p.get("ipProtocol")) != proto or port_range(p, "ipProtocol") != (int(port), int(port)):
        report(f"CW-NET-03: rule {args.name} opens {p.get('ipProtocol')} {number(p.get('fromPort'))}-"
               f"{number(p.get('toPort'))} but its conduit is {conduit}")


@RULES.resource("cw-net-03-sg-no-all-traffic-egress-to-world", control="CW-NET-03",
                types=(SG_EGRESS, SG_RULE_LEGACY, SECURITY_GROUP),
                description="CW-NET-03 (cityward; least functionality, IEC 62443 SR 7.7): no security group lets all "
                            "protocols out to 0.0.0.0/0 or ::/0.")
def _sg_no_all_egress_to_world(args: ResourceValidationArgs, report: ReportViolation) -> None:
    p = args.props
    if args.resource_type == SG_EGRESS:
        entries = [([p.get("cidrIpv4"), p.get("cidrIpv6")], p.get("ipProtocol"))]
    elif args.resource_type == SG_RULE_LEGACY and p.get("type") == "egress":
        entries = [(listify(p.get("cidrBlocks")) + listify(p.get("ipv6CidrBlocks")), p.get("protocol"))]
    else:
        entries = [(listify(e.get("cidrBlocks")) + listify(e.get("ipv6CidrBlocks")), e.get("protocol"))
                   for e in listify(p.get("egress"))]
    for cidrs, protocol in entries:
        if all_protocols(protocol) and any(c in WORLD for c in cidrs):
            report("CW-NET-03: egress of all traffic to the internet; open only the conduits' ports")


@RULES.stack("cw-net-07-ssh-only-from-management", control="CW-NET-07",
             description="CW-NET-07 (cityward; no bastion): SSH ingress only from management-zone subnets or "
                         "security groups.")
def _ssh_only_from_management(args: StackValidationArgs, report: ReportViolation) -> None:
    graph = Graph(args.resources)
    # the zone's per-AZ subnets together cover its CIDR: collapse them before comparing
    management = list(ipaddress.collapse_addresses(
        ipaddress.ip_network(s.props["cidrBlock"]) for s in graph.of(SUBNET)
        if tags(s.props).get(KIND_TAG) == "management" and s.props.get("cidrBlock")))
    for rule in graph.of(SG_INGRESS):
        p = rule.props
        if protocol_name(p.get("ipProtocol")) not in ("tcp", "-1", "all") or not covers(
                port_range(p, "ipProtocol"), 22):
            continue
        source = p.get("cidrIpv4") or p.get("cidrIpv6")
        if source and inside(source, management):
            continue
        group = None if source else graph.ref(rule, "referencedSecurityGroupId", SECURITY_GROUP)
        if group is UNKNOWN:
            report(cannot_decide(f"which security group SSH ingress {rule.name} admits", "CW-NET-07"), rule.urn)
            continue
        if group is not None and tags(group.props).get(KIND_TAG) == "management":
            continue
        origin = source or peek(p, "referencedSecurityGroupId") or peek(p, "prefixListId")
        report(f"CW-NET-07: SSH ingress {rule.name} from {origin} is outside the management "
               "zone; operators use Session Manager, automation comes from management", rule.urn)
