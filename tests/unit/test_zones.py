"""The zones policy (policies/zones.yml) and its loader: every bad input is refused with one line
naming the file, the entry and the field (control CW-FW-01)."""

from __future__ import annotations

import copy
import ipaddress
import re
from pathlib import Path

import pytest
import yaml
from ansible_collections.cityward.hardening.plugins.plugin_utils.zones_sense import ADMIN_SERVICES, identify
from hypothesis import given, settings
from hypothesis import strategies as st

from cityward.errors import CitywardError
from cityward.zones import INTERNET, load_zones, parse_zones

REPO_ZONES = Path(__file__).resolve().parents[2] / "policies" / "zones.yml"
pytestmark = pytest.mark.control("CW-FW-01")


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(REPO_ZONES.read_text())


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "zones.yml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def index_of(raw: dict, **match) -> int:
    return next(i for i, c in enumerate(raw["conduits"]) if all(c[k] == v for k, v in match.items()))


# --- the shipped policy -----------------------------------------------------------------------


def test_repo_policy_loads_with_all_zone_kinds():
    policy = load_zones(REPO_ZONES)
    assert {"enterprise", "dmz", "management", "ot-operations", "field"} <= set(policy.zones)
    assert {z.kind for z in policy.zones.values()} == {"it", "dmz", "management", "ot"}
    assert [z.name for z in policy.zones.values() if z.internet] == ["dmz"]
    assert all(z.cidr.subnet_of(ipaddress.ip_network("10.0.0.0/8")) for z in policy.zones.values())


def test_repo_policy_names_the_ot_protocols():
    policy = load_zones(REPO_ZONES)
    flows = {(c.protocol, c.port): c for c in policy.conduits}
    for proto, port in [("tcp", 502), ("tcp", 20000), ("tcp", 4840), ("tcp", 8883), ("udp", 47808),
                        ("tcp", 6514), ("tcp", 22), ("udp", 123)]:
        assert (proto, port) in flows, f"no conduit for {proto}/{port}"
    ssh = [c for c in policy.conduits if c.port == 22]
    assert ssh and all(policy.kind_of(c.from_) == "management" for c in ssh)
    # OT zones never meet the internet directly
    assert not [c for c in policy.conduits if INTERNET in (c.from_, c.to) and "ot" in
                (policy.kind_of(c.from_), policy.kind_of(c.to))]


def test_policy_data_round_trips_for_templates():
    policy = load_zones(REPO_ZONES)
    data = policy.as_data()
    assert data["conduits"][0]["from"] == policy.conduits[0].from_
    assert parse_zones(data, "round-trip") == policy


# --- refused inputs ---------------------------------------------------------------------------


def _bad_cases():
    def conduit(i_match, **update):
        def mutate(d):
            d["conduits"][index_of(d, **i_match)].update(update)
        return mutate

    modbus = {"port": 502}
    return [
        ("unknown zone in conduit", conduit(modbus, to="scada-lan"),
         ["conduit #0 (ot-operations->scada-lan:502)", "field 'to'", "unknown zone 'scada-lan'"]),
        ("unknown source zone", conduit(modbus, **{"from": "nowhere"}),
         ["conduit #0 (nowhere->field:502)", "field 'from'", "unknown zone"]),
        ("overlapping CIDRs", lambda d: d["zones"]["field"].update(cidr="10.40.64.0/19"),
         ["zone 'field'", "field 'cidr'", "overlaps zone 'ot-operations'"]),
        ("port above range", conduit(modbus, port=70000),
         ["conduit #0 (ot-operations->field:70000)", "field 'port'", "65535"]),
        ("port zero", conduit(modbus, port=0), ["conduit #0 (ot-operations->field:0)", "field 'port'"]),
        ("port as text", conduit(modbus, port="502"), ["field 'port'", "valid integer"]),
        ("duplicate conduit", lambda d: d["conduits"].append(dict(d["conduits"][0])),
         ["(ot-operations->field:502)", "field '(conduit)'", "duplicate of conduit #0"]),
        ("bad protocol", conduit(modbus, protocol="sctp"),
         ["conduit #0 (ot-operations->field:502)", "field 'protocol'", "'tcp' or 'udp'"]),
        ("SSH from an OT zone", conduit({"port": 22, "to": "field"}, **{"from": "ot-operations"}),
         ["(ot-operations->field:22)", "field 'from'", "SSH (22) may only come from a management zone"]),
        ("SSH from enterprise", lambda d: d["conduits"].append(
            {"from": "enterprise", "to": "siem", "protocol": "tcp", "port": 22, "service": "ssh",
             "purpose": "admins"}), ["(enterprise->siem:22)", "field 'from'", "management"]),
        ("CIDR with host bits", lambda d: d["zones"]["dmz"].update(cidr="10.40.16.1/20"),
         ["zone 'dmz'", "field 'cidr'", "host bits set"]),
        ("CIDR garbage", lambda d: d["zones"]["dmz"].update(cidr="10.40.300.0/20"),
         ["zone 'dmz'", "field 'cidr'"]),
        ("unknown key in zone", lambda d: d["zones"]["siem"].update(vlan=40),
         ["zone 'siem'", "field 'vlan'", "unknown key"]),
        ("unknown key in conduit", conduit(modbus, direction="both"),
         ["conduit #0 (ot-operations->field:502)", "field 'direction'", "unknown key"]),
        ("unknown top-level key", lambda d: d.update(firewall="nft"), ["top level", "field 'firewall'", "unknown key"]),
        ("bad zone kind", lambda d: d["zones"]["siem"].update(kind="soc"), ["zone 'siem'", "field 'kind'"]),
        ("missing purpose", lambda d: d["conduits"][0].pop("purpose"),
         ["conduit #0 (ot-operations->field:502)", "field 'purpose'", "required"]),
        ("internet reaches an OT zone", lambda d: d["conduits"].append(
            {"from": INTERNET, "to": "field", "protocol": "tcp", "port": 502, "service": "modbus-tcp",
             "purpose": "vendor remote access"}), ["(internet->field:502)", "field 'from'", "internet"]),
        ("OT zone facing the internet", lambda d: d["zones"]["field"].update(internet=True),
         ["zone 'field'", "field 'internet'", "only a dmz"]),
        ("reserved zone name", lambda d: d["zones"].update(internet={"kind": "dmz", "cidr": "10.41.0.0/16"}),
         ["zone 'internet'", "reserved"]),
        ("conduit to itself", conduit(modbus, to="ot-operations"), ["field 'to'", "two different zones"]),
        ("wrong version", lambda d: d.update(version=2), ["top level", "field 'version'"]),
    ]


@pytest.mark.parametrize(("mutate", "expected"), [pytest.param(m, e, id=i) for i, m, e in _bad_cases()])
def test_bad_policy_is_refused_naming_file_entry_field(tmp_path, raw, mutate, expected):
    data = copy.deepcopy(raw)
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(CitywardError) as caught:
        load_zones(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    for part in expected:
        assert part in message


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("---\nversion: 1\nzones: {dmz: {kind: dmz, cidr: 10.0.0.0/24\n", "invalid YAML", id="unclosed"),
    pytest.param("---\nversion: 1\nzones:\n  a: {kind: it, cidr: 10.0.0.0/24}\n  a: {kind: it, cidr: 10.0.1.0/24}\n",
                 "duplicate key 'a'", id="duplicate-key"),
    pytest.param("---\n- just\n- a list\n", "expected a mapping", id="not-a-mapping"),
])
def test_yaml_problems_are_one_line_with_position(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(CitywardError) as caught:
        load_zones(path)
    assert str(caught.value).startswith(str(path))
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_yaml_syntax_error_names_line(tmp_path):
    path = write(tmp_path, "---\nversion: 1\nzones:\n  dmz: [kind: dmz\n")
    with pytest.raises(CitywardError, match=r"line \d+, column \d+: invalid YAML"):
        load_zones(path)


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(CitywardError, match="cannot read zones policy"):
        load_zones(tmp_path / "absent.yml")


def test_several_errors_are_reported_together(tmp_path, raw):
    data = copy.deepcopy(raw)
    data["conduits"][0]["to"] = "ghost"
    data["conduits"][1]["to"] = "spectre"
    with pytest.raises(CitywardError) as caught:
        load_zones(write(tmp_path, data))
    assert "ghost" in str(caught.value) and "spectre" in str(caught.value) and "1 more" in str(caught.value)


@settings(max_examples=40, deadline=None)
@given(port=st.one_of(st.integers(min_value=-5, max_value=70000), st.just(3389)))
def test_port_range_is_exactly_1_to_65535(raw, port):
    data = copy.deepcopy(raw)
    # a udp flow enterprise->siem exists nowhere else, so no duplicate; enterprise is no management
    # zone, so a udp port an admin service uses (RDP's 3389) is refused by its own rule
    data["conduits"].append({"from": "enterprise", "to": "siem", "protocol": "udp", "port": port,
                             "service": "probe", "purpose": "property test"})
    if identify("probe", "udp", port, ADMIN_SERVICES):
        with pytest.raises(CitywardError, match=rf"\(enterprise->siem:{port}\), field 'port'.*rule admin-service"):
            parse_zones(data, "z.yml")
    elif 1 <= port <= 65535:
        assert parse_zones(data, "z.yml").conduits[-1].port == port
    else:
        with pytest.raises(CitywardError, match=r"\(enterprise->siem:-?\d+\), field 'port'"):
            parse_zones(data, "z.yml")


# --- the per-zone view the host firewall and the audit read -------------------------------


@pytest.mark.control("CW-FW-02", "CW-FW-03")
def test_host_rules_open_the_conduits_into_the_zone_and_limit_ot_egress():
    policy = load_zones(REPO_ZONES)
    field = policy.host_rules("field")
    assert field["egress_limited"] and field["kind"] == "ot"
    assert {(r["source"], r["protocol"], r["port"]) for r in field["inbound"]} == {
        (str(policy.cidr_of(c.from_)), c.protocol, c.port) for c in policy.conduits_to("field")}
    assert {(tuple(r["destinations"]), r["port"]) for r in field["outbound"]} == {
        ((str(policy.cidr_of(c.to)),), c.port) for c in policy.conduits_from("field")}
    assert [r["label"] for r in field["logging"]] == ["field->siem:tcp/6514"]
    assert field["management"] == ["10.40.32.0/20"]
    assert not policy.host_rules("enterprise")["egress_limited"]
    # the internet-facing conduit has no source CIDR: any address
    assert [r["source"] for r in policy.host_rules("dmz")["inbound"] if r["port"] == 443 and r["label"].startswith(
        INTERNET)] == [None]


@pytest.mark.control("CW-FW-03")
def test_service_hosts_narrow_egress_to_the_hosts_in_the_destination_zone():
    policy = load_zones(REPO_ZONES)
    rules = policy.host_rules("ot-operations", {"syslog-tls": ["10.40.48.10"], "update-mirror": ["10.40.16.20/31"],
                                                "ntp": ["10.40.32.5", "10.40.64.5"]})
    by_label = {r["label"]: r["destinations"] for r in rules["outbound"]}
    assert by_label["ot-operations->siem:tcp/6514"] == ["10.40.48.10"]
    assert by_label["ot-operations->dmz:tcp/443"] == ["10.40.16.20/31"]
    assert by_label["ot-operations->management:udp/123"] == ["10.40.32.5"]
    assert by_label["ot-operations->field:tcp/502"] == ["10.40.80.0/20"]


@pytest.mark.parametrize(("service_hosts", "expected"), [
    ({"syslog-tls": ["10.40.80.7"]}, "service 'syslog-tls': none of 10.40.80.7 lies in zone 'siem'"),
    ({"syslog": ["10.40.48.10"]}, "service 'syslog': no conduit of the zones policy names this service"),
    ({"ntp": "10.40.32.5"}, "service 'ntp': expected a non-empty list"),
    ({"ntp": ["time.example"]}, "service 'ntp': 'time.example' is not an IPv4 address"),
])
def test_bad_service_hosts_are_refused_naming_the_service(service_hosts, expected):
    with pytest.raises(CitywardError, match=re.escape(expected)):
        load_zones(REPO_ZONES).host_rules("field", service_hosts)


def test_host_rules_refuse_an_unknown_zone():
    with pytest.raises(CitywardError, match="zone 'scada-lan' is not in the zones policy"):
        load_zones(REPO_ZONES).host_rules("scada-lan")


# --- the Ansible filters the firewall role loads the policy with ----------------------------


@pytest.fixture(scope="module")
def filters():
    # Imported the way Ansible loads it: from the installed collection, by its collection path.
    from ansible_collections.cityward.hardening.plugins.filter.zones import FilterModule

    return FilterModule().filters()


def test_filter_refuses_a_bad_policy_with_the_loaders_message(filters, tmp_path, raw):
    from ansible.errors import AnsibleFilterError

    data = copy.deepcopy(raw)
    data["conduits"][0]["to"] = "scada-lan"
    path = write(tmp_path, data)
    with pytest.raises(AnsibleFilterError) as caught:
        filters["zones_policy"](None, file=str(path))
    entry = "conduit #0 (ot-operations->scada-lan:502), field 'to': unknown zone 'scada-lan'"
    assert f"{path}: {entry}" in str(caught.value)
    assert filters["zones_policy"](None, file=str(REPO_ZONES)) == load_zones(REPO_ZONES).as_data()


@pytest.mark.control("CW-FW-04")
def test_filter_keeps_the_controller_and_refuses_a_policy_without_management(filters, raw):
    policy = filters["zones_policy"](None, file=str(REPO_ZONES))
    rules = filters["host_rules"]
    outside = rules(policy, "field", host="gw", controller="192.0.2.2 51000 22", dns_resolvers=["10.40.32.53"])
    assert outside["controller"] == {"family": "ip", "address": "192.0.2.2"}
    assert outside["dns"] == ["10.40.32.53"] and outside["management_v4"] == ["10.40.32.0/20"]
    assert rules(policy, "field", host="gw", controller="10.40.32.9 51000 22")["controller"] is None
    assert rules(policy, "field", host="gw", controller="2001:db8::5 5 22")["controller"]["family"] == "ip6"

    from ansible.errors import AnsibleFilterError

    no_management = copy.deepcopy(raw)
    no_management["zones"]["management"]["kind"] = "it"
    no_management["conduits"] = [c for c in no_management["conduits"] if c["port"] != 22]
    with pytest.raises(AnsibleFilterError, match="gw: refusing a ruleset without management SSH"):
        rules(no_management, "field", host="gw")
    assert rules(no_management, "field", host="gw", extra_management=["10.40.99.0/24"])["management_v4"] == [
        "10.40.99.0/24"]
    with pytest.raises(AnsibleFilterError, match="gw: cityward_zone: zone 'nowhere' is not in the zones policy"):
        rules(policy, "nowhere", host="gw")
    with pytest.raises(AnsibleFilterError, match="gw: firewall_dns_resolvers: 'dns.example' is not an IP address"):
        rules(policy, "field", host="gw", dns_resolvers=["dns.example"])


# --- the policy as an input: cityward_zones (the policy) or cityward_zones_file (its path) --------


@pytest.mark.control("CW-FW-01")
def test_the_policy_is_taken_from_exactly_one_variable(raw, tmp_path, monkeypatch):
    from cityward.zones import policy_input

    inventory = tmp_path / "city"
    (inventory / "policies").mkdir(parents=True)
    write(inventory / "policies", raw)
    assert policy_input(raw) == policy_input(None, "policies/zones.yml", inventory)
    monkeypatch.setenv("CITY_POLICIES", str(inventory / "policies"))
    assert policy_input(None, "$CITY_POLICIES/zones.yml", "/elsewhere").zones.keys() == raw["zones"].keys()
    for policy, path, message in (
        (None, None, "no zones policy: set cityward_zones_file (the path of the zones policy YAML, absolute or "
                     "relative to the inventory folder) or cityward_zones (the policy itself) in the inventory"),
        (raw, "zones.yml", "both cityward_zones and cityward_zones_file are set: give the policy one way only"),
        ("zones.yml", None, "cityward_zones: expected the zones policy as a mapping (version, zones, conduits), "
                            "got str"),
        (None, "nowhere.yml", f"cityward_zones_file: {inventory / 'nowhere.yml'} is not a file"),
    ):
        with pytest.raises(CitywardError) as caught:
            policy_input(policy, path, inventory)
        assert str(caught.value) == message
    with pytest.raises(CitywardError, match="is relative, and there is no inventory folder"):
        policy_input(None, "zones.yml", None)


@pytest.mark.control("CW-FW-01")
def test_the_command_reads_the_one_policy_the_inventory_gives(raw, tmp_path):
    from cityward.zones import policy_for_hosts

    write(tmp_path, raw)
    same = {"a": {"cityward_zones_file": "zones.yml"}, "b": {"cityward_zones_file": "zones.yml"}}
    assert set(policy_for_hosts(same, tmp_path).zones) == set(raw["zones"])
    with pytest.raises(CitywardError, match=r"the hosts name different zones policies \(a; b\)"):
        policy_for_hosts({"a": {"cityward_zones_file": "zones.yml"}, "b": {"cityward_zones": raw}}, tmp_path)
    with pytest.raises(CitywardError, match="host a, field cityward_zones_file: a template cannot be resolved"):
        policy_for_hosts({"a": {"cityward_zones_file": "{{ inventory_dir }}/zones.yml"}}, tmp_path)
    with pytest.raises(CitywardError, match=f"^{tmp_path}: host a: no zones policy: set cityward_zones_file"):
        policy_for_hosts({"a": {}}, tmp_path)


def test_the_filter_names_the_variable_of_a_missing_policy(filters):
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match="CW-FW-01 refused the zones policy: no zones policy: set "
                                                 "cityward_zones_file"):
        filters["zones_policy"](None, file=None, inventory_dir="/inv")
