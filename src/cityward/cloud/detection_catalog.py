"""What the account must watch (CW-NET-14, CW-NET-15): one catalog for the Detection component
that declares it and the policy-pack rules that check it.

Plain data, no pulumi_aws import, so the policy pack loads it without the provider SDK.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# --- CW-NET-14 ----------------------------------------------------------------------------

GUARDDUTY_FREQUENCY = "FIFTEEN_MINUTES"
# S3 data events, EKS audit logs, malware scans of EBS volumes when a finding names an instance.
GUARDDUTY_FEATURES = ("S3_DATA_EVENTS", "EKS_AUDIT_LOGS", "EBS_MALWARE_PROTECTION")

# Security Hub standards: (label, path of the standards ARN, oldest version accepted). Both are
# regional ARNs; CIS v1.2.0's global `ruleset/` ARN is superseded and not accepted.
FSBP = ("AWS Foundational Security Best Practices", "aws-foundational-security-best-practices", (1, 0, 0))
CIS = ("CIS AWS Foundations Benchmark", "cis-aws-foundations-benchmark", (1, 4, 0))
STANDARDS = (FSBP, CIS)
STANDARD_VERSIONS = {FSBP[1]: "1.0.0", CIS[1]: "3.0.0"}  # what the component subscribes to


def standards_arn(partition: str, region: str, path: str, version: str) -> str:
    return f"arn:{partition}:securityhub:{region}::standards/{path}/v/{version}"


_STANDARD_ARN = re.compile(r"^arn:[a-z-]+:securityhub:[a-z0-9-]+::standards/([a-z0-9-]+)/v/(\d+(?:\.\d+)*)$")


def standard_of(arn: str) -> tuple[str, tuple[int, ...]] | None:
    """(standard path, version) of a regional standards ARN, else None."""
    match = _STANDARD_ARN.match(arn)
    if not match:
        return None
    return match.group(1), tuple(int(part) for part in match.group(2).split("."))


# AWS Config managed rules (source identifiers) and the cityward control each one watches.
CONFIG_RULES = {
    "VPC_FLOW_LOGS_ENABLED": "CW-NET-05",
    "VPC_DEFAULT_SECURITY_GROUP_CLOSED": "CW-NET-04",
    "RESTRICTED_INCOMING_TRAFFIC": "CW-NET-03",
    "INCOMING_SSH_DISABLED": "CW-NET-03",
    "EC2_IMDSV2_CHECK": "CW-NET-08",
    "CLOUD_TRAIL_ENABLED": "CW-NET-12",
    "CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED": "CW-NET-12",
    "CMK_BACKING_KEY_ROTATION_ENABLED": "CW-NET-06",
    "EC2_EBS_ENCRYPTION_BY_DEFAULT": "CW-NET-09",
    "S3_ACCOUNT_LEVEL_PUBLIC_ACCESS_BLOCKS": "CW-NET-10",
}

# --- CW-NET-15 ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Watch:
    """One class of change the trail's log group is filtered for, with an alarm on it."""

    key: str  # names the filter, metric and alarm: never a list position
    title: str
    watches: str  # the cityward control whose drift it reveals
    cis: str  # its CIS AWS Foundations v1.4.0 recommendation
    security_hub: str  # the Security Hub control (CIS standard) that checks the same alarm
    events: tuple[str, ...] = ()  # CloudTrail event names the filter must match
    conditions: tuple[str, ...] = ()  # further terms the filter must contain (see `normalise`)
    source: str = ""  # the event source the event names belong to, if one

    @property
    def pattern(self) -> str:
        """The CloudWatch Logs filter pattern (JSON syntax) for this class."""
        terms = [f"($.eventName = {event})" for event in self.events]
        parts = [f"($.eventSource = {self.source})"] if self.source else []
        if terms:
            parts.append(terms[0] if len(terms) == 1 else "(" + " || ".join(terms) + ")")
        parts += [f"({condition})" for condition in self.conditions]
        return "{ " + " && ".join(parts) + " }"

    @property
    def metric(self) -> str:
        return f"cityward-{self.key}"

    @property
    def reference(self) -> str:
        return f"CIS {self.cis}, Security Hub {self.security_hub}"


METRIC_NAMESPACE = "Cityward/Security"

# Route 53 Resolver delivers query logs through CloudWatch Logs' log delivery service, which
# writes to a log group only when a resource policy allows it these actions.
DELIVERY_SERVICE = "delivery.logs.amazonaws.com"
DELIVERY_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")

WATCHES = (
    Watch("security-group-changes", "security group changes", "CW-NET-03", "4.10", "CloudWatch.10",
          ("AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "RevokeSecurityGroupIngress",
           "RevokeSecurityGroupEgress", "ModifySecurityGroupRules", "CreateSecurityGroup", "DeleteSecurityGroup")),
    Watch("nacl-changes", "network ACL changes", "CW-NET-03", "4.11", "CloudWatch.11",
          ("CreateNetworkAcl", "CreateNetworkAclEntry", "DeleteNetworkAcl", "DeleteNetworkAclEntry",
           "ReplaceNetworkAclEntry", "ReplaceNetworkAclAssociation")),
    Watch("gateway-changes", "network gateway changes", "CW-NET-02", "4.12", "CloudWatch.12",
          ("CreateCustomerGateway", "DeleteCustomerGateway", "AttachInternetGateway", "CreateInternetGateway",
           "DeleteInternetGateway", "DetachInternetGateway", "CreateNatGateway", "DeleteNatGateway",
           "CreateEgressOnlyInternetGateway", "CreateTransitGateway", "CreateTransitGatewayVpcAttachment",
           "CreateVpnGateway", "AttachVpnGateway", "CreateVpnConnection")),
    Watch("route-table-changes", "route table changes", "CW-NET-02", "4.13", "CloudWatch.13",
          ("CreateRoute", "CreateRouteTable", "ReplaceRoute", "ReplaceRouteTableAssociation", "DeleteRouteTable",
           "DeleteRoute", "AssociateRouteTable", "DisassociateRouteTable"), source="ec2.amazonaws.com"),
    Watch("vpc-changes", "VPC changes", "CW-NET-01", "4.14", "CloudWatch.14",
          ("CreateVpc", "DeleteVpc", "ModifyVpcAttribute", "AcceptVpcPeeringConnection",
           "CreateVpcPeeringConnection", "DeleteVpcPeeringConnection", "RejectVpcPeeringConnection",
           "CreateVpcEndpoint", "ModifyVpcEndpoint", "DeleteVpcEndpoints")),
    Watch("cloudtrail-changes", "CloudTrail configuration changes", "CW-NET-12", "4.5", "CloudWatch.5",
          ("CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging", "PutEventSelectors")),
    Watch("root-usage", "root account usage", "CW-NET-11", "4.3", "CloudWatch.1",
          conditions=('$.userIdentity.type = "Root"', "$.userIdentity.invokedBy NOT EXISTS",
                      '$.eventType != "AwsServiceEvent"')),
    Watch("console-signin-without-mfa", "console sign-in without MFA", "CW-NET-11", "4.2", "CloudWatch.3",
          ("ConsoleLogin",), ('$.additionalEventData.MFAUsed != "Yes"', '$.responseElements.ConsoleLogin = "Success"')),
)

_EVENT_NAME = re.compile(r"\$\.eventName\s*=\s*\"?([A-Za-z0-9]+)\"?")


def normalise(pattern: str) -> str:
    """A filter pattern without blanks and quotes, to compare terms however they are spaced."""
    return re.sub(r"[\s\"']", "", pattern)


def covers(pattern: str, watch: Watch) -> bool:
    """The filter pattern matches every event name and contains every condition of `watch`."""
    events = set(_EVENT_NAME.findall(pattern))
    text = normalise(pattern)
    return set(watch.events) <= events and all(normalise(c) in text for c in watch.conditions) and (
        not watch.source or normalise(f"$.eventSource = {watch.source}") in text)
