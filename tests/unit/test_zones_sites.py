"""Field sites in the zones policy: each belongs to an OT zone, lives in its own private network and
is reached over VPN from one public address; bad entries are refused in one line naming the file,
the site and the field (controls CW-FW-01, CW-NET-16)."""

from __future__ import annotations

import copy
import ipaddress
from pathlib import Path

import pytest
import yaml

from cityward.errors import CitywardError
from cityward.zones import load_zones, parse_zones

REPO_ZONES = Path(__file__).resolve().parents[2] / "policies" / "zones.yml"
pytestmark = pytest.mark.control("CW-FW-01", "CW-NET-16")


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(REPO_ZONES.read_text())


def test_repo_sites_belong_to_ot_zones_and_reach_their_zones_peers():
    policy = load_zones(REPO_ZONES)
    assert set(policy.sites) == {"depot-north", "pumping-station-east"}
    assert [s.name for s in policy.sites_of("field")] == ["depot-north", "pumping-station-east"]
    assert policy.networks_of("field") == [ipaddress.IPv4Network(n) for n in
                                           ("10.40.80.0/20", "10.60.1.0/24", "10.60.2.0/24")]
    assert policy.peers_of("field") == ["dmz", "management", "ot-operations", "siem"]
    assert "enterprise" not in policy.peers_of("field")


def _site(raw: dict, name: str = "depot-north") -> dict:
    return raw["sites"][name]


def _set_cgw(field: str, value):
    def mutate(raw):
        _site(raw)["customer_gateway"][field] = value
    return mutate


def _set(field: str, value, name: str = "depot-north"):
    def mutate(raw):
        _site(raw, name)[field] = value
    return mutate


def _drop_address(raw):
    del _site(raw)["customer_gateway"]["address"]


def _drop_gateway(raw):
    del _site(raw)["customer_gateway"]


def _duplicate_address(raw):
    _site(raw, "pumping-station-east")["customer_gateway"]["address"] = "203.0.113.10"


BAD = [
    ("unknown zone", _set("zone", "sewers"), "site 'depot-north', field 'zone': unknown zone 'sewers'"),
    ("non-OT zone", _set("zone", "enterprise"), "site 'depot-north', field 'zone': 'enterprise' is a it zone"),
    ("overlaps a zone", _set("cidr", "10.40.81.0/24"),
     "site 'depot-north', field 'cidr': 10.40.81.0/24 overlaps zone 'field' (10.40.80.0/20)"),
    ("overlaps a site", _set("cidr", "10.60.1.128/25", "pumping-station-east"),
     "site 'pumping-station-east', field 'cidr': 10.60.1.128/25 overlaps site 'depot-north' (10.60.1.0/24)"),
    ("public site network", _set("cidr", "81.2.69.0/24"), "field 'cidr': 81.2.69.0/24 is not private"),
    ("bad CIDR", _set("cidr", "10.60.1.1/24"), "site 'depot-north', field 'cidr': 10.60.1.1/24 has host bits set"),
    ("private gateway address", _set_cgw("address", "192.168.1.1"),
     "site 'depot-north', field 'customer_gateway.address': 192.168.1.1 is not a public address"),
    ("carrier-NAT gateway address", _set_cgw("address", "100.64.0.9"), "100.64.0.9 is not a public address"),
    ("not an address", _set_cgw("address", "depot.example"), "field 'customer_gateway.address'"),
    ("missing gateway address", _drop_address, "site 'depot-north', field 'customer_gateway.address': Field required"),
    ("missing customer gateway", _drop_gateway, "site 'depot-north', field 'customer_gateway': Field required"),
    ("public ASN", _set_cgw("bgp_asn", 3320), "site 'depot-north', field 'customer_gateway.bgp_asn'"),
    ("ASN as text", _set_cgw("bgp_asn", "65010"), "field 'customer_gateway.bgp_asn'"),
    ("unknown key", _set("vpn_psk", "secret"), "site 'depot-north', field 'vpn_psk': unknown key"),
    ("duplicate gateway address", _duplicate_address,
     "site 'pumping-station-east', field 'customer_gateway.address': 203.0.113.10 is already the customer "
     "gateway of site 'depot-north'"),
]


@pytest.mark.parametrize(("mutate", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_site_is_refused_in_one_line_naming_file_site_and_field(raw, mutate, expected):
    data = copy.deepcopy(raw)
    mutate(data)
    with pytest.raises(CitywardError) as caught:
        parse_zones(data, "zones.yml")
    message = str(caught.value)
    assert message.startswith("zones.yml: ") and "\n" not in message
    assert expected in message
    assert "Traceback" not in message


def test_a_policy_without_sites_is_valid(raw):
    data = {k: v for k, v in copy.deepcopy(raw).items() if k != "sites"}
    policy = parse_zones(data, "zones.yml")
    assert policy.sites == {}
    assert policy.networks_of("field") == [ipaddress.IPv4Network("10.40.80.0/20")]
