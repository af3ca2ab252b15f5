"""CW-NET-13: the pack enforces the zones policy itself, on a plan with every value known and on a
first preview. Each mutation of the real stack must be refused by the named rule, whatever the
mutated resource's tags claim; the unmutated stack passes (tests/cloud/test_cloud_variants.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pulumi_aws as aws
import pytest

from cityward.cloud import pack
from cityward.cloud.evaluate import evaluate
from cityward.cloud.rules.zones import RULES as ZONE_RULES

pytestmark = pytest.mark.control("CW-NET-13")
MODES = ("known", "first-preview")


def forged_conduit_tag(net):
    # enterprise -> SCADA on Modbus, dressed as a conduit
    aws.vpc.SecurityGroupIngressRule(
        "forged-modbus", security_group_id=net.security_groups["ot-operations"].id, ip_protocol="tcp",
        from_port=502, to_port=502, cidr_ipv4="10.40.0.0/20", description="historian feed",
        tags={"cityward:conduit": "enterprise->ot-operations:tcp/502", "cityward:zone": "ot-operations"})


def egress_to_the_internet_from_ot(net):
    aws.vpc.SecurityGroupEgressRule(
        "ot-https-out", security_group_id=net.security_groups["field"].id, ip_protocol="tcp", from_port=443,
        to_port=443, cidr_ipv4="0.0.0.0/0", description="vendor cloud",
        tags={"cityward:conduit": "field->internet:tcp/443"})


def route_via_network_interface(net):
    eni = aws.ec2.NetworkInterface("appliance-eni", subnet_id=net.subnets["dmz"][0].id)
    aws.ec2.Route("ot-via-eni", route_table_id=net.route_tables["ot-operations"].id,
                  destination_cidr_block="0.0.0.0/0", network_interface_id=eni.id)


def route_via_transit_gateway(net):
    tgw = aws.ec2transitgateway.TransitGateway("other-tgw")
    aws.ec2.Route("field-via-tgw", route_table_id=net.route_tables["field"].id,
                  destination_cidr_block="0.0.0.0/0", transit_gateway_id=tgw.id)


def site_route_from_a_zone_without_conduit(net):
    # enterprise has no conduit with the field zone, so it must not reach a field site
    aws.ec2.Route("enterprise-to-depot", route_table_id=net.route_tables["enterprise"].id,
                  destination_cidr_block="10.60.1.0/24", transit_gateway_id=net.transit[0].id)


def nacl_entry_without_conduit(net):
    aws.ec2.NetworkAclRule("field-rdp-in", network_acl_id=net.nacls["field"].id, rule_number=5, egress=False,
                           protocol="tcp", rule_action="allow", cidr_block="10.40.0.0/20", from_port=3389,
                           to_port=3389)


def transit_entry_without_conduit(net):
    # enterprise has no conduit with the field zone: its SSH must not cross the attachment to a site
    aws.ec2.NetworkAclRule("transit-enterprise-ssh-in", network_acl_id=net.nacls["transit"].id, rule_number=6,
                           egress=False, protocol="tcp", rule_action="allow", cidr_block="10.40.0.0/20", from_port=22,
                           to_port=22)


def transit_route_to_the_internet(net):
    aws.ec2.Route("transit-to-internet", route_table_id=net.route_tables["transit"].id,
                  destination_cidr_block="0.0.0.0/0", gateway_id=net.internet_gateway.id)


def subnet_outside_every_zone(net):
    aws.ec2.Subnet("stray-subnet", vpc_id=net.vpc.id, cidr_block="10.40.200.0/24", availability_zone="eu-west-1a",
                   tags={"cityward:zone": "field", "cityward:zone-kind": "ot"})


def subnet_tagged_as_another_zone(net):
    aws.ec2.Subnet("mislabelled-subnet", vpc_id=net.vpc.id, cidr_block="10.40.95.0/24",
                   availability_zone="eu-west-1a", tags={"cityward:zone": "dmz", "cityward:zone-kind": "dmz"})


MUTATIONS = [
    pytest.param(forged_conduit_tag, "cw-net-13-sg-rules-from-conduits", "forged-modbus",
                 "no conduit enterprise->ot-operations:tcp/502", id="cross-zone-rule-forged-tag"),
    pytest.param(egress_to_the_internet_from_ot, "cw-net-13-sg-rules-from-conduits", "ot-https-out",
                 "no conduit field->internet:tcp/443", id="ot-egress-to-internet"),
    pytest.param(route_via_network_interface, "cw-net-13-routes-from-conduits", "ot-via-eni",
                 "network interface can reach the internet", id="ot-route-via-eni"),
    pytest.param(route_via_transit_gateway, "cw-net-13-routes-from-conduits", "field-via-tgw",
                 "0.0.0.0/0 is no field site", id="ot-route-via-tgw"),
    pytest.param(site_route_from_a_zone_without_conduit, "cw-net-13-routes-from-conduits", "enterprise-to-depot",
                 "no conduit between zone 'enterprise' and zone 'field' of site 'depot-north'",
                 id="site-route-without-conduit"),
    pytest.param(nacl_entry_without_conduit, "cw-net-13-nacl-entries-from-conduits", "field-rdp-in",
                 "no conduit enterprise->field:tcp/3389", id="nacl-entry-without-conduit"),
    pytest.param(transit_entry_without_conduit, "cw-net-13-nacl-entries-from-conduits", "transit-enterprise-ssh-in",
                 "zone 'enterprise' (10.40.0.0/20): no conduit from 'enterprise' to a zone with field sites on tcp/22",
                 id="transit-nacl-entry-without-conduit"),
    pytest.param(transit_route_to_the_internet, "cw-net-13-routes-from-conduits", "transit-to-internet",
                 "(the transit segment) sends 0.0.0.0/0 to a internet gateway", id="transit-route-to-internet"),
    pytest.param(subnet_outside_every_zone, "cw-net-13-subnets-in-zones", "stray-subnet",
                 "is in no zone", id="subnet-outside-zones"),
    pytest.param(subnet_tagged_as_another_zone, "cw-net-13-subnets-in-zones", "mislabelled-subnet",
                 "lies in zone 'field' but is tagged", id="subnet-mislabelled"),
]


@pytest.fixture(scope="module")
def mutated(stack_inputs):
    """The stack with every mutation at once (they touch different resources), run both ways:
    two program runs instead of two per mutation; each test below finds its own resource."""
    from cityward.cloud.plan import run_stack

    def all_mutations(net):
        for param in MUTATIONS:
            param.values[0](net)

    found = {}
    for mode in MODES:
        run = run_stack(stack_inputs, extend=all_mutations, first_preview=mode == "first-preview")
        found[mode] = evaluate(run.resources, ZONE_RULES.policies(stack_inputs.zones))
    return found


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("mutate", "policy", "resource", "phrase"), MUTATIONS)
def test_each_mutation_is_refused_by_its_rule(mutated, mode, mutate, policy, resource, phrase):
    found = mutated[mode]
    about = [v for v in found if v.resource_name == resource]
    assert about, f"{mutate.__name__} passed the pack"
    assert all(v.mandatory for v in about)
    assert any(v.policy == policy and phrase in v.message for v in about), [(v.policy, v.message) for v in about]
    assert not any("cannot decide" in v.message for v in found), [v.message for v in found]


def test_only_the_mutated_resources_are_refused(mutated):
    names = {p.values[2] for p in MUTATIONS}
    for mode in MODES:
        assert {v.resource_name for v in mutated[mode]} <= names, mode


@pytest.mark.parametrize("mode", MODES)
def test_the_zone_rules_pass_the_real_stack(planned, planned_preview, stack_inputs, mode):
    resources = (planned if mode == "known" else planned_preview).resources
    assert evaluate(resources, ZONE_RULES.policies(stack_inputs.zones)) == []


def test_a_stack_built_from_another_policy_is_refused(planned, stack_inputs):
    fewer = stack_inputs.zones.model_copy(update={"conduits": stack_inputs.zones.conduits[1:]})
    found = evaluate(planned.resources, ZONE_RULES.policies(fewer))
    digest = [v for v in found if v.policy == "cw-net-13-stack-built-from-zones-policy"]
    assert [v.resource_name for v in digest] == ["cityward-vpc"]
    # and the conduit the pack no longer knows is refused on its own merits
    assert any("no conduit ot-operations->field:tcp/502" in v.message for v in found)


def test_without_a_zones_policy_the_pack_refuses_every_plan(planned, monkeypatch):
    monkeypatch.delenv(pack.ZONES_ENV, raising=False)
    assert pack.zones_from_environment() is None
    found = evaluate(planned.resources, pack.policies(None))
    assert [v.policy for v in found] == ["cw-net-13-zones-policy-loaded"]
    assert "CITYWARD_ZONES_FILE" in found[0].message


def test_the_pack_reads_its_zones_policy_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(pack.ZONES_ENV, "policies/zones.yml")
    assert pack.zones_from_environment().sites
    bad = tmp_path / "zones.yml"
    bad.write_text("version: 1\nzones: {}\n")
    monkeypatch.setenv(pack.ZONES_ENV, str(bad))
    with pytest.raises(Exception, match=r"^CITYWARD_ZONES_FILE: .*zones.yml: top level, field 'zones'"):
        pack.zones_from_environment()


def test_the_pack_module_imports_without_the_stack_program():
    """The pack process loads the rules only: no pulumi_aws, no program (a slim analyzer)."""
    code = ("import sys; import cityward.cloud.pack; "
            "print('pulumi_aws' in sys.modules, 'cityward.cloud.network' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, pack.ZONES_ENV: ""}).stdout.split()
    assert out == ["False", "False"]
