"""The pure network plan (cityward.cloud.planning), one mocks run proving that adding a conduit
replaces nothing, and the access rules (cityward.cloud.rules.session_manager, .endpoints) on violating and compliant
input, both as a deployed stack and as a first preview sees it."""

from __future__ import annotations

import ipaddress
import json

import pytest

from cityward.cloud import planning
from cityward.cloud.evaluate import evaluate
from cityward.cloud.mocks import PlannedResource
from cityward.cloud.rules import endpoints, session_manager
from cityward.errors import CitywardError
from cityward.zones import Conduit

CONFIG = planning.PlanConfig("cityward", ipaddress.IPv4Network("10.40.0.0/16"),
                             ipaddress.IPv4Network("10.40.240.0/24"), (32768, 65535), "zones.yml")
NEW = Conduit.model_validate({"from": "enterprise", "to": "management", "protocol": "tcp", "port": 9100,
                              "service": "metrics", "purpose": "Office dashboards read management metrics"})


def _with(zones, *conduits):
    return zones.model_copy(update={"conduits": [*zones.conduits, *conduits]})


def _numbers(zones, zone):
    return {e.rule: e.rule_no for e in planning.nacl_entries(zones, zone, CONFIG)}


# --- planning, without Pulumi ------------------------------------------------------------------


@pytest.mark.control("CW-NET-03")
def test_sg_rule_names_come_from_conduit_and_network(stack_inputs):
    zones = stack_inputs.zones
    specs = {s.name: s for s in planning.sg_rules(zones, CONFIG)}
    assert len(specs) == len(planning.sg_rules(zones, CONFIG)), "names are unique"
    # zone CIDRs keep the names existing stacks have
    assert specs["cityward-field-in-ot-operations-tcp502"].cidr == "10.40.64.0/20"
    assert specs["cityward-ot-operations-out-field-tcp502"].cidr == "10.40.80.0/20"
    # each field site of the peer zone gets its own rule, named by the site
    site = specs["cityward-ot-operations-in-field@depot-north-tcp8883"]
    assert (site.cidr, site.site, site.conduit) == ("10.60.1.0/24", "depot-north", "field->ot-operations:tcp/8883")
    assert specs["cityward-ot-operations-out-field@pumping-station-east-udp47808"].cidr == "10.60.2.0/24"
    # the names do not depend on the conduits' order
    shuffled = zones.model_copy(update={"conduits": list(reversed(zones.conduits))})
    assert {s.name for s in planning.sg_rules(shuffled, CONFIG)} == set(specs)


@pytest.mark.control("CW-NET-03")
def test_nacl_rule_numbers_are_stable(stack_inputs):
    zones = stack_inputs.zones
    before = {zone: _numbers(zones, zone) for zone in zones.zones}
    after = {zone: _numbers(_with(zones, NEW), zone) for zone in zones.zones}
    for zone, numbers in before.items():
        assert all(after[zone][rule] == n for rule, n in numbers.items()), zone
        for egress in (False, True):
            used = [n for rule, n in after[zone].items() if rule.egress == egress]
            assert len(set(used)) == len(used) and all(100 <= n <= 32000 for n in used)
    added = {r for r in after["management"] if r not in before["management"]}
    # only its own way in: the replies out to enterprise exist (enterprise->management:tcp/2222, the backups)
    assert added == {planning.AclRule(False, "tcp", "10.40.0.0/20", 9100, 9100)}
    # reordering the conduits renumbers nothing either
    shuffled = zones.model_copy(update={"conduits": list(reversed(zones.conduits))})
    assert _numbers(shuffled, "ot-operations") == before["ot-operations"]


@pytest.mark.control("CW-NET-03")
def test_colliding_rule_numbers_resolve_deterministically(monkeypatch):
    monkeypatch.setattr(planning, "_hashed_number", lambda identity, attempt: 500 + attempt)
    rules = [planning.AclRule(False, "tcp", f"10.0.{i}.0/24", 22, 22) for i in (3, 1, 2)]
    numbered = {e.rule.cidr: e.rule_no for e in planning.number_rules(rules)}
    assert numbered == {"10.0.1.0/24": 500, "10.0.2.0/24": 501, "10.0.3.0/24": 502}
    egress = planning.number_rules([*rules, planning.AclRule(True, "tcp", "10.0.9.0/24", 22, 22)])
    assert egress[-1].rule_no == 500, "directions number independently"


@pytest.mark.control("CW-NET-03")
def test_nacl_quota_error_names_zone_and_count(stack_inputs):
    zones = stack_inputs.zones
    many = [Conduit.model_validate({"from": "enterprise", "to": "siem", "protocol": "tcp", "port": 7000 + i,
                                    "service": "app", "purpose": "many ports"}) for i in range(40)]
    with pytest.raises(CitywardError, match=r"^zones.yml: zone 'siem': its conduits need \d+ inbound NACL rules, "
                                            r"over AWS's quota of 40$"):
        planning.nacl_rules(_with(zones, *many), "siem", CONFIG)


@pytest.mark.control("CW-NET-02")
def test_routes_only_internet_for_the_dmz_and_sites_for_their_peers(stack_inputs):
    zones = stack_inputs.zones
    routes = {zone: [(r.destination, r.target) for r in planning.routes(zones, zone)] for zone in zones.zones}
    sites = [("10.60.1.0/24", "transit-gateway"), ("10.60.2.0/24", "transit-gateway")]
    # The DMZ reaches the field sites because field gateways fetch updates from its mirror (field->dmz tcp/443).
    assert routes == {
        "dmz": [("0.0.0.0/0", "internet-gateway"), *sites],
        "enterprise": [], "siem": sites, "management": sites, "ot-operations": sites, "field": sites,
    }
    without_sites = zones.model_copy(update={"sites": {}})
    assert all(not planning.routes(without_sites, z) or z == "dmz" for z in zones.zones)
    no_internet = zones.model_copy(update={"conduits": [c for c in zones.conduits if "internet" not in
                                                        (c.from_, c.to)]})
    assert [(r.destination, r.target) for r in planning.routes(no_internet, "dmz")] == sites


# --- one mocks run: adding a conduit replaces nothing ----------------------------------------


@pytest.mark.control("CW-NET-13")
def test_adding_a_conduit_adds_resources_and_replaces_none(planned, run_variant, stack_inputs):
    changed = run_variant(zones=_with(stack_inputs.zones, NEW))
    # keyed by type and name: components of different types may share a name
    after = {(r.type, r.name): r for r in changed.resources}
    before = {(r.type, r.name) for r in planned.resources}
    assert set(after) > before
    assert {name for _, name in set(after) - before} == {
        "cityward-management-in-enterprise-tcp9100", "cityward-enterprise-out-management-tcp9100"}
    updated = []
    for old in planned.resources:
        new = after[(old.type, old.name)]
        assert new.type == old.type and new.urn == old.urn
        if old.type == "aws:ec2/vpc:Vpc":  # its tag names the policy it was built from: updated in place
            assert new.inputs["tags"]["cityward:zones-sha256"] != old.inputs["tags"]["cityward:zones-sha256"]
            assert {**new.inputs, "tags": None} == {**old.inputs, "tags": None}
        elif new.inputs != old.inputs:
            updated.append(old.name)
            for direction in ("ingress", "egress"):
                kept = {json.dumps(e, sort_keys=True) for e in new.inputs[direction]}
                assert all(json.dumps(e, sort_keys=True) in kept for e in old.inputs[direction]), old.name
    assert sorted(updated) == ["cityward-enterprise-nacl", "cityward-management-nacl"]


# --- the access rules: Session Manager and endpoints ----------------------------------------

ACCESS = [*session_manager.RULES.policies(None), *endpoints.RULES.policies(None)]


def _fired(resources, prefix):
    return {(v.policy, v.resource_name) for v in evaluate(resources, ACCESS)
            if v.policy.startswith(prefix)}


def _resource(typ, resource_name, **inputs):
    return PlannedResource(typ, resource_name, f"urn:pulumi:t::p::{typ}::{resource_name}", f"id-{resource_name}",
                           inputs, dict(inputs))


@pytest.mark.control("CW-NET-11", "CW-NET-15", "CW-NET-16")
@pytest.mark.parametrize("first_preview", [False, True], ids=["known", "first-preview"])
def test_the_stack_passes_the_access_rules(stack_inputs, first_preview):
    from cityward.cloud.plan import run_stack

    run = run_stack(stack_inputs, first_preview=first_preview)
    assert evaluate(run.resources, ACCESS) == []


@pytest.mark.control("CW-NET-11")
def test_start_session_on_every_instance_is_caught(planned):
    policy = planned.named("cityward-operator-sessions")
    doc = json.loads(policy.inputs["policy"])
    scoped = doc["Statement"][0]
    assert scoped["Condition"] == {"StringEquals": {"ssm:resourceTag/cityward:zone": list(
        planned.one("Vpc").inputs["tags"]["cityward:zones"].split(","))}}
    del scoped["Condition"]
    broad = _resource(policy.type, "broad", policy=json.dumps(doc))
    wildcard = _resource(policy.type, "wildcard", policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Action": "ssm:*", "Resource": "*"}]}))
    assert _fired([broad, wildcard], "cw-net-11") == {("cw-net-11-operator-sessions-scoped-to-zones", "broad"),
                                         ("cw-net-11-operator-sessions-scoped-to-zones", "wildcard")}


@pytest.mark.control("CW-NET-15")
def test_session_document_without_encrypted_logging_is_caught(planned):
    document = planned.named("cityward-session-preferences")
    content = json.loads(document.inputs["content"])
    assert content["inputs"]["cloudWatchEncryptionEnabled"] is True and content["inputs"]["runAsEnabled"] is False
    assert content["inputs"]["idleSessionTimeout"] == "20"
    content["inputs"].update(cloudWatchEncryptionEnabled=False, cloudWatchLogGroupName="")
    bad = _resource(document.type, "SSM-SessionManagerRunShell", documentType="Session", content=json.dumps(content),
                    name="other-name")
    fired = [v for v in evaluate([bad], ACCESS) if v.policy.startswith("cw-net-15")]
    assert {v.policy for v in fired} == {"cw-net-15-session-document-logs-encrypted",
                                         "cw-net-15-session-preferences-declared"}
    assert len([v for v in fired if v.policy == "cw-net-15-session-document-logs-encrypted"]) == 2


@pytest.mark.control("CW-NET-16")
def test_endpoint_without_account_confinement_is_caught(planned):
    endpoint = planned.named("cityward-vpce-ssm")
    open_policy = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*",
                                             "Condition": {"StringEquals": {"aws:PrincipalAccount": "1"}}}]})
    none = _resource(endpoint.type, "none", serviceName="com.amazonaws.eu-west-1.ssm", vpcEndpointType="Interface")
    half = _resource(endpoint.type, "half", serviceName="com.amazonaws.eu-west-1.kms", vpcEndpointType="Interface",
                     policy=open_policy)
    assert _fired([none, half], "cw-net-16") == {("cw-net-16-endpoint-policy-this-account", "none"),
                                    ("cw-net-16-endpoint-policy-this-account", "half"),
                                    ("cw-net-16-s3-gateway-endpoint", None)}
    s3 = planned.named("cityward-vpce-s3")
    assert s3.inputs["vpcEndpointType"] == "Gateway"
    assert len(s3.inputs["routeTableIds"]) == len(planned.tagged("RouteTable", "cityward:zone-kind", "ot")) + 4
