"""Policy sense (issue 23): a well-formed zones policy that opens OT control or host administration
to an it, dmz or internet zone, covers public address space, or lets a host admit management or
automation SSH from wider than the management zone is refused with one line naming the rule, the
conduit or zone and the field, unless the policy carries a valid, reasoned exception."""

from __future__ import annotations

import copy
import datetime
from pathlib import Path

import pytest
import yaml
from ansible_collections.cityward.hardening.plugins.filter.zones import zones_policy
from ansible_collections.cityward.hardening.plugins.plugin_utils.zones_sense import (
    ADMIN_SERVICES,
    OT_PROTOCOLS,
    judge_sources,
    source_problems,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from cityward.errors import CitywardError
from cityward.zones import load_zones, parse_zones

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = yaml.safe_load((ROOT / "policies" / "zones.yml").read_text())
TODAY = datetime.date.today()
SOON = TODAY + datetime.timedelta(days=90)
pytestmark = pytest.mark.control("CW-RES-04")


def policy_with(*conduits, zones=None, exceptions=None) -> dict:
    data = copy.deepcopy(SHIPPED)
    data["conduits"] += [{"purpose": "hostile case", **c} for c in conduits]
    for name, update in (zones or {}).items():
        data["zones"][name].update(update)
    if exceptions is not None:
        data["exceptions"] = exceptions
    return data


def flow(src, dst, protocol, port, service) -> dict:
    return {"from": src, "to": dst, "protocol": protocol, "port": port, "service": service}


def refusal(data) -> str:
    with pytest.raises(CitywardError) as caught:
        parse_zones(data, "zones.yml")
    message = str(caught.value)
    assert message.startswith("zones.yml: ") and "\n" not in message
    return message


def waiver(rule="ot-protocol", expires=SOON, **target) -> dict:
    target = target or {"conduit": "enterprise->field:tcp/502"}
    return {"rule": rule, **target, "reason": "Legacy traffic controller polled by the office until 2027",
            "approved_by": "City CISO", "expires": expires}


NEW = len(SHIPPED["conduits"])  # index of the first added conduit


# --- OT control protocols into OT zones -------------------------------------------------------


def _ot_cases():
    cases = []
    sources = ["enterprise", "dmz", "siem"]
    for i, known in enumerate(OT_PROTOCOLS):
        src = sources[i % len(sources)]
        kind = "dmz" if src == "dmz" else "it"
        name = known.names[0]
        # By name on a port that is nobody's: the service name gives it away.
        cases.append(pytest.param(flow(src, "field", "tcp", 15000, name),
                                  [f"conduit #{NEW} ({src}->field:15000)", "field 'service'", f"service '{name}'",
                                   f"OT control protocol {known.label}", f"'{src}' is {kind}", "(rule ot-protocol)"],
                                  id=f"ot-name-{name}-from-{src}"))
        # By port, whatever the service is called.
        protocol, port = known.ports[0].split("/")
        cases.append(pytest.param(flow(src, "ot-operations", protocol, int(port), "telemetry"),
                                  [f"conduit #{NEW} ({src}->ot-operations:{port})", "field 'port'",
                                   f"{protocol}/{port} (service 'telemetry') is the port of",
                                   f"OT control protocol {known.label}", "(rule ot-protocol)"],
                                  id=f"ot-port-{protocol}-{port}-from-{src}"))
    cases.append(pytest.param(flow("enterprise", "field", "tcp", 8080, "legacy-modbus-gw"),
                              ["field 'service'", "service 'legacy-modbus-gw'", "Modbus/TCP"],
                              id="ot-name-inside-word"))
    cases.append(pytest.param(flow("dmz", "field", "tcp", 9000, "plant-opc-ua"),
                              ["field 'service'", "OPC UA", "'dmz' is dmz"], id="ot-name-split-words"))
    return cases


@pytest.mark.parametrize(("conduit", "expected"), _ot_cases())
def test_ot_protocol_from_it_or_dmz_into_ot_is_refused(conduit, expected):
    message = refusal(policy_with(conduit))
    for part in expected:
        assert part in message
    assert "(and " not in message  # one problem, the one expected


def test_internet_into_ot_is_refused():
    message = refusal(policy_with(flow("internet", "field", "tcp", 502, "modbus-tcp")))
    assert f"conduit #{NEW} (internet->field:502), field 'from'" in message
    assert "only an 'internet: true' zone meets the internet" in message


# --- admin services from untrusted zones -------------------------------------------------------


@pytest.mark.parametrize(("conduit", "expected"), [
    pytest.param(flow("dmz", "enterprise", "tcp", 2222, "ssh"),
                 [f"conduit #{NEW} (dmz->enterprise:2222)", "field 'service'", "service 'ssh' is admin service SSH",
                  "only a management zone administers hosts", "'dmz' is dmz", "(rule admin-service)"],
                 id="ssh-moved-port-from-dmz"),
    pytest.param(flow("dmz", "field", "tcp", 8022, "vendor-ssh"),
                 ["field 'service'", "admin service SSH", "(rule admin-service)"], id="vendor-ssh-into-ot-from-dmz"),
    pytest.param(flow("enterprise", "siem", "tcp", 13389, "rdp"),
                 ["(enterprise->siem:13389)", "field 'service'", "admin service RDP", "'enterprise' is it"],
                 id="rdp-moved-port-from-it"),
    pytest.param(flow("enterprise", "ot-operations", "tcp", 5901, "screen-share"),
                 ["field 'port'", "tcp/5901 (service 'screen-share') is the port of admin service VNC"],
                 id="vnc-port-renamed-from-it"),
    pytest.param(flow("dmz", "siem", "tcp", 5986, "winrm"),
                 ["field 'service'", "admin service WinRM"], id="winrm-from-dmz"),
    pytest.param(flow("siem", "enterprise", "tcp", 23, "console"),
                 ["field 'port'", "tcp/23 (service 'console') is the port of admin service Telnet"], id="telnet-port"),
    pytest.param(flow("internet", "dmz", "tcp", 8443, "vnc"),
                 ["(internet->dmz:8443)", "field 'service'", "admin service VNC", "'internet'"],
                 id="vnc-from-internet"),
    pytest.param(flow("internet", "dmz", "tcp", 22, "sftp-upload"),
                 ["(internet->dmz:22)", "field 'from'", "SSH (22) may only come from a management zone",
                  "'internet' is internet", "(rule admin-service)"], id="ssh-port-from-internet"),
    pytest.param(flow("ot-operations", "field", "tcp", 3389, "hmi"),
                 ["(ot-operations->field:3389)", "field 'from'", "RDP (3389) may only come from a management zone"],
                 id="rdp-port-from-ot-as-before"),
    pytest.param(flow("dmz", "management", "udp", 623, "bmc"),
                 ["field 'port'", "udp/623 (service 'bmc') is the port of admin service IPMI"], id="ipmi-port"),
])
def test_admin_service_from_untrusted_zone_is_refused(conduit, expected):
    message = refusal(policy_with(conduit))
    for part in expected:
        assert part in message
    assert "(and " not in message


@pytest.mark.parametrize("conduit", [
    pytest.param(flow("management", "field", "tcp", 502, "modbus-tcp"), id="management-polls-modbus"),
    pytest.param(flow("management", "dmz", "tcp", 2222, "ssh"), id="management-ssh-moved-port"),
    pytest.param(flow("ot-operations", "field", "tcp", 5900, "vnc"), id="ot-hmi-vnc-inside-ot"),
    pytest.param(flow("enterprise", "field", "tcp", 8443, "recipe-sync"), id="no-false-cip-in-recipe"),
    pytest.param(flow("enterprise", "ot-operations", "tcp", 443, "https"), id="https-into-ot"),
    pytest.param(flow("field", "dmz", "tcp", 4840, "opc-ua"), id="ot-pushes-out"),
])
def test_sensible_conduits_still_load(conduit):
    assert parse_zones(policy_with(conduit), "zones.yml").conduits[-1].service == conduit["service"]


# --- public address space ----------------------------------------------------------------------


@pytest.mark.parametrize("cidr", ["8.8.0.0/16", "11.0.0.0/8", "172.32.0.0/16", "192.169.0.0/16",
                                  "100.128.0.0/16", "9.0.0.0/8"])
def test_zone_in_public_address_space_is_refused(cidr):
    message = refusal(policy_with(zones={"enterprise": {"cidr": cidr}}))
    assert f"zone 'enterprise', field 'cidr': {cidr} overlaps public address space" in message
    assert "(rule public-cidr)" in message and "(and " not in message


@pytest.mark.parametrize("cidr", ["172.16.0.0/16", "192.168.10.0/24", "100.64.0.0/16"])
def test_private_and_shared_zones_load(cidr):
    assert str(parse_zones(policy_with(zones={"enterprise": {"cidr": cidr}})).zones["enterprise"].cidr) == cidr


# --- exceptions --------------------------------------------------------------------------------

MODBUS_FROM_IT = flow("enterprise", "field", "tcp", 502, "modbus-tcp")


def test_valid_exception_waives_and_is_reported():
    policy = parse_zones(policy_with(MODBUS_FROM_IT, exceptions=[waiver()]))
    [used] = policy.used_exceptions()
    assert (used.index, used.finding.rule, used.finding.target) == (0, "ot-protocol", "enterprise->field:tcp/502")
    assert used.exception.describe().startswith("exception to ot-protocol for enterprise->field:tcp/502: Legacy")
    assert load_zones(ROOT / "policies" / "zones.yml").used_exceptions() == []


def test_exception_survives_the_filter_round_trip(tmp_path):
    # The role gets the policy as JSON-able data (dates as ISO strings) and parses it again.
    path = tmp_path / "zones.yml"
    path.write_text(yaml.safe_dump(policy_with(MODBUS_FROM_IT, exceptions=[waiver()]), sort_keys=False))
    data = zones_policy(None, file=str(path))
    assert data["exceptions"][0]["expires"] == SOON.isoformat()
    assert len(parse_zones(data).used_exceptions()) == 1


def test_public_zone_exception_waives():
    data = policy_with(zones={"dmz": {"cidr": "198.18.0.0/24"}},
                       exceptions=[waiver("public-cidr", zone="dmz")])
    assert [u.finding.entry for u in parse_zones(data).used_exceptions()] == ["zone 'dmz'"]


@pytest.mark.parametrize(("exception", "expected"), [
    pytest.param(waiver(expires=TODAY - datetime.timedelta(days=1)),
                 [f"conduit #{NEW} (enterprise->field:502), field 'service'", "OT control protocol Modbus/TCP",
                  f"exception #0 expired on {TODAY - datetime.timedelta(days=1)}", "(rule ot-protocol)"], id="expired"),
    pytest.param({k: v for k, v in waiver().items() if k != "reason"},
                 ["exception #0, field 'reason'", "required"], id="without-reason"),
    pytest.param({**waiver(), "reason": ""}, ["exception #0, field 'reason'", "at least 3 characters"],
                 id="empty-reason"),
    pytest.param({**waiver(), "reason": "     "}, ["exception #0, field 'reason'", "must not be blank"],
                 id="blank-reason"),
    pytest.param({k: v for k, v in waiver().items() if k != "approved_by"},
                 ["exception #0, field 'approved_by'", "required"], id="without-approver"),
    pytest.param({**waiver(), "expires": "2027-02-30"}, ["exception #0, field 'expires'", "not a real date"],
                 id="impossible-date"),
    pytest.param({**waiver(), "expires": 1900000000}, ["exception #0, field 'expires'", "expected a date"],
                 id="timestamp-date"),
    pytest.param(waiver(expires=TODAY + datetime.timedelta(days=5000)),
                 ["exception #0 (ot-protocol for enterprise->field:tcp/502), field 'expires'", "more than"],
                 id="far-future"),
    pytest.param(waiver(conduit="enterprise->field:tcp/503"),
                 ["exception #0 (ot-protocol for enterprise->field:tcp/503), field 'conduit'",
                  "no conduit 'enterprise->field:tcp/503'"], id="unknown-conduit"),
    pytest.param(waiver(zone="enterprise"), ["exception #0, field '(exception)'", "give 'conduit'"],
                 id="wrong-target-kind"),
    pytest.param(waiver(rule="anything-goes"), ["exception #0, field 'rule'"], id="unknown-rule"),
    pytest.param({**waiver(), "ticket": "CHG-1"}, ["exception #0, field 'ticket'", "unknown key"], id="unknown-key"),
])
def test_bad_or_expired_exception_is_refused(exception, expected):
    message = refusal(policy_with(MODBUS_FROM_IT, exceptions=[exception]))
    for part in expected:
        assert part in message


def test_duplicate_exception_is_refused():
    message = refusal(policy_with(MODBUS_FROM_IT, exceptions=[waiver(), waiver()]))
    assert "exception #1 (ot-protocol for enterprise->field:tcp/502), field '(exception)'" in message
    assert "duplicate of exception #0" in message


def test_exception_of_one_rule_does_not_waive_another():
    data = policy_with(flow("dmz", "field", "tcp", 2222, "ssh"),
                       exceptions=[waiver(conduit="dmz->field:tcp/2222")])
    assert "field 'service': service 'ssh' is admin service SSH" in refusal(data)


@pytest.mark.parametrize(("mutate", "expected"), [
    pytest.param(lambda d: d["conduits"][0].update(purpose="poll PLCs\nANY any accept"),
                 "conduit #0 (ot-operations->field:502), field 'purpose': must be one line", id="newline-in-purpose"),
    pytest.param(lambda d: d["zones"]["dmz"].update(description="portal\x1b[2J"),
                 "zone 'dmz', field 'description': must be one line", id="escape-in-zone-description"),
    pytest.param(lambda d: d.update(exceptions=[{**waiver(), "approved_by": "CISO\rforged"}]),
                 "exception #0, field 'approved_by': must be one line", id="carriage-return-in-approver"),
    pytest.param(lambda d: d.update(exceptions=[waiver(conduit="enterprise->field:tcp/502\n")]),
                 "exception #0, field 'conduit': String should match pattern", id="newline-in-target"),
])
def test_control_characters_in_policy_text_are_refused(mutate, expected):
    data = policy_with(MODBUS_FROM_IT)
    mutate(data)
    assert expected in refusal(data)


# --- management and automation sources, per host -----------------------------------------------

POLICY = load_zones(ROOT / "policies" / "zones.yml")


@pytest.mark.parametrize(("hostvars", "field", "phrase"), [
    pytest.param({"cityward_automation_sources": ["0.0.0.0/0"]}, "cityward_automation_sources[0]",
                 "0.0.0.0/0 (4294967296 addresses) is wider than the management zone 'management' (10.40.32.0/20",
                 id="automation-from-anywhere"),
    pytest.param({"cityward_management_sources": ["10.40.32.5", "10.0.0.0/8"]}, "cityward_management_sources[1]",
                 "10.0.0.0/8 (16777216 addresses) is wider", id="management-from-a-slash-8"),
    pytest.param({"ssh_automation_sources": ["127.0.0.1", "::/0"]}, "ssh_automation_sources[1]", "::/0", id="ipv6-any"),
    pytest.param({"firewall_management_sources": ["10.40.0.0/19"]}, "firewall_management_sources[0]",
                 "10.40.0.0/19 (8192 addresses)", id="firewall-one-bit-wider"),
    pytest.param({"accounts_automation_sources": [{"__ansible_unsafe": "172.16.0.0/12"}]},
                 "accounts_automation_sources[0]", "172.16.0.0/12", id="unsafe-wrapped"),
])
def test_wide_source_is_refused(hostvars, field, phrase):
    [(got_field, message)] = source_problems(POLICY, hostvars)
    assert got_field == field
    assert phrase in message and "(rule wide-source)" in message


@pytest.mark.parametrize("hostvars", [
    pytest.param({"cityward_management_sources": ["10.40.0.1"]}, id="lab-podman-gateway"),
    pytest.param({"cityward_automation_sources": ["10.40.32.0/20", "127.0.0.1", "::1"]}, id="management-zone-itself"),
    pytest.param({"cityward_automation_sources": ["192.168.7.0/21"]}, id="narrower-outside"),
    pytest.param({"cityward_automation_sources": "{{ groups['controllers'] }}"}, id="template-left-to-schema"),
    pytest.param({"cityward_automation_sources": ["not-an-address"]}, id="garbage-left-to-schema"),
])
def test_narrow_sources_are_accepted(hostvars):
    assert source_problems(POLICY, hostvars) == []


def test_wide_source_exception_covers_and_is_reported():
    policy = parse_zones({**SHIPPED, "exceptions": [waiver("wide-source", source="10.88.0.0/16")]})
    problems, used = judge_sources(policy, {"cityward_automation_sources": ["10.88.0.0/16", "127.0.0.1"]})
    assert problems == [] and [u.finding.field for u in used] == ["cityward_automation_sources[0]"]
    # it covers what lies inside it, not what is wider
    assert source_problems(policy, {"cityward_automation_sources": ["10.0.0.0/8"]})[0][0] == \
        "cityward_automation_sources[0]"


def test_expired_wide_source_exception_does_not_cover():
    expired = waiver("wide-source", expires=TODAY - datetime.timedelta(days=1), source="10.88.0.0/16")
    policy = parse_zones({**SHIPPED, "exceptions": [expired]})
    [(field, message)] = source_problems(policy, {"cityward_management_sources": ["10.88.0.0/16"]})
    assert field == "cityward_management_sources[0]" and "exception #0 expired on" in message


# --- properties ----------------------------------------------------------------------------------

OT_PORTS = sorted({p for known in OT_PROTOCOLS for p in known.ports})
ADMIN_PORTS = sorted({p for known in ADMIN_SERVICES for p in known.ports})
NEUTRAL = st.from_regex(r"\Asvc-[a-z]{3,8}\Z")  # 'svc-' + letters: never a listed name


@settings(max_examples=40, deadline=None)
@given(port=st.sampled_from(OT_PORTS), service=NEUTRAL, src=st.sampled_from(["enterprise", "dmz", "siem"]))
def test_any_ot_port_into_ot_is_refused_whatever_the_name(port, service, src):
    protocol, number = port.split("/")
    message = refusal(policy_with(flow(src, "field", protocol, int(number), service)))
    assert f"conduit #{NEW} ({src}->field:{number}), field 'port'" in message and "(rule ot-protocol)" in message


@settings(max_examples=40, deadline=None)
@given(port=st.sampled_from(ADMIN_PORTS), service=NEUTRAL)
def test_any_admin_port_from_the_dmz_is_refused_whatever_the_name(port, service):
    protocol, number = port.split("/")
    message = refusal(policy_with(flow("dmz", "siem", protocol, int(number), service)))
    assert f"conduit #{NEW} (dmz->siem:{number})" in message and "(rule admin-service)" in message


def test_docs_list_every_protocol_name_and_port():
    text = (ROOT / "docs" / "adopt.md").read_text()
    for known in (*OT_PROTOCOLS, *ADMIN_SERVICES):
        ports = known.ports if len(known.ports) < 6 else (f"{known.ports[0]} to {known.ports[-1]}",)
        row = next((line for line in text.splitlines() if line.startswith(f"| {known.label} |")), "")
        assert all(f"`{name}`" in row for name in known.names) and all(port in row for port in ports), known.label
