"""Patching and logging, proven by behaviour in molecule/logging: what an OT host logs reaches the
lab SIEM over mutual TLS, and only that way; nothing is lost while the SIEM is down; an unsigned
APT source stops a patch run before any change, and the next batch never starts.

Runs only inside Molecule (it stops and starts the SIEM, and plants a bad APT source for a while).
Hosts without a SIEM (logging_siem_host), such as other scenarios' hosts, are not applicable."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest
from siemlab import Siem, load_ca, make_client_cert, podman, send_tls

# The logging role's record of what it applied on this host (a fixture of the control checks).
from cityward.checks.outcomes import not_applicable
from cityward.checks.test_logging import applied_logging as applied_logging  # noqa: PLC0414 (a fixture)


@pytest.fixture(scope="module")
def siem_host(applied_logging):
    """The SIEM the logging role recorded for this host; not applicable where it recorded none."""
    if not applied_logging["siem_host"]:
        not_applicable("the logging role recorded no SIEM for this host: it forwards nothing")
    return applied_logging["siem_host"]


@pytest.fixture(scope="module")
def siem(siem_host):
    return Siem(siem_host)


@pytest.fixture(scope="module")
def pki():
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "pki"


@pytest.fixture
def run_id():
    return uuid.uuid4().hex[:10]


def _log(host, script: str):
    result = host.run(script)
    assert result.rc == 0, result.stderr
    return result


@pytest.mark.control("CW-LOG-03")
def test_receiver_listens_for_tls_only(siem):
    sockets = [line for line in siem.listeners().splitlines() if "rsyslogd" in line]
    assert sockets, "the SIEM's rsyslog listens nowhere"
    assert all(re.search(r":6514\s", line) for line in sockets), sockets
    assert not [line for line in sockets if re.search(r":514\s", line)], "plaintext syslog listener on 514"


@pytest.mark.control("CW-LOG-03", "CW-LOG-01")
def test_auth_events_reach_the_siem_over_tls(host, hostvars, siem, run_id):
    name = hostvars["inventory_hostname"]
    # A privileged command (sudo logs it to authpriv with its arguments) and an authpriv notice.
    _log(host, f"sudo -u nobody /bin/true CWSUDO{run_id}")
    _log(host, f"logger -p authpriv.notice -t cityward-test 'auth probe CWAUTH{run_id}'")
    assert siem.wait_for(f"CWAUTH{run_id}", 1, host=name, timeout=60) == {f"CWAUTH{run_id}"}
    assert siem.wait_for(f"CWSUDO{run_id}", 1, host=name, timeout=30) == {f"CWSUDO{run_id}"}
    stored = siem.sh(f"grep -h 'CWSUDO{run_id}' /var/log/siem/{name}.log").stdout
    assert "COMMAND=/bin/true" in stored or "COMMAND=/usr/bin/true" in stored, stored


@pytest.mark.control("CW-LOG-03")
def test_plaintext_syslog_is_refused_and_not_stored(host, hostvars, siem, siem_host, run_id):
    name = hostvars["inventory_hostname"]
    tcp514 = host.run(f"logger --server {siem_host} --port 514 --tcp 'CWPLAIN{run_id}tcp514'")
    assert tcp514.rc != 0, "a plaintext TCP connection to 514 was accepted"
    host.run(f"logger --server {siem_host} --port 514 --udp 'CWPLAIN{run_id}udp514'")
    host.run(f"logger --server {siem_host} --port 6514 --tcp 'CWPLAIN{run_id}tcp6514'")
    # A message through the real TLS path, sent after the probes: once it is stored, the probes
    # had every chance to be stored too.
    _log(host, f"logger -t cityward-test 'control CWCTRL{run_id}'")
    assert siem.wait_for(f"CWCTRL{run_id}", 1, host=name, timeout=60) == {f"CWCTRL{run_id}"}
    assert siem.stored_anywhere(f"CWPLAIN{run_id}") == []


def _once(hostvars) -> None:
    """Group-wide proofs run once, on the first OT host's turn."""
    first = sorted(hostvars["groups"]["ot_servers"])[0]
    if hostvars["inventory_hostname"] != first:
        pytest.skip(f"proven once for the group, on {first}")


@pytest.mark.control("CW-LOG-03")
def test_only_permitted_certificates_of_the_log_ca_may_send(hostvars, siem, siem_host, pki, run_id, tmp_path):
    """From the controller: a permitted host's certificate is accepted (the probe works); no
    certificate, a look-alike from another CA, and a lab-CA certificate for a name the SIEM
    does not permit are all refused and stored nowhere."""
    _once(hostvars)
    name = hostvars["inventory_hostname"]
    address, ca_file = siem.address, pki / "ca.crt"
    ca_cert, ca_key = load_ca(pki)
    peers = {
        "NOCERT": None,
        "ROGUE": make_client_cert(tmp_path, name),  # the permitted name, but not the lab CA
        "INTRUDER": make_client_cert(tmp_path, "cw-log-intruder", ca_cert, ca_key),
    }
    outcomes = {label: send_tls(address, siem.port, ca_file, siem_host, f"CWTLS{run_id}{label}", cert)
                for label, cert in peers.items()}
    good = send_tls(address, siem.port, ca_file, siem_host, f"CWTLS{run_id}GOOD",
                    (pki / f"{name}.crt", pki / f"{name}.key"))
    assert good == "sent"
    assert siem.wait_for(f"CWTLS{run_id}GOOD", 1, timeout=60) == {f"CWTLS{run_id}GOOD"}
    stored = siem.ids(f"CWTLS{run_id}")
    assert stored == {f"CWTLS{run_id}GOOD"}, f"stored: {sorted(stored)}; probes: {outcomes}"


@pytest.mark.control("CW-LOG-03", "CW-LOG-02")
def test_nothing_is_lost_while_the_siem_is_down(hostvars, siem, run_id):
    """One outage for every OT host (both Debian releases): 1,000 tagged events each while the
    SIEM is stopped; after it is back, every one of them arrives."""
    _once(hostvars)
    hosts = sorted(hostvars["groups"]["ot_servers"])
    prefix = f"CWOUT{run_id}N"
    burst = f"seq 1 1000 | sed 's/^/{prefix}/' | logger -t cityward-outage -p local0.notice"
    count = f"journalctl -q -t cityward-outage -o cat | grep -c '^{prefix}'"
    siem.stop()
    try:
        for name in hosts:
            podman("exec", name, "bash", "-c", burst)
        # All 1,000 are in each host's own journal while the SIEM is away.
        assert {name: podman("exec", name, "bash", "-c", count, check=False).stdout.strip() for name in hosts} \
            == dict.fromkeys(hosts, "1000")
    finally:
        siem.start()
    expected = {f"{prefix}{n}" for n in range(1, 1001)}
    for name in hosts:
        arrived = siem.wait_for(prefix, 1000, host=name, timeout=120)
        assert arrived == expected, f"{name}: {len(arrived & expected)} of 1000 arrived"


# --- patching ------------------------------------------------------------------------------

@pytest.mark.control("CW-PATCH-03")
def test_pending_report_reaches_the_controller_and_the_siem(host, hostvars, siem, siem_host):
    name = hostvars["inventory_hostname"]
    report = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "reports" / "patching" / f"{name}.json"
    data = json.loads(report.read_text())
    assert data["host"] == name
    assert data["pending_security"] == len(data["packages"]) >= 0
    assert all(p["archive"].endswith("-security") for p in data["packages"])
    assert json.loads(host.file("/var/lib/cityward/patching/pending.json").content_string) == data
    # The idempotence run logged the same summary after forwarding was in place (converge runs
    # patching before logging): the SIEM holds it, from this host.
    summary = f"pending_security={data['pending_security']} "
    lines = [line for line in siem.lines(name, "cityward-patching") if summary in line]
    assert lines, f"no cityward-patching summary '{summary}' from {name} at the SIEM"


@pytest.mark.control("CW-PATCH-04", "CW-PATCH-02")
def test_unsigned_source_stops_the_patch_run_before_the_next_batch(host, hostvars, siem_host):
    """playbooks/patch.yml with one host per batch and no failure budget: a trusted=yes source on
    the first host fails it in preflight, nothing changes on it, and the second batch never starts."""
    _once(hostvars)
    first, second = sorted(hostvars["groups"]["ot_servers"])[:2]
    planted = "/etc/apt/sources.list.d/zz-cityward-test-unsigned.list"
    watched = ("/etc/apt/sources.list.d/debian.sources /etc/apt/apt.conf.d/52cityward-unattended-upgrades "
               "/etc/systemd/system/apt-daily-upgrade.timer.d/60-cityward-window.conf "
               "/var/lib/cityward/patching/pending.json")
    sums = {h: subprocess.run(["podman", "exec", h, "sh", "-c", f"sha256sum {watched}"],
                              capture_output=True, text=True, check=True).stdout for h in (first, second)}
    root = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    host.run(f"echo 'deb [trusted=yes] http://unsigned.invalid/debian stable main' > {planted}")
    try:
        result = subprocess.run(
            # The inventory folder: Molecule's file plus the sources it links (the zones policy).
            ["ansible-playbook", "-i", str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent), "playbooks/patch.yml",
             "-e", "cityward_patch_hosts=ot_servers"],
            capture_output=True, text=True, timeout=600, cwd=root,
            env={**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"},
        )
    finally:
        host.run(f"rm -f {planted}")
    out = result.stdout
    recap = out[out.rfind("PLAY RECAP"):]
    assert result.returncode != 0, out[-3000:]
    assert planted in out, out[-3000:]
    assert re.search(rf"{first}\s*:\s*ok=\d+\s+changed=0\s+unreachable=0\s+failed=1", recap), recap
    assert second not in recap, "the second batch started although the first one failed:\n" + recap
    for h in (first, second):
        after = subprocess.run(["podman", "exec", h, "sh", "-c", f"sha256sum {watched}"],
                               capture_output=True, text=True, check=True).stdout
        assert after == sums[h], f"{h} changed"
