"""The transit segment: the Transit Gateway's VPC attachment in subnets of its own, whose NACL admits
exactly the conduit flows between field sites and zones and whose table routes only locally; the
pack (CW-NET-13) recognises it and judges its entries and routes.

Fast: the planning is pure, stack assertions read the session's runs, and the pack's judgment of
extra entries is one evaluation per mode over a copy of those runs."""

from __future__ import annotations

import copy
import dataclasses
import ipaddress

import pytest

from cityward.cloud import planning
from cityward.cloud.evaluate import evaluate
from cityward.cloud.mocks import run_program
from cityward.cloud.rules.zones import RULES as ZONE_RULES
from cityward.cloud.segments import SegmentedVpc, plan_config
from cityward.errors import CitywardError
from cityward.zones import Conduit

pytestmark = pytest.mark.control("CW-NET-13")
TRANSIT = ipaddress.ip_network("10.40.241.0/24")
SITES = {"depot-north": "10.60.1.0/24", "pumping-station-east": "10.60.2.0/24"}
RETURN = (32768, 65535)


def _entries(zones, config) -> set[tuple[bool, str, str, int, int]]:
    return {(e.rule.egress, e.rule.protocol, e.rule.cidr, e.rule.from_port, e.rule.to_port)
            for e in planning.nacl_entries(zones, planning.TRANSIT_SEGMENT, plan_config(config))}


# --- the plan, without Pulumi ----------------------------------------------------------------


def test_transit_entries_are_exactly_the_sites_conduit_flows(stack_inputs):
    zones = stack_inputs.zones
    entries = _entries(zones, stack_inputs.config)
    # written out from policies/zones.yml by hand: the field zone's conduits with other zones
    expected: set = set()
    for (src, dst), proto, port in [
        (("ot-operations", "field"), "tcp", 502), (("ot-operations", "field"), "tcp", 20000),
        (("ot-operations", "field"), "tcp", 4840), (("ot-operations", "field"), "udp", 47808),
        (("ot-operations", "field"), "tcp", 8883), (("field", "ot-operations"), "tcp", 8883),
        (("field", "ot-operations"), "udp", 123), (("field", "siem"), "tcp", 6514),
        (("management", "field"), "tcp", 22), (("field", "dmz"), "tcp", 443),
        (("field", "management"), "tcp", 2222),
    ]:
        for site in SITES.values():
            a, b = (site, str(zones.cidr_of(dst))) if src == "field" else (str(zones.cidr_of(src)), site)
            expected |= {(False, proto, a, port, port), (True, proto, b, port, port),
                         (False, proto, b, *RETURN), (True, proto, a, *RETURN)}
    assert entries == expected
    cidrs = {e[2] for e in entries}
    assert str(zones.cidr_of("enterprise")) not in cidrs
    assert str(stack_inputs.config.endpoint_cidr) not in cidrs and "0.0.0.0/0" not in cidrs
    assert all(sum(e[0] == egress for e in entries) <= planning.NACL_RULES_PER_DIRECTION for egress in (False, True))


def test_transit_numbers_are_stable_and_a_new_site_conduit_only_adds(stack_inputs):
    zones, plan = stack_inputs.zones, plan_config(stack_inputs.config)
    new = Conduit.model_validate({"from": "field", "to": "management", "protocol": "tcp", "port": 9100,
                                  "service": "metrics", "purpose": "Field gateways push metrics"})
    before = {e.rule: e.rule_no for e in planning.nacl_entries(zones, "transit", plan)}
    more = zones.model_copy(update={"conduits": [*zones.conduits, new]})
    after = {e.rule: e.rule_no for e in planning.nacl_entries(more, "transit", plan)}
    assert all(after[rule] == number for rule, number in before.items())
    added = {(r.egress, r.cidr, r.from_port) for r in set(after) - set(before)}
    # in from each site and out to management on 9100; the replies are already there both ways (in
    # from management for field->management:tcp/2222, the backups; out to the sites for field->ot-operations:tcp/8883)
    assert added == {(False, "10.60.1.0/24", 9100), (False, "10.60.2.0/24", 9100), (True, "10.40.32.0/20", 9100)}
    # a conduit that no site's zone takes part in changes nothing here
    office = Conduit.model_validate({"from": "enterprise", "to": "siem", "protocol": "tcp", "port": 9100,
                                     "service": "metrics", "purpose": "Office metrics"})
    unrelated = zones.model_copy(update={"conduits": [*zones.conduits, office]})
    assert {e.rule: e.rule_no for e in planning.nacl_entries(unrelated, "transit", plan)} == before


def test_transit_quota_error_names_the_segment(stack_inputs):
    zones = stack_inputs.zones
    many = [Conduit.model_validate({"from": "ot-operations", "to": "field", "protocol": "tcp", "port": 7000 + i,
                                    "service": "app", "purpose": "many ports"}) for i in range(30)]
    crowded = zones.model_copy(update={"conduits": [*zones.conduits, *many]})
    with pytest.raises(CitywardError, match=r"zones.yml: the transit segment: its conduits need \d+ inbound NACL "
                                            r"rules, over AWS's quota of 40$"):
        planning.transit_nacl_rules(crowded, plan_config(stack_inputs.config))


# --- the stack -------------------------------------------------------------------------------


@pytest.mark.control("CW-NET-13", "CW-NET-16")
def test_the_attachment_sits_in_the_transit_segment(planned, stack_inputs):
    subnets = planned.tagged("Subnet", "cityward:zone", "transit")
    assert sorted(s.inputs["availabilityZone"] for s in subnets) == ["eu-west-1a", "eu-west-1b"]
    assert all(s.inputs["tags"]["cityward:zone-kind"] == "platform" for s in subnets)
    assert sorted(s.inputs["cidrBlock"] for s in subnets) == [str(n) for n in TRANSIT.subnets(new_prefix=25)]
    attachment = planned.one("VpcAttachment")
    assert sorted(attachment.outputs["subnetIds"]) == sorted(s.id for s in subnets)
    endpoint_subnets = {s.id for s in planned.tagged("Subnet", "cityward:zone", "endpoints")}
    assert not endpoint_subnets & set(attachment.outputs["subnetIds"])
    # its own table, routing nowhere beyond local, and left out of the S3 gateway endpoint
    table = planned.named("cityward-transit-rt")
    assert table.inputs["routes"] == []
    assert {a.outputs["routeTableId"] for a in planned.of("RouteTableAssociation")
            if a.outputs.get("subnetId") in {s.id for s in subnets}} == {table.id}
    assert table.id not in planned.named("cityward-vpce-s3").inputs["routeTableIds"]
    # its own NACL with the planned entries, and no security group
    nacl = planned.named("cityward-transit-nacl")
    assert {a.outputs["networkAclId"] for a in planned.of("NetworkAclAssociation")
            if a.outputs.get("subnetId") in {s.id for s in subnets}} == {nacl.id}
    inline = {(egress, e["protocol"], e["cidrBlock"], e["fromPort"], e["toPort"])
              for egress, key in ((False, "ingress"), (True, "egress")) for e in nacl.inputs[key]}
    assert inline == _entries(stack_inputs.zones, stack_inputs.config)
    assert not planned.tagged("SecurityGroup", "cityward:zone", "transit")


def test_without_sites_there_is_no_transit_segment(stack_inputs):
    no_sites = stack_inputs.zones.model_copy(update={"sites": {}})
    config = dataclasses.replace(stack_inputs.config, transit_cidr=None)
    stack_inputs.network.check_layout(no_sites, config)  # not required without sites

    run = run_program(lambda: SegmentedVpc(no_sites, config), project="cityward-segmented-network", stack="t",
                      region="eu-west-1")
    assert not [r for r in run.resources if "transit" in r.name]
    assert [r.name for r in run.resources if r.type == "aws:ec2/subnet:Subnet"] == [
        "cityward-endpoints-eu-west-1a", "cityward-endpoints-eu-west-1b"]


@pytest.mark.control("CW-NET-01")
@pytest.mark.parametrize(("sites", "transit", "expected"), [
    (True, None, r"transitSubnetCidr': required: the field sites \(depot-north, pumping-station-east\)"),
    (True, "10.40.80.0/24", r"transitSubnetCidr': 10.40.80.0/24 overlaps zone 'field' \(10.40.80.0/20\) of "),
    (False, "10.40.64.0/24", r"transitSubnetCidr': 10.40.64.0/24 overlaps zone 'ot-operations'"),
])
def test_bad_transit_cidr_is_one_line_naming_the_key(stack_inputs, sites, transit, expected):
    zones = stack_inputs.zones if sites else stack_inputs.zones.model_copy(update={"sites": {}})
    config = dataclasses.replace(stack_inputs.config, transit_cidr=transit and ipaddress.ip_network(transit))
    with pytest.raises(CitywardError, match=r"^\S*Pulumi.example.yaml: config 'cityward-segmented-network:"
                                            + expected) as caught:
        stack_inputs.network.check_layout(zones, config)
    assert "\n" not in str(caught.value)


def test_a_transit_cidr_over_a_site_is_refused(stack_inputs):
    site = stack_inputs.zones.sites["depot-north"].model_copy(update={"cidr": ipaddress.ip_network("10.40.241.0/26")})
    zones = stack_inputs.zones.model_copy(update={"sites": {**stack_inputs.zones.sites, "depot-north": site}})
    with pytest.raises(CitywardError, match=r"transitSubnetCidr': 10.40.241.0/24 overlaps site 'depot-north'"):
        stack_inputs.network.check_layout(zones, stack_inputs.config)


def test_zones_may_not_take_a_segment_name(stack_inputs):
    zones = stack_inputs.zones
    renamed = {("transit" if k == "siem" else k): (z.model_copy(update={"name": "transit"}) if k == "siem" else z)
               for k, z in zones.zones.items()}
    with pytest.raises(CitywardError, match=r"zones.yml: zone 'transit', field '\(name\)': reserved for the stack's"):
        stack_inputs.network.check_layout(zones.model_copy(update={"zones": renamed}), stack_inputs.config)


# --- the pack's judgment of the transit NACL ---------------------------------------------------

# (direction, protocol, cidr, from, to, refused?, text in the violation)
EXTRA = [
    ("ingress", "tcp", "10.40.0.0/20", 22, 22, True,
     "zone 'enterprise' (10.40.0.0/20): no conduit from 'enterprise' to a zone with field sites on tcp/22"),
    ("egress", "tcp", "10.40.16.0/20", 22, 22, True,
     "zone 'dmz' (10.40.16.0/20): no conduit from a zone with field sites to 'dmz' on tcp/22"),
    ("ingress", "tcp", "10.40.0.0/20", *RETURN, True, "no conduit from a zone with field sites to 'enterprise' "
                                                      "on the return range"),
    # S7comm from a site: no conduit
    ("ingress", "tcp", "10.60.1.0/24", 102, 102, True,
     "field site 'depot-north' (10.60.1.0/24): no conduit from 'field' to another zone on tcp/102"),
    # RDP from a site: a single port above 1023 is no return range, so it cannot pass as a reply
    ("ingress", "tcp", "10.60.1.0/24", 3389, 3389, True,
     "field site 'depot-north' (10.60.1.0/24): no conduit from 'field' to another zone on tcp/3389"),
    ("ingress", "-1", "0.0.0.0/0", 0, 0, True, "all traffic in from internet: only field sites and zones meet"),
    ("egress", "tcp", "10.40.240.0/24", 443, 443, True, "only field sites and zones meet across"),
    # one CIDR per entry: SSH to a site is the management->field conduit's, whoever sends it
    ("egress", "tcp", "10.60.2.0/24", 22, 22, False, ""),
]


@pytest.fixture(scope="module")
def judged(planned, planned_preview, stack_inputs):
    found = {}
    for mode, run in (("known", planned), ("first-preview", planned_preview)):
        resources = list(run.resources)
        i = next(n for n, r in enumerate(resources) if r.name == "cityward-transit-nacl")
        nacl = resources[i]
        inputs = copy.deepcopy(nacl.inputs)
        for n, (key, proto, cidr, low, high, _, _) in enumerate(EXTRA):
            inputs[key].append({"action": "allow", "protocol": proto, "cidrBlock": cidr, "fromPort": low,
                                "toPort": high, "ruleNo": 1 + n})
        resources[i] = dataclasses.replace(nacl, inputs=inputs, outputs={**copy.deepcopy(nacl.outputs), **inputs})
        found[mode] = evaluate(resources, ZONE_RULES.policies(stack_inputs.zones))
    return found


@pytest.mark.parametrize("mode", ["known", "first-preview"])
def test_the_pack_admits_only_site_conduit_flows_through_the_transit_nacl(judged, mode):
    found = judged[mode]
    assert {v.policy for v in found} == {"cw-net-13-nacl-entries-from-conduits"}
    assert {v.resource_name for v in found} == {"cityward-transit-nacl"}
    refused = [e for e in EXTRA if e[5]]
    assert len(found) == len(refused), [v.message for v in found]
    for *_, text in refused:
        assert any(text in v.message for v in found), (text, [v.message for v in found])


def test_a_route_table_named_transit_but_serving_a_zone_is_judged_as_the_zone(stack_inputs, planned):
    """The segment is recognised by its subnets' addresses, not by a tag alone."""
    resources = list(planned.resources)
    i = next(n for n, r in enumerate(resources) if r.name == "cityward-field-rt")
    table = resources[i]
    tags = {**table.inputs["tags"], "cityward:zone": "transit"}
    routes = [*table.inputs["routes"], {"cidrBlock": "0.0.0.0/0", "networkInterfaceId": "eni-0123"}]
    resources[i] = dataclasses.replace(table, inputs={**table.inputs, "tags": tags, "routes": routes},
                                       outputs={**table.outputs, "tags": tags, "routes": routes})
    found = evaluate(resources, [p for p in ZONE_RULES.policies(stack_inputs.zones)
                                 if p.name == "cw-net-13-routes-from-conduits"])
    assert [v.message for v in found] == [
        "CW-NET-13: route table cityward-field-rt (zone 'field') sends 0.0.0.0/0 to a network interface: OT zones "
        "route only to declared field sites; a route through a network interface can reach the internet"]

