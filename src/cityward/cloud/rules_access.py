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
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, StackValidationArgs

from cityward.cloud.graph import UNKNOWN, Graph, has, items, peek
from cityward.cloud.rules import only, resource_rule, stack_rule
from cityward.cloud.types import (
    IAM_POLICY,
    IAM_ROLE,
    INSTANCE_PROFILE,
    ROLE_POLICY,
    ROLE_POLICY_ATTACHMENT,
    SSM_DOCUMENT,
    VPC_ENDPOINT,
)

SESSION_DOCUMENT = "SSM-SessionManagerRunShell"  # where Session Manager reads the account's preferences
ZONE_CONDITION_KEY = "ssm:resourceTag/cityward:zone"
PREVIEW = "cannot decide at preview"
# What the SSM agent on an instance calls to stream a session into an encrypted log group, and to
# use the session's KMS key (Session Manager refuses to start a logged session without them).
SESSION_LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups",
                       "logs:DescribeLogStreams")
SESSION_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


def policy_document(props: Any, key: str) -> Any:
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


def policy_statements(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in items(doc.get("Statement")) if isinstance(s, Mapping)]


def action_matches(pattern: str, action: str) -> bool:
    """IAM action matching with a trailing or lone wildcard (ssm:*, ssm:Start*, *)."""
    pattern, action = pattern.lower(), action.lower()
    return pattern == action or pattern == "*" or (pattern.endswith("*") and action.startswith(pattern[:-1]))


def condition_values(statement: Mapping[str, Any], operator: str, key: str) -> list[str]:
    block = (statement.get("Condition") or {}).get(operator) or {}
    return [str(v) for v in items(block.get(key))] if isinstance(block, Mapping) else []


# --- CW-NET-11: operator shells only in the operator's zones ---------------------------------------


def _session_scoped_to_zones(args: ResourceValidationArgs, report: ReportViolation) -> None:
    doc = policy_document(args.props, "policy")
    if doc is UNKNOWN:
        report(f"CW-NET-11: {PREVIEW}: policy {args.name}'s document is not known yet; build it from names "
               "and the account id only")
        return
    for statement in policy_statements(doc or {}):
        actions = [str(a) for a in items(statement.get("Action"))]
        if statement.get("Effect") != "Allow" or not any(action_matches(a, "ssm:StartSession") for a in actions):
            continue
        resources = [str(r) for r in items(statement.get("Resource"))]
        on_instances = [r for r in resources if r == "*" or ":instance/" in r or r.endswith(":instance")]
        zones = [z for z in condition_values(statement, "StringEquals", ZONE_CONDITION_KEY) if z and "*" not in z]
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
    content = policy_document(args.props, "content")
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
                 and peek(d.props, "name") == SESSION_DOCUMENT]
    if not documents:
        report(f"CW-NET-15: the stack declares no Session Manager preferences (Session document "
               f"{SESSION_DOCUMENT}): sessions would not be logged")


def _names(graph: Graph, resource: Any, key: str, target: Any) -> Any:
    """resource.props[key] names `target` (by id, name or ARN; on a preview by dependency): True,
    False, or UNKNOWN when an unknown value was not computed from one resource of its type."""
    value = peek(resource.props, key)
    if value is None:
        return False
    if value is UNKNOWN:
        source = graph.dependency(resource, key, target.resource_type)
        return UNKNOWN if source is UNKNOWN else source is target
    return value in {peek(target.props, k) for k in ("id", "name", "arn")} - {None, UNKNOWN}


def _role_statements(graph: Graph, role: Any) -> Any:
    """Every statement of the role's inline and attached customer-managed policies; UNKNOWN when a
    policy that may be the role's cannot be read yet. AWS managed policies are not read: none
    grants writing to a cityward log group."""
    documents = [peek(p, "policy") for p in items(peek(role.props, "inlinePolicies")) if isinstance(p, Mapping)]
    for policy in graph.of(ROLE_POLICY):
        named = _names(graph, policy, "role", role)
        if named is UNKNOWN:
            return UNKNOWN
        if named:
            documents.append(peek(policy.props, "policy"))
    for attachment in graph.of(ROLE_POLICY_ATTACHMENT):
        named = _names(graph, attachment, "role", role)
        if named is UNKNOWN:
            return UNKNOWN
        managed = graph.ref(attachment, "policyArn", IAM_POLICY) if named else None
        if managed is UNKNOWN:
            return UNKNOWN
        if managed is not None:
            documents.append(peek(managed.props, "policy"))
    statements: list[Mapping[str, Any]] = []
    for document in documents:
        doc = policy_document({"policy": document}, "policy")
        if doc is UNKNOWN:
            return UNKNOWN
        statements += policy_statements(doc or {})
    return statements


def covers_log_group(resource: str, group: str) -> bool:
    """An IAM resource that covers log group `group` or its streams (wildcards as IAM reads them)."""
    if resource == "*":
        return True
    head, sep, tail = resource.partition(":log-group:")
    if not sep or head.split(":")[2:3] != ["logs"]:
        return False
    return fnmatchcase(group, tail) or fnmatchcase(f"{group}:log-stream:session", tail)


def _on_key(statement: Mapping[str, Any], resource: str, key: str) -> bool:
    """The statement reaches the key the Session document names (its ARN, or its alias ARN): by
    that ARN, or on '*' when unconditioned or conditioned on that alias (kms:ResourceAliases)."""
    if resource == key:
        return True
    if resource != "*":
        return False
    conditions = statement.get("Condition")
    if not conditions:
        return True
    alias = f"alias/{key.partition(':alias/')[2]}" if ":alias/" in key else None
    aliases = [str(v) for block in conditions.values() if isinstance(block, Mapping)
               for v in items(block.get("kms:ResourceAliases"))]
    return alias is not None and alias in aliases


def _denied(statements: list[Mapping[str, Any]], actions: tuple[str, ...], covers) -> list[str]:
    """The actions no Allow statement grants on a resource `covers(statement, resource)` accepts."""
    granted = set()
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        resources = [str(r) for r in items(statement.get("Resource"))]
        if any(covers(statement, r) for r in resources):
            granted |= {a for a in actions for p in items(statement.get("Action")) if action_matches(str(p), a)}
    return [a for a in actions if a not in granted]


def _role_of_profile(graph: Graph, profile: Any) -> Any:
    value = peek(profile.props, "role")
    if value is UNKNOWN:
        return graph.dependency(profile, "role", IAM_ROLE)
    return next((r for r in graph.of(IAM_ROLE) if _names(graph, profile, "role", r) is True), None)


def _session_destinations(graph: Graph, report: ReportViolation) -> list[tuple[Any, str, str]]:
    """(Session document, log group name, KMS key ARN or '') of each document that logs sessions."""
    found = []
    for document in graph.of(SSM_DOCUMENT):
        if peek(document.props, "documentType") != "Session":
            continue
        content = policy_document(document.props, "content")
        if content is UNKNOWN:
            report(f"CW-NET-15: {PREVIEW}: where Session document {document.name} logs sessions", document.urn)
            continue
        inputs = (content or {}).get("inputs") or {}
        if isinstance(inputs, Mapping) and inputs.get("cloudWatchLogGroupName"):
            found.append((document, str(inputs["cloudWatchLogGroupName"]), str(inputs.get("kmsKeyId") or "")))
    return found


def _instances_write_session_logs(args: StackValidationArgs, report: ReportViolation) -> None:
    graph = Graph(args.resources)
    destinations = _session_destinations(graph, report)
    profiles = graph.of(INSTANCE_PROFILE)
    if destinations and not profiles:
        report(f"CW-NET-15: Session document {destinations[0][0].name} logs sessions to {destinations[0][1]}, but "
               "the stack declares no instance profile whose role could write them")
    for profile in profiles:
        role = _role_of_profile(graph, profile)
        if role is UNKNOWN:
            report(f"CW-NET-15: {PREVIEW}: which role instance profile {profile.name} carries", profile.urn)
            continue
        if role is None:
            report(f"CW-NET-15: instance profile {profile.name} carries role {peek(profile.props, 'role')!r}, "
                   "which this stack does not declare: whether it can write session logs cannot be checked",
                   profile.urn)
            continue
        statements = _role_statements(graph, role)
        if statements is UNKNOWN:
            report(f"CW-NET-15: {PREVIEW}: the policies of role {role.name} (instance profile {profile.name})",
                   profile.urn)
            continue
        for document, group, key in destinations:
            missing = _denied(statements, SESSION_LOG_ACTIONS, lambda _s, r, g=group: covers_log_group(r, g))
            if key:
                missing += _denied(statements, SESSION_KEY_ACTIONS, lambda s, r, k=key: _on_key(s, r, k))
            if missing:
                report(f"CW-NET-15: role {role.name} of instance profile {profile.name} is not allowed "
                       f"{', '.join(missing)} on log group {group}{f' / key {key}' if key else ''} (Session "
                       f"document {document.name}): Session Manager refuses to start logged sessions on its "
                       "instances", profile.urn)


# --- CW-NET-16: endpoints confined to this account, S3 through a gateway endpoint ------------------


def _confined(statement: Mapping[str, Any]) -> bool:
    principal = [v for v in condition_values(statement, "StringEquals", "aws:PrincipalAccount") if "*" not in v]
    if not principal:
        return False
    resources = [str(r) for r in items(statement.get("Resource"))]
    if "*" in resources:
        owner = [v for v in condition_values(statement, "StringEquals", "aws:ResourceAccount") if "*" not in v]
        return owner == principal
    return True


def _endpoint_policy_confined(args: ResourceValidationArgs, report: ReportViolation) -> None:
    service = peek(args.props, "serviceName")
    label = f"endpoint {args.name} ({service if isinstance(service, str) else 'service unknown'})"
    if not has(args.props, "policy"):
        report(f"CW-NET-16: {label} has no endpoint policy: any principal may use it for any account's "
               "resources")
        return
    doc = policy_document(args.props, "policy")
    if doc is UNKNOWN:
        report(f"CW-NET-16: {PREVIEW}: {label}'s policy is not known yet; build it from the account id only")
        return
    allows = [s for s in policy_statements(doc or {}) if s.get("Effect") == "Allow"]
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



POLICIES = [
    resource_rule("cw-net-11-operator-sessions-scoped-to-zones",
                  "CW-NET-11 (cityward; no Checkov/FSBP equivalent; least privilege, IEC 62443 SR 2.1): "
                  "ssm:StartSession on instances is allowed only with Condition StringEquals "
                  f"{ZONE_CONDITION_KEY} naming the operator's zones.",
                  only((ROLE_POLICY, IAM_POLICY), _session_scoped_to_zones)),
    resource_rule("cw-net-15-session-document-logs-encrypted",
                  "CW-NET-15 (cityward; FSBP SSM.6 companion, Checkov CKV_AWS_112/CKV_AWS_113): Session "
                  "Manager preferences log every session to CloudWatch with cloudWatchEncryptionEnabled true.",
                  only((SSM_DOCUMENT,), _session_document_logs)),
    stack_rule("cw-net-15-session-preferences-declared",
               "CW-NET-15 (cityward; Checkov CKV_AWS_112): the stack declares the Session Manager "
               f"preferences document {SESSION_DOCUMENT}.",
               _session_preferences_declared),
    stack_rule("cw-net-15-instance-role-writes-session-logs",
               "CW-NET-15 (cityward; AWS Session Manager logging prerequisites): the role of every instance "
               "profile may create streams in, put events to and describe the log group the Session document "
               "names, and decrypt and generate data keys with its KMS key; else no logged session starts.",
               _instances_write_session_logs),
    resource_rule("cw-net-16-endpoint-policy-this-account",
                  "CW-NET-16 (cityward; no Checkov/FSBP equivalent; AWS data perimeter guidance): every VPC "
                  "endpoint has a policy whose Allow statements require aws:PrincipalAccount, and "
                  "aws:ResourceAccount for Resource '*', to be this account.",
                  only((VPC_ENDPOINT,), _endpoint_policy_confined)),
    stack_rule("cw-net-16-s3-gateway-endpoint",
               "CW-NET-16 (cityward; FSBP EC2.10 companion): the stack declares an S3 gateway endpoint on "
               "route tables, so S3 is reached without an internet path.",
               _s3_gateway_endpoint),
]
