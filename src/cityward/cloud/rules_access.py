"""CrossGuard rules for operator access, session logging and endpoint confinement (CW-NET-11,
CW-NET-15, CW-NET-16).

Written for a first `pulumi preview`: props are read with cityward.cloud.graph.peek/items, so an
unknown value is seen as UNKNOWN rather than raising; the stack builds the documents these rules
read (the operator's session policy, the Session document, endpoint policies) from the account id
and names only, so they are known at preview. A rule that still meets an unknown reports that it
cannot decide (fail closed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from cityward.cloud.graph import UNKNOWN, Graph, has, items, peek

ENFORCEMENT_LEVEL = EnforcementLevel.MANDATORY

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IAM_POLICY = "aws:iam/policy:Policy"
SSM_DOCUMENT = "aws:ssm/document:Document"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
ZONE_CONDITION_KEY = "ssm:resourceTag/cityward:zone"
PREVIEW = "cannot decide at preview"


def _document(props: Any, key: str) -> Any:
    """A JSON policy/document prop: its parsed value, UNKNOWN, or None when absent or not JSON."""
    value = peek(props, key)
    if value is UNKNOWN or value is None:
        return value
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, Mapping) else None


def _statements(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in items(doc.get("Statement")) if isinstance(s, Mapping)]


def _matches(pattern: str, action: str) -> bool:
    """IAM action matching with a trailing or lone wildcard (ssm:*, ssm:Start*, *)."""
    pattern, action = pattern.lower(), action.lower()
    return pattern == action or pattern == "*" or (pattern.endswith("*") and action.startswith(pattern[:-1]))


def _condition_values(statement: Mapping[str, Any], operator: str, key: str) -> list[str]:
    block = (statement.get("Condition") or {}).get(operator) or {}
    return [str(v) for v in items(block.get(key))] if isinstance(block, Mapping) else []


# --- CW-NET-11: operator shells only in the operator's zones ---------------------------------------


def _session_scoped_to_zones(args: ResourceValidationArgs, report: ReportViolation) -> None:
    doc = _document(args.props, "policy")
    if doc is UNKNOWN:
        report(f"CW-NET-11: {PREVIEW}: policy {args.name}'s document is not known yet; build it from names "
               "and the account id only")
        return
    for statement in _statements(doc or {}):
        actions = [str(a) for a in items(statement.get("Action"))]
        if statement.get("Effect") != "Allow" or not any(_matches(a, "ssm:StartSession") for a in actions):
            continue
        resources = [str(r) for r in items(statement.get("Resource"))]
        on_instances = [r for r in resources if r == "*" or ":instance/" in r or r.endswith(":instance")]
        zones = [z for z in _condition_values(statement, "StringEquals", ZONE_CONDITION_KEY) if z and "*" not in z]
        if on_instances and not zones:
            report(f"CW-NET-11: policy {args.name} lets ssm:StartSession reach {', '.join(on_instances)} in every "
                   f"zone; add Condition StringEquals {ZONE_CONDITION_KEY} with the operator's zones")


# --- CW-NET-15: every session is logged, encrypted ---------------------------------------------------


def _session_document_logs(args: ResourceValidationArgs, report: ReportViolation) -> None:
    kind = peek(args.props, "documentType")
    if kind is UNKNOWN:
        report(f"CW-NET-15: {PREVIEW}: document {args.name}'s type is not known yet")
        return
    if kind != "Session":
        return
    content = _document(args.props, "content")
    if content is UNKNOWN:
        report(f"CW-NET-15: {PREVIEW}: Session document {args.name}'s content is not known yet; build it from "
               "names (log group name, key alias ARN)")
        return
    inputs = (content or {}).get("inputs") or {}
    if not inputs.get("cloudWatchLogGroupName"):
        report(f"CW-NET-15: Session document {args.name} does not log sessions to CloudWatch "
               "(inputs.cloudWatchLogGroupName)")
    if inputs.get("cloudWatchEncryptionEnabled") is not True:
        report(f"CW-NET-15: Session document {args.name} accepts unencrypted log groups "
               "(inputs.cloudWatchEncryptionEnabled must be true)")


def _session_preferences_declared(args: StackValidationArgs, report: ReportViolation) -> None:
    documents = [d for d in Graph(args.resources).of(SSM_DOCUMENT)
                 if peek(d.props, "documentType") == "Session"
                 and peek(d.props, "name") == "SSM-SessionManagerRunShell"]
    if not documents:
        report("CW-NET-15: the stack declares no Session Manager preferences (Session document "
               "SSM-SessionManagerRunShell): sessions would not be logged")


# --- CW-NET-16: endpoints confined to this account, S3 through a gateway endpoint ------------------


def _confined(statement: Mapping[str, Any]) -> bool:
    principal = [v for v in _condition_values(statement, "StringEquals", "aws:PrincipalAccount") if "*" not in v]
    if not principal:
        return False
    resources = [str(r) for r in items(statement.get("Resource"))]
    if "*" in resources:
        owner = [v for v in _condition_values(statement, "StringEquals", "aws:ResourceAccount") if "*" not in v]
        return owner == principal
    return True


def _endpoint_policy_confined(args: ResourceValidationArgs, report: ReportViolation) -> None:
    service = peek(args.props, "serviceName")
    label = f"endpoint {args.name} ({service if isinstance(service, str) else 'service unknown'})"
    if not has(args.props, "policy"):
        report(f"CW-NET-16: {label} has no endpoint policy: any principal may use it for any account's "
               "resources")
        return
    doc = _document(args.props, "policy")
    if doc is UNKNOWN:
        report(f"CW-NET-16: {PREVIEW}: {label}'s policy is not known yet; build it from the account id only")
        return
    allows = [s for s in _statements(doc or {}) if s.get("Effect") == "Allow"]
    if not allows:
        report(f"CW-NET-16: {label}'s policy is not a policy document with Allow statements")
    for statement in allows:
        if not _confined(statement):
            report(f"CW-NET-16: {label}: statement {statement.get('Sid', '(no Sid)')} is not confined to this "
                   "account (Condition StringEquals aws:PrincipalAccount, and aws:ResourceAccount when Resource "
                   "is '*')")


def _s3_gateway_endpoint(args: StackValidationArgs, report: ReportViolation) -> None:
    gateways = [e for e in Graph(args.resources).of(VPC_ENDPOINT)
                if peek(e.props, "vpcEndpointType") == "Gateway"
                and str(peek(e.props, "serviceName", "")).endswith(".s3") and has(e.props, "routeTableIds")]
    if not gateways:
        report("CW-NET-16: the stack declares no S3 gateway endpoint on the zones' route tables: S3 traffic "
               "would need an internet path")


def _only(types: tuple[str, ...], fn: Callable) -> Callable:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type in types:
            fn(args, report)

    return validate


POLICIES = [
    ResourceValidationPolicy(
        name="cw-net-11-operator-sessions-scoped-to-zones",
        description="CW-NET-11 (cityward; no Checkov/FSBP equivalent; least privilege, IEC 62443 SR 2.1): "
                    "ssm:StartSession on instances is allowed only with Condition StringEquals "
                    f"{ZONE_CONDITION_KEY} naming the operator's zones.",
        validate=_only((ROLE_POLICY, IAM_POLICY), _session_scoped_to_zones),
        enforcement_level=ENFORCEMENT_LEVEL),
    ResourceValidationPolicy(
        name="cw-net-15-session-document-logs-encrypted",
        description="CW-NET-15 (cityward; FSBP SSM.6 companion, Checkov CKV_AWS_112/CKV_AWS_113): Session "
                    "Manager preferences log every session to CloudWatch with cloudWatchEncryptionEnabled true.",
        validate=_only((SSM_DOCUMENT,), _session_document_logs),
        enforcement_level=ENFORCEMENT_LEVEL),
    StackValidationPolicy(
        name="cw-net-15-session-preferences-declared",
        description="CW-NET-15 (cityward; Checkov CKV_AWS_112): the stack declares the Session Manager "
                    "preferences document SSM-SessionManagerRunShell.",
        validate=_session_preferences_declared,
        enforcement_level=ENFORCEMENT_LEVEL),
    ResourceValidationPolicy(
        name="cw-net-16-endpoint-policy-this-account",
        description="CW-NET-16 (cityward; no Checkov/FSBP equivalent; AWS data perimeter guidance): every VPC "
                    "endpoint has a policy whose Allow statements require aws:PrincipalAccount, and "
                    "aws:ResourceAccount for Resource '*', to be this account.",
        validate=_only((VPC_ENDPOINT,), _endpoint_policy_confined),
        enforcement_level=ENFORCEMENT_LEVEL),
    StackValidationPolicy(
        name="cw-net-16-s3-gateway-endpoint",
        description="CW-NET-16 (cityward; FSBP EC2.10 companion): the stack declares an S3 gateway endpoint on "
                    "route tables, so S3 is reached without an internet path.",
        validate=_s3_gateway_endpoint,
        enforcement_level=ENFORCEMENT_LEVEL),
]
