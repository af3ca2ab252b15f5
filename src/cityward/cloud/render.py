"""Print a plan as a table for people or as JSON for machines."""

from __future__ import annotations

import json
from typing import Any

from cityward.cloud import types as T
from cityward.cloud.graph import is_unknown
from cityward.cloud.plan import Plan

UNKNOWN_SHOWN = "(known after create)"

# Per resource type, the properties worth a glance; "tags.X" reads one tag.
KEY_PROPERTIES: dict[str, tuple[str, ...]] = {
    T.VPC: ("cidrBlock", "enableDnsHostnames", f"tags.{T.ZONES_TAG}"),
    T.SUBNET: (f"tags.{T.ZONE_TAG}", "cidrBlock", "availabilityZone", "mapPublicIpOnLaunch"),
    T.ROUTE_TABLE: (f"tags.{T.ZONE_TAG}",),
    T.ROUTE: ("routeTableId", "destinationCidrBlock", "gatewayId", "natGatewayId"),
    T.ROUTE_TABLE_ASSOCIATION: ("subnetId", "routeTableId"),
    T.NETWORK_ACL: (f"tags.{T.ZONE_TAG}",),
    T.NETWORK_ACL_ASSOCIATION: ("subnetId", "networkAclId"),
    T.NETWORK_ACL_RULE: ("networkAclId", "ruleNumber", "egress", "ruleAction", "protocol", "cidrBlock", "fromPort",
                         "toPort"),
    T.SECURITY_GROUP: ("name",),
    T.SG_INGRESS: ("securityGroupId", "ipProtocol", "fromPort", "toPort", "cidrIpv4", "referencedSecurityGroupId",
                   f"tags.{T.CONDUIT_TAG}"),
    T.SG_EGRESS: ("securityGroupId", "ipProtocol", "fromPort", "toPort", "cidrIpv4", "referencedSecurityGroupId",
                  f"tags.{T.CONDUIT_TAG}"),
    T.DEFAULT_SG: ("ingress", "egress"),
    T.DEFAULT_NACL: ("ingress", "egress"),
    T.DEFAULT_ROUTE_TABLE: ("routes",),
    T.VPC_ENDPOINT: ("serviceName", "vpcEndpointType", "privateDnsEnabled"),
    T.FLOW_LOG: ("vpcId", "trafficType", "logDestinationType", "logDestination"),
    T.LOG_GROUP: ("name", "retentionInDays", "kmsKeyId"),
    T.KMS_KEY: ("enableKeyRotation", "rotationPeriodInDays"),
    T.KMS_ALIAS: ("name", "targetKeyId"),
    T.IMDS_DEFAULTS: ("httpTokens", "httpPutResponseHopLimit"),
    T.EBS_DEFAULT_ENCRYPTION: ("enabled",),
    T.S3_ACCOUNT_PAB: ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"),
    T.S3_BUCKET_PAB: ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"),
    T.IAM_ROLE: ("name", "maxSessionDuration"),
    T.BUCKET: ("bucket",),
    T.TRAIL: ("name", "isMultiRegionTrail", "enableLogFileValidation", "kmsKeyId", "cloudWatchLogsGroupArn"),
    T.TGW_ROUTE_TABLE: (f"tags.{T.SITE_TAG}", f"tags.{T.ZONE_TAG}"),
    T.TGW_ROUTE: ("transitGatewayRouteTableId", "destinationCidrBlock", "transitGatewayAttachmentId", "blackhole"),
    T.CUSTOMER_GATEWAY: ("ipAddress", "bgpAsn", f"tags.{T.SITE_TAG}"),
    T.VPN: ("customerGatewayId", "transitGatewayId", "localIpv4NetworkCidr", "staticRoutesOnly"),
}


def _whole_numbers_as_ints(value: Any) -> Any:
    """Engine numbers are floats; show whole numbers as ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers_as_ints(v) for v in value]
    return value


def short_type(token: str) -> str:
    """A token as module:Type: types.SECURITY_GROUP gives 'ec2:SecurityGroup'."""
    parts = token.split(":")
    return f"{parts[1].split('/')[0]}:{parts[-1]}" if len(parts) == 3 else token


def key_properties(plan: Plan, resource) -> dict[str, Any]:
    # ids are mock values: show the resource name they point to instead; on a first preview an id
    # is unknown: show the resource it is computed from
    names = {r.id: r.name for r in plan.resources if r.id}
    by_urn = {r.urn: r.name for r in plan.resources}
    wanted = KEY_PROPERTIES.get(resource.type, ())
    found: dict[str, Any] = {}
    for key in wanted:
        if key.startswith("tags."):
            value = (resource.outputs.get("tags") or {}).get(key[5:])
        else:
            value = resource.outputs.get(key)
        if value is None:
            continue
        if is_unknown(value):
            sources = resource.dependencies.get(key, [])
            value = by_urn.get(sources[0], UNKNOWN_SHOWN) if len(sources) == 1 else UNKNOWN_SHOWN
        elif key.endswith("Id") and isinstance(value, str) and value in names:
            value = names[value]
        found[key] = _whole_numbers_as_ints(value)
    return found


def render_json(plan: Plan) -> str:
    doc = {
        "stack": plan.stack,
        "configFile": str(plan.config_file),
        "mode": plan.mode,
        "summary": {
            "resources": len(plan.resources),
            "mandatoryViolations": len(plan.mandatory),
            "advisoryViolations": len(plan.violations) - len(plan.mandatory),
            "seconds": round(plan.seconds, 3),
        },
        "resources": [
            {"type": r.type, "name": r.name, "urn": r.urn, "properties": key_properties(plan, r),
             "inputs": _whole_numbers_as_ints(r.inputs)}
            for r in plan.resources
        ],
        "violations": [
            {"policy": v.policy, "level": v.level, "message": v.message, "resourceType": v.resource_type,
             "resourceName": v.resource_name, "urn": v.urn, "description": v.description}
            for v in plan.violations
        ],
        "warnings": plan.warnings,
    }
    return json.dumps(doc, indent=2, default=str)


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def render_table(plan: Plan) -> str:
    rows = [(short_type(r.type), r.name,
             " ".join(f"{k.removeprefix('tags.')}={_format(v)}" for k, v in key_properties(plan, r).items()))
            for r in plan.resources]
    width_type = max((len(r[0]) for r in rows), default=4)
    width_name = max((len(r[1]) for r in rows), default=4)
    mode = "as a first preview sees it (ids and computed outputs unknown)" if plan.first_preview else \
        "every value known"
    lines = [f"Plan for stack '{plan.stack}' ({plan.config_file}), offline under Pulumi mocks, {mode}", ""]
    lines.append(f"{'TYPE':<{width_type}}  {'NAME':<{width_name}}  KEY PROPERTIES")
    lines += [f"{t:<{width_type}}  {n:<{width_name}}  {p}".rstrip() for t, n, p in rows]
    lines.append("")
    if plan.violations:
        lines.append("POLICY VIOLATIONS (policies/pulumi)")
        for v in plan.violations:
            where = f"{short_type(v.resource_type)} {v.resource_name}" if v.resource_name else "stack"
            lines.append(f"  [{v.level}] {v.policy}  {where}: {v.message}")
        lines.append("")
    lines += [f"warning: {w}" for w in plan.warnings]
    advisory = len(plan.violations) - len(plan.mandatory)
    lines.append(f"{len(plan.resources)} resources planned; {len(plan.mandatory)} mandatory and {advisory} "
                 f"advisory policy violations; {plan.seconds:.1f} s")
    return "\n".join(lines)
