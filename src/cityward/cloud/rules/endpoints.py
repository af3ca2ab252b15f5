"""VPC endpoints (CW-NET-07, CW-NET-16): the Session Manager set of interface endpoints in every VPC,
each with private DNS and a security group admitting only HTTPS from the VPC; every endpoint's
policy confined to this account; S3 reached through a gateway endpoint."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, StackValidationArgs

from cityward.cloud.graph import UNKNOWN, Graph, has, items, peek
from cityward.cloud.rules.policy_documents import condition_values, policy_document, policy_statements
from cityward.cloud.rules.registry import RuleSet
from cityward.cloud.types import SECURITY_GROUP, SG_INGRESS, VPC, VPC_ENDPOINT
from cityward.cloud.values import CANNOT_DECIDE, cannot_decide, inside, is_true, number, port_range, protocol_name

RULES = RuleSet()
SESSION_MANAGER_SERVICES = ("ssm", "ssmmessages", "ec2messages", "logs", "kms")


@RULES.resource("cw-net-07-endpoint-private-dns", control="CW-NET-07", types=(VPC_ENDPOINT,),
                description="CW-NET-07 (cityward; no Checkov/FSBP equivalent): interface endpoints use private DNS "
                            "and their own security group.")
def _endpoint_private_dns(args: ResourceValidationArgs, report: ReportViolation) -> None:
    p = args.props
    if str(p.get("vpcEndpointType", "Gateway")) != "Interface":
        return
    if not is_true(p.get("privateDnsEnabled")):
        report(f"CW-NET-07: interface endpoint {p.get('serviceName')} has no private DNS; instances would "
               "resolve the public service address")
    if not items(peek(p, "securityGroupIds")):
        report(f"CW-NET-07: interface endpoint {p.get('serviceName')} has no security group of its own")


@RULES.stack("cw-net-07-session-manager-endpoints", control="CW-NET-07",
             description="CW-NET-07 (cityward): every VPC has interface endpoints for ssm, ssmmessages, ec2messages, "
                         "logs and kms, so operators use Session Manager and no bastion or internet path is needed.")
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


@RULES.stack("cw-net-07-endpoint-sg-https-from-vpc", control="CW-NET-07",
             description="CW-NET-07 (cityward): interface endpoint security groups admit only tcp 443 from inside "
                         "the VPC.")
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
                https = protocol_name(p.get("ipProtocol")) == "tcp" and port_range(p, "ipProtocol") == (443, 443)
                from_vpc = vpc_cidr is not None and inside(p.get("cidrIpv4"), [vpc_cidr])
                if not (https and (from_vpc or has(p, "referencedSecurityGroupId"))) or p.get("cidrIpv6"):
                    report(f"CW-NET-07: endpoint security group rule {rule.name} allows {p.get('ipProtocol')} "
                           f"{number(p.get('fromPort'))}-{number(p.get('toPort'))} from "
                           f"{p.get('cidrIpv4') or p.get('cidrIpv6') or p.get('prefixListId')}; only tcp 443 from "
                           "the VPC", rule.urn)


def _confined(statement: Mapping[str, Any]) -> bool:
    principal = [v for v in condition_values(statement, "StringEquals", "aws:PrincipalAccount") if "*" not in v]
    if not principal:
        return False
    resources = [str(r) for r in items(statement.get("Resource"))]
    if "*" in resources:
        owner = [v for v in condition_values(statement, "StringEquals", "aws:ResourceAccount") if "*" not in v]
        return owner == principal
    return True


@RULES.resource("cw-net-16-endpoint-policy-this-account", control="CW-NET-16", types=(VPC_ENDPOINT,),
                description="CW-NET-16 (cityward; no Checkov/FSBP equivalent; AWS data perimeter guidance): every "
                            "VPC endpoint has a policy whose Allow statements require aws:PrincipalAccount, and "
                            "aws:ResourceAccount for Resource '*', to be this account.")
def _endpoint_policy_confined(args: ResourceValidationArgs, report: ReportViolation) -> None:
    service = peek(args.props, "serviceName")
    label = f"endpoint {args.name} ({service if isinstance(service, str) else 'service unknown'})"
    if not has(args.props, "policy"):
        report(f"CW-NET-16: {label} has no endpoint policy: any principal may use it for any account's "
               "resources")
        return
    doc = policy_document(args.props, "policy")
    if doc is UNKNOWN:
        report(f"CW-NET-16: {CANNOT_DECIDE}: {label}'s policy is not known yet; build it from the account id only")
        return
    allows = [s for s in policy_statements(doc or {}) if s.get("Effect") == "Allow"]
    if not allows:
        report(f"CW-NET-16: {label}'s policy is not a policy document with Allow statements")
    for statement in allows:
        if not _confined(statement):
            report(f"CW-NET-16: {label}: statement {statement.get('Sid', '(no Sid)')} is not confined to this "
                   "account (Condition StringEquals aws:PrincipalAccount, and aws:ResourceAccount when Resource "
                   "is '*')")


@RULES.stack("cw-net-16-s3-gateway-endpoint", control="CW-NET-16",
             description="CW-NET-16 (cityward; FSBP EC2.10 companion): the stack declares an S3 gateway endpoint on "
                         "route tables, so S3 is reached without an internet path.")
def _s3_gateway_endpoint(args: StackValidationArgs, report: ReportViolation) -> None:
    gateways = [e for e in Graph(args.resources).of(VPC_ENDPOINT)
                if peek(e.props, "vpcEndpointType") == "Gateway"
                and str(peek(e.props, "serviceName", "")).endswith(".s3") and has(e.props, "routeTableIds")]
    if not gateways:
        report("CW-NET-16: the stack declares no S3 gateway endpoint on the zones' route tables: S3 traffic "
               "would need an internet path")

