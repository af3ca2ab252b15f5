"""Faults, bad input and secrets, on the converged hosts of molecule/default (issue: reliability).

These tests run playbooks/site.yml again against the scenario's containers, with bad input, a
refused configuration, a failing handler and a host that goes away in the middle of the run.
They run after the shared control checks (tests/faults/conftest.py orders them last) and the
last one stops a container: the scenario's destroy follows.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from lab_secrets import lab_secret_values, leaks
from managed_state import FIRST, ROOT, SECOND
from managed_state import ansible_env as _env
from managed_state import checksums as _checksums
from managed_state import exec_in as _exec
from managed_state import molecule_inventory as _molecule_inventory

from cityward.audit.scanners import evidence_path, lynis
from cityward.audit.scanners.findings import SCANNER_NAMES
from cityward.checks.sshd_live import live_and_configured, offer

RUNS: list[str] = []  # every playbook output of this module, searched for secrets at the end


def _playbook_cmd(inventory: Path, *args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
            str(ROOT / "playbooks" / "site.yml"), *args]


def _site(*args: str, inventory: Path | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(_playbook_cmd(inventory or _molecule_inventory(), *args), capture_output=True,
                            text=True, cwd=ROOT, env=_env(), timeout=1500, check=False)
    RUNS.append(result.stdout + result.stderr)
    return result


def _recap(output: str) -> dict[str, dict[str, int]]:
    recap = output.rsplit("PLAY RECAP", 1)[-1]
    return {host: dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", counts))
            for host, counts in re.findall(r"(?m)^(\S+)\s+:\s+(ok=.*)$", recap)}


def _live_vs_disk(container: str) -> tuple[dict, dict]:
    """(what the running sshd offers, what sshd -T derives from the file), read inside the host."""
    address = json.loads(subprocess.run(["podman", "inspect", container], capture_output=True, text=True,
                                        check=True).stdout)[0]["NetworkSettings"]["Networks"]
    ip = next(n["IPAddress"] for n in address.values() if n.get("IPAddress"))
    return live_and_configured(ip, 22, lambda command: _exec(container, command).stdout)


def _assert_sshd_runs_its_file(container: str) -> None:
    offered, wanted = _live_vs_disk(container)
    assert offer.differences(offered, wanted) == []


@pytest.fixture
def bad_inventory(tmp_path):
    """The scenario's inventory with one malformed field on the second host only."""
    source = _molecule_inventory()
    target = tmp_path / "inventory"
    target.mkdir()
    for item in source.iterdir():
        if item.name == "host_vars":
            continue
        (target / item.name).symlink_to(item.resolve())
    (target / "host_vars").mkdir()
    for host in (FIRST, SECOND):
        data = yaml.safe_load((source / "host_vars" / f"{host}.yml").read_text())
        if host == SECOND:
            data["cityward_device"]["support_end_of_life"] = "when the vendor says"
        (target / "host_vars" / f"{host}.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    return target


@pytest.mark.control("CW-RES-04")
def test_one_bad_entry_changes_no_host(bad_inventory):
    """A run that would change both hosts (a new shell timeout) stops in its first play, because the
    second host's record is malformed: no managed file on either host changes."""
    before = {host: _checksums(host) for host in (FIRST, SECOND)}
    result = _site("-e", "accounts_shell_timeout=600", inventory=bad_inventory)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"host {SECOND}, field cityward_device.support_end_of_life" in output
    assert "nothing was changed on any host" in output
    assert set(_recap(output)) == {"localhost"}
    assert {host: _checksums(host) for host in (FIRST, SECOND)} == before


# (validator, tags to run, input that passes the argument specs but not the validator, the file,
#  the task that must refuse it, a command whose output is the running service's state)
REFUSED = [
    ("sshd -t", "ssh", {"ssh_ciphers": ["aes256-gcm@openssh.com", "cityward-no-such-cipher"]},
     "/etc/ssh/sshd_config", "CW-SSH-01 | Render the hardened sshd_config", None),
    # A number the template filter lets through (digits) but sudo cannot hold; a group name with a
    # space no longer reaches visudo: the template refuses it first.
    ("visudo -cf", "CW-RES-06", {"accounts_sudo_timestamp_timeout": "99999999999999999999"},
     "/etc/sudoers.d/60-cityward", "CW-ACC-01 | Account policy files",
     "visudo -c >/dev/null && sudo -n -u nobody true && echo sudo works"),
    ("nft -c", "firewall", {"firewall_ssh_port": 70000},
     "/etc/nftables.conf", "CW-FW-02 | Render the ruleset", "nft list ruleset | sha256sum"),
]


@pytest.mark.control("CW-RES-06")
@pytest.mark.parametrize(("validator", "tags", "extra", "path", "task", "probe"), REFUSED,
                         ids=[r[0].split()[0] for r in REFUSED])
def test_a_config_its_validator_refuses_is_never_installed(validator, tags, extra, path, task, probe):
    """The task fails, the file keeps its checksum, the running service keeps serving as before
    (and sshd keeps offering what it offered)."""
    before = _exec(FIRST, f"sha256sum {path}").stdout
    served_before = _exec(FIRST, probe).stdout if probe else None
    offered_before, _ = _live_vs_disk(FIRST)
    result = _site("--limit", f"{FIRST},localhost", "--tags", tags, "-e", json.dumps(extra))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    failed_task = output.split("failed to validate", 1)[0].rsplit("TASK [", 1)[-1]
    assert "failed to validate" in output and task in failed_task, f"{validator} did not refuse it"
    assert _exec(FIRST, f"sha256sum {path}").stdout == before
    if probe:
        assert _exec(FIRST, probe).stdout == served_before != ""
    assert _exec(FIRST, "systemctl is-active ssh").stdout.strip() == "active"
    assert _live_vs_disk(FIRST)[0] == offered_before
    _assert_sshd_runs_its_file(FIRST)


@pytest.mark.control("CW-RES-07")
def test_a_failing_handler_does_not_skip_the_others():
    """journald cannot restart (its unit is masked) in a run that must also restart rsyslog and
    reload sshd (their files drifted, new ciphers): rsyslog is still restarted, sshd still
    reloaded, and the run fails naming journald."""
    rsyslog_pid = _exec(FIRST, "systemctl show -p MainPID --value rsyslog").stdout.strip()
    _exec(FIRST, "echo '# drift' >> /etc/systemd/journald.conf.d/60-cityward.conf; "
                 "echo '# drift' >> /etc/rsyslog.d/60-cityward.conf; systemctl mask systemd-journald")
    try:
        result = _site("--limit", f"{FIRST},localhost", "--tags", "ssh,logging", "-e", json.dumps(
            {"ssh_ciphers": ["aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"]}))
    finally:
        _exec(FIRST, "systemctl unmask systemd-journald")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "journald restart failed" in output
    assert _exec(FIRST, "systemctl show -p MainPID --value rsyslog").stdout.strip() not in ("", rsyslog_pid)
    assert _exec(FIRST, "systemctl is-active rsyslog").stdout.strip() == "active"
    offered, _ = _live_vs_disk(FIRST)
    assert offered["ciphers_cs"] == ["aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"]
    _assert_sshd_runs_its_file(FIRST)


@pytest.fixture(scope="module")
def scenario_audit(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """`cityward audit` of both hosts, scanners included (ssh-audit, Lynis): (its run, the report folder).
    One audit serves the secrets check and the scanners' proof: Lynis costs about a minute a host."""
    out = tmp_path_factory.mktemp("audit")
    result = subprocess.run([str(Path(sys.executable).parent / "cityward"), "audit", "-i", str(_molecule_inventory()),
                             "--out", str(out)], capture_output=True, text=True, cwd=ROOT,
                            env=_env(), timeout=900, check=False)
    return result, out


@pytest.mark.control("CW-RES-08")
def test_audit_and_runs_never_show_a_secret(scenario_audit):
    """`cityward audit` of the scenario (console and every report file) and every run above: no
    TOTP seed, break-glass hash or password, no private key block."""
    result, out = scenario_audit
    reports = [p for p in out.rglob("*") if p.is_file()]
    assert reports, result.stderr
    texts = {"audit console": result.stdout + result.stderr, **{str(p): p.read_text(errors="replace") for p in reports}}
    texts.update({f"run {i}": text for i, text in enumerate(RUNS)})
    secrets = lab_secret_values()
    assert not {name: found for name, text in texts.items() if (found := leaks(text, secrets))}
    for host in (FIRST, SECOND):  # and the keys on the hosts are root-only
        loose = _exec(host, "find /etc/ssh /etc/cityward /etc/rsyslog.d /etc/mosquitto -name '*key*' "
                            "! -name '*.pub' -type f -perm /077 2>/dev/null").stdout
        assert loose == "", f"{host}: private keys readable by others: {loose}"


@pytest.mark.control("CW-GOV-07")
def test_the_audit_carries_both_scanners_results_for_each_hardened_host(scenario_audit):
    """On the hardened hosts, the audit ran ssh-audit and Lynis, recorded each one's version, judged
    every finding (mapped to a control, or waived with a reason) and left nothing on the host."""
    result, out = scenario_audit
    report = json.loads((out / "report.json").read_text())
    for host in (FIRST, SECOND):
        evidence = json.loads(evidence_path(out, host).read_text())["scanners"]
        ran = {scanner["name"]: (scanner["status"], bool(scanner.get("version"))) for scanner in evidence}
        assert ran == {name: ("ran", True) for name in SCANNER_NAMES}, f"{host}: {ran}\n{result.stderr[-2000:]}"
        cell = report["aggregate"]["controls"]["CW-GOV-07"]["hosts"][host]
        assert cell["status"] == "passed", f"{host}: CW-GOV-07 {cell}"
        left = _exec(host, f"ls -d {lynis.TMP_PREFIX}* /var/run/lynis.pid 2>/dev/null; true").stdout.split()
        assert left == [], f"{host}: Lynis left {left}"


@pytest.mark.control("CW-RES-05")
def test_a_host_lost_mid_run_does_not_stop_the_other():
    """The second container is stopped while site.yml hardens the first play's kernel settings:
    the first host finishes every play, the summary names the lost one."""
    process = subprocess.Popen(_playbook_cmd(_molecule_inventory()), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=_env())
    lines, stopped = [], False
    try:
        for line in process.stdout:
            lines.append(line)
            if not stopped and line.startswith("TASK [") and "CW-KRN-" in line:
                subprocess.run(["podman", "stop", "-t", "0", SECOND], capture_output=True, check=True)
                stopped = True
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(lines)
    RUNS.append(output)
    try:
        assert stopped, "the run never reached the kernel role"
        recap = _recap(output)
        assert recap[FIRST]["failed"] == 0 and recap[FIRST]["unreachable"] == 0, recap
        assert recap[SECOND]["unreachable"] + recap[SECOND]["failed"] >= 1, recap
        assert re.search(rf"NOT FINISHED \(failed or unreachable[^)]*\): {SECOND}\. Finished: {FIRST}\.", output)
        assert "Accept this run's changes into the AIDE baseline" in output  # the last play ran
        _assert_sshd_runs_its_file(FIRST)
    finally:
        subprocess.run(["podman", "start", SECOND], capture_output=True, check=False)
