"""Segmentation proven with real traffic in the molecule/firewall lab: every flow between the lab's
hosts is probed from inside the source container and compared with what the zones policy allows,
before isolation, while one field gateway is isolated, and after it is restored.
Runs only in that scenario (it changes state: isolation, restore)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from firewall_lab import (
    DROPPED,
    LAB_POLICY,
    NOT_IN_LAB,
    OPEN,
    PROJECT,
    UNLISTED,
    HeldSession,
    Lab,
    describe,
    lab_available,
    recap,
)

pytestmark = pytest.mark.skipif(not lab_available(), reason=NOT_IN_LAB)

ISOLATED = "cw-fw-gw13"  # the "compromised" field gateway
ISOLATE = PROJECT / "playbooks" / "isolate.yml"
RESTORE = PROJECT / "playbooks" / "restore.yml"
STATE_DIR = "/var/lib/cityward/firewall"
CONVERGE = PROJECT / "molecule" / "firewall" / "converge.yml"


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def lab():
    lab = Lab()
    lab.start_listeners()
    yield lab
    # Never leave the lab isolated for the modules that follow, whatever failed above.
    if "cityward_isolation" in lab.ruleset(ISOLATED):
        lab.playbook(RESTORE, "-e", f"isolate_hosts={ISOLATED}")


@pytest.fixture(scope="module")
def baseline(lab):
    """The matrix of every flow, and every firewalled host's live ruleset, before any isolation."""
    names = [n.name for n in lab.nodes.values() if n.firewalled]
    return {"matrix": lab.matrix(), "rulesets": {name: lab.ruleset(name) for name in names}}


@pytest.fixture(scope="module")
def state():
    return {}


def mismatches(lab, observed, flows, isolated=frozenset()):
    return [f for f in flows if observed[f] != lab.expected(f, isolated)]


# --- CW-FW-01: a bad policy or zone stops the run before any host changes ---------------------


@pytest.mark.control("CW-FW-01")
def test_bad_policy_or_zone_is_refused_before_any_change(lab, tmp_path):
    raw = yaml.safe_load(LAB_POLICY.read_text())
    raw["conduits"][0]["to"] = "scada-lan"
    bad = tmp_path / "zones-bad.yml"
    bad.write_text(yaml.safe_dump(raw, sort_keys=False))
    target = "cw-fw-ent"
    before = lab.ruleset(target), lab.exec(target, ["stat", "-c", "%Y", "/etc/nftables.conf"]).stdout
    common = (CONVERGE, "--limit", target, "--tags", "firewall")
    with ThreadPoolExecutor(2) as pool:
        bad_policy = pool.submit(lab.playbook, *common, "-e", f"cityward_zones_file={bad}")
        bad_zone = pool.submit(lab.playbook, *common, "-e", "cityward_zone=scada-lan")
    entry = "conduit #0 (ot-operations->scada-lan:502), field 'to': unknown zone 'scada-lan'"
    for result, message in (
        (bad_policy.result(), f"{bad}: {entry}"),
        (bad_zone.result(), f"{target}: cityward_zone 'scada-lan' is not a zone of"),
    ):
        output = flat(result.stdout + result.stderr)
        assert result.returncode != 0, output[-2000:]
        assert message in output, output[-3000:]
        counts = recap(result, target)
        assert (counts["changed"], counts["failed"]) == (0, 1), counts
    assert (lab.ruleset(target), lab.exec(target, ["stat", "-c", "%Y", "/etc/nftables.conf"]).stdout) == before


# --- CW-FW-02..04: every flow does what the policy says -----------------------------------


@pytest.mark.control("CW-FW-02")
def test_every_conduit_between_lab_hosts_connects(lab, baseline):
    observed = baseline["matrix"]
    flows = [f for f in observed if lab.conduit(lab.nodes[f[0]], lab.nodes[f[1]], f[2], f[3])]
    # the lab holds the OT protocols: Modbus, DNP3, OPC UA, BACnet/IP, MQTT/TLS, NTP, syslog/TLS, SSH
    assert {(p, n) for _, _, p, n in flows} >= {("tcp", 502), ("tcp", 20000), ("tcp", 4840), ("udp", 47808),
                                                ("tcp", 8883), ("udp", 123), ("tcp", 6514), ("tcp", 22)}
    closed = [f for f in flows if observed[f] != OPEN]
    assert not closed, "conduits that did not connect:\n" + describe(closed, observed, lab.expected)


@pytest.mark.control("CW-FW-02")
def test_flows_without_a_conduit_are_dropped(lab, baseline):
    observed = baseline["matrix"]
    for flow in [("cw-fw-ent", "cw-fw-gw12", "tcp", 502),     # office -> Modbus on a field gateway
                 ("cw-fw-ent", "cw-fw-ot", "tcp", 22),        # SSH only from management
                 ("cw-fw-ent", "cw-fw-gw12", "tcp", 8883),    # MQTT only from the SCADA zone
                 ("cw-fw-gw12", "cw-fw-gw13", "tcp", 502),    # no flow inside a zone without a conduit
                 ("cw-fw-siem", "cw-fw-ot", "tcp", 502)]:
        assert observed[flow] == DROPPED, flow
    into_firewalled = [f for f in observed if lab.nodes[f[1]].firewalled]
    wrong = mismatches(lab, observed, into_firewalled)
    assert not wrong, "flows the ruleset does not treat as the policy says:\n" + describe(wrong, observed, lab.expected)


@pytest.mark.control("CW-FW-03")
def test_ot_egress_is_limited_to_its_conduits(lab, baseline):
    observed = baseline["matrix"]
    siem = "cw-fw-siem"  # a log collector without a firewall: whatever is dropped, the sender dropped it
    for source in ("cw-fw-ot", "cw-fw-gw12", "cw-fw-gw13"):
        assert observed[(source, siem, "tcp", 6514)] == OPEN
        assert observed[(source, siem, *UNLISTED)] == DROPPED
        assert observed[(source, siem, "tcp", 443)] == DROPPED
    for source in ("cw-fw-ent", "cw-fw-mgmt"):  # the same port is open to hosts outside OT zones
        assert observed[(source, siem, *UNLISTED)] == OPEN
    from_ot = [f for f in observed if lab.nodes[f[0]].firewalled and lab.policy.zone(lab.nodes[f[0]].zone).is_ot]
    wrong = mismatches(lab, observed, from_ot)
    assert not wrong, "OT egress not as the policy says:\n" + describe(wrong, observed, lab.expected)


@pytest.mark.control("CW-FW-04")
def test_management_ssh_reaches_every_host_and_nobody_else_does(lab, baseline):
    observed = baseline["matrix"]
    ssh = [f for f in observed if f[2:] == ("tcp", 22) and lab.nodes[f[1]].firewalled]
    for flow in ssh:
        assert observed[flow] == (OPEN if flow[0] == "cw-fw-mgmt" else DROPPED), flow


@pytest.mark.control("CW-FW-04")
def test_a_run_over_ssh_keeps_the_controllers_address_open(lab):
    # The lab connects through Podman; an SSH run has SSH_CLIENT, here outside every management CIDR.
    target = "cw-fw-ent"
    before = lab.ruleset(target)
    controller = '{"ansible_env": {"SSH_CLIENT": "192.0.2.2 51000 22"}}'
    result = lab.playbook(CONVERGE, "--limit", target, "--tags", "firewall", "--check", "--diff", "-e", controller)
    assert result.returncode == 0, result.stdout[-3000:]
    rule = 'ip saddr 192.0.2.2 tcp dport 22 accept comment "CW-FW-04 controller of the last run"'
    assert any(line.startswith("+") and rule in line for line in result.stdout.splitlines()), result.stdout[-3000:]
    assert lab.ruleset(target) == before


@pytest.mark.control("CW-FW-04")
def test_an_established_ssh_session_survives_a_ruleset_reload(lab):
    session = HeldSession(lab, "cw-fw-mgmt", "cw-fw-ot")
    reload = lab.exec("cw-fw-ot", ["systemctl", "reload", "nftables"])
    assert reload.returncode == 0, reload.stderr
    assert session.finish() == "KEXINIT"


# --- CW-FW-05 and CW-RES-03: isolate one gateway, the city keeps running, restore -----------


@pytest.mark.control("CW-FW-05")
def test_isolate_in_check_mode_changes_nothing(lab, baseline):
    files = ["bash", "-c", f"ls -la --time-style=+%s.%N {STATE_DIR} 2>&1; sha256sum {STATE_DIR}/* 2>&1"]
    before = lab.exec(ISOLATED, files).stdout
    with ThreadPoolExecutor(2) as pool:
        check = pool.submit(lab.playbook, ISOLATE, "-e", f"isolate_hosts={ISOLATED}", "--check")
        unnamed = pool.submit(lab.playbook, ISOLATE, "--check")  # nobody named: refused, nothing isolated
    result, unnamed = check.result(), unnamed.result()
    assert unnamed.returncode != 0 and "Refusing to isolate every host" in flat(unnamed.stdout), unnamed.stdout[-2000:]
    assert result.returncode == 0, result.stdout[-3000:]
    assert recap(result, ISOLATED)["failed"] == 0
    assert lab.ruleset(ISOLATED) == baseline["rulesets"][ISOLATED]
    assert lab.exec(ISOLATED, files).stdout == before


@pytest.mark.control("CW-FW-05")
def test_isolation_keeps_only_management_ssh_and_log_forwarding(lab, baseline, state):
    session = HeldSession(lab, "cw-fw-mgmt", ISOLATED)
    result = lab.playbook(ISOLATE, "-e", f"isolate_hosts={ISOLATED}")
    assert result.returncode == 0, result.stdout[-3000:]
    assert session.finish() == "KEXINIT", "the management SSH session did not survive the isolation"

    saved = lab.exec(ISOLATED, ["stat", "-c", "%a %U", f"{STATE_DIR}/pre-isolation.nft"]).stdout.split()
    assert saved == ["600", "root"]
    content = lab.exec(ISOLATED, ["cat", f"{STATE_DIR}/pre-isolation.nft"]).stdout
    assert content == "flush ruleset\n" + baseline["rulesets"][ISOLATED]

    observed = lab.matrix()
    state["isolated_matrix"], state["isolated_ruleset"] = observed, lab.ruleset(ISOLATED)
    involved = [f for f in observed if ISOLATED in f[:2]]
    wrong = mismatches(lab, observed, involved, frozenset({ISOLATED}))
    assert not wrong, "isolation not as expected:\n" + describe(
        wrong, observed, lambda f: lab.expected(f, frozenset({ISOLATED})))
    open_flows = sorted(f for f in involved if observed[f] == OPEN)
    assert open_flows == [("cw-fw-gw13", "cw-fw-siem", "tcp", 6514), ("cw-fw-mgmt", "cw-fw-gw13", "tcp", 22)]


@pytest.mark.control("CW-RES-03")
def test_the_rest_of_the_city_keeps_running_during_isolation(lab, baseline, state):
    observed = state["isolated_matrix"]
    others = [f for f in observed if ISOLATED not in f[:2]]
    changed = [f for f in others if observed[f] != baseline["matrix"][f]]
    assert not changed, "flows between other hosts changed:\n" + describe(changed, observed, lab.expected)
    assert observed[("cw-fw-ot", "cw-fw-gw12", "tcp", 8883)] == OPEN  # SCADA still reads the other gateway
    assert observed[("cw-fw-ot", "cw-fw-gw13", "tcp", 8883)] == DROPPED


@pytest.mark.control("CW-FW-05")
def test_isolating_again_and_hardening_an_isolated_host_change_nothing(lab, state):
    saved = lab.exec(ISOLATED, ["sha256sum", f"{STATE_DIR}/pre-isolation.nft"]).stdout
    with ThreadPoolExecutor(2) as pool:
        again = pool.submit(lab.playbook, ISOLATE, "--limit", ISOLATED)
        harden = pool.submit(lab.playbook, CONVERGE, "--limit", ISOLATED, "--tags", "firewall")
    again, harden = again.result(), harden.result()
    assert again.returncode == 0 and recap(again, ISOLATED)["changed"] == 0, again.stdout[-3000:]
    assert lab.exec(ISOLATED, ["sha256sum", f"{STATE_DIR}/pre-isolation.nft"]).stdout == saved
    assert harden.returncode != 0 and recap(harden, ISOLATED)["changed"] == 0
    assert f"{ISOLATED} is isolated" in flat(harden.stdout)
    assert lab.ruleset(ISOLATED) == state["isolated_ruleset"]


@pytest.mark.control("CW-FW-05")
def test_restore_in_check_mode_changes_nothing(lab, state):
    result = lab.playbook(RESTORE, "-e", f"isolate_hosts={ISOLATED}", "--check")
    assert result.returncode == 0, result.stdout[-3000:]
    assert lab.ruleset(ISOLATED) == state["isolated_ruleset"]


@pytest.mark.control("CW-FW-05", "CW-RES-03")
def test_restore_returns_the_exact_previous_ruleset_and_flows(lab, baseline):
    result = lab.playbook(RESTORE, "-e", f"isolate_hosts={ISOLATED}")
    assert result.returncode == 0, result.stdout[-3000:]
    assert recap(result, ISOLATED)["changed"] == 1
    assert lab.ruleset(ISOLATED) == baseline["rulesets"][ISOLATED]  # empty diff
    observed = lab.matrix()
    changed = [f for f in observed if observed[f] != baseline["matrix"][f]]
    assert not changed, "flows differ after restore:\n" + describe(changed, observed, lab.expected)
