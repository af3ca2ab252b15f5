"""cityward CrossGuard rules for the segmented AWS network (controls CW-NET-01 .. CW-NET-12).

Importable on its own (no gRPC server): `__main__.py` wraps POLICIES in a PolicyPack for
`pulumi preview --policy-pack`, and `cityward cloud plan` runs them in-process over the
resources the stack program registers under mocks.

Each rule's name starts with its control ID (cw-net-NN-...) and its description names the
control and the equivalent Checkov / AWS Foundational Security Best Practices (FSBP) IDs.
Resource rules see a resource's inputs; stack rules see every resource's outputs and join them
(route tables to subnets, flow logs to VPCs, rules to security groups) with `graph.Graph.ref`: by
id when it is known, by the engine's property dependencies on a first preview, when it is not.
Where only the presence of a reference matters (a KMS key, a log destination) the rules check
that it is set (`graph.has`), not its value. Every rule decides on a first preview or fails closed:
a value it needs and cannot know yet is reported as "cannot decide at preview" (see `_deciding`).
Props use the engine's camelCase names; numbers may arrive as floats.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from cityward.cloud.graph import UNKNOWN, Graph, has, items, peek
from cityward.cloud.types import (
    CONDUIT_TAG,
    DEFAULT_NACL,
    DEFAULT_ROUTE_TABLE,
    DEFAULT_SG,
    EBS_DEFAULT_ENCRYPTION,
    EGRESS_ONLY_GATEWAY,
    FLOW_LOG,
    IAM_ROLE,
    IMDS_DEFAULTS,
    INSTANCE,
    INTERNET_GATEWAY,
    KIND_TAG,
    KMS_KEY,
    LAUNCH_TEMPLATE,
    LOG_GROUP,
    NAT_GATEWAY,
    NETWORK_ACL,
    NETWORK_ACL_RULE,
    ROUTE,
    ROUTE_TABLE,
    ROUTE_TABLE_ASSOCIATION,
    S3_ACCOUNT_PAB,
    S3_BUCKET_PAB,
    SECURITY_GROUP,
    SG_EGRESS,
    SG_INGRESS,
    SG_RULE_LEGACY,
    SUBNET,
    TRAIL,
    VPC,
    VPC_ENDPOINT,
    ZONE_TAG,
    ZONES_TAG,
)
from cityward.cloud.values import all_protocols, cannot_decide, is_false, is_true, number, protocol_name

ENFORCEMENT_LEVEL = EnforcementLevel.MANDATORY

# --- what the rules consider ---------------------------------------------------------------
WORLD = ("0.0.0.0/0", "::/0")
# Remote administration and file transfer: never from the internet (Checkov covers 20/21/22/3389).
ADMIN_PORTS = {20: "FTP data", 21: "FTP", 22: "SSH", 23: "Telnet", 3389: "RDP", 5900: "VNC",
               5985: "WinRM", 5986: "WinRM over TLS"}
WEB_PORTS = (80, 443)  # FSBP EC2.18's default authorised ports for unrestricted ingress
# Return traffic through stateless NACLs (the stack's ephemeralPorts); contains no admin port.
RETURN_PORTS = (32768, 65535)
SESSION_MANAGER_SERVICES = ("ssm", "ssmmessages", "ec2messages", "logs", "kms")
MIN_LOG_RETENTION_DAYS = 365


# --- small helpers -------------------------------------------------------------------------


def _port_range(props: Mapping[str, Any], proto_key: str) -> tuple[int, int]:
    """(from, to) a rule opens; all protocols, or no ports given, means every port."""
    low, high = number(props.get("fromPort")), number(props.get("toPort"))
    if all_protocols(props.get(proto_key)) or (low is None and high is None):
        return (0, 65535)
    low = high if low is None else low
    high = low if high is None else high
    return (low, high)


def _port_protocol(proto: str) -> bool:
    """Protocols that have ports (ICMP types are not ports)."""
    return proto in ("tcp", "udp", "-1", "all")


def _covers(port_range: tuple[int, int], port: int) -> bool:
    return port_range[0] <= port <= port_range[1]


def _tags(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return props.get("tags") or {}


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _listify(value: Any) -> list:
    # the engine hands lists over as read-only Sequence proxies, not lists
    if value is None:
        return []
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]


def _deciding(name: str, validate: Callable) -> Callable:
    """`validate`, failing closed: a value it needs that is unknown (first preview) is a violation.

    The engine would downgrade the UnknownValueError to an advisory note and let the resource be
    created; here it is reported at the rule's own level."""
    control = name[:9].upper()

    def run(args, report: ReportViolation) -> None:
        try:
            validate(args, report)
        except UnknownValueError as exc:
            report(cannot_decide(f"{exc.message} ({getattr(args, 'name', 'the stack')})", control))

    return run


def resource_rule(name: str, description: str, validate: Callable, level: EnforcementLevel | None = None):
    return ResourceValidationPolicy(name=name, description=description, validate=_deciding(name, validate),
                                    enforcement_level=level or ENFORCEMENT_LEVEL)


def stack_rule(name: str, description: str, validate: Callable, level: EnforcementLevel | None = None):
    return StackValidationPolicy(name=name, description=description, validate=_deciding(name, validate),
                                 enforcement_level=level or ENFORCEMENT_LEVEL)


def _of(args: StackValidationArgs, *types: str) -> list:
    return [r for r in args.resources if r.resource_type in types]


def _ingress_entries(args: ResourceValidationArgs) -> Iterable[tuple[list[str], tuple[int, int], str]]:
    """(source CIDRs, port range, protocol) of every ingress a security-group-ish resource opens."""
    p = args.props
    if args.resource_type == SG_INGRESS:
        yield [c for c in (p.get("cidrIpv4"), p.get("cidrIpv6")) if c], _port_range(p, "ipProtocol"), \
            protocol_name(p.get("ipProtocol"))
    elif args.resource_type == SG_RULE_LEGACY and p.get("type") == "ingress":
        yield _listify(p.get("cidrBlocks")) + _listify(p.get("ipv6CidrBlocks")), _port_range(p, "protocol"), \
            protocol_name(p.get("protocol"))
    elif args.resource_type in (SECURITY_GROUP, DEFAULT_SG):
        for rule in _listify(p.get("ingress")):
            yield _listify(rule.get("cidrBlocks")) + _listify(rule.get("ipv6CidrBlocks")), \
                _port_range(rule, "protocol"), protocol_name(rule.get("protocol"))


def _nacl_ingress_allows(args: ResourceValidationArgs) -> Iterable[tuple[str, tuple[int, int], str]]:
    """(source CIDR, port range, protocol) of every allow-ingress NACL entry."""
    p = args.props
    if args.resource_type == NETWORK_ACL_RULE:
        if not is_true(p.get("egress")) and str(p.get("ruleAction", "")).lower() == "allow":
            for cidr in (p.get("cidrBlock"), p.get("ipv6CidrBlock")):
                if cidr:
                    yield cidr, _port_range(p, "protocol"), protocol_name(p.get("protocol"))
    elif args.resource_type in (NETWORK_ACL, DEFAULT_NACL):
        for entry in _listify(p.get("ingress")):
            if str(entry.get("action", "")).lower() == "allow":
                for cidr in (entry.get("cidrBlock"), entry.get("ipv6CidrBlock")):
                    if cidr:
                        yield cidr, _port_range(entry, "protocol"), protocol_name(entry.get("protocol"))


# --- CW-NET-01 -----------------------------------------------------------------------------


def _one_vpc_zones_span_azs(args: StackValidationArgs, report: ReportViolation) -> None:
    vpcs = _of(args, VPC)
    if len(vpcs) != 1:
        report(f"CW-NET-01: expected exactly one VPC, found {len(vpcs)}")
    declared = {z for v in vpcs for z in str(_tags(v.props).get(ZONES_TAG, "")).split(",") if z}
    azs: dict[str, set[str]] = {}
    for subnet in _of(args, SUBNET):
        tags = _tags(subnet.props)
        zone = tags.get(ZONE_TAG)
        if not zone:
            report(f"CW-NET-01: subnet {subnet.name} has no '{ZONE_TAG}' tag: every subnet belongs to a zone",
                   subnet.urn)
            continue
        if zone not in declared and tags.get(KIND_TAG) != "platform":
            report(f"CW-NET-01: subnet {subnet.name} is in zone '{zone}', which the VPC's zones policy does not name",
                   subnet.urn)
        azs.setdefault(zone, set()).add(str(subnet.props.get("availabilityZone") or subnet.props.get(
            "availabilityZoneId") or "?"))
    for zone in sorted(declared | set(azs)):
        found = azs.get(zone, set())
        if len(found) < 2:
            report(f"CW-NET-01: zone '{zone}' has subnets in {len(found)} availability zone(s), at least 2 needed")


# --- CW-NET-02 -----------------------------------------------------------------------------


# Route tables are keyed by the table resource's URN; a table outside the stack by its id; a VPC's
# main table that no resource adopts by "main route table of <vpc>".


def _points_to(graph: Graph, resource: Any, key: str, target: Any, *attrs: str) -> bool:
    """resource.props[key] is one of target's `attrs` (known), or was computed from target (preview)."""
    value = peek(resource.props, key)
    if value is None:
        return False
    if value is UNKNOWN:
        return graph.dependency(resource, key, target.resource_type) is target
    return value in {peek(target.props, a) for a in attrs} - {None, UNKNOWN}


def _main_ids(vpc: Any) -> set:
    return {peek(vpc.props, k) for k in ("mainRouteTableId", "defaultRouteTableId")} - {None, UNKNOWN}


def _main_table(graph: Graph, vpc: Any) -> str:
    ids = _main_ids(vpc)
    for table in graph.of(ROUTE_TABLE, DEFAULT_ROUTE_TABLE):
        if peek(table.props, "id") in ids or (table.resource_type == DEFAULT_ROUTE_TABLE and _points_to(
                graph, table, "defaultRouteTableId", vpc, "defaultRouteTableId", "mainRouteTableId")):
            return table.urn
    return min(ids) if ids else f"main route table of {vpc.name}"


def _table_key(graph: Graph, resource: Any, key: str) -> Any:
    """The route table resource.props[key] names (see above); None if absent, UNKNOWN if undecidable."""
    table = graph.ref(resource, key, ROUTE_TABLE, DEFAULT_ROUTE_TABLE)
    if table is UNKNOWN:  # computed, but not from one table: from a VPC, it is the VPC's main table
        vpc = graph.dependency(resource, key, VPC)
        return UNKNOWN if vpc is UNKNOWN else _main_table(graph, vpc)
    if table is not None:
        return table.urn
    value = peek(resource.props, key)
    for vpc in graph.of(VPC):
        if value in _main_ids(vpc):
            return _main_table(graph, vpc)
    return value


def _table_label(graph: Graph, key: Any) -> str:
    table = graph.by_urn(key) if isinstance(key, str) else None
    return table.name if table is not None else str(key)


def _routes_by_table(graph: Graph) -> dict[Any, list[tuple[Mapping[str, Any], Any, str]]]:
    """table key -> (route props, resource declaring it, the property its dependencies are under)."""
    routes: dict[Any, list] = {}
    for table in graph.of(ROUTE_TABLE, DEFAULT_ROUTE_TABLE):
        routes.setdefault(table.urn, []).extend(
            (route, table, "routes") for route in items(peek(table.props, "routes")))
    for route in graph.of(ROUTE):
        routes.setdefault(_table_key(graph, route, "routeTableId"), []).append((route.props, route, ""))
    return routes


def _target_label(graph: Graph, owner: Any, dep_key: str, value: Any, *types: str) -> str:
    if value is not UNKNOWN:
        return str(value)
    found = graph.dependency(owner, dep_key, *types)
    return "(unknown until created)" if found is UNKNOWN else found.name


def _internet_target(graph: Graph, route: Any, owner: Any, under: str) -> Any:
    """What internet-facing target a route sends to: a description, None, or UNKNOWN (cannot tell)."""
    if route is UNKNOWN:
        return UNKNOWN
    gateway = peek(route, "gatewayId")
    dep_key = under or "gatewayId"
    if gateway is UNKNOWN:
        igws = graph.dependencies(owner, dep_key, INTERNET_GATEWAY)
        if igws:
            return f"internet gateway {igws[0].name}"
        if not graph.dependencies(owner, dep_key):
            return UNKNOWN
    elif gateway and (str(gateway).startswith("igw-") or any(
            gateway == peek(g.props, "id") for g in graph.of(INTERNET_GATEWAY))):
        return f"internet gateway {gateway}"
    if has(route, "natGatewayId"):
        label = _target_label(graph, owner, under or "natGatewayId", peek(route, "natGatewayId"),
                              NAT_GATEWAY)
        return f"NAT gateway {label}"
    if has(route, "egressOnlyGatewayId"):
        label = _target_label(graph, owner, under or "egressOnlyGatewayId", peek(route, "egressOnlyGatewayId"),
                              EGRESS_ONLY_GATEWAY)
        return f"egress-only internet gateway {label}"
    return None


def _tables_of_subnets(graph: Graph) -> dict[str, Any]:
    """subnet urn -> route table key (explicit association, else its VPC's main route table)."""
    tables: dict[str, Any] = {}
    for subnet in graph.of(SUBNET):
        vpc = graph.ref(subnet, "vpcId", VPC)
        tables[subnet.urn] = UNKNOWN if vpc is UNKNOWN else _main_table(graph, vpc) if vpc is not None else None
    for assoc in graph.of(ROUTE_TABLE_ASSOCIATION):
        subnet = graph.ref(assoc, "subnetId", SUBNET)
        if subnet is UNKNOWN:
            tables.update((urn, UNKNOWN) for urn in tables)  # any subnet may be the one: none decided
            continue
        if subnet is not None:
            tables[subnet.urn] = _table_key(graph, assoc, "routeTableId")
    return tables


def _destination(route: Mapping[str, Any]) -> str:
    for key in ("destinationCidrBlock", "cidrBlock", "destinationIpv6CidrBlock", "ipv6CidrBlock",
                "destinationPrefixListId"):
        value = peek(route, key)
        if value is not None:
            return "(unknown until created)" if value is UNKNOWN else str(value)
    return "?"


def _ot_no_internet_route(args: StackValidationArgs, report: ReportViolation) -> None:
    graph = Graph(args.resources)
    routes = _routes_by_table(graph)
    tables = _tables_of_subnets(graph)
    for subnet in graph.of(SUBNET):
        if _tags(subnet.props).get(KIND_TAG) != "ot":
            continue
        table = tables.get(subnet.urn)
        if table is UNKNOWN:
            report(cannot_decide(f"which route table OT subnet {subnet.name} uses", "CW-NET-02"), subnet.urn)
            continue
        where = _table_label(graph, table)
        for route, owner, under in routes.get(table, []) if table is not None else []:
            target = _internet_target(graph, route, owner, under)
            if target is UNKNOWN:
                report(cannot_decide(f"the target of route {owner.name} (OT subnet {subnet.name}, "
                                 f"route table {where})", "CW-NET-02"), subnet.urn)
            elif target:
                report(f"CW-NET-02: OT subnet {subnet.name} routes {_destination(route)} to {target} "
                       f"(route table {where})", subnet.urn)
        for route, owner, under in routes.get(UNKNOWN, []):  # a route whose table is unknown may be this one
            if _internet_target(graph, route, owner, under) is not None:
                report(cannot_decide(f"the route table of route {owner.name}, which may serve OT subnet "
                                 f"{subnet.name}", "CW-NET-02"), subnet.urn)


def _igw_routes_dmz_only(args: StackValidationArgs, report: ReportViolation) -> None:
    graph = Graph(args.resources)
    routes = _routes_by_table(graph)
    kinds: dict[Any, set[str]] = {}
    for subnet_urn, table in _tables_of_subnets(graph).items():
        subnet = graph.by_urn(subnet_urn)
        kinds.setdefault(table, set()).add(_tags(subnet.props).get(KIND_TAG, "untagged"))
    for table, table_routes in routes.items():
        served = kinds.get(table, set()) - {"dmz"}
        for route, owner, under in table_routes:
            target = _internet_target(graph, route, owner, under)
            internet = target is not UNKNOWN and bool(target) and target.startswith("internet gateway")
            unsure = table is UNKNOWN or kinds.get(UNKNOWN, set()) - {"dmz"} or (target is UNKNOWN and served)
            if (internet or target is UNKNOWN) and unsure:
                report(cannot_decide(f"whether route {owner.name} sends traffic to the internet gateway "
                                 "from subnets outside the DMZ", "CW-NET-02"), owner.urn)
            elif internet and served:
                report(f"CW-NET-02: route table {_table_label(graph, table)} sends traffic to the {target} but "
                       f"serves {', '.join(sorted(served))} subnets; only DMZ route tables may")


# --- CW-NET-03 -----------------------------------------------------------------------------


def _sg_no_world_admin(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for cidrs, ports, proto in _ingress_entries(args):
        world = [c for c in cidrs if c in WORLD]
        hits = [f"{port} ({label})" for port, label in ADMIN_PORTS.items() if _covers(ports, port)]
        if world and hits and proto in ("tcp", "-1", "all"):
            report(f"CW-NET-03: ingress from {world[0]} reaches admin port(s) {', '.join(hits)}")


def _nacl_no_world_admin(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for cidr, ports, proto in _nacl_ingress_allows(args):
        hits = [f"{port} ({label})" for port, label in ADMIN_PORTS.items() if _covers(ports, port)]
        if cidr in WORLD and hits and proto in ("tcp", "-1", "all"):
            report(f"CW-NET-03: NACL allows {cidr} in to admin port(s) {', '.join(hits)}")


def _sg_world_only_web(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for cidrs, ports, proto in _ingress_entries(args):
        world = [c for c in cidrs if c in WORLD]
        if world and _port_protocol(proto) and not (proto == "tcp" and ports[0] == ports[1] and ports[0] in WEB_PORTS):
            report(f"CW-NET-03: ingress from {world[0]} to {proto} {ports[0]}-{ports[1]}: only tcp "
                   f"{'/'.join(map(str, WEB_PORTS))} may be open to the internet (OT protocols never)")


def _nacl_world_web_or_return(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for cidr, ports, proto in _nacl_ingress_allows(args):
        if cidr not in WORLD or not _port_protocol(proto):
            continue
        web = proto == "tcp" and ports[0] == ports[1] and ports[0] in WEB_PORTS
        returning = proto in ("tcp", "udp") and RETURN_PORTS[0] <= ports[0] <= ports[1] <= RETURN_PORTS[1]
        if not (web or returning):
            report(f"CW-NET-03: NACL allows {cidr} in to {proto} {ports[0]}-{ports[1]}: only tcp 80/443 or the "
                   f"return range {RETURN_PORTS[0]}-{RETURN_PORTS[1]} may be open to the internet")


def _sg_no_inline_rules(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for direction in ("ingress", "egress"):
        if _listify(args.props.get(direction)):
            report(f"CW-NET-03: security group {args.name} declares inline {direction} rules; declare each "
                   "conduit as an aws.vpc.SecurityGroupIngressRule/EgressRule")


def _sg_rule_traces_conduit(args: ResourceValidationArgs, report: ReportViolation) -> None:
    p = args.props
    conduit = str(_tags(p).get(CONDUIT_TAG, ""))
    if not p.get("description"):
        report(f"CW-NET-03: rule {args.name} has no description")
    head, _, tail = conduit.partition(":")
    proto, _, port = tail.partition("/")
    if "->" not in head or proto not in ("tcp", "udp") or not port.isdigit():
        report(f"CW-NET-03: rule {args.name} has no '{CONDUIT_TAG}' tag of the form from->to:proto/port "
               f"(got {conduit!r}); every rule must come from a conduit")
        return
    if protocol_name(p.get("ipProtocol")) != proto or _port_range(p, "ipProtocol") != (int(port), int(port)):
        report(f"CW-NET-03: rule {args.name} opens {p.get('ipProtocol')} {number(p.get('fromPort'))}-"
               f"{number(p.get('toPort'))} but its conduit is {conduit}")


def _sg_no_all_egress_to_world(args: ResourceValidationArgs, report: ReportViolation) -> None:
    p = args.props
    if args.resource_type == SG_EGRESS:
        entries = [([p.get("cidrIpv4"), p.get("cidrIpv6")], p.get("ipProtocol"))]
    elif args.resource_type == SG_RULE_LEGACY and p.get("type") == "egress":
        entries = [(_listify(p.get("cidrBlocks")) + _listify(p.get("ipv6CidrBlocks")), p.get("protocol"))]
    else:
        entries = [(_listify(e.get("cidrBlocks")) + _listify(e.get("ipv6CidrBlocks")), e.get("protocol"))
                   for e in _listify(p.get("egress"))]
    for cidrs, protocol in entries:
        if all_protocols(protocol) and any(c in WORLD for c in cidrs):
            report("CW-NET-03: egress of all traffic to the internet; open only the conduits' ports")


# --- CW-NET-04 -----------------------------------------------------------------------------


def _default_has_no_rules(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for direction in ("ingress", "egress"):
        if _listify(args.props.get(direction)):
            report(f"CW-NET-04: the default {'security group' if args.resource_type == DEFAULT_SG else 'network ACL'} "
                   f"carries {direction} rules; leave it empty so nothing can fall back on it")


def _defaults_adopted(args: StackValidationArgs, report: ReportViolation) -> None:
    graph = Graph(args.resources)
    sgs, acls = graph.of(DEFAULT_SG), graph.of(DEFAULT_NACL)
    for vpc in graph.of(VPC):
        adopted = [
            ("security group (DefaultSecurityGroup)", "its allow rules",
             [graph.ref(r, "vpcId", VPC) for r in sgs], any(graph.ref(r, "vpcId", VPC) is vpc for r in sgs)),
            ("network ACL (DefaultNetworkAcl)", "its allow-all rules",
             [UNKNOWN for r in acls if peek(r.props, "defaultNetworkAclId") is UNKNOWN
              and graph.dependency(r, "defaultNetworkAclId", VPC) is UNKNOWN],
             any(_points_to(graph, r, "defaultNetworkAclId", vpc, "defaultNetworkAclId") for r in acls)),
        ]
        for what, rules, refs, found in adopted:
            if found:
                continue
            if UNKNOWN in refs:
                report(cannot_decide(f"whether VPC {vpc.name} adopts its default {what}", "CW-NET-04"), vpc.urn)
            else:
                report(f"CW-NET-04: VPC {vpc.name} does not adopt its default {what} to strip {rules}", vpc.urn)


# --- CW-NET-05 -----------------------------------------------------------------------------


def _vpc_flow_logs(args: StackValidationArgs, report: ReportViolation) -> None:
    graph = Graph(args.resources)
    logs = [(f, graph.ref(f, "vpcId", VPC)) for f in graph.of(FLOW_LOG)]
    for vpc in graph.of(VPC):
        mine = [f for f, target in logs if target is vpc]
        complete = [f for f in mine if str(f.props.get("trafficType")).upper() == "ALL"]
        if not complete and any(target is UNKNOWN for _, target in logs):
            report(cannot_decide(f"which VPC each flow log watches (VPC {vpc.name})", "CW-NET-05"), vpc.urn)
        elif not complete:
            report(f"CW-NET-05: VPC {vpc.name} has no flow log capturing ALL traffic", vpc.urn)
        for flow in complete:
            if peek(flow.props, "logDestinationType", "cloud-watch-logs") != "cloud-watch-logs":
                continue
            # a log group the stack manages: its ARN (known), or computed from it (preview)
            group = graph.ref(flow, "logDestination", LOG_GROUP)
            if group is UNKNOWN:
                report(cannot_decide(f"which log group flow log {flow.name} writes to", "CW-NET-05"), flow.urn)
            elif group is None:
                report(f"CW-NET-05: flow log {flow.name} writes to a log group this stack does not manage "
                       "(its encryption and retention cannot be checked)", flow.urn)


def _flow_log_all(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if str(args.props.get("trafficType", "")).upper() != "ALL":
        report(f"CW-NET-05: flow log traffic type is {args.props.get('trafficType')!r}; capture ALL "
               "(accepted and rejected)")
    if not has(args.props, "logDestination") and not has(args.props, "logGroupName"):
        report("CW-NET-05: flow log has no destination")


def _log_group_kms(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not has(args.props, "kmsKeyId"):
        report("CW-NET-05: log group is not encrypted with a customer-managed KMS key (kmsKeyId)")


def _log_group_retention(args: ResourceValidationArgs, report: ReportViolation) -> None:
    days = number(args.props.get("retentionInDays"))
    if days is None or days < MIN_LOG_RETENTION_DAYS:
        report(f"CW-NET-05: log group keeps logs {days} days; set retentionInDays >= {MIN_LOG_RETENTION_DAYS}")


# --- CW-NET-06 -----------------------------------------------------------------------------


def _kms_rotation(args: ResourceValidationArgs, report: ReportViolation) -> None:
    p = args.props
    spec = p.get("customerMasterKeySpec") or "SYMMETRIC_DEFAULT"
    if spec != "SYMMETRIC_DEFAULT" or p.get("keyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
        return  # AWS rotates only symmetric encryption keys
    if not is_true(p.get("enableKeyRotation")):
        report("CW-NET-06: KMS key does not rotate (enableKeyRotation)")
    period = number(p.get("rotationPeriodInDays"))
    if period is not None and period > 365:
        report(f"CW-NET-06: KMS key rotates every {period} days; at most 365")


# --- CW-NET-07 -----------------------------------------------------------------------------


def _endpoint_private_dns(args: ResourceValidationArgs, report: ReportViolation) -> None:
    p = args.props
    if str(p.get("vpcEndpointType", "Gateway")) != "Interface":
        return
    if not is_true(p.get("privateDnsEnabled")):
        report(f"CW-NET-07: interface endpoint {p.get('serviceName')} has no private DNS; instances would "
               "resolve the public service address")
    if not items(peek(p, "securityGroupIds")):
        report(f"CW-NET-07: interface endpoint {p.get('serviceName')} has no security group of its own")


def _session_manager_endpoints(args: StackValidationArgs, report: ReportViolation) -> None:
    graph = Graph(args.resources)
    endpoints = [(e, graph.ref(e, "vpcId", VPC)) for e in graph.of(VPC_ENDPOINT)
                 if e.props.get("vpcEndpointType") == "Interface"]
    for vpc in graph.of(VPC):
        present = {str(e.props.get("serviceName", "")).rsplit(".", 1)[-1] for e, target in endpoints if target is vpc}
        missing = [s for s in SESSION_MANAGER_SERVICES if s not in present]
        if missing and any(target is UNKNOWN for _, target in endpoints):
            report(cannot_decide(f"which VPC each interface endpoint serves (VPC {vpc.name})", "CW-NET-07"), vpc.urn)
        elif missing:
            report(f"CW-NET-07: VPC {vpc.name} lacks interface endpoints for {', '.join(missing)}; operators use "
                   "Session Manager without any internet path", vpc.urn)


def _inside(cidr: str | None, networks: list[ipaddress.IPv4Network]) -> bool:
    try:
        net = ipaddress.ip_network(str(cidr))
    except ValueError:
        return False
    return any(net.version == n.version and net.subnet_of(n) for n in networks)


def _endpoint_groups(graph: Graph, endpoint: Any) -> list:
    """The security groups of an endpoint: resources of the stack, or ids outside it; UNKNOWN in the
    list when an unknown id was not computed from a security group of the stack."""
    found: list = []
    for sg_id in items(peek(endpoint.props, "securityGroupIds")):
        if sg_id is UNKNOWN:  # on a preview each unknown id came from one of the groups it depends on
            found += graph.dependencies(endpoint, "securityGroupIds", SECURITY_GROUP) or [UNKNOWN]
        else:
            found.append(graph.named(sg_id, SECURITY_GROUP) or sg_id)
    return list({id(g): g for g in found}.values())


def _endpoint_sg_https_from_vpc(args: StackValidationArgs, report: ReportViolation) -> None:
    graph = Graph(args.resources)
    rules = graph.of(SG_INGRESS)
    for endpoint in graph.of(VPC_ENDPOINT):
        if endpoint.props.get("vpcEndpointType") != "Interface":
            continue
        vpc = graph.ref(endpoint, "vpcId", VPC)
        if vpc is UNKNOWN:
            report(cannot_decide(f"which VPC endpoint {endpoint.name} is in", "CW-NET-07"), endpoint.urn)
            continue
        vpc_cidr = ipaddress.ip_network(vpc.props["cidrBlock"]) if vpc and vpc.props.get("cidrBlock") else None
        for group in _endpoint_groups(graph, endpoint):
            if group is UNKNOWN:
                report(cannot_decide(f"which security groups endpoint {endpoint.name} uses", "CW-NET-07"), endpoint.urn)
                continue
            if isinstance(group, str):
                label, mine = group, [r for r in rules if peek(r.props, "securityGroupId") == group]
            else:
                label, mine = peek(group.props, "id") or group.name, graph.referencing(
                    group, "securityGroupId", SG_INGRESS)
            if not mine:
                report(f"CW-NET-07: endpoint {endpoint.name}'s security group {label} admits no HTTPS from the VPC",
                       endpoint.urn)
            for rule in mine:
                p = rule.props
                https = protocol_name(p.get("ipProtocol")) == "tcp" and _port_range(p, "ipProtocol") == (443, 443)
                from_vpc = vpc_cidr is not None and _inside(p.get("cidrIpv4"), [vpc_cidr])
                if not (https and (from_vpc or has(p, "referencedSecurityGroupId"))) or p.get("cidrIpv6"):
                    report(f"CW-NET-07: endpoint security group rule {rule.name} allows {p.get('ipProtocol')} "
                           f"{number(p.get('fromPort'))}-{number(p.get('toPort'))} from "
                           f"{p.get('cidrIpv4') or p.get('cidrIpv6') or p.get('prefixListId')}; only tcp 443 from "
                           "the VPC", rule.urn)


def _ssh_only_from_management(args: StackValidationArgs, report: ReportViolation) -> None:
    # the zone's per-AZ subnets together cover its CIDR: collapse them before comparing
    management = list(ipaddress.collapse_addresses(
        ipaddress.ip_network(s.props["cidrBlock"]) for s in _of(args, SUBNET)
        if _tags(s.props).get(KIND_TAG) == "management" and s.props.get("cidrBlock")))
    graph = Graph(args.resources)
    for rule in graph.of(SG_INGRESS):
        p = rule.props
        if protocol_name(p.get("ipProtocol")) not in ("tcp", "-1", "all") or not _covers(
                _port_range(p, "ipProtocol"), 22):
            continue
        source = p.get("cidrIpv4") or p.get("cidrIpv6")
        if source and _inside(source, management):
            continue
        group = None if source else graph.ref(rule, "referencedSecurityGroupId", SECURITY_GROUP)
        if group is UNKNOWN:
            report(cannot_decide(f"which security group SSH ingress {rule.name} admits", "CW-NET-07"), rule.urn)
            continue
        if group is not None and _tags(group.props).get(KIND_TAG) == "management":
            continue
        origin = source or peek(p, "referencedSecurityGroupId") or peek(p, "prefixListId")
        report(f"CW-NET-07: SSH ingress {rule.name} from {origin} is outside the management "
               "zone; operators use Session Manager, automation comes from management", rule.urn)


# --- CW-NET-08 -----------------------------------------------------------------------------


def _imdsv2(args: ResourceValidationArgs, report: ReportViolation) -> None:
    p = args.props
    tokens = p.get("httpTokens") if args.resource_type == IMDS_DEFAULTS else (p.get("metadataOptions") or {}).get(
        "httpTokens")
    if tokens != "required":
        report(f"CW-NET-08: instance metadata tokens are {tokens!r}; require IMDSv2 (httpTokens 'required')")


def _no_public_ip(args: ResourceValidationArgs, report: ReportViolation) -> None:
    p = args.props
    if args.resource_type == SUBNET and is_true(p.get("mapPublicIpOnLaunch")):
        report("CW-NET-08: subnet assigns public IPv4 addresses at launch (mapPublicIpOnLaunch)")
    if args.resource_type == INSTANCE and is_true(p.get("associatePublicIpAddress")):
        report("CW-NET-08: instance gets a public IPv4 address (associatePublicIpAddress)")
    if args.resource_type == LAUNCH_TEMPLATE:
        for nic in _listify(p.get("networkInterfaces")):
            if is_true(nic.get("associatePublicIpAddress")):
                report("CW-NET-08: launch template gives instances a public IPv4 address")


def _require(resource_type: str, label: str, control: str, ok: Callable[[Mapping[str, Any]], bool]):
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        if not any(ok(r.props) for r in _of(args, resource_type)):
            report(f"{control}: the stack declares no {label}")

    return validate


# --- CW-NET-09 / 10 ------------------------------------------------------------------------


def _ebs_default_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if is_false(args.props.get("enabled")):
        report("CW-NET-09: EBS encryption by default is disabled")


PAB_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _public_access_block(args: ResourceValidationArgs, report: ReportViolation) -> None:
    off = [f for f in PAB_FLAGS if not is_true(args.props.get(f))]
    if off:
        scope = "account" if args.resource_type == S3_ACCOUNT_PAB else "bucket"
        report(f"CW-NET-10: S3 {scope} public access block leaves {', '.join(off)} off")


def _pab_all_on(props: Mapping[str, Any]) -> bool:
    return all(is_true(props.get(f)) for f in PAB_FLAGS)


# --- CW-NET-11 -----------------------------------------------------------------------------


def _human_trust_statements(policy: Any) -> list[Mapping[str, Any]]:
    """Allow statements that let IAM principals (people, accounts) assume the role."""
    doc = _json(policy) or {}
    found = []
    for statement in _listify(doc.get("Statement")):
        actions = [str(a) for a in _listify(statement.get("Action"))]
        principal = statement.get("Principal")
        aws_principal = principal == "*" or (isinstance(principal, Mapping) and "AWS" in principal)
        if statement.get("Effect") == "Allow" and aws_principal and any(
                a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            found.append(statement)
    return found


def _requires_mfa(statement: Mapping[str, Any]) -> bool:
    # Bool, not BoolIfExists: the key is absent for long-term keys, and IfExists would let them in.
    value = (statement.get("Condition") or {}).get("Bool", {}).get("aws:MultiFactorAuthPresent")
    return any(is_true(v) for v in _listify(value))


def _role_requires_mfa(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for statement in _human_trust_statements(args.props.get("assumeRolePolicy")):
        if not _requires_mfa(statement):
            report(f"CW-NET-11: role {args.name} can be assumed by {statement.get('Principal')} without MFA "
                   "(Condition Bool aws:MultiFactorAuthPresent true)")


def _operator_role_present(props: Mapping[str, Any]) -> bool:
    statements = _human_trust_statements(props.get("assumeRolePolicy"))
    return bool(statements) and all(_requires_mfa(s) for s in statements)


# --- CW-NET-12 -----------------------------------------------------------------------------


def _trail_multi_region_validated(args: ResourceValidationArgs, report: ReportViolation) -> None:
    p = args.props
    if not is_true(p.get("isMultiRegionTrail")):
        report("CW-NET-12: trail is not multi-region (isMultiRegionTrail)")
    if not is_true(p.get("enableLogFileValidation")):
        report("CW-NET-12: trail has no log file validation (enableLogFileValidation)")
    if is_false(p.get("enableLogging")):
        report("CW-NET-12: trail logging is switched off (enableLogging)")
    if is_false(p.get("includeGlobalServiceEvents")):
        report("CW-NET-12: trail skips global service events (IAM, STS)")


def _trail_kms(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not has(args.props, "kmsKeyId"):
        report("CW-NET-12: trail logs are not encrypted with a KMS key (kmsKeyId)")


def _trail_cloudwatch(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not (has(args.props, "cloudWatchLogsGroupArn") and has(args.props, "cloudWatchLogsRoleArn")):
        report("CW-NET-12: trail does not deliver to CloudWatch Logs (cloudWatchLogsGroupArn/RoleArn)")


def only(types: tuple[str, ...], fn: Callable) -> Callable:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type in types:
            fn(args, report)

    return validate


SG_INGRESS_TYPES = (SG_INGRESS, SG_RULE_LEGACY, SECURITY_GROUP)
NACL_TYPES = (NETWORK_ACL_RULE, NETWORK_ACL)

POLICIES = [
    stack_rule("cw-net-01-one-vpc-zones-span-two-azs",
               "CW-NET-01 (cityward; no Checkov/FSBP equivalent): exactly one VPC, every subnet tagged with its "
               "zone, and every zone of the zones policy in at least two availability zones.",
               _one_vpc_zones_span_azs),
    stack_rule("cw-net-02-ot-subnets-no-internet-route",
               "CW-NET-02 (cityward's own rule, no external ID): no OT subnet's route table routes to an internet "
               "gateway, NAT gateway or egress-only internet gateway.",
               _ot_no_internet_route),
    stack_rule("cw-net-02-igw-routes-dmz-only",
               "CW-NET-02 (cityward's own rule, no external ID): only route tables of DMZ subnets may route to the "
               "internet gateway.",
               _igw_routes_dmz_only),
    resource_rule("cw-net-03-sg-no-world-admin-ports",
                  "CW-NET-03 (Checkov CKV_AWS_24, CKV_AWS_25; FSBP EC2.13, EC2.14): no security-group ingress from "
                  "0.0.0.0/0 or ::/0 to SSH, RDP or other admin ports.",
                  only(SG_INGRESS_TYPES, _sg_no_world_admin)),
    resource_rule("cw-net-03-nacl-no-world-admin-ports",
                  "CW-NET-03 (Checkov CKV_AWS_229, CKV_AWS_230, CKV_AWS_231, CKV_AWS_232; FSBP EC2.21): no network ACL "
                  "allows ingress from 0.0.0.0/0 or ::/0 to ports 20, 21, 22, 3389 or other admin ports.",
                  only(NACL_TYPES, _nacl_no_world_admin)),
    resource_rule("cw-net-03-sg-world-ingress-web-only",
                  "CW-NET-03 (FSBP EC2.18): unrestricted security-group ingress only to tcp 80/443; OT protocols such "
                  "as Modbus/TCP 502 or DNP3 20000 are never open to the internet.",
                  only(SG_INGRESS_TYPES, _sg_world_only_web)),
    resource_rule("cw-net-03-nacl-world-ingress-web-or-return",
                  "CW-NET-03 (cityward, complements FSBP EC2.21): network ACLs admit the internet only on tcp 80/443 "
                  "and the 32768-65535 return range.",
                  only(NACL_TYPES, _nacl_world_web_or_return)),
    resource_rule("cw-net-03-sg-rules-are-separate-resources",
                  "CW-NET-03 (cityward): security groups carry no inline rules; each conduit is an "
                  "aws.vpc.SecurityGroupIngressRule/EgressRule so it can be traced and reviewed.",
                  only((SECURITY_GROUP,), _sg_no_inline_rules)),
    resource_rule("cw-net-03-sg-rules-trace-to-conduit",
                  "CW-NET-03 (Checkov CKV_AWS_23 for descriptions): every security-group rule has a description and a "
                  "cityward:conduit tag (from->to:proto/port) that matches the port it opens.",
                  only((SG_INGRESS, SG_EGRESS), _sg_rule_traces_conduit)),
    resource_rule("cw-net-03-sg-no-all-traffic-egress-to-world",
                  "CW-NET-03 (cityward; least functionality, IEC 62443 SR 7.7): no security group lets all protocols "
                  "out to 0.0.0.0/0 or ::/0.",
                  only((SG_EGRESS, SG_RULE_LEGACY, SECURITY_GROUP), _sg_no_all_egress_to_world)),
    resource_rule("cw-net-04-default-sg-no-rules",
                  "CW-NET-04 (Checkov CKV2_AWS_12; FSBP EC2.2): the VPC's default security group has no ingress or "
                  "egress rules.",
                  only((DEFAULT_SG,), _default_has_no_rules)),
    resource_rule("cw-net-04-default-nacl-no-rules",
                  "CW-NET-04 (Checkov CKV2_AWS_12 companion; FSBP EC2.2 companion): the VPC's default network ACL has "
                  "no rules, so a subnet that loses its zone NACL is cut off rather than opened.",
                  only((DEFAULT_NACL,), _default_has_no_rules)),
    stack_rule("cw-net-04-defaults-adopted",
               "CW-NET-04 (Checkov CKV2_AWS_12; FSBP EC2.2): every VPC adopts its default security group and "
               "default network ACL (DefaultSecurityGroup/DefaultNetworkAcl) so their allow rules are removed.",
               _defaults_adopted),
    stack_rule("cw-net-05-vpc-flow-logs",
               "CW-NET-05 (Checkov CKV2_AWS_11; FSBP EC2.6): every VPC has a flow log of ALL traffic into a log "
               "group this stack manages.",
               _vpc_flow_logs),
    resource_rule("cw-net-05-flow-log-traffic-all",
                  "CW-NET-05 (Checkov CKV2_AWS_11; FSBP EC2.6): flow logs capture ALL traffic (accepted and rejected) "
                  "and name a destination.",
                  only((FLOW_LOG,), _flow_log_all)),
    resource_rule("cw-net-05-log-group-kms",
                  "CW-NET-05 (Checkov CKV_AWS_158): CloudWatch log groups are encrypted with a KMS key.",
                  only((LOG_GROUP,), _log_group_kms)),
    resource_rule("cw-net-05-log-group-retention-365",
                  "CW-NET-05 (Checkov CKV_AWS_338): CloudWatch log groups keep logs at least 365 days.",
                  only((LOG_GROUP,), _log_group_retention)),
    resource_rule("cw-net-06-kms-key-rotation",
                  "CW-NET-06 (Checkov CKV_AWS_7; FSBP KMS.4): symmetric customer-managed KMS keys rotate "
                  "automatically, at least yearly.",
                  only((KMS_KEY,), _kms_rotation)),
    resource_rule("cw-net-07-endpoint-private-dns",
                  "CW-NET-07 (cityward; no Checkov/FSBP equivalent): interface endpoints use private DNS and their own "
                  "security group.",
                  only((VPC_ENDPOINT,), _endpoint_private_dns)),
    stack_rule("cw-net-07-session-manager-endpoints",
               "CW-NET-07 (cityward): every VPC has interface endpoints for ssm, ssmmessages, ec2messages, logs "
               "and kms, so operators use Session Manager and no bastion or internet path is needed.",
               _session_manager_endpoints),
    stack_rule("cw-net-07-endpoint-sg-https-from-vpc",
               "CW-NET-07 (cityward): interface endpoint security groups admit only tcp 443 from inside the VPC.",
               _endpoint_sg_https_from_vpc),
    stack_rule("cw-net-07-ssh-only-from-management",
               "CW-NET-07 (cityward; no bastion): SSH ingress only from management-zone subnets or security groups.",
               _ssh_only_from_management),
    resource_rule("cw-net-08-imdsv2-required",
                  "CW-NET-08 (Checkov CKV_AWS_79; FSBP EC2.8): account metadata defaults, instances and launch "
                  "templates require IMDSv2 tokens.",
                  only((IMDS_DEFAULTS, INSTANCE, LAUNCH_TEMPLATE), _imdsv2)),
    stack_rule("cw-net-08-imdsv2-account-default",
               "CW-NET-08 (FSBP EC2.8 at account level): the stack sets the region's instance metadata defaults to "
               "IMDSv2 required (aws.ec2.InstanceMetadataDefaults).",
               _require(IMDS_DEFAULTS, "InstanceMetadataDefaults with httpTokens 'required'", "CW-NET-08",
                        lambda p: p.get("httpTokens") == "required")),
    resource_rule("cw-net-08-no-public-ip-on-launch",
                  "CW-NET-08 (Checkov CKV_AWS_130, CKV_AWS_88; FSBP EC2.15): subnets, instances and launch templates "
                  "assign no public IPv4 address at launch.",
                  only((SUBNET, INSTANCE, LAUNCH_TEMPLATE), _no_public_ip)),
    resource_rule("cw-net-09-ebs-encryption-by-default",
                  "CW-NET-09 (Checkov CKV_AWS_106; FSBP EC2.7): EBS encryption by default stays enabled.",
                  only((EBS_DEFAULT_ENCRYPTION,), _ebs_default_encryption)),
    stack_rule("cw-net-09-ebs-encryption-declared",
               "CW-NET-09 (Checkov CKV_AWS_106; FSBP EC2.7): the stack enables EBS encryption by default "
               "(aws.ebs.EncryptionByDefault).",
               _require(EBS_DEFAULT_ENCRYPTION, "enabled EBS encryption by default", "CW-NET-09",
                        lambda p: not is_false(p.get("enabled")))),
    resource_rule("cw-net-10-s3-public-access-block",
                  "CW-NET-10 (FSBP S3.1, S3.8; Checkov CKV_AWS_53, CKV_AWS_54, CKV_AWS_55, CKV_AWS_56): S3 account "
                  "and bucket public access blocks have all four settings on.",
                  only((S3_ACCOUNT_PAB, S3_BUCKET_PAB), _public_access_block)),
    stack_rule("cw-net-10-s3-account-public-access-block-declared",
               "CW-NET-10 (FSBP S3.1): the stack declares the S3 account-level public access block with all four "
               "settings on.",
               _require(S3_ACCOUNT_PAB, "S3 account public access block with all four settings on", "CW-NET-10",
                        _pab_all_on)),
    resource_rule("cw-net-11-human-roles-require-mfa",
                  "CW-NET-11 (FSBP IAM.5, IAM.19 for roles): a role that IAM principals can assume requires "
                  "aws:MultiFactorAuthPresent true in its trust policy.",
                  only((IAM_ROLE,), _role_requires_mfa)),
    stack_rule("cw-net-11-operator-role-declared",
               "CW-NET-11 (FSBP IAM.5, IAM.19): the stack declares an operator role whose trust policy requires MFA.",
               _require(IAM_ROLE, "operator role assumable by IAM principals with MFA", "CW-NET-11",
                        _operator_role_present)),
    resource_rule("cw-net-12-cloudtrail-multi-region-validated",
                  "CW-NET-12 (FSBP CloudTrail.1, CloudTrail.4; Checkov CKV_AWS_67, CKV_AWS_36): trails are "
                  "multi-region, include global service events, log, and validate log files.",
                  only((TRAIL,), _trail_multi_region_validated)),
    resource_rule("cw-net-12-cloudtrail-kms",
                  "CW-NET-12 (FSBP CloudTrail.2; Checkov CKV_AWS_35): trail logs are encrypted with a KMS key.",
                  only((TRAIL,), _trail_kms)),
    resource_rule("cw-net-12-cloudtrail-cloudwatch-logs",
                  "CW-NET-12 (FSBP CloudTrail.5; Checkov CKV2_AWS_10): trails deliver to CloudWatch Logs.",
                  only((TRAIL,), _trail_cloudwatch)),
    stack_rule("cw-net-12-cloudtrail-declared",
               "CW-NET-12 (FSBP CloudTrail.1): the stack declares a multi-region trail with log file validation.",
               _require(TRAIL, "multi-region CloudTrail with log file validation", "CW-NET-12",
                        lambda p: is_true(p.get("isMultiRegionTrail")) and is_true(p.get("enableLogFileValidation")))),
]
