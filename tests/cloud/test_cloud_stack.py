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
from cityward.cloud.planning import NACL_RULES_PER_DIRECTION
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
    assoc = next(a for a in planned.of("RouteTableAssociation") if a.outputs.get("subnetId") == subnet.id)
    return assoc.outputs["routeTableId"]


@pytest.mark.control("CW-NET-02")
def test_internet_route_only_for_the_dmz_and_none_from_ot(planned, stack_inputs):
    igw = planned.one("InternetGateway")
    assert not planned.of("NatGateway") and not planned.of("EgressOnlyInternetGateway")
    # routes are inline on the zone tables (one resource each, drift removed on update); no aws.ec2.Route
    assert not [r for r in planned.resources if r.type == "aws:ec2/route:Route"]
    tables = [t for t in planned.resources if t.type == "aws:ec2/routeTable:RouteTable"]
    routes = {t.name: t.outputs["routes"] for t in tables}
    to_igw = {name: [r["cidrBlock"] for r in found if r.get("gatewayId") == igw.id] for name, found in routes.items()}
    assert {name: cidrs for name, cidrs in to_igw.items() if cidrs} == {"cityward-dmz-rt": ["0.0.0.0/0"]}
    dmz_tables = {_table_of(planned, s) for s in planned.tagged("Subnet", "cityward:zone", "dmz")}
    assert dmz_tables == {planned.named("cityward-dmz-rt").id}
    # besides the DMZ's internet route: only the field sites' networks, through the transit gateway,
    # in the tables of the sites' zone and the zones it has conduits with
    tgw = planned.one("TransitGateway")
    zones = stack_inputs.zones
    site_cidrs = sorted(str(s.cidr) for s in zones.sites.values())
    for name, found in routes.items():
        others = [r for r in found if r.get("gatewayId") != igw.id]
        assert all(r.get("transitGatewayId") == tgw.id for r in others), name
        zone = name.removeprefix("cityward-").removesuffix("-rt")
        reaches = zone == "field" or zone in zones.peers_of("field")
        assert sorted(r["cidrBlock"] for r in others) == (site_cidrs if reaches else []), name
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
    expected_count = 0
    for c in zones.conduits:
        expected = {"ipProtocol": c.protocol, "fromPort": c.port, "toPort": c.port}
        # ingress on the destination's group, egress on the source's: one rule per network of the
        # other end (its zone's CIDR, then each of its field sites)
        for kind, group_zone, peer_zone in (("SecurityGroupIngressRule", c.to, c.from_),
                                            ("SecurityGroupEgressRule", c.from_, c.to)):
            if group_zone == INTERNET:
                continue
            found = [r.inputs for r in _rules_of(planned, kind, f"cityward-{group_zone}-sg")
                     if r.inputs["tags"]["cityward:conduit"] == c.label]
            assert [r["cidrIpv4"] for r in found] == [str(n) for n in zones.networks_of(peer_zone)], (kind, c.label)
            assert all({k: r[k] for k in expected} == expected for r in found)
            expected_count += len(found)
    # nothing beyond the conduits, except HTTPS to the endpoints (one per zone) and into them
    zone_rules = len(planned.of("SecurityGroupIngressRule")) + len(planned.of("SecurityGroupEgressRule"))
    assert zone_rules == expected_count + len(zones.zones) + 1
    assert planned.named("cityward-field-in-ot-operations-tcp502").inputs["cidrIpv4"] == "10.40.64.0/20"
    assert planned.named("cityward-ot-operations-out-field@depot-north-tcp502").inputs["cidrIpv4"] == "10.60.1.0/24"


@pytest.mark.control("CW-NET-03")
def test_no_admin_port_open_to_the_world(planned):
    for rule in planned.of("SecurityGroupIngressRule"):
        if rule.inputs.get("cidrIpv4") == "0.0.0.0/0":
            assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == ("tcp", 443, 443)
        if rule.inputs["fromPort"] <= 22 <= rule.inputs["toPort"]:
            assert _net(rule.inputs["cidrIpv4"]) == _net("10.40.32.0/20"), "SSH only from management"
    for acl in planned.of("NetworkAcl"):
        for entry in acl.inputs["ingress"]:
            if entry["cidrBlock"] == "0.0.0.0/0":
                opened = (entry["fromPort"], entry["toPort"])
                assert opened in ((443, 443), (32768, 65535)), opened


def _acl_entries(resources) -> dict[str, set]:
    """zone -> {(egress, protocol, cidr, from, to)} from the NACLs' inline entries."""
    found: dict[str, set] = {}
    for acl in resources.of("NetworkAcl"):
        zone = acl.inputs["tags"]["cityward:zone"]
        for egress, key in ((False, "ingress"), (True, "egress")):
            for e in acl.inputs[key]:
                assert e["action"] == "allow"
                found.setdefault(zone, set()).add((egress, e["protocol"], e["cidrBlock"], e["fromPort"], e["toPort"]))
    return found


@pytest.mark.control("CW-NET-03")
def test_nacls_follow_conduits_both_ways(planned, stack_inputs):
    zones = stack_inputs.zones
    # entries are inline (the NACL is one resource, updated in place), never aws.ec2.NetworkAclRule
    assert not planned.of("NetworkAclRule")
    acl_rules = _acl_entries(planned)
    for c in zones.conduits:
        if c.to != INTERNET:
            for peer in map(str, zones.networks_of(c.from_)):
                assert (False, c.protocol, peer, c.port, c.port) in acl_rules[c.to], c.label
                assert (True, c.protocol, peer, 32768, 65535) in acl_rules[c.to], c.label
        if c.from_ != INTERNET:
            for peer in map(str, zones.networks_of(c.to)):
                assert (True, c.protocol, peer, c.port, c.port) in acl_rules[c.from_], c.label
                assert (False, c.protocol, peer, 32768, 65535) in acl_rules[c.from_], c.label
    for acl in planned.of("NetworkAcl"):
        for key in ("ingress", "egress"):
            numbers = [e["ruleNo"] for e in acl.inputs[key]]
            assert len(numbers) <= NACL_RULES_PER_DIRECTION, f"{acl.name} exceeds the NACL quota"
            assert len(set(numbers)) == len(numbers) and all(100 <= n <= 32000 for n in numbers), acl.name
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
    assert sorted(k.name for k in keys) == ["cityward-detection-key", "cityward-logs-key", "cityward-trail-key"]
    assert all(k.inputs["enableKeyRotation"] is True and k.inputs["rotationPeriodInDays"] <= 365 for k in keys)


@pytest.mark.control("CW-NET-07")
def test_session_manager_endpoints_and_endpoint_sg(planned, stack_inputs):
    vpc = planned.one("Vpc")
    endpoints = [e for e in planned.of("VpcEndpoint") if e.inputs["vpcEndpointType"] == "Interface"]
    services = sorted(e.inputs["serviceName"].rsplit(".", 1)[-1] for e in endpoints)
    assert services == sorted(["ssm", "ssmmessages", "ec2messages", "logs", "kms"])
    assert [e.name for e in planned.of("VpcEndpoint") if e not in endpoints] == ["cityward-vpce-s3"]
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
    bucket = planned.named("cityward-trail-bucket")
    assert i["s3BucketName"] == bucket.outputs["bucket"] == "cityward-cloudtrail-123456789012-eu-west-1"
    assert all(p.inputs["restrictPublicBuckets"] is True for p in planned.of("BucketPublicAccessBlock"))
    sse = planned.named("cityward-trail-bucket-sse").inputs["rules"][0]
    assert sse["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms",
                                                         "kmsMasterKeyId": key.outputs["arn"]}
    policy = json.loads(planned.named("cityward-trail-bucket-policy").inputs["policy"])
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
    acl_ports = {entry[3] for entries in _acl_entries(changed).values() for entry in entries}
    assert 502 not in ports and 502 not in acl_ports
    assert 20000 in ports and 20000 in acl_ports


# --- configuration ----------------------------------------------------------------------------


def _config(stack_inputs, **values):
    base = {"vpcCidr": "10.40.0.0/16", "availabilityZones": ["eu-west-1a", "eu-west-1b"],
            "endpointSubnetCidr": "10.40.240.0/24", "transitSubnetCidr": "10.40.241.0/24",
            "zonesFile": "../../policies/zones.yml"}
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
    ({"transitSubnetCidr": "10.99.0.0/24"}, "transitSubnetCidr': 10.99.0.0/24 is outside vpcCidr"),
    ({"transitSubnetCidr": "10.40.241.0/28"}, "transitSubnetCidr': 10.40.241.0/28 is too small for 2 subnets"),
    ({"transitSubnetCidr": "10.40.240.128/25"}, "transitSubnetCidr': 10.40.240.128/25 overlaps endpointSubnetCidr"),
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
    config = _config(stack_inputs, vpcCidr="10.40.0.0/18", endpointSubnetCidr="10.40.60.0/24",
                     transitSubnetCidr="10.40.61.0/24")
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
        "cityward-segmented-network:incidentContactsFile":
            "../../inventories/example-city/records/incident-contacts.yml",
        "cityward-segmented-network:vpcCidr": "10.40.0.0/16",
        "cityward-segmented-network:availabilityZones": '["eu-west-1a", "eu-west-1b", "eu-west-1c"]',
        "cityward-segmented-network:endpointSubnetCidr": "10.40.240.0/24",
        "cityward-segmented-network:transitSubnetCidr": "10.40.241.0/24",
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


@pytest.mark.control("CW-NET-11")
def test_operator_zones_are_checked_against_the_zones_policy(stack_inputs):
    config = _config(stack_inputs, operatorZones=["ot-operations", "scada"])
    assert config.operator_zones == ("ot-operations", "scada")
    with pytest.raises(CitywardError, match=r"^Pulumi.test.yaml: config 'cityward-segmented-network:operatorZones': "
                                            r"unknown zone 'scada' \(zones of .*zones.yml: enterprise, "):
        stack_inputs.network.check_layout(stack_inputs.zones, config)
    with pytest.raises(CitywardError, match="operatorZones': expected a non-empty list of zone names"):
        _config(stack_inputs, operatorZones="field")
    assert _config(stack_inputs).incident_contacts_file is None
    contacts = _config(stack_inputs, incidentContactsFile="../../inventories/contacts.yml").incident_contacts_file
    assert contacts == STACK.parents[1] / "inventories" / "contacts.yml"
