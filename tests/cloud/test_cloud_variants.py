"""Broken variants of the real stack program are caught by the policy pack (mandatory), by the same
rules whether every value is known or the stack is seen as a first `pulumi preview` sees it."""

from __future__ import annotations

import pulumi_aws as aws
import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from cityward.zones import INTERNET, Conduit

# every variant both ways: ids known (an existing stack), and unknown (a first preview)
pytestmark = pytest.mark.parametrize("first_preview", [False, True], ids=["known", "first-preview"])


def fired(violations) -> dict[str, list]:
    found: dict[str, list] = {}
    for v in violations:
        assert v.mandatory, v
        found.setdefault(v.policy, []).append(v)
    return found


@pytest.mark.control("CW-NET-03")
def test_conduit_opening_modbus_to_the_internet_is_caught(run_variant, check, stack_inputs, first_preview):
    zones = stack_inputs.zones
    # the loader refuses this conduit (see test_zones); here it reaches the stack anyway
    bad = Conduit.model_validate({"from": INTERNET, "to": "field", "protocol": "tcp", "port": 502,
                                  "service": "modbus-tcp", "purpose": "vendor remote access"})
    variant = run_variant(zones=zones.model_copy(update={"conduits": [*zones.conduits, bad]}),
                          first_preview=first_preview)
    found = fired(check(variant.resources))
    assert set(found) == {"cw-net-03-sg-world-ingress-web-only", "cw-net-03-nacl-world-ingress-web-or-return"}
    assert [v.resource_name for v in found["cw-net-03-sg-world-ingress-web-only"]] == [
        "cityward-field-in-internet-tcp502"]
    assert "0.0.0.0/0" in found["cw-net-03-nacl-world-ingress-web-or-return"][0].message


@pytest.mark.control("CW-NET-02")
def test_nat_route_from_an_ot_subnet_is_caught(run_variant, check, first_preview):
    def add_nat(net):
        eip = aws.ec2.Eip("sneaky-eip", domain="vpc")
        nat = aws.ec2.NatGateway("sneaky-nat", subnet_id=net.subnets["dmz"][0].id, allocation_id=eip.id)
        aws.ec2.Route("sneaky-ot-default", route_table_id=net.route_tables["ot-operations"].id,
                      destination_cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)

    found = fired(check(run_variant(extend=add_nat, first_preview=first_preview).resources))
    assert set(found) == {"cw-net-02-ot-subnets-no-internet-route"}
    subnets = sorted(v.resource_name for v in found["cw-net-02-ot-subnets-no-internet-route"])
    assert subnets == ["cityward-ot-operations-eu-west-1a", "cityward-ot-operations-eu-west-1b"]
    # the NAT gateway's id, or on a first preview the resource it will be
    nat = "NAT gateway sneaky-nat" if first_preview else "NAT gateway nat-"
    assert all(nat in v.message for v in found["cw-net-02-ot-subnets-no-internet-route"])


@pytest.mark.control("CW-NET-02")
def test_internet_gateway_route_from_the_field_zone_is_caught(run_variant, check, first_preview):
    def add_igw_route(net):
        aws.ec2.Route("field-default", route_table_id=net.route_tables["field"].id,
                      destination_cidr_block="0.0.0.0/0", gateway_id=net.internet_gateway.id)

    found = fired(check(run_variant(extend=add_igw_route, first_preview=first_preview).resources))
    assert set(found) == {"cw-net-02-ot-subnets-no-internet-route", "cw-net-02-igw-routes-dmz-only"}


@pytest.mark.control("CW-NET-05")
def test_removing_flow_logs_is_caught(planned, planned_preview, check, first_preview):
    planned = planned_preview if first_preview else planned
    without = [r for r in planned.resources if r.type != "aws:ec2/flowLog:FlowLog"]
    assert len(without) == len(planned.resources) - 1
    found = fired(check(without))
    assert set(found) == {"cw-net-05-vpc-flow-logs"}
    assert found["cw-net-05-vpc-flow-logs"][0].resource_name == "cityward-vpc"


@pytest.mark.control("CW-NET-07")
def test_a_bastion_reachable_by_ssh_is_caught(run_variant, check, first_preview):
    def add_bastion(net):
        aws.vpc.SecurityGroupIngressRule(
            "bastion-ssh", security_group_id=net.security_groups["dmz"].id, ip_protocol="tcp", from_port=22,
            to_port=22, cidr_ipv4="0.0.0.0/0", description="bastion",
            tags={"cityward:conduit": "internet->dmz:tcp/22"})

    found = fired(check(run_variant(extend=add_bastion, first_preview=first_preview).resources))
    assert set(found) == {"cw-net-03-sg-no-world-admin-ports", "cw-net-03-sg-world-ingress-web-only",
                          "cw-net-07-ssh-only-from-management"}


@pytest.mark.control("CW-NET-01", "CW-NET-02", "CW-NET-03", "CW-NET-04", "CW-NET-05", "CW-NET-07", "CW-NET-12")
def test_the_example_stack_passes_both_ways(planned, planned_preview, check, first_preview):
    stack = planned_preview if first_preview else planned
    if first_preview:  # really unknown: no ids, and references only as property dependencies
        assert all(r.id == "" for r in stack.resources)
        flow = stack.one("FlowLog")
        assert flow.outputs["vpcId"] == UNKNOWN_STRING_VALUE
        assert flow.dependencies["vpcId"] == [stack.one("Vpc").urn]
    assert check(stack.resources) == []
