"""Network ACLs (CW-NET-03): the internet gets in only to the web ports and the return range, never to
an admin port."""

from __future__ import annotations

from collections.abc import Iterable

from pulumi_policy import ReportViolation, ResourceValidationArgs

from cityward.cloud.rules.exposure import RETURN_PORTS, admin_ports_in, web_only
from cityward.cloud.rules.registry import RuleSet
from cityward.cloud.types import DEFAULT_NACL, NETWORK_ACL, NETWORK_ACL_RULE
from cityward.cloud.values import WORLD, has_ports, is_true, listify, port_range, protocol_name

RULES = RuleSet()
NACL_TYPES = (NETWORK_ACL_RULE, NETWORK_ACL)


def _nacl_ingress_allows(args: ResourceValidationArgs) -> Iterable[tuple[str, tuple[int, int], str]]:
    """(source CIDR, port range, protocol) of every allow-ingress NACL entry."""
    p = args.props
    if args.resource_type == NETWORK_ACL_RULE:
        if not is_true(p.get("egress")) and str(p.get("ruleAction", "")).lower() == "allow":
            for cidr in (p.get("cidrBlock"), p.get("ipv6CidrBlock")):
                if cidr:
                    yield cidr, port_range(p, "protocol"), protocol_name(p.get("protocol"))
    elif args.resource_type in (NETWORK_ACL, DEFAULT_NACL):
        for entry in listify(p.get("ingress")):
            if str(entry.get("action", "")).lower() == "allow":
                for cidr in (entry.get("cidrBlock"), entry.get("ipv6CidrBlock")):
                    if cidr:
                        yield cidr, port_range(entry, "protocol"), protocol_name(entry.get("protocol"))


@RULES.resource("cw-net-03-nacl-no-world-admin-ports", control="CW-NET-03", types=NACL_TYPES,
                checkov=("CKV_AWS_229", "CKV_AWS_230", "CKV_AWS_231", "CKV_AWS_232"), security_hub=("EC2.21",),
                description="CW-NET-03 (Checkov CKV_AWS_229, CKV_AWS_230, CKV_AWS_231, CKV_AWS_232; FSBP EC2.21): no "
                            "network ACL allows ingress from 0.0.0.0/0 or ::/0 to ports 20, 21, 22, 3389 or other "
                            "admin ports.")
def _nacl_no_world_admin(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for cidr, ports, proto in _nacl_ingress_allows(args):
        hits = admin_ports_in(ports)
        if cidr in WORLD and hits and proto in ("tcp", "-1", "all"):
            report(f"CW-NET-03: NACL allows {cidr} in to admin port(s) {', '.join(hits)}")


@RULES.resource("cw-net-03-nacl-world-ingress-web-or-return", control="CW-NET-03", types=NACL_TYPES,
                description="CW-NET-03 (cityward, complements FSBP EC2.21): network ACLs admit the internet only on "
                            "tcp 80/443 and the 32768-65535 return range.")
def _nacl_world_web_or_return(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for cidr, ports, proto in _nacl_ingress_allows(args):
        if cidr not in WORLD or not has_ports(proto):
            continue
        returning = proto in ("tcp", "udp") and RETURN_PORTS[0] <= ports[0] <= ports[1] <= RETURN_PORTS[1]
        if not (web_only(proto, ports) or returning):
            report(f"CW-NET-03: NACL allows {cidr} in to {proto} {ports[0]}-{ports[1]}: only tcp 80/443 or the "
                   f"return range {RETURN_PORTS[0]}-{RETURN_PORTS[1]} may be open to the internet")
