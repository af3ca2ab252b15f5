"""Every CrossGuard rule of policies/pulumi, run in-process on a violating and a compliant input.

Resource rules get engine-style inputs (camelCase, numbers as floats); stack rules get a small
set of resources with outputs, joined by `id` as the engine's stack analysis would.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml
from pulumi_policy import (
    EnforcementLevel,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from cityward.cloud import rules as RULES
from cityward.cloud import types
from cityward.cloud.evaluate import evaluate, policy_props, read_only, resource_args, stack_resource
from cityward.cloud.mocks import PlannedResource
from cityward.cloud.rules import endpoints as endpoint_rules
from cityward.cloud.rules import session_manager

PACK = Path(__file__).resolve().parents[2] / "policies" / "pulumi"
# The rules this file runs on inputs it writes: those of CW-NET-01..12 but the operator-session rule
# (test_cloud_planning runs the Session Manager rules over planned stacks).
POLICIES = {r.name: r.policy for r in RULES.RULES
            if r.control <= "CW-NET-12" and r.validate.__module__ != session_manager.__name__}

T = {  # engine type tokens, by a short name
    "vpc": types.VPC, "subnet": types.SUBNET, "route": types.ROUTE, "rt": types.ROUTE_TABLE,
    "assoc": types.ROUTE_TABLE_ASSOCIATION, "igw": types.INTERNET_GATEWAY, "sg": types.SECURITY_GROUP,
    "in": types.SG_INGRESS, "out": types.SG_EGRESS, "sgrule": types.SG_RULE_LEGACY, "nacl": types.NETWORK_ACL,
    "naclrule": types.NETWORK_ACL_RULE, "dsg": types.DEFAULT_SG, "dnacl": types.DEFAULT_NACL, "flow": types.FLOW_LOG,
    "lg": types.LOG_GROUP, "key": types.KMS_KEY, "vpce": types.VPC_ENDPOINT, "imds": types.IMDS_DEFAULTS,
    "instance": types.INSTANCE, "lt": types.LAUNCH_TEMPLATE, "ebs": types.EBS_DEFAULT_ENCRYPTION,
    "pab": types.S3_ACCOUNT_PAB, "bpab": types.S3_BUCKET_PAB, "role": types.IAM_ROLE, "trail": types.TRAIL,
    "nat": types.NAT_GATEWAY,
}


def run_resource_rule(name: str, kind: str, props: dict) -> list[str]:
    policy = POLICIES[name]
    assert isinstance(policy, ResourceValidationPolicy)
    messages: list[str] = []
    # props wrapped as the engine does: read-only Mapping/Sequence proxies
    args = resource_args(T[kind], read_only(props), f"urn:pulumi:test::p::{T[kind]}::r", "r")
    policy.validate(args, lambda message, urn=None: messages.append(message))
    return messages


def run_stack_rule(name: str, resources: list[tuple[str, dict]]) -> list[str]:
    policy = POLICIES[name]
    assert isinstance(policy, StackValidationPolicy)
    messages: list[str] = []
    stack = [stack_resource(T[kind], read_only(props), f"urn:pulumi:test::p::{T[kind]}::r{i}", f"r{i}")
             for i, (kind, props) in enumerate(resources)]
    policy.validate(StackValidationArgs(stack), lambda message, urn=None: messages.append(message))
    return messages


def trust(principal, condition=None) -> str:
    statement = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


MFA = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
ALL_ON = {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True}


def ingress(cidr, port, proto="tcp", to=None, **extra):
    return {"cidrIpv4": cidr, "ipProtocol": proto, "fromPort": float(port), "toPort": float(to or port), **extra}


def acl_in(cidr, low, high, proto="tcp", action="allow", egress=False):
    return {"egress": egress, "ruleAction": action, "protocol": proto, "cidrBlock": cidr, "fromPort": float(low),
            "toPort": float(high), "ruleNumber": 100.0}


# (rule, resource kind, violating props, compliant props)
RESOURCE_CASES = [
    pytest.param("cw-net-03-sg-no-world-admin-ports", "in", ingress("0.0.0.0/0", 22),
                 ingress("10.40.32.0/20", 22), marks=pytest.mark.control("CW-NET-03"), id="sg-ssh-world"),
    pytest.param("cw-net-03-sg-no-world-admin-ports", "in", {"cidrIpv6": "::/0", "ipProtocol": "-1"},
                 ingress("0.0.0.0/0", 443), marks=pytest.mark.control("CW-NET-03"), id="sg-all-world-v6"),
    pytest.param("cw-net-03-sg-no-world-admin-ports", "sgrule",
                 {"type": "ingress", "cidrBlocks": ["0.0.0.0/0"], "protocol": "tcp", "fromPort": 3300.0,
                  "toPort": 3400.0},
                 {"type": "egress", "cidrBlocks": ["0.0.0.0/0"], "protocol": "tcp", "fromPort": 3389.0,
                  "toPort": 3389.0}, marks=pytest.mark.control("CW-NET-03"), id="legacy-rule-rdp-range"),
    pytest.param("cw-net-03-sg-no-world-admin-ports", "sg",
                 {"ingress": [{"cidrBlocks": ["0.0.0.0/0"], "protocol": "tcp", "fromPort": 22.0, "toPort": 22.0}]},
                 {"ingress": [{"cidrBlocks": ["10.0.0.0/8"], "protocol": "tcp", "fromPort": 22.0, "toPort": 22.0}]},
                 marks=pytest.mark.control("CW-NET-03"), id="inline-ssh-world"),
    pytest.param("cw-net-03-nacl-no-world-admin-ports", "naclrule", acl_in("0.0.0.0/0", 0, 1024),
                 acl_in("0.0.0.0/0", 0, 1024, action="deny"), marks=pytest.mark.control("CW-NET-03"),
                 id="nacl-ftp-ssh-world"),
    pytest.param("cw-net-03-nacl-no-world-admin-ports", "nacl",
                 {"ingress": [{"action": "allow", "cidrBlock": "0.0.0.0/0", "protocol": "-1", "fromPort": 0.0,
                               "toPort": 0.0}]},
                 {"ingress": [{"action": "allow", "cidrBlock": "0.0.0.0/0", "protocol": "tcp", "fromPort": 443.0,
                               "toPort": 443.0}]}, marks=pytest.mark.control("CW-NET-03"), id="inline-nacl-all"),
    pytest.param("cw-net-03-sg-world-ingress-web-only", "in", ingress("0.0.0.0/0", 502),
                 ingress("0.0.0.0/0", 443), marks=pytest.mark.control("CW-NET-03"), id="modbus-world"),
    pytest.param("cw-net-03-sg-world-ingress-web-only", "in", ingress("0.0.0.0/0", 47808, proto="udp"),
                 ingress("10.40.64.0/20", 47808, proto="udp"), marks=pytest.mark.control("CW-NET-03"),
                 id="bacnet-world"),
    pytest.param("cw-net-03-nacl-world-ingress-web-or-return", "naclrule", acl_in("0.0.0.0/0", 502, 502),
                 acl_in("0.0.0.0/0", 32768, 65535), marks=pytest.mark.control("CW-NET-03"), id="nacl-modbus-world"),
    pytest.param("cw-net-03-nacl-world-ingress-web-or-return", "naclrule", acl_in("::/0", 1024, 65535),
                 acl_in("0.0.0.0/0", 1024, 65535, egress=True), marks=pytest.mark.control("CW-NET-03"),
                 id="nacl-wide-return"),
    pytest.param("cw-net-03-sg-rules-are-separate-resources", "sg",
                 {"egress": [{"cidrBlocks": ["10.0.0.0/8"], "protocol": "tcp", "fromPort": 443.0, "toPort": 443.0}]},
                 {"name": "zone", "vpcId": "vpc-1"}, marks=pytest.mark.control("CW-NET-03"), id="inline-rules"),
    pytest.param("cw-net-03-sg-rules-trace-to-conduit", "in", ingress("10.40.64.0/20", 502, description="modbus"),
                 ingress("10.40.64.0/20", 502, description="modbus",
                         tags={"cityward:conduit": "ot-operations->field:tcp/502"}),
                 marks=pytest.mark.control("CW-NET-03"), id="untagged-rule"),
    pytest.param("cw-net-03-sg-rules-trace-to-conduit", "out",
                 ingress("10.40.64.0/20", 503, description="modbus",
                         tags={"cityward:conduit": "ot-operations->field:tcp/502"}),
                 ingress("10.40.64.0/20", 502, description="modbus",
                         tags={"cityward:conduit": "ot-operations->field:tcp/502"}),
                 marks=pytest.mark.control("CW-NET-03"), id="rule-differs-from-conduit"),
    pytest.param("cw-net-03-sg-no-all-traffic-egress-to-world", "out", {"cidrIpv4": "0.0.0.0/0", "ipProtocol": "-1"},
                 ingress("0.0.0.0/0", 443), marks=pytest.mark.control("CW-NET-03"), id="egress-all-world"),
    pytest.param("cw-net-04-default-sg-no-rules", "dsg",
                 {"vpcId": "vpc-1", "ingress": [{"protocol": "-1", "self": True, "fromPort": 0.0, "toPort": 0.0}]},
                 {"vpcId": "vpc-1"}, marks=pytest.mark.control("CW-NET-04"), id="default-sg-self-rule"),
    pytest.param("cw-net-04-default-nacl-no-rules", "dnacl",
                 {"defaultNetworkAclId": "acl-1", "egress": [{"action": "allow", "cidrBlock": "0.0.0.0/0",
                                                              "protocol": "-1", "ruleNo": 100.0}]},
                 {"defaultNetworkAclId": "acl-1"}, marks=pytest.mark.control("CW-NET-04"), id="default-nacl-allow"),
    pytest.param("cw-net-05-flow-log-traffic-all", "flow", {"trafficType": "REJECT", "logDestination": "arn:x"},
                 {"trafficType": "ALL", "logDestination": "arn:x"}, marks=pytest.mark.control("CW-NET-05"),
                 id="reject-only"),
    pytest.param("cw-net-05-log-group-kms", "lg", {"retentionInDays": 365.0},
                 {"retentionInDays": 365.0, "kmsKeyId": "arn:aws:kms:eu-west-1:1:key/k"},
                 marks=pytest.mark.control("CW-NET-05"), id="log-group-plain"),
    pytest.param("cw-net-05-log-group-retention-365", "lg", {"retentionInDays": 30.0, "kmsKeyId": "k"},
                 {"retentionInDays": 400.0, "kmsKeyId": "k"}, marks=pytest.mark.control("CW-NET-05"),
                 id="retention-30"),
    pytest.param("cw-net-06-kms-key-rotation", "key", {"enableKeyRotation": False},
                 {"enableKeyRotation": True, "rotationPeriodInDays": 365.0}, marks=pytest.mark.control("CW-NET-06"),
                 id="no-rotation"),
    pytest.param("cw-net-06-kms-key-rotation", "key", {"enableKeyRotation": True, "rotationPeriodInDays": 730.0},
                 {"customerMasterKeySpec": "RSA_2048", "keyUsage": "SIGN_VERIFY"},
                 marks=pytest.mark.control("CW-NET-06"), id="slow-rotation-vs-asymmetric"),
    pytest.param("cw-net-07-endpoint-private-dns", "vpce",
                 {"vpcEndpointType": "Interface", "serviceName": "com.amazonaws.eu-west-1.ssm",
                  "privateDnsEnabled": False, "securityGroupIds": ["sg-1"]},
                 {"vpcEndpointType": "Interface", "serviceName": "com.amazonaws.eu-west-1.ssm",
                  "privateDnsEnabled": True, "securityGroupIds": ["sg-1"]},
                 marks=pytest.mark.control("CW-NET-07"), id="no-private-dns"),
    pytest.param("cw-net-07-endpoint-private-dns", "vpce",
                 {"vpcEndpointType": "Interface", "serviceName": "com.amazonaws.eu-west-1.kms",
                  "privateDnsEnabled": True},
                 {"vpcEndpointType": "Gateway", "serviceName": "com.amazonaws.eu-west-1.s3"},
                 marks=pytest.mark.control("CW-NET-07"), id="no-endpoint-sg"),
    pytest.param("cw-net-08-imdsv2-required", "imds", {"httpTokens": "optional"}, {"httpTokens": "required"},
                 marks=pytest.mark.control("CW-NET-08"), id="account-imdsv1"),
    pytest.param("cw-net-08-imdsv2-required", "instance", {"ami": "ami-1"},
                 {"ami": "ami-1", "metadataOptions": {"httpTokens": "required"}},
                 marks=pytest.mark.control("CW-NET-08"), id="instance-imdsv1"),
    pytest.param("cw-net-08-imdsv2-required", "lt", {"metadataOptions": {"httpTokens": "optional"}},
                 {"metadataOptions": {"httpTokens": "required"}}, marks=pytest.mark.control("CW-NET-08"),
                 id="template-imdsv1"),
    pytest.param("cw-net-08-no-public-ip-on-launch", "subnet", {"mapPublicIpOnLaunch": True},
                 {"mapPublicIpOnLaunch": False}, marks=pytest.mark.control("CW-NET-08"), id="subnet-public-ip"),
    pytest.param("cw-net-08-no-public-ip-on-launch", "instance", {"associatePublicIpAddress": True},
                 {"associatePublicIpAddress": False}, marks=pytest.mark.control("CW-NET-08"), id="instance-public-ip"),
    pytest.param("cw-net-08-no-public-ip-on-launch", "lt",
                 {"networkInterfaces": [{"associatePublicIpAddress": "true"}]},
                 {"networkInterfaces": [{"associatePublicIpAddress": "false"}]},
                 marks=pytest.mark.control("CW-NET-08"), id="template-public-ip"),
    pytest.param("cw-net-09-ebs-encryption-by-default", "ebs", {"enabled": False}, {"enabled": True},
                 marks=pytest.mark.control("CW-NET-09"), id="ebs-off"),
    pytest.param("cw-net-10-s3-public-access-block", "pab", {**ALL_ON, "restrictPublicBuckets": False}, ALL_ON,
                 marks=pytest.mark.control("CW-NET-10"), id="account-pab-partial"),
    pytest.param("cw-net-10-s3-public-access-block", "bpab", {"bucket": "b", "blockPublicAcls": True},
                 {"bucket": "b", **ALL_ON}, marks=pytest.mark.control("CW-NET-10"), id="bucket-pab-partial"),
    pytest.param("cw-net-11-human-roles-require-mfa", "role",
                 {"assumeRolePolicy": trust({"AWS": "arn:aws:iam::1:root"})},
                 {"assumeRolePolicy": trust({"AWS": "arn:aws:iam::1:root"}, MFA)},
                 marks=pytest.mark.control("CW-NET-11"), id="no-mfa"),
    pytest.param("cw-net-11-human-roles-require-mfa", "role",
                 {"assumeRolePolicy": trust({"AWS": ["arn:aws:iam::1:user/a"]},
                                            {"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}})},
                 {"assumeRolePolicy": trust({"Service": "ec2.amazonaws.com"})},
                 marks=pytest.mark.control("CW-NET-11"), id="mfa-if-exists-vs-service-role"),
    pytest.param("cw-net-12-cloudtrail-multi-region-validated", "trail",
                 {"isMultiRegionTrail": False, "enableLogFileValidation": True},
                 {"isMultiRegionTrail": True, "enableLogFileValidation": True, "enableLogging": True},
                 marks=pytest.mark.control("CW-NET-12"), id="single-region"),
    pytest.param("cw-net-12-cloudtrail-multi-region-validated", "trail",
                 {"isMultiRegionTrail": True, "enableLogFileValidation": False, "enableLogging": False},
                 {"isMultiRegionTrail": True, "enableLogFileValidation": True},
                 marks=pytest.mark.control("CW-NET-12"), id="no-validation"),
    pytest.param("cw-net-12-cloudtrail-kms", "trail", {"isMultiRegionTrail": True},
                 {"kmsKeyId": "arn:aws:kms:eu-west-1:1:key/k"}, marks=pytest.mark.control("CW-NET-12"),
                 id="trail-no-kms"),
    pytest.param("cw-net-12-cloudtrail-cloudwatch-logs", "trail", {"cloudWatchLogsGroupArn": "arn:lg:*"},
                 {"cloudWatchLogsGroupArn": "arn:lg:*", "cloudWatchLogsRoleArn": "arn:role"},
                 marks=pytest.mark.control("CW-NET-12"), id="trail-no-cloudwatch"),
]


@pytest.mark.parametrize(("rule", "kind", "bad", "good"), RESOURCE_CASES)
def test_resource_rule(rule, kind, bad, good):
    violations = run_resource_rule(rule, kind, bad)
    assert violations, f"{rule} accepted a violating {kind}"
    control = rule[:9].upper()
    assert all(v.startswith(control) for v in violations), violations
    assert run_resource_rule(rule, kind, good) == []


def test_resource_rules_ignore_other_types():
    for name, policy in POLICIES.items():
        if isinstance(policy, ResourceValidationPolicy):
            assert run_resource_rule(name, "igw", {"vpcId": "vpc-1", "ingress": [1], "trafficType": "x"}) == []


# --- stack rules ------------------------------------------------------------------------------


def vpc(zones="dmz,ot", **extra):
    return ("vpc", {"id": "vpc-1", "cidrBlock": "10.40.0.0/16", "mainRouteTableId": "rtb-main",
                    "defaultNetworkAclId": "acl-default", "tags": {"cityward:zones": zones}, **extra})


def subnet(sid, zone, kind, az, cidr="10.40.0.0/24"):
    return ("subnet", {"id": sid, "vpcId": "vpc-1", "availabilityZone": az, "cidrBlock": cidr,
                       "tags": {"cityward:zone": zone, "cityward:zone-kind": kind}})


def network(ot_route=None, dmz_route=None):
    """A DMZ and an OT zone in two AZs, each zone with its own route table."""
    resources = [vpc(), ("igw", {"id": "igw-1", "vpcId": "vpc-1"}),
                 subnet("subnet-d1", "dmz", "dmz", "eu-west-1a"), subnet("subnet-d2", "dmz", "dmz", "eu-west-1b"),
                 subnet("subnet-o1", "ot", "ot", "eu-west-1a"), subnet("subnet-o2", "ot", "ot", "eu-west-1b"),
                 ("rt", {"id": "rtb-dmz", "vpcId": "vpc-1"}), ("rt", {"id": "rtb-ot", "vpcId": "vpc-1"})]
    resources += [("assoc", {"subnetId": s, "routeTableId": t}) for s, t in
                  (("subnet-d1", "rtb-dmz"), ("subnet-d2", "rtb-dmz"), ("subnet-o1", "rtb-ot"),
                   ("subnet-o2", "rtb-ot"))]
    for table, route in (("rtb-ot", ot_route), ("rtb-dmz", dmz_route)):
        if route:
            resources.append(("route", {"routeTableId": table, "destinationCidrBlock": "0.0.0.0/0", **route}))
    return resources


def endpoints(services=("ssm", "ssmmessages", "ec2messages", "logs", "kms"), rule=None):
    resources = [vpc(), ("sg", {"id": "sg-vpce", "vpcId": "vpc-1"})]
    resources += [("vpce", {"vpcId": "vpc-1", "vpcEndpointType": "Interface", "securityGroupIds": ["sg-vpce"],
                            "serviceName": f"com.amazonaws.eu-west-1.{s}", "privateDnsEnabled": True})
                  for s in services]
    resources.append(("in", {"securityGroupId": "sg-vpce", **(rule or ingress("10.40.0.0/16", 443))}))
    return resources


def ssh_from(cidr):
    return [vpc(), subnet("subnet-m1", "management", "management", "eu-west-1a", "10.40.32.0/21"),
            subnet("subnet-m2", "management", "management", "eu-west-1b", "10.40.40.0/21"),
            ("sg", {"id": "sg-ot", "tags": {"cityward:zone-kind": "ot"}}),
            ("in", {"securityGroupId": "sg-ot", **ingress(cidr, 22)})]


def flow_logs(traffic):
    group = "arn:aws:logs:eu-west-1:1:log-group:/flow"
    return [vpc(), ("lg", {"arn": group, "kmsKeyId": "k", "retentionInDays": 365.0}),
            ("flow", {"vpcId": "vpc-1", "trafficType": traffic, "logDestination": group,
                      "logDestinationType": "cloud-watch-logs"})]


STACK_CASES = [
    pytest.param("cw-net-01-one-vpc-zones-span-two-azs",
                 [vpc(), subnet("s1", "dmz", "dmz", "eu-west-1a"), subnet("s2", "dmz", "dmz", "eu-west-1b"),
                  subnet("s3", "ot", "ot", "eu-west-1a")],
                 network(), marks=pytest.mark.control("CW-NET-01"), id="ot-in-one-az"),
    pytest.param("cw-net-01-one-vpc-zones-span-two-azs",
                 [*network(), ("vpc", {"id": "vpc-2", "tags": {}})], network(),
                 marks=pytest.mark.control("CW-NET-01"), id="two-vpcs"),
    pytest.param("cw-net-01-one-vpc-zones-span-two-azs",
                 [*network(), subnet("s9", "lab", "it", "eu-west-1a")], network(),
                 marks=pytest.mark.control("CW-NET-01"), id="zone-not-in-policy"),
    pytest.param("cw-net-02-ot-subnets-no-internet-route", network(ot_route={"natGatewayId": "nat-1"}),
                 network(dmz_route={"gatewayId": "igw-1"}), marks=pytest.mark.control("CW-NET-02"), id="ot-nat"),
    pytest.param("cw-net-02-ot-subnets-no-internet-route", network(ot_route={"gatewayId": "igw-1"}),
                 network(ot_route={"transitGatewayId": "tgw-1"}), marks=pytest.mark.control("CW-NET-02"),
                 id="ot-igw"),
    pytest.param("cw-net-02-ot-subnets-no-internet-route",
                 [*network(), ("rt", {"id": "rtb-main", "routes": [{"cidrBlock": "0.0.0.0/0",
                                                                    "egressOnlyGatewayId": "eigw-1"}]}),
                  subnet("subnet-o3", "ot", "ot", "eu-west-1c")],
                 network(), marks=pytest.mark.control("CW-NET-02"), id="ot-on-main-table-eigw"),
    pytest.param("cw-net-02-igw-routes-dmz-only", network(ot_route={"gatewayId": "igw-1"}),
                 network(dmz_route={"gatewayId": "igw-1"}), marks=pytest.mark.control("CW-NET-02"),
                 id="igw-outside-dmz"),
    pytest.param("cw-net-04-defaults-adopted", [vpc(), ("dsg", {"vpcId": "vpc-1"})],
                 [vpc(), ("dsg", {"vpcId": "vpc-1"}), ("dnacl", {"defaultNetworkAclId": "acl-default"})],
                 marks=pytest.mark.control("CW-NET-04"), id="default-nacl-not-adopted"),
    pytest.param("cw-net-05-vpc-flow-logs", [vpc()], flow_logs("ALL"), marks=pytest.mark.control("CW-NET-05"),
                 id="no-flow-log"),
    pytest.param("cw-net-05-vpc-flow-logs", flow_logs("ACCEPT"), flow_logs("ALL"),
                 marks=pytest.mark.control("CW-NET-05"), id="accept-only"),
    pytest.param("cw-net-05-vpc-flow-logs", [vpc(), ("flow", {"vpcId": "vpc-1", "trafficType": "ALL",
                                                              "logDestination": "arn:elsewhere"})],
                 flow_logs("ALL"), marks=pytest.mark.control("CW-NET-05"), id="unmanaged-log-group"),
    pytest.param("cw-net-07-session-manager-endpoints", endpoints(services=("ssm", "ssmmessages")), endpoints(),
                 marks=pytest.mark.control("CW-NET-07"), id="missing-endpoints"),
    pytest.param("cw-net-07-endpoint-sg-https-from-vpc", endpoints(rule=ingress("0.0.0.0/0", 443)), endpoints(),
                 marks=pytest.mark.control("CW-NET-07"), id="endpoint-sg-world"),
    pytest.param("cw-net-07-endpoint-sg-https-from-vpc", endpoints(rule=ingress("10.40.0.0/16", 22)), endpoints(),
                 marks=pytest.mark.control("CW-NET-07"), id="endpoint-sg-ssh"),
    pytest.param("cw-net-07-ssh-only-from-management", ssh_from("10.40.0.0/20"), ssh_from("10.40.32.0/20"),
                 marks=pytest.mark.control("CW-NET-07"), id="ssh-from-enterprise"),
    pytest.param("cw-net-07-ssh-only-from-management", ssh_from("0.0.0.0/0"), ssh_from("10.40.33.7/32"),
                 marks=pytest.mark.control("CW-NET-07"), id="ssh-from-anywhere-bastion"),
    pytest.param("cw-net-08-imdsv2-account-default", [("imds", {"httpTokens": "optional"})],
                 [("imds", {"httpTokens": "required"})], marks=pytest.mark.control("CW-NET-08"), id="imds-optional"),
    pytest.param("cw-net-09-ebs-encryption-declared", [vpc()], [("ebs", {"enabled": True})],
                 marks=pytest.mark.control("CW-NET-09"), id="no-ebs-default"),
    pytest.param("cw-net-10-s3-account-public-access-block-declared", [("pab", {"blockPublicAcls": True})],
                 [("pab", ALL_ON)], marks=pytest.mark.control("CW-NET-10"), id="account-pab-partial"),
    pytest.param("cw-net-11-operator-role-declared",
                 [("role", {"assumeRolePolicy": trust({"Service": "ec2.amazonaws.com"})})],
                 [("role", {"assumeRolePolicy": trust({"AWS": ["arn:aws:iam::1:root"]}, MFA)})],
                 marks=pytest.mark.control("CW-NET-11"), id="no-operator-role"),
    pytest.param("cw-net-12-cloudtrail-declared", [("trail", {"isMultiRegionTrail": False,
                                                              "enableLogFileValidation": True})],
                 [("trail", {"isMultiRegionTrail": True, "enableLogFileValidation": True})],
                 marks=pytest.mark.control("CW-NET-12"), id="no-multi-region-trail"),
]


@pytest.mark.parametrize(("rule", "bad", "good"), STACK_CASES)
def test_stack_rule(rule, bad, good):
    violations = run_stack_rule(rule, bad)
    assert violations, f"{rule} accepted a violating stack"
    assert all(v.startswith(rule[:9].upper()) for v in violations), violations
    assert run_stack_rule(rule, good) == []


# --- the pack as a whole ----------------------------------------------------------------------


@pytest.mark.control("CW-NET-01", "CW-NET-02", "CW-NET-03", "CW-NET-04", "CW-NET-05", "CW-NET-06", "CW-NET-07",
                     "CW-NET-08", "CW-NET-09", "CW-NET-10", "CW-NET-11", "CW-NET-12")
def test_every_rule_is_tested_named_and_mapped():
    tested = {p.values[0] for p in RESOURCE_CASES + STACK_CASES}
    assert tested == set(POLICIES), f"rules without a test: {set(POLICIES) - tested}"
    assert len(POLICIES) >= 15
    assert any(isinstance(p, StackValidationPolicy) for p in POLICIES.values())
    controls = set()
    for name, policy in POLICIES.items():
        match = re.match(r"cw-net-(\d{2})-", name)
        assert match, name
        control = f"CW-NET-{match.group(1)}"
        controls.add(control)
        assert policy.description.startswith(control), name
        # each description names the external IDs, or says the rule is cityward's own (the catalog's
        # rule_ids against the rules' references: test_cloud_catalog_refs)
        assert re.search(r"CKV2?_AWS_\d+|FSBP|cityward", policy.description), name
        assert (policy.enforcement_level or RULES.ENFORCEMENT_LEVEL) == EnforcementLevel.MANDATORY
    assert controls == {f"CW-NET-{n:02d}" for n in range(1, 13)}


def test_pack_entry_point_only_builds_the_pack():
    directory = PACK
    meta = yaml.safe_load((directory / "PulumiPolicy.yaml").read_text())
    assert meta["runtime"]["name"] == "python"
    tree = ast.parse((directory / "__main__.py").read_text())
    calls = [n for n in tree.body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)]
    assert [c.value.func.id for c in calls] == ["PolicyPack"]
    assert all(isinstance(n, ast.ImportFrom | ast.Expr) for n in tree.body)


# --- first preview: ids unknown, resources joined only by property dependencies ----------------

U = UNKNOWN_STRING_VALUE


def run_preview_rule(name: str, resources: list[tuple]) -> list[str]:
    """A stack rule over resources as a first preview hands them over: props behind the engine's
    unknown-checking proxy, and (kind, props, {prop: [indexes of the resources it depends on]})."""
    policy = POLICIES[name]
    stack = [stack_resource(T[kind], policy_props(props), f"urn:pulumi:test::p::{T[kind]}::r{i}", f"r{i}")
             for i, (kind, props, *_) in enumerate(resources)]
    for resource, (_, _, *deps) in zip(stack, resources, strict=True):
        for prop, indexes in (deps[0] if deps else {}).items():
            resource.property_dependencies[prop] = [stack[i] for i in indexes]
    messages: list[str] = []
    policy.validate(StackValidationArgs(stack), lambda message, urn=None: messages.append(message))
    return messages


def p_vpc():
    return ("vpc", {"cidrBlock": "10.40.0.0/16", "mainRouteTableId": U, "defaultNetworkAclId": U,
                    "tags": {"cityward:zones": "dmz,ot"}})


def p_subnet(zone, az, cidr="10.40.0.0/24"):
    return ("subnet", {"vpcId": U, "availabilityZone": az, "cidrBlock": cidr,
                       "tags": {"cityward:zone": zone, "cityward:zone-kind": zone}}, {"vpcId": [0]})


def p_network(route_from=None, target=None):
    """0 vpc, 1 igw, 2 nat, 3-4 dmz subnets, 5-6 ot subnets, 7 dmz table, 8 ot table, 9-12 associations,
    13 a default route from the `route_from` table to `target` ("igw", "nat", or None: no dependency)."""
    resources = [p_vpc(), ("igw", {"vpcId": U}, {"vpcId": [0]}), ("nat", {"subnetId": U}, {"subnetId": [3]}),
                 p_subnet("dmz", "eu-west-1a"), p_subnet("dmz", "eu-west-1b"),
                 p_subnet("ot", "eu-west-1a"), p_subnet("ot", "eu-west-1b"),
                 ("rt", {"vpcId": U}, {"vpcId": [0]}), ("rt", {"vpcId": U}, {"vpcId": [0]})]
    resources += [("assoc", {"subnetId": U, "routeTableId": U}, {"subnetId": [s], "routeTableId": [t]})
                  for s, t in ((3, 7), (4, 7), (5, 8), (6, 8))]
    if route_from:
        table = {"dmz": 7, "ot": 8}[route_from]
        key = "natGatewayId" if target == "nat" else "gatewayId"
        deps = {"routeTableId": [table], **({key: [{"igw": 1, "nat": 2}[target]]} if target else {})}
        resources.append(("route", {"routeTableId": U, "destinationCidrBlock": "0.0.0.0/0", key: U}, deps))
    return resources


def p_endpoints(rule_cidr="10.40.0.0/16"):
    resources = [p_vpc(), ("sg", {"vpcId": U}, {"vpcId": [0]})]
    resources += [("vpce", {"vpcId": U, "vpcEndpointType": "Interface", "securityGroupIds": [U],
                            "serviceName": f"com.amazonaws.eu-west-1.{s}", "privateDnsEnabled": True},
                   {"vpcId": [0], "securityGroupIds": [1]}) for s in endpoint_rules.SESSION_MANAGER_SERVICES]
    resources.append(("in", {"securityGroupId": U, **ingress(rule_cidr, 443)}, {"securityGroupId": [1]}))
    return resources


def p_ssh(kind):
    return [p_vpc(), ("sg", {"vpcId": U, "tags": {"cityward:zone-kind": kind}}, {"vpcId": [0]}),
            ("sg", {"vpcId": U, "tags": {"cityward:zone-kind": "ot"}}, {"vpcId": [0]}),
            ("in", {"securityGroupId": U, "referencedSecurityGroupId": U, "ipProtocol": "tcp", "fromPort": 22.0,
                    "toPort": 22.0}, {"securityGroupId": [2], "referencedSecurityGroupId": [1]})]


def p_flow(dependencies):
    return [p_vpc(), ("lg", {"kmsKeyId": U, "retentionInDays": 365.0}),
            ("flow", {"vpcId": U, "trafficType": "ALL", "logDestination": U,
                      "logDestinationType": "cloud-watch-logs"}, dependencies)]


PREVIEW_CASES = [  # (rule, violating stack, compliant stack)
    pytest.param("cw-net-02-ot-subnets-no-internet-route", p_network("ot", "nat"), p_network("dmz", "igw"),
                 marks=pytest.mark.control("CW-NET-02"), id="ot-nat"),
    pytest.param("cw-net-02-ot-subnets-no-internet-route", p_network("ot", "igw"), p_network(),
                 marks=pytest.mark.control("CW-NET-02"), id="ot-igw"),
    pytest.param("cw-net-02-igw-routes-dmz-only", p_network("ot", "igw"), p_network("dmz", "igw"),
                 marks=pytest.mark.control("CW-NET-02"), id="igw-outside-dmz"),
    pytest.param("cw-net-04-defaults-adopted", [p_vpc(), ("dsg", {"vpcId": U}, {"vpcId": [0]})],
                 [p_vpc(), ("dsg", {"vpcId": U}, {"vpcId": [0]}),
                  ("dnacl", {"defaultNetworkAclId": U}, {"defaultNetworkAclId": [0]})],
                 marks=pytest.mark.control("CW-NET-04"), id="default-nacl-not-adopted"),
    pytest.param("cw-net-05-vpc-flow-logs", [*p_flow({"vpcId": [0], "logDestination": [1]}), p_vpc()],
                 p_flow({"vpcId": [0], "logDestination": [1]}), marks=pytest.mark.control("CW-NET-05"),
                 id="second-vpc-without-flow-log"),
    pytest.param("cw-net-07-session-manager-endpoints", p_endpoints()[:4], p_endpoints(),
                 marks=pytest.mark.control("CW-NET-07"), id="missing-endpoints"),
    pytest.param("cw-net-07-endpoint-sg-https-from-vpc", p_endpoints("0.0.0.0/0"), p_endpoints(),
                 marks=pytest.mark.control("CW-NET-07"), id="endpoint-sg-world"),
    pytest.param("cw-net-07-ssh-only-from-management", p_ssh("ot"), p_ssh("management"),
                 marks=pytest.mark.control("CW-NET-07"), id="ssh-from-ot-group"),
]


@pytest.mark.parametrize(("rule", "bad", "good"), PREVIEW_CASES)
def test_stack_rule_decides_at_first_preview(rule, bad, good):
    violations = run_preview_rule(rule, bad)
    assert violations, f"{rule} accepted a violating stack at preview"
    assert all(v.startswith(rule[:9].upper()) and "cannot decide" not in v for v in violations), violations
    assert run_preview_rule(rule, good) == []


UNDECIDABLE = [  # a reference computed from nothing the rule can follow: it fails closed
    pytest.param("cw-net-02-ot-subnets-no-internet-route", p_network("ot", None),
                 marks=pytest.mark.control("CW-NET-02"), id="route-target-unknown"),
    pytest.param("cw-net-05-vpc-flow-logs", p_flow({}), marks=pytest.mark.control("CW-NET-05"),
                 id="flow-log-vpc-unknown"),
    pytest.param("cw-net-07-ssh-only-from-management", p_ssh("management")[:3] + [
        ("in", {**p_ssh("management")[3][1]}, {"securityGroupId": [2]})],
                 marks=pytest.mark.control("CW-NET-07"), id="ssh-source-group-unknown"),
]


@pytest.mark.parametrize(("rule", "stack"), UNDECIDABLE)
def test_stack_rule_that_cannot_decide_fails_closed(rule, stack):
    violations = run_preview_rule(rule, stack)
    assert violations and all(v.startswith(f"{rule[:9].upper()}: cannot decide at preview: ") for v in violations)


@pytest.mark.control("CW-NET-05", "CW-NET-12")
def test_references_only_need_to_be_set_at_preview():
    assert run_resource_rule("cw-net-05-log-group-kms", "lg", {"kmsKeyId": U, "retentionInDays": 365.0}) == []
    assert run_resource_rule("cw-net-12-cloudtrail-cloudwatch-logs", "trail",
                             {"cloudWatchLogsGroupArn": U, "cloudWatchLogsRoleArn": U}) == []


@pytest.mark.control("CW-NET-05")
def test_a_rule_reading_an_unknown_value_reports_it_cannot_decide():
    policy = POLICIES["cw-net-05-log-group-retention-365"]
    messages: list[str] = []
    args = resource_args(T["lg"], policy_props({"retentionInDays": U}), "urn:x", "lg")
    policy.validate(args, lambda message, urn=None: messages.append(message))
    assert messages == ["CW-NET-05: cannot decide at preview: string value at .retentionInDays can't be known "
                        "during preview (lg)"]


@pytest.mark.control("CW-NET-13")
def test_evaluation_fails_closed_when_an_unknown_escapes_a_rule():
    def careless(args, report):
        if args.props["vpcId"].startswith("vpc-"):  # raises on a first preview
            report("never reached")

    policy = ResourceValidationPolicy(name="cw-net-13-careless", description="CW-NET-13 (cityward): test",
                                      validate=careless, enforcement_level=EnforcementLevel.MANDATORY)
    subnet = PlannedResource(T["subnet"], "s", "urn:pulumi:s::p::aws:ec2/subnet:Subnet::s", "",
                             {"vpcId": U}, {"vpcId": U}, {"vpcId": ["urn:v"]})
    (violation,) = evaluate([subnet], [policy])
    assert violation.mandatory and violation.policy == "cw-net-13-careless" and violation.resource_name == "s"
    assert violation.message == "cannot decide at preview: string value at .vpcId can't be known during preview"


@pytest.mark.control("CW-NET-13")
def test_engine_type_tokens_are_said_once_in_types():
    # the rule modules, the plan's renderer and this file import tokens from cityward.cloud.types; a
    # literal "aws:<module>/<name>:<Type>" elsewhere is a second copy that can drift
    cloud = Path(types.__file__).parent
    token = re.compile(r"""["']aws:[a-z0-9]+/[A-Za-z0-9]+:[A-Za-z0-9]+["']""")
    modules = [*sorted((cloud / "rules").glob("*.py")), cloud / "render.py", cloud / "graph.py", Path(__file__)]
    assert len(modules) > 10
    assert {m.name: token.findall(m.read_text()) for m in modules} == {m.name: [] for m in modules}
    declared = [v for k, v in vars(types).items() if k.isupper() and isinstance(v, str) and v.startswith("aws:")]
    assert len(declared) == len(set(declared))
