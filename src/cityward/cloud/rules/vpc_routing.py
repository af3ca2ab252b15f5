"""Routing (CW-NET-02): no OT subnet routes toward the internet; only DMZ route tables reach the
internet gateway.

Route tables are joined to subnets (explicit association, else the VPC's main table) and routes to
tables with `graph.Graph`, by id when it is known and by the engine's property dependencies on a
first preview; what cannot be followed is reported as "cannot decide at preview".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, StackValidationArgs

from cityward.cloud.graph import UNKNOWN, Graph, has, items, peek
from cityward.cloud.rules.registry import RuleSet
from cityward.cloud.types import (
    DEFAULT_ROUTE_TABLE,
    EGRESS_ONLY_GATEWAY,
    INTERNET_GATEWAY,
    KIND_TAG,
    NAT_GATEWAY,
    ROUTE,
    ROUTE_TABLE,
    ROUTE_TABLE_ASSOCIATION,
    SUBNET,
    VPC,
)
from cityward.cloud.values import cannot_decide, tags

RULES = RuleSet()

# Route tables are keyed by the table resource's URN; a table outside the stack by its id; a VPC's
# main table that no resource adopts by "main route table of <vpc>".


def _main_ids(vpc: Any) -> set:
    return {peek(vpc.props, k) for k in ("mainRouteTableId", "defaultRouteTableId")} - {None, UNKNOWN}


def _main_table(graph: Graph, vpc: Any) -> str:
    ids = _main_ids(vpc)
    for table in graph.of(ROUTE_TABLE, DEFAULT_ROUTE_TABLE):
        if peek(table.props, "id") in ids or (table.resource_type == DEFAULT_ROUTE_TABLE and graph.names(
                table, "defaultRouteTableId", vpc, "defaultRouteTableId", "mainRouteTableId")):
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


@RULES.stack("cw-net-02-ot-subnets-no-internet-route", control="CW-NET-02",
             description="CW-NET-02 (cityward's own rule, no external ID): no OT subnet's route table routes to an "
                         "internet gateway, NAT gateway or egress-only internet gateway.")
def _ot_no_internet_route(args: StackValidationArgs, report: ReportViolation) -> None:
    graph = Graph(args.resources)
    routes = _routes_by_table(graph)
    tables = _tables_of_subnets(graph)
    for subnet in graph.of(SUBNET):
        if tags(subnet.props).get(KIND_TAG) != "ot":
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


@RULES.stack("cw-net-02-igw-routes-dmz-only", control="CW-NET-02",
             description="CW-NET-02 (cityward's own rule, no external ID): only route tables of DMZ subnets may "
                         "route to the internet gateway.")
def _igw_routes_dmz_only(args: StackValidationArgs, report: ReportViolation) -> None:
    graph = Graph(args.resources)
    routes = _routes_by_table(graph)
    kinds: dict[Any, set[str]] = {}
    for subnet_urn, table in _tables_of_subnets(graph).items():
        subnet = graph.by_urn(subnet_urn)
        kinds.setdefault(table, set()).add(tags(subnet.props).get(KIND_TAG, "untagged"))
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
