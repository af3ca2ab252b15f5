"""The firewall role's record of what it applied (cityward_firewall.fact) and the checks that read it
(cityward.checks.test_firewall): the role's own policy tasks and template render a ruleset and a
record on this machine, nft loads the ruleset in a throwaway network namespace, and the checks
judge the live ruleset by the record. A city's overrides (SSH port, management sources) are what
gets checked, and a ruleset or record that differs makes the checks fail."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from local_play import ROOT, playbook

import cityward.checks.test_firewall as fw
from cityward.checks.applied import settings_from
from cityward.checks.outcomes import NotApplicable

INPUT = fw.test_input_is_default_deny_and_opens_only_the_conduits_into_the_zone
EGRESS = fw.test_ot_egress_is_limited_to_the_zones_conduits
SSH_IN = fw.test_management_ssh_is_accepted_before_anything_is_dropped
SSH_OUT = fw.test_management_ssh_replies_leave_an_egress_limited_host
CHECKS = [INPUT, EGRESS, SSH_IN, SSH_OUT]

# An OT host whose city overrides the role's variables; an IT host on the defaults.
OVERRIDDEN = {"cityward_zone": "ot-operations", "firewall_ssh_port": 2222,
              "firewall_management_sources": ["192.0.2.5", "2001:db8::/64"],
              "firewall_dns_resolvers": ["10.40.0.53"], "firewall_service_hosts": {"update-mirror": ["10.40.16.20"]},
              "ansible_env": {"SSH_CLIENT": "198.51.100.7 50000 22"}}
DEFAULTS = {"cityward_zone": "enterprise", "firewall_log_dropped": False}
RECORD = "{{ _firewall_applied | cityward.hardening.applied_fact('firewall') }}"


def _netns_nft() -> bool:
    if not shutil.which("nft") or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-rn", "nft", "list", "ruleset"], capture_output=True).returncode == 0


needs_nft = pytest.mark.skipif(not _netns_nft(), reason="needs nft in an unprivileged network namespace (unshare -rn)")


def _render(lab: Path, host_vars: dict) -> tuple[dict, str]:
    """The record (its settings, read as the checks read it) and the ruleset text the role renders."""
    lab.mkdir()
    play = [{"hosts": "localhost", "gather_facts": False,
             "vars": {"cityward_zones_file": str(ROOT / "policies" / "zones.yml"), **host_vars},
             "tasks": [
                 {"ansible.builtin.include_role": {"name": "cityward.hardening.firewall", "tasks_from": "policy",
                                                   "public": True}},
                 {"ansible.builtin.copy": {"content": RECORD, "dest": str(lab / "record.fact"), "mode": "0644"}},
                 {"ansible.builtin.template": {"src": str(ROOT / "roles/firewall/templates/nftables.conf.j2"),
                                               "dest": str(lab / "nftables.conf"), "mode": "0600"}}]}]
    (lab / "play.yml").write_text(yaml.safe_dump(play))
    proc = playbook(lab)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = settings_from("firewall", (0, "root root 644"), (0, (lab / "record.fact").read_text()))
    return record, (lab / "nftables.conf").read_text()


def _live(ruleset: str, *extra: str) -> fw.Ruleset:
    """The ruleset as the kernel lists it (nft -j) once loaded, with `extra` nft commands run after."""
    commands = ["nft -f -", *(f"nft {shlex.quote(command)}" for command in extra), "nft -j list ruleset"]
    script = " && ".join(commands)
    out = subprocess.run(["unshare", "-rn", "sh", "-c", script], input=ruleset, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return fw.Ruleset.parse(json.loads(out.stdout))


@pytest.fixture(scope="module")
def overridden(tmp_path_factory):
    return _render(tmp_path_factory.mktemp("fw") / "overridden", OVERRIDDEN)


@pytest.fixture(scope="module")
def defaults(tmp_path_factory):
    return _render(tmp_path_factory.mktemp("fw") / "defaults", DEFAULTS)


def test_the_record_holds_the_overrides_the_role_applied(overridden):
    record, ruleset = overridden
    assert record["zone"] == "ot-operations" and record["zone_kind"] == "ot" and record["egress_limited"] is True
    assert record["ssh_port"] == 2222 and "tcp dport 2222 accept" in ruleset
    assert record["management_sources"] == ["10.40.32.0/20", "192.0.2.5", "2001:db8::/64"]
    assert record["controller"] == "198.51.100.7"
    assert record["dns_resolvers"] == ["10.40.0.53"]
    mirror = next(c for c in record["outbound"] if c["service"] == "update-mirror")
    assert mirror["destinations"] == ["10.40.16.20"]
    assert {c["label"] for c in record["inbound"]} == {
        "field->ot-operations:tcp/8883", "field->ot-operations:udp/123", "management->ot-operations:tcp/22"}
    assert (record["forward_policy"], record["log_dropped"]) == ("drop", True)


def test_an_it_zone_records_no_egress_rules(defaults):
    record, _ = defaults
    assert record["zone"] == "enterprise" and record["egress_limited"] is False
    assert record["outbound"] == [] and record["dns_resolvers"] == []
    assert record["ssh_port"] == 22 and record["controller"] is None and record["log_dropped"] is False


@needs_nft
@pytest.mark.parametrize("case", ["overridden", "defaults"])
def test_the_checks_pass_on_the_ruleset_the_role_rendered(case, request):
    record, ruleset = request.getfixturevalue(case)
    live, expected = _live(ruleset), fw.Expected.from_record(record)
    for check in CHECKS:
        try:
            check(live, expected)
        except NotApplicable:
            assert not record["egress_limited"] and "egress" in check.__name__


@needs_nft
def test_an_it_zone_has_no_egress_check(defaults):
    record, ruleset = defaults
    with pytest.raises(NotApplicable, match="enterprise is it"):
        EGRESS(_live(ruleset), fw.Expected.from_record(record))


@needs_nft
def test_the_override_is_what_is_checked(overridden):
    """A check that assumed the default SSH port (22) instead of the record's would not find it."""
    record, ruleset = overridden
    live = _live(ruleset)
    assumed = fw.Expected.from_record(dict(record, ssh_port=22))
    with pytest.raises(AssertionError, match="tcp/22"):
        SSH_IN(live, assumed)
    without_source = fw.Expected.from_record(dict(record, management_sources=["10.40.32.0/20", "2001:db8::/64"]))
    with pytest.raises(AssertionError, match="192.0.2.5"):
        INPUT(live, without_source)


@needs_nft
@pytest.mark.parametrize(("extra", "check", "says"), [
    # a port opened by hand, not by the role
    ("add rule inet cityward input tcp dport 8080 accept", INPUT, "found ['any tcp/8080'] not expected"),
    # a conduit removed by hand
    ("flush chain inet cityward output", EGRESS, "'10.40.80.0/20 tcp/502', "),
    # an egress rule no conduit explains
    ("add rule inet cityward output ip daddr 203.0.113.9 tcp dport 443 accept", EGRESS, "203.0.113.9/32 tcp/443"),
    # a drop ahead of management SSH
    ("insert rule inet cityward input tcp dport 2222 drop", SSH_IN, "dropped before it is accepted"),
    # the forward policy changed by hand
    ("add chain inet cityward forward { policy accept ; }", INPUT, "expected policy 'drop'"),
])
def test_a_live_ruleset_that_differs_from_the_record_fails(overridden, extra, check, says):
    record, ruleset = overridden
    with pytest.raises(AssertionError, match=re.escape(says)):
        check(_live(ruleset, extra), fw.Expected.from_record(record))


@pytest.mark.parametrize("broken", [
    {"ssh_port": "22"},
    {"management_sources": ["not an address"]},
])
def test_a_record_the_role_never_writes_is_refused(overridden, broken):
    record, _ = overridden
    with pytest.raises((TypeError, ValueError)):
        fw.Expected.from_record(dict(record, **broken))
    trimmed = {key: value for key, value in record.items() if key != "inbound"}
    with pytest.raises(KeyError):
        fw.Expected.from_record(trimmed)


def test_the_record_is_the_roles_last_task_tagged_for_every_check_that_reads_it():
    tasks = yaml.safe_load((ROOT / "roles/firewall/tasks/main.yml").read_text())
    last = tasks[-1]
    assert last["name"] == "CW-FW-02 | Record the settings this run applied (read by the audit)"
    entry = last["cityward.hardening.files"]["files"][0]
    assert entry["dest"] == "/etc/ansible/facts.d/cityward_firewall.fact"
    assert "applied_fact('firewall')" in entry["content"]
    assert (entry["owner"], entry["group"], entry["mode"]) == ("root", "root", "0644")
    assert set(last["tags"]) == {"CW-FW-01", "CW-FW-02", "CW-FW-03", "CW-FW-04"}
