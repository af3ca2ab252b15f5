"""Session Manager (CW-NET-11, CW-NET-15): operators start shells only in their zones, and every
session is logged, encrypted, by instances whose role may write the log.

Written for a first `pulumi preview`: props are read with cityward.cloud.graph.peek/items, so an
unknown value is seen as UNKNOWN rather than raising; the stack builds the documents these rules
read (the operator's session policy, the Session document) from the account id and names only, so
they are known at preview. A rule that still meets an unknown reports that it cannot decide (fail
closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, StackValidationArgs

from cityward.cloud.graph import UNKNOWN, Graph, items, peek
from cityward.cloud.rules.policy_documents import (
    action_matches,
    condition_values,
    covers_log_group,
    policy_document,
    policy_statements,
)
from cityward.cloud.rules.registry import RuleSet
from cityward.cloud.types import (
    IAM_POLICY,
    IAM_ROLE,
    INSTANCE_PROFILE,
    ROLE_POLICY,
    ROLE_POLICY_ATTACHMENT,
    SSM_DOCUMENT,
)
from cityward.cloud.values import CANNOT_DECIDE

RULES = RuleSet()
SESSION_DOCUMENT = "SSM-SessionManagerRunShell"  # where Session Manager reads the account's preferences
ZONE_CONDITION_KEY = "ssm:resourceTag/cityward:zone"
# What the SSM agent on an instance calls to stream a session into an encrypted log group, and to
# use the session's KMS key (Session Manager refuses to start a logged session without them).
SESSION_LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups",
                       "logs:DescribeLogStreams")
SESSION_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


@RULES.resource("cw-net-11-operator-sessions-scoped-to-zones", control="CW-NET-11", types=(ROLE_POLICY, IAM_POLICY),
                description="CW-NET-11 (cityward; no Checkov/FSBP equivalent; least privilege, IEC 62443 SR 2.1): "
                            "ssm:StartSession on instances is allowed only with Condition StringEquals "
                            f"{ZONE_CONDITION_KEY} naming the operator's zones.")
def _session_scoped_to_zones(args: ResourceValidationArgs, report: ReportViolation) -> None:
    doc = policy_document(args.props, "policy")
    if doc is UNKNOWN:
        report(f"CW-NET-11: {CANNOT_DECIDE}: policy {args.name}'s document is not known yet; build it from names "
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


@RULES.resource("cw-net-15-session-document-logs-encrypted", control="CW-NET-15", types=(SSM_DOCUMENT,),
                checkov=("CKV_AWS_113",),
                description="CW-NET-15 (cityward; FSBP SSM.6 companion, Checkov CKV_AWS_112/CKV_AWS_113): Session "
                            "Manager preferences log every session to CloudWatch with cloudWatchEncryptionEnabled "
                            "true.")
def _session_document_logs(args: ResourceValidationArgs, report: ReportViolation) -> None:
    kind = peek(args.props, "documentType")
    if kind is UNKNOWN:
        report(f"CW-NET-15: {CANNOT_DECIDE}: document {args.name}'s type is not known yet")
        return
    if kind != "Session":
        return
    content = policy_document(args.props, "content")
    if content is UNKNOWN:
        report(f"CW-NET-15: {CANNOT_DECIDE}: Session document {args.name}'s content is not known yet; build it from "
               "names (log group name, key alias ARN)")
        return
    inputs = (content or {}).get("inputs") or {}
    if not inputs.get("cloudWatchLogGroupName"):
        report(f"CW-NET-15: Session document {args.name} does not log sessions to CloudWatch "
               "(inputs.cloudWatchLogGroupName)")
    if inputs.get("cloudWatchEncryptionEnabled") is not True:
        report(f"CW-NET-15: Session document {args.name} accepts unencrypted log groups "
               "(inputs.cloudWatchEncryptionEnabled must be true)")


@RULES.stack("cw-net-15-session-preferences-declared", control="CW-NET-15",
             description="CW-NET-15 (cityward; Checkov CKV_AWS_112): the stack declares the Session Manager "
                         f"preferences document {SESSION_DOCUMENT}.")
def _session_preferences_declared(args: StackValidationArgs, report: ReportViolation) -> None:
    documents = [d for d in Graph(args.resources).of(SSM_DOCUMENT)
                 if peek(d.props, "documentType") == "Session"
                 and peek(d.props, "name") == SESSION_DOCUMENT]
    if not documents:
        report(f"CW-NET-15: the stack declares no Session Manager preferences (Session document "
               f"{SESSION_DOCUMENT}): sessions would not be logged")


def _role_statements(graph: Graph, role: Any) -> Any:
    """Every statement of the role's inline and attached customer-managed policies; UNKNOWN when a
    policy that may be the role's cannot be read yet. AWS managed policies are not read: none
    grants writing to a cityward log group."""
    documents = [peek(p, "policy") for p in items(peek(role.props, "inlinePolicies")) if isinstance(p, Mapping)]
    for policy in graph.of(ROLE_POLICY):
        named = graph.names(policy, "role", role)
        if named is UNKNOWN:
            return UNKNOWN
        if named:
            documents.append(peek(policy.props, "policy"))
    for attachment in graph.of(ROLE_POLICY_ATTACHMENT):
        named = graph.names(attachment, "role", role)
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
    return next((r for r in graph.of(IAM_ROLE) if graph.names(profile, "role", r) is True), None)


def _session_destinations(graph: Graph, report: ReportViolation) -> list[tuple[Any, str, str]]:
    """(Session document, log group name, KMS key ARN or '') of each document that logs sessions."""
    found = []
    for document in graph.of(SSM_DOCUMENT):
        if peek(document.props, "documentType") != "Session":
            continue
        content = policy_document(document.props, "content")
        if content is UNKNOWN:
            report(f"CW-NET-15: {CANNOT_DECIDE}: where Session document {document.name} logs sessions", document.urn)
            continue
        inputs = (content or {}).get("inputs") or {}
        if isinstance(inputs, Mapping) and inputs.get("cloudWatchLogGroupName"):
            found.append((document, str(inputs["cloudWatchLogGroupName"]), str(inputs.get("kmsKeyId") or "")))
    return found


@RULES.stack("cw-net-15-instance-role-writes-session-logs", control="CW-NET-15",
             description="CW-NET-15 (cityward; AWS Session Manager logging prerequisites): the role of every "
                         "instance profile may create streams in, put events to and describe the log group the "
                         "Session document names, and decrypt and generate data keys with its KMS key; else no "
                         "logged session starts.")
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
            report(f"CW-NET-15: {CANNOT_DECIDE}: which role instance profile {profile.name} carries", profile.urn)
            continue
        if role is None:
            report(f"CW-NET-15: instance profile {profile.name} carries role {peek(profile.props, 'role')!r}, "
                   "which this stack does not declare: whether it can write session logs cannot be checked",
                   profile.urn)
            continue
        statements = _role_statements(graph, role)
        if statements is UNKNOWN:
            report(f"CW-NET-15: {CANNOT_DECIDE}: the policies of role {role.name} (instance profile {profile.name})",
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

