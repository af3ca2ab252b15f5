"""Field sites connect only through conduits (CW-NET-16): the site connectivity component on the
example stack passes every site rule, on a plan of an existing stack and on a first preview; each
mutation is caught by exactly the rule it breaks, naming the resource.

The stack is run once per mode; mutations change props of copies of that list (inputs, outputs and
property dependencies together, as the engine would send them), so they cost no extra run."""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable

import pytest
from pulumi_policy import EnforcementLevel
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from cityward.cloud.evaluate import evaluate
from cityward.cloud.mocks import PlannedResource
from cityward.cloud.plan import run_stack
from cityward.cloud.rules.sites import RULES as SITE_RULES
from cityward.cloud.sites import SiteConnectivity

pytestmark = pytest.mark.control("CW-NET-16")
MODES = ("known", "first-preview")
NAME = "cityward-sites"


def add_sites(stack_inputs) -> Callable:
    def extend(net):
        SiteConnectivity(NAME, zones=stack_inputs.zones, vpc_id=net.vpc.id,
                         attachment_subnet_ids=[s.id for s in net.subnets["transit"]],
                         log_group_arn=net.flow_log_group.arn)
    return extend


@pytest.fixture(scope="module")
def with_sites(stack_inputs) -> dict[str, list[PlannedResource]]:
    extend = add_sites(stack_inputs)
    return {mode: run_stack(stack_inputs, extend=extend, first_preview=mode == "first-preview").resources
            for mode in MODES}


@pytest.fixture(scope="module")
def site_rules(stack_inputs):
    return SITE_RULES.policies(stack_inputs.zones)


# --- mutating a planned list ---------------------------------------------------------------


class Stack:
    """A copy of a planned list that mutations may change."""

    def __init__(self, resources: list[PlannedResource]) -> None:
        self.resources = [dataclasses.replace(r, inputs=copy.deepcopy(r.inputs), outputs=copy.deepcopy(r.outputs),
                                              dependencies=copy.deepcopy(r.dependencies)) for r in resources]

    def named(self, name: str) -> PlannedResource:
        return next(r for r in self.resources if r.name == name)

    def set(self, name: str, key: str, value) -> None:
        resource = self.named(name)
        resource.inputs[key] = resource.outputs[key] = value
        resource.dependencies.pop(key, None)

    def point(self, name: str, key: str, target: str, attribute: str) -> None:
        """resource.key = target.attribute, with the dependency a program would record."""
        to = self.named(target)
        self.set(name, key, to.outputs.get(attribute, UNKNOWN_STRING_VALUE))
        self.named(name).dependencies[key] = [to.urn]

    def add_copy(self, of: str, name: str, type_: str | None = None, **props) -> None:
        source = self.named(of)
        typ = type_ or source.type
        urn = source.urn.rsplit("::", 2)[0] + f"::{typ}::{name}"
        copied = dataclasses.replace(source, type=typ, name=name, urn=urn, id=source.id and f"{source.id}-copy",
                                     inputs={**source.inputs, **props}, outputs={**source.outputs, **props},
                                     dependencies=copy.deepcopy(source.dependencies))
        if "id" in copied.outputs and copied.outputs["id"]:
            copied.outputs["id"] = copied.id
        self.resources.append(copied)

    def drop(self, keep: Callable[[PlannedResource], bool]) -> None:
        self.resources = [r for r in self.resources if keep(r)]


DEPOT, PUMP = f"{NAME}-depot-north", f"{NAME}-pumping-station-east"


def vpn_route_to_enterprise(s: Stack) -> None:
    s.set(f"{DEPOT}-to-siem", "destinationCidrBlock", "10.40.0.0/20")


def propagation(s: Stack) -> None:
    s.add_copy(f"{DEPOT}-rtb-assoc", "sneaky-propagation",
               "aws:ec2transitgateway/routeTablePropagation:RouteTablePropagation")


def default_association(s: Stack) -> None:
    s.set(f"{NAME}-tgw", "defaultRouteTableAssociation", "enable")


def attachment_default_propagation(s: Stack) -> None:
    s.set(f"{NAME}-vpc-attachment", "transitGatewayDefaultRouteTablePropagation", True)


def ikev1(s: Stack) -> None:
    s.set(f"{DEPOT}-vpn", "tunnel1IkeVersions", ["ikev1", "ikev2"])


def weak_dh(s: Stack) -> None:
    s.set(f"{PUMP}-vpn", "tunnel2Phase1DhGroupNumbers", [2.0, 20.0])


def site_without_vpn(s: Stack) -> None:
    # the VPN goes, and with it what only it made sense for (its route table, associations, routes)
    s.drop(lambda r: r.name == f"{DEPOT}-cgw" or not (r.name.startswith(f"{DEPOT}-")
                                                      or r.name == f"{NAME}-vpc-to-depot-north"))


def foreign_gateway(s: Stack) -> None:
    s.add_copy(f"{DEPOT}-cgw", "vendor-cgw", ipAddress="198.51.100.7")


def vpc_route_to_undeclared(s: Stack) -> None:
    s.set(f"{NAME}-vpc-to-depot-north", "destinationCidrBlock", "10.70.0.0/24")


def vpc_route_through_other_site(s: Stack) -> None:
    s.point(f"{NAME}-vpc-to-depot-north", "transitGatewayAttachmentId", f"{PUMP}-vpn", "transitGatewayAttachmentId")


def shared_site_table(s: Stack) -> None:
    s.add_copy(f"{PUMP}-rtb-assoc", "shared-assoc")
    s.point("shared-assoc", "transitGatewayRouteTableId", f"{DEPOT}-rtb", "id")


def vpn_on_virtual_gateway(s: Stack) -> None:
    s.set(f"{DEPOT}-vpn", "vpnGatewayId", "vgw-0123456789abcdef0")
    s.set(f"{DEPOT}-vpn", "transitGatewayId", None)
    s.named(f"{DEPOT}-vpn").inputs.pop("transitGatewayId")
    s.named(f"{DEPOT}-vpn").outputs.pop("transitGatewayId")


def open_traffic_selector(s: Stack) -> None:
    s.set(f"{DEPOT}-vpn", "localIpv4NetworkCidr", "0.0.0.0/0")


def attachment_in_endpoint_subnets(s: Stack) -> None:
    s.point(f"{NAME}-vpc-attachment", "subnetIds", "cityward-endpoints-eu-west-1a", "id")
    attachment = s.named(f"{NAME}-vpc-attachment")
    for props in (attachment.inputs, attachment.outputs):
        props["subnetIds"] = [props["subnetIds"]]


def second_vpc_attachment(s: Stack) -> None:
    s.add_copy(f"{NAME}-vpc-attachment", "partner-vpc-attachment")


MUTATIONS = [
    # (id, mutation, rule expected, resource named in the message, text in the message)
    ("vpn-route-to-zone-without-conduit", vpn_route_to_enterprise, "cw-net-16-site-routes-follow-conduits",
     f"{DEPOT}-to-siem", "zone 'enterprise': a VPN route to a zone without a conduit (none between 'field' and "
                         "'enterprise')"),
    ("propagation-enabled", propagation, "cw-net-16-tgw-no-propagation", "sneaky-propagation", "propagates"),
    ("default-association-enabled", default_association, "cw-net-16-tgw-no-default-route-tables",
     f"{NAME}-tgw", "defaultRouteTableAssociation is enable"),
    ("attachment-default-propagation", attachment_default_propagation, "cw-net-16-tgw-no-default-route-tables",
     f"{NAME}-vpc-attachment", "transitGatewayDefaultRouteTablePropagation is True"),
    ("ikev1-allowed", ikev1, "cw-net-16-vpn-tunnels-ikev2-strong", f"{DEPOT}-vpn", "tunnel1IkeVersions allows ikev1"),
    ("weak-dh-group", weak_dh, "cw-net-16-vpn-tunnels-ikev2-strong", f"{PUMP}-vpn",
     "tunnel2Phase1DhGroupNumbers allows 2"),
    ("site-without-vpn", site_without_vpn, "cw-net-16-sites-have-vpn-on-tgw", f"{DEPOT}-cgw", "has no VPN connection"),
    ("foreign-customer-gateway", foreign_gateway, "cw-net-16-customer-gateways-are-sites", "vendor-cgw",
     "198.51.100.7"),
    ("vpc-route-to-undeclared-network", vpc_route_to_undeclared, "cw-net-16-vpc-routes-to-declared-sites",
     f"{NAME}-vpc-to-depot-north", "10.70.0.0/24, which is no field site"),
    ("vpc-route-through-another-site", vpc_route_through_other_site, "cw-net-16-vpc-routes-to-declared-sites",
     f"{NAME}-vpc-to-depot-north", "field site 'depot-north' (10.60.1.0/24) elsewhere than to that site's VPN"),
    ("site-table-shared", shared_site_table, "cw-net-16-tgw-route-tables-known", f"{DEPOT}-rtb",
     "serves a field site's VPN and other attachments"),
    ("vpn-on-virtual-gateway", vpn_on_virtual_gateway, "cw-net-16-sites-have-vpn-on-tgw", f"{DEPOT}-vpn",
     "virtual private gateway"),
    ("open-traffic-selector", open_traffic_selector, "cw-net-16-sites-have-vpn-on-tgw", f"{DEPOT}-vpn",
     "must carry only the site's 10.60.1.0/24"),
    ("attachment-in-endpoint-subnets", attachment_in_endpoint_subnets, "cw-net-16-vpc-attachment-in-transit-segment",
     f"{NAME}-vpc-attachment", "sits in subnet cityward-endpoints-eu-west-1a (endpoints)"),
    ("second-vpc-attachment", second_vpc_attachment, "cw-net-16-vpc-attachment-in-transit-segment",
     f"{NAME}-tgw", "has 2 VPC attachments"),
]


# --- tests -----------------------------------------------------------------------------------


def test_site_rules_are_named_for_their_control_and_mandatory(site_rules):
    names = [p.name for p in site_rules]
    assert len(names) == len(set(names)) == 9
    for policy in site_rules:
        assert policy.name.startswith("cw-net-16-") and policy.description.startswith("CW-NET-16"), policy.name
        assert re.search(r"CKV2?_AWS_\d+|FSBP|cityward", policy.description), policy.name
        assert policy.enforcement_level == EnforcementLevel.MANDATORY
    # every rule has a mutation it must catch
    assert {m[2] for m in MUTATIONS} == set(names)


def test_the_component_declares_a_vpn_per_site_and_routes_per_conduit(with_sites):
    resources = with_sites["known"]
    names = {r.name for r in resources}
    assert {f"{DEPOT}-cgw", f"{DEPOT}-vpn", f"{DEPOT}-rtb", f"{PUMP}-vpn", f"{NAME}-vpc-rtb"} <= names
    # the field zone's peers: ot-operations, management, siem and the DMZ's update mirror; never enterprise
    routes = sorted(r.name for r in resources if r.name.startswith(f"{DEPOT}-to-"))
    assert routes == [f"{DEPOT}-to-{z}" for z in ("dmz", "field", "management", "ot-operations", "siem")]
    vpn = next(r for r in resources if r.name == f"{DEPOT}-vpn")
    assert vpn.inputs["tunnel1LogOptions"]["cloudwatchLogOptions"]["logEnabled"] is True
    assert vpn.inputs["presharedKeyStorage"] == "SecretsManager"
    tagged = [r for r in resources if r.name.startswith(NAME)
              and (r.inputs.get("tags") or {}).get("cityward:site") == "depot-north"]
    assert {r.type.rsplit(":", 1)[-1] for r in tagged} == {"CustomerGateway", "VpnConnection", "RouteTable"}
    assert all(r.inputs["tags"]["cityward:zone"] == "field" for r in tagged)


@pytest.mark.parametrize("mode", MODES)
def test_the_example_stack_with_its_sites_passes_every_site_rule(with_sites, site_rules, mode):
    assert evaluate(with_sites[mode], site_rules) == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("mutate", "rule", "resource", "text"), [m[1:] for m in MUTATIONS],
                         ids=[m[0] for m in MUTATIONS])
def test_each_mutation_is_caught_by_exactly_its_rule(with_sites, site_rules, mode, mutate, rule, resource, text):
    stack = Stack(with_sites[mode])
    mutate(stack)
    found = evaluate(stack.resources, site_rules)
    assert {v.policy for v in found} == {rule}, [(v.policy, v.message) for v in found]
    assert all(v.mandatory for v in found)
    assert any(v.resource_name == resource and resource in v.message and text in v.message for v in found), \
        [v.message for v in found]
    assert not any("cannot decide" in v.message for v in found)


def test_a_route_the_rules_cannot_follow_at_preview_fails_closed(with_sites, site_rules):
    stack = Stack(with_sites["first-preview"])
    route = stack.named(f"{DEPOT}-to-siem")
    route.dependencies.pop("transitGatewayRouteTableId")  # unknown table id, no dependency to follow
    found = evaluate(stack.resources, site_rules)
    assert [(v.policy, v.resource_name) for v in found] == [("cw-net-16-tgw-route-tables-known", f"{DEPOT}-to-siem")]
    assert found[0].message.startswith("cannot decide at preview: ")


def test_a_stack_without_the_component_is_refused_per_site(planned, site_rules):
    without = [r for r in planned.resources if "cityward:cloud:SiteConnectivity" not in r.urn]
    assert len(without) < len(planned.resources)
    found = evaluate(without, site_rules)
    assert {v.policy for v in found} == {"cw-net-16-sites-have-vpn-on-tgw"}
    assert sorted(v.message.split(" (")[0] for v in found) == ["field site 'depot-north'",
                                                                "field site 'pumping-station-east'"]
