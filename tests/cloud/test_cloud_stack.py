"""The segmented network stack, run in-process under Pulumi mocks (preview=False, so every
`apply` runs), asserted on the resources it registers."""

from __future__ import annotations

import ipaddress
import json
import runpy
from pathlib import Path

import pulumi
import pytest

from cityward.cloud.mocks import run_program
from cityward.errors import CitywardError
from cityward.zones import INTERNET

STACK = Path(__file__).resolve().parents[2] / "stacks" / "segmented_network"

VPC_CIDR = ipaddress.ip_network("10.40.0.0/16")


def _net(cidr: str):
    return ipaddress.ip_network(cidr)


@pytest.mark.control("CW-NET-01")
def test_one_vpc_and_each_zone_in_two_azs(planned, stack_inputs):
    vpc = planned.one("Vpc")
    assert vpc.inputs["cidrBlock"] == str(VPC_CIDR)
    assert vpc.inputs["enableDnsSupport"] is True and vpc.inputs["enableDnsHostnames"] is True
    zones = stack_inputs.zones.zones
    for name, zone in zones.items():
        subnets = planned.tagged("Subnet", "cityward:zone", name)
        assert len({s.inputs["availabilityZone"] for s in subnets}) >= 2, name
        for s in subnets:
            assert s.outputs["vpcId"] == vpc.id
            assert _net(s.inputs["cidrBlock"]).subnet_of(zone.cidr)
            assert s.inputs["tags"]["cityward:zone-kind"] == zone.kind
    # subnets of different zones never overlap, and all sit in the VPC
    cidrs = [_net(s.inputs["cidrBlock"]) for s in planned.of("Subnet")]
    assert all(c.subnet_of(VPC_CIDR) for c in cidrs)
    assert all(not a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1:])


def _table_of(planned, subnet):
    assoc = next(a for a in planned.of("RouteTableAssociation") if a.outputs["subnetId"] == subnet.id)
    return assoc.outputs["routeTableId"]


@pytest.mark.control("CW-NET-02")
def test_internet_route_only_for_the_dmz_and_none_from_ot(planned, stack_inputs):
    igw = planned.one("InternetGateway")
    assert not planned.of("NatGateway") and not planned.of("EgressOnlyInternetGateway")
    routes = planned.of("Route")
    assert [(r.name, r.inputs["destinationCidrBlock"]) for r in routes if r.outputs.get("gatewayId") == igw.id] == [
        ("cityward-dmz-default-igw", "0.0.0.0/0")]
    dmz_tables = {_table_of(planned, s) for s in planned.tagged("Subnet", "cityward:zone", "dmz")}
    assert {r.outputs["routeTableId"] for r in routes} == dmz_tables
    for zone in stack_inputs.zones.ot_zones():
        for subnet in planned.tagged("Subnet", "cityward:zone", zone.name):
            table = _table_of(planned, subnet)
            assert not [r for r in routes if r.outputs["routeTableId"] == table]
            assert not planned.by_id(table).inputs.get("routes")
    # route tables never carry inline routes; the main table is adopted empty
    assert all(not t.inputs.get("routes") for t in planned.of("RouteTable"))
    assert planned.one("DefaultRouteTable").inputs["routes"] == []


def _rules_of(planned, kind, sg_name):
    sg = planned.named(sg_name)
    return [r for r in planned.of(kind) if r.outputs["securityGroupId"] == sg.id]


@pytest.mark.control("CW-NET-03")
def test_security_group_rules_come_from_conduits(planned, stack_inputs):
    zones = stack_inputs.zones
    assert not planned.of("SecurityGroupRule"), "legacy aws.ec2.SecurityGroupRule must not be used"
    for sg in planned.of("SecurityGroup"):
        assert "ingress" not in sg.inputs and "egress" not in sg.inputs, f"{sg.name} has inline rules"
    for c in zones.conduits:
        expected = {"ipProtocol": c.protocol, "fromPort": c.port, "toPort": c.port}
        if c.to != INTERNET:
            ingress = [r.inputs for r in _rules_of(planned, "SecurityGroupIngressRule", f"cityward-{c.to}-sg")
                       if r.inputs["tags"]["cityward:conduit"] == c.label]
            assert len(ingress) == 1, c.label
            assert {k: ingress[0][k] for k in expected} == expected
            assert ingress[0]["cidrIpv4"] == str(zones.cidr_of(c.from_))
        if c.from_ != INTERNET:
            egress = [r.inputs for r in _rules_of(planned, "SecurityGroupEgressRule", f"cityward-{c.from_}-sg")
                      if r.inputs["tags"]["cityward:conduit"] == c.label]
            assert len(egress) == 1, c.label
            assert egress[0]["cidrIpv4"] == str(zones.cidr_of(c.to))
    # nothing beyond the conduits, except HTTPS to the endpoints (one per zone) and into them
    zone_rules = len(planned.of("SecurityGroupIngressRule")) + len(planned.of("SecurityGroupEgressRule"))
    internet_sides = sum(INTERNET in (c.from_, c.to) for c in zones.conduits)
    assert zone_rules == 2 * len(zones.conduits) - internet_sides + len(zones.zones) + 1


@pytest.mark.control("CW-NET-03")
def test_no_admin_port_open_to_the_world(planned):
    for rule in planned.of("SecurityGroupIngressRule"):
        if rule.inputs.get("cidrIpv4") == "0.0.0.0/0":
            assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == ("tcp", 443, 443)
        if rule.inputs["fromPort"] <= 22 <= rule.inputs["toPort"]:
            assert _net(rule.inputs["cidrIpv4"]) == _net("10.40.32.0/20"), "SSH only from management"
    for rule in planned.of("NetworkAclRule"):
        if rule.inputs["cidrBlock"] == "0.0.0.0/0" and not rule.inputs["egress"]:
            opened = (rule.inputs["fromPort"], rule.inputs["toPort"])
            assert opened in ((443, 443), (32768, 65535)), opened


@pytest.mark.control("CW-NET-03")
def test_nacls_follow_conduits_both_ways(planned, stack_inputs):
    zones = stack_inputs.zones
    acl_rules: dict[str, set] = {}
    for rule in planned.of("NetworkAclRule"):
        acl = planned.by_id(rule.outputs["networkAclId"]).inputs["tags"]["cityward:zone"]
        i = rule.inputs
        acl_rules.setdefault(acl, set()).add((i["egress"], i["protocol"], i["cidrBlock"], i["fromPort"], i["toPort"]))
        assert i["ruleAction"] == "allow"
    for c in zones.conduits:
        if c.to != INTERNET:
            assert (False, c.protocol, str(zones.cidr_of(c.from_)), c.port, c.port) in acl_rules[c.to], c.label
            assert (True, c.protocol, str(zones.cidr_of(c.from_)), 32768, 65535) in acl_rules[c.to], c.label
        if c.from_ != INTERNET:
            assert (True, c.protocol, str(zones.cidr_of(c.to)), c.port, c.port) in acl_rules[c.from_], c.label
            assert (False, c.protocol, str(zones.cidr_of(c.to)), 32768, 65535) in acl_rules[c.from_], c.label
    for zone, entries in acl_rules.items():
        for egress in (True, False):
            assert len([e for e in entries if e[0] is egress]) <= 20, f"{zone} exceeds the NACL quota"
    # every subnet sits behind its own zone's NACL
    for assoc in planned.of("NetworkAclAssociation"):
        subnet = planned.by_id(assoc.outputs["subnetId"])
        acl = planned.by_id(assoc.outputs["networkAclId"])
        assert subnet.inputs["tags"]["cityward:zone"] == acl.inputs["tags"]["cityward:zone"]
    assert len(planned.of("NetworkAclAssociation")) == len(planned.of("Subnet"))


@pytest.mark.control("CW-NET-04")
def test_default_sg_and_nacl_adopted_without_rules(planned):
    vpc = planned.one("Vpc")
    default_sg = planned.one("DefaultSecurityGroup")
    default_acl = planned.one("DefaultNetworkAcl")
    assert default_sg.outputs["vpcId"] == vpc.id
    assert default_acl.outputs["defaultNetworkAclId"] == vpc.outputs["defaultNetworkAclId"]
    for resource in (default_sg, default_acl):
        assert not resource.inputs.get("ingress") and not resource.inputs.get("egress")


@pytest.mark.control("CW-NET-05", "CW-NET-06")
def test_flow_logs_all_into_encrypted_log_group(planned):
    flow = planned.one("FlowLog")
    vpc = planned.one("Vpc")
    assert flow.inputs["trafficType"] == "ALL"
    assert flow.outputs["vpcId"] == vpc.id
    assert flow.inputs["logDestinationType"] == "cloud-watch-logs"
    group = next(g for g in planned.of("LogGroup") if g.outputs["arn"] == flow.outputs["logDestination"])
    assert group.inputs["retentionInDays"] >= 365
    key = next(k for k in planned.of("Key") if k.outputs["arn"] == group.outputs["kmsKeyId"])
    assert key.inputs["enableKeyRotation"] is True
    policy = json.loads(key.inputs["policy"])
    assert any(s["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"} for s in policy["Statement"])
    role = next(r for r in planned.of("Role") if r.outputs["arn"] == flow.outputs["iamRoleArn"])
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}


@pytest.mark.control("CW-NET-06")
def test_every_kms_key_rotates(planned):
    keys = planned.of("Key")
    assert len(keys) == 2
    assert all(k.inputs["enableKeyRotation"] is True and k.inputs["rotationPeriodInDays"] <= 365 for k in keys)


@pytest.mark.control("CW-NET-07")
def test_session_manager_endpoints_and_endpoint_sg(planned, stack_inputs):
    vpc = planned.one("Vpc")
    endpoints = planned.of("VpcEndpoint")
    services = sorted(e.inputs["serviceName"].rsplit(".", 1)[-1] for e in endpoints)
    assert services == sorted(["ssm", "ssmmessages", "ec2messages", "logs", "kms"])
    endpoint_sg = planned.named("cityward-endpoints-sg")
    endpoint_subnets = {s.id for s in planned.tagged("Subnet", "cityward:zone", "endpoints")}
    assert len(endpoint_subnets) == 2
    for e in endpoints:
        assert e.inputs["vpcEndpointType"] == "Interface" and e.inputs["privateDnsEnabled"] is True
        assert e.outputs["vpcId"] == vpc.id
        assert set(e.outputs["subnetIds"]) == endpoint_subnets
        assert e.outputs["securityGroupIds"] == [endpoint_sg.id]
    ingress = _rules_of(planned, "SecurityGroupIngressRule", "cityward-endpoints-sg")
    assert [(r.inputs["ipProtocol"], r.inputs["fromPort"], r.inputs["toPort"], r.inputs["cidrIpv4"])
            for r in ingress] == [("tcp", 443, 443, str(VPC_CIDR))]
    assert not _rules_of(planned, "SecurityGroupEgressRule", "cityward-endpoints-sg")
    # no bastion: no instance, and SSH reaches zones only from management
    assert not planned.of("Instance") and not planned.of("LaunchTemplate")
    management = stack_inputs.zones.zone("management").cidr
    ssh = [r for r in planned.of("SecurityGroupIngressRule") if r.inputs["fromPort"] == 22]
    assert ssh and all(_net(r.inputs["cidrIpv4"]) == management for r in ssh)


@pytest.mark.control("CW-NET-08", "CW-NET-09", "CW-NET-10")
def test_account_baseline(planned):
    imds = planned.one("InstanceMetadataDefaults")
    assert imds.inputs["httpTokens"] == "required"
    assert imds.inputs["httpPutResponseHopLimit"] == 1
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in planned.of("Subnet"))
    assert planned.one("EncryptionByDefault").inputs["enabled"] is True
    pab = planned.one("AccountPublicAccessBlock").inputs
    assert all(pab[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                        "restrictPublicBuckets"))


@pytest.mark.control("CW-NET-11")
def test_operator_role_requires_mfa(planned):
    role = planned.named("cityward-operator-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {"AWS": ["arn:aws:iam::123456789012:root"]}
    assert statement["Condition"]["Bool"] == {"aws:MultiFactorAuthPresent": "true"}
    assert role.inputs["maxSessionDuration"] == 3600
    session = json.loads(next(p for p in planned.of("RolePolicy") if p.name == "cityward-operator-sessions")
                         .inputs["policy"])
    assert "ssm:StartSession" in [s["Action"] for s in session["Statement"]]


@pytest.mark.control("CW-NET-12")
def test_multi_region_trail_with_validation_and_kms(planned):
    trail = planned.one("Trail")
    i = trail.inputs
    assert i["isMultiRegionTrail"] is True and i["enableLogFileValidation"] is True
    assert i["includeGlobalServiceEvents"] is True and i["enableLogging"] is True
    key = next(k for k in planned.of("Key") if k.outputs["arn"] == i["kmsKeyId"])
    assert key.inputs["enableKeyRotation"] is True
    assert i["cloudWatchLogsGroupArn"].endswith(":log-group:/cityward/cityward/cloudtrail:*")
    bucket = planned.one("Bucket")
    assert i["s3BucketName"] == bucket.outputs["bucket"] == "cityward-cloudtrail-123456789012-eu-west-1"
    assert planned.one("BucketPublicAccessBlock").inputs["restrictPublicBuckets"] is True
    sse = planned.one("BucketServerSideEncryptionConfiguration").inputs["rules"][0]
    assert sse["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms",
                                                         "kmsMasterKeyId": key.outputs["arn"]}
    policy = json.loads(planned.one("BucketPolicy").inputs["policy"])
    assert {s["Sid"] for s in policy["Statement"]} == {"CloudTrailAclCheck", "CloudTrailWrite", "DenyInsecureTransport"}


@pytest.mark.control("CW-NET-01", "CW-NET-02", "CW-NET-03", "CW-NET-04", "CW-NET-05", "CW-NET-06", "CW-NET-07",
                     "CW-NET-08", "CW-NET-09", "CW-NET-10", "CW-NET-11", "CW-NET-12")
def test_the_stack_passes_its_own_policy_pack(planned, check):
    assert check(planned.resources) == []


@pytest.mark.control("CW-NET-03")
def test_a_conduit_change_flows_into_the_stack(run_variant, stack_inputs):
    zones = stack_inputs.zones
    without_modbus = zones.model_copy(update={"conduits": [c for c in zones.conduits if c.port != 502]})
    changed = run_variant(zones=without_modbus)
    ports = {r.inputs["fromPort"] for r in changed.of("SecurityGroupIngressRule")}
    acl_ports = {r.inputs["fromPort"] for r in changed.of("NetworkAclRule")}
    assert 502 not in ports and 502 not in acl_ports
    assert 20000 in ports and 20000 in acl_ports


# --- configuration ----------------------------------------------------------------------------


def _config(stack_inputs, **values):
    base = {"vpcCidr": "10.40.0.0/16", "availabilityZones": ["eu-west-1a", "eu-west-1b"],
            "endpointSubnetCidr": "10.40.240.0/24", "zonesFile": "../../policies/zones.yml"}
    base.update(values)
    return stack_inputs.network.NetworkConfig.from_values(
        base, region="eu-west-1", source="Pulumi.test.yaml", base_dir=STACK)


@pytest.mark.control("CW-NET-01")
@pytest.mark.parametrize(("values", "expected"), [
    ({"vpcCidr": "10.40.0.0/33"}, "config 'cityward-segmented-network:vpcCidr'"),
    ({"availabilityZones": ["eu-west-1a"]}, "availabilityZones': at least two distinct"),
    ({"availabilityZones": ["eu-west-1a", "us-east-1b"]}, "'us-east-1b' is not an availability zone"),
    ({"endpointSubnetCidr": "10.99.0.0/24"}, "endpointSubnetCidr': 10.99.0.0/24 is outside"),
    ({"endpointSubnetCidr": "10.40.240.0/28"}, "endpointSubnetCidr': 10.40.240.0/28 is too small for 2 subnets"),
    ({"logRetentionDays": 42}, "logRetentionDays': CloudWatch accepts only"),
    ({"colour": "blue"}, "'cityward-segmented-network:colour': unknown key"),
    ({"operatorPrincipals": ["bob"]}, "operatorPrincipals': expected a list of IAM principal ARNs"),
])
def test_bad_stack_config_is_one_line_naming_the_field(stack_inputs, values, expected):
    with pytest.raises(CitywardError) as caught:
        _config(stack_inputs, **values)
    assert str(caught.value).startswith("Pulumi.test.yaml: ")
    assert expected in str(caught.value)


@pytest.mark.control("CW-NET-01")
def test_zone_outside_the_vpc_names_the_zones_file(stack_inputs):
    config = _config(stack_inputs, vpcCidr="10.40.0.0/18", endpointSubnetCidr="10.40.60.0/24")
    with pytest.raises(CitywardError, match=r"zones.yml: zone '\S+', field 'cidr': .* (outside|overlaps)"):
        stack_inputs.network.check_layout(stack_inputs.zones, config)


@pytest.mark.control("CW-NET-01")
def test_zone_too_small_for_its_azs_names_the_zone(stack_inputs):
    tiny = stack_inputs.zones.zone("siem").model_copy(update={"cidr": ipaddress.ip_network("10.40.48.0/28")})
    zones = stack_inputs.zones.model_copy(update={"zones": {**stack_inputs.zones.zones, "siem": tiny}})
    with pytest.raises(CitywardError, match=r"zones.yml: zone 'siem', field 'cidr': 10.40.48.0/28 is too small"):
        stack_inputs.network.check_layout(zones, stack_inputs.config)


@pytest.mark.control("CW-NET-01")
def test_main_program_reads_pulumi_config():
    """__main__.py as the Pulumi CLI would run it: config from the engine, exports set."""
    directory = STACK
    pulumi.runtime.set_all_config({
        "aws:region": "eu-west-1",
        "cityward-segmented-network:zonesFile": "../../policies/zones.yml",
        "cityward-segmented-network:vpcCidr": "10.40.0.0/16",
        "cityward-segmented-network:availabilityZones": '["eu-west-1a", "eu-west-1b", "eu-west-1c"]',
        "cityward-segmented-network:endpointSubnetCidr": "10.40.240.0/24",
        "cityward-segmented-network:logRetentionDays": "400",
    })
    try:
        run = run_program(lambda: runpy.run_path(str(directory / "__main__.py")),
                          project="cityward-segmented-network", stack="test", region="eu-west-1")
    finally:
        pulumi.runtime.set_all_config({})
    subnets = [r for r in run.resources if r.type == "aws:ec2/subnet:Subnet"]
    assert {s.inputs["availabilityZone"] for s in subnets} == {"eu-west-1a", "eu-west-1b", "eu-west-1c"}
    groups = [r for r in run.resources if r.type == "aws:cloudwatch/logGroup:LogGroup"]
    assert {g.inputs["retentionInDays"] for g in groups} == {400}
