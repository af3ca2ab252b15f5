"""Backups and the rebuild of a failed host (CW-RES-02), in the molecule/firewall lab: the gateways
back up to the management host over the field -> management borg-backup conduit (BorgBackup over a
borg-only SSH service). A failed backup is logged and recorded; restoring another host's backup is
refused before anything is written; then cw-fw-gw13 is destroyed, recreated empty from the base
image and rebuilt with playbooks/recover.yml (its newest backup, then the lab's converge), and its
files, its MQTT broker and its backup are as before. The control checks that run after this module
(cityward.checks: test_mqtt, test_firewall, test_backup) judge the rebuilt gateway too.

The tests of this module build on each other, in file order; runs only in that scenario."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from firewall_lab import NOT_IN_LAB, PROJECT, Lab, lab_available, quote, recap

pytestmark = pytest.mark.skipif(not lab_available(), reason=NOT_IN_LAB)

SERVER = "cw-fw-mgmt"
FAILED = "cw-fw-gw13"  # the gateway that is destroyed and rebuilt (Debian 13)
OTHER = "cw-fw-gw12"
SCADA = "cw-fw-ot"
CERTS = "/root/cw-fw-mqtt"
STATUS = "/var/lib/cityward/backup/status.json"
SERVER_DIR = "/etc/cityward/backup-server"
DEPARTED = "cw-fw-decommissioned"  # a gateway removed from the inventory, its line left on the repository host
MARKER = "/var/lib/mosquitto/cityward-lab-state"  # application state (the device record lists /var/lib/mosquitto)
# What must come back byte for byte: the broker's configuration, keys and ACL, the ruleset file, the
# roles' records, the host's SSH keys, the backup's own key and passphrase, the test clients' files.
SUMMED = ["/etc/mosquitto", "/etc/nftables.conf", "/etc/ansible/facts.d", "/etc/ssh", "/etc/cityward/backup",
          CERTS, MARKER]


@pytest.fixture(scope="module")
def lab():
    return Lab()


def converge_playbook() -> Path:
    """The lab's converge, which recover.yml runs after the restore (a city's is site.yml)."""
    return Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "converge.yml"


def checksums(lab: Lab, node: str) -> dict[str, str]:
    result = lab.exec(node, "find " + quote(*SUMMED) + " -type f -print0 | sort -z | xargs -0 sha256sum")
    assert result.returncode == 0, result.stderr
    return {line.split(None, 1)[1].strip(): line.split()[0] for line in result.stdout.splitlines()}


def backup_now(lab: Lab, node: str) -> tuple[subprocess.CompletedProcess, dict]:
    """The timer's own unit, started by hand: what runs in the maintenance window."""
    run = lab.exec(node, "systemctl start cityward-backup.service", timeout=300)
    status = json.loads(lab.exec(node, ["cat", STATUS]).stdout)
    return run, status


def journal(lab: Lab, node: str, since: str) -> str:
    return lab.exec(node, ["journalctl", "-t", "cityward-backup", "--since", since, "--no-pager", "-o", "cat"]).stdout


def now(lab: Lab, node: str) -> str:
    return lab.exec(node, ["date", "+%Y-%m-%d %H:%M:%S"]).stdout.strip()


@pytest.mark.control("CW-RES-02")
def test_a_failed_backup_is_logged_and_recorded_then_the_next_one_succeeds(lab):
    since = now(lab, OTHER)
    stopped = lab.exec(SERVER, "systemctl stop cityward-backup-sshd.service")
    assert stopped.returncode == 0, stopped.stderr
    try:
        run, status = backup_now(lab, OTHER)
    finally:
        assert lab.exec(SERVER, "systemctl start cityward-backup-sshd.service").returncode == 0
    assert run.returncode != 0, "the backup unit succeeded with the repository host's service stopped"
    assert status["result"] == "failed" and status["failed_step"] == "create", status
    assert f"CW-RES-02 {OTHER}: backup FAILED at create" in journal(lab, OTHER, since)
    run, status = backup_now(lab, OTHER)
    assert run.returncode == 0, run.stderr
    assert status["result"] == "ok" and status["checked"] is True, status


@pytest.fixture(scope="module")
def before(lab):
    """The failed gateway's state, backed up: an application state file, then its backup."""
    written = lab.exec(FAILED, f"echo {uuid.uuid4().hex} > {MARKER}")
    assert written.returncode == 0, written.stderr
    run, status = backup_now(lab, FAILED)
    assert run.returncode == 0 and status["result"] == "ok", (run.stderr, status)
    return {"checksums": checksums(lab, FAILED), "archive": status["archive"]}


@pytest.mark.control("CW-RES-02")
def test_restoring_another_hosts_backup_is_refused_before_anything_is_written(lab, before):
    untouched = checksums(lab, OTHER)
    refused = lab.playbook(PROJECT / "playbooks" / "recover.yml", "--limit", OTHER,
                           "-e", f"backup_restore_from={FAILED}",
                           "-e", f"recover_converge_playbook={converge_playbook()}")
    assert refused.returncode != 0, refused.stdout[-2000:]
    assert f"{OTHER}: refused: backup_restore_from is {FAILED}" in refused.stdout, refused.stdout[-3000:]
    assert recap(refused, OTHER)["changed"] == 0
    assert checksums(lab, OTHER) == untouched


def recreate_empty(lab: Lab, name: str) -> None:
    """Destroy the container and start a new one from its base image, as molecule/firewall's create.yml does."""
    platform = next(p for p in lab.config["platforms"] if p["name"] == name)
    # Podman here needs the project's lower rlimits (src/cityward/data/containers.conf), as molecule.yml gives it.
    env = {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF")
           or str(PROJECT / "src" / "cityward" / "data" / "containers.conf")}
    subprocess.run(["podman", "rm", "--force", "--time", "5", name], check=True, capture_output=True, env=env)
    command = ["podman", "run", "--detach", "--name", name, "--hostname", name, "--network", platform["network"],
               "--ip", platform["ip"], "--systemd", str(platform["systemd"]), "--label", "owner=molecule"]
    command += [arg for cap in platform.get("capabilities", []) for arg in ("--cap-add", cap)]
    subprocess.run([*command, platform["image"], platform["command"]], check=True, capture_output=True, env=env)
    for _ in range(60):
        state = lab.exec(name, ["systemctl", "is-system-running"]).stdout.strip()
        if state in ("running", "degraded"):
            return
        subprocess.run(["sleep", "1"], check=True)
    raise AssertionError(f"{name} did not boot: {state}")


@pytest.fixture(scope="module")
def departed(lab):
    """A line the repository host still holds for a gateway since removed from the inventory (its own key)."""
    clients = f"{SERVER_DIR}/clients.d"
    made = lab.exec(SERVER, f"""set -e
        ssh-keygen -q -t ed25519 -N '' -C cityward-backup:{DEPARTED} -f /root/{DEPARTED}
        printf 'restrict,command="borg serve --restrict-to-repository /srv/cityward-backup/{DEPARTED}" %s\\n' \
            "$(cut -d' ' -f1-3 /root/{DEPARTED}.pub)" > {clients}/{DEPARTED}.key
        cat {clients}/{DEPARTED}.key >> {SERVER_DIR}/authorized_keys
        rm -f /root/{DEPARTED} /root/{DEPARTED}.pub""")
    assert made.returncode == 0, made.stderr


@pytest.fixture(scope="module")
def rebuilt(lab, before, departed):
    recreate_empty(lab, FAILED)
    assert lab.exec(FAILED, ["test", "-e", "/etc/mosquitto"]).returncode != 0, "the recreated gateway is not empty"
    result = lab.playbook(PROJECT / "playbooks" / "recover.yml", "--limit", FAILED,
                          "-e", f"recover_converge_playbook={converge_playbook()}", timeout=1200)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert recap(result, FAILED)["failed"] == 0
    assert f"restored {before['archive']}" in result.stdout, result.stdout[-3000:]
    # The passphrase went to the host (CW-RES-08): never into what the operator's run shows.
    passphrase = (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "backup" / f"{FAILED}.passphrase").read_text()
    assert passphrase.strip() and passphrase.strip() not in result.stdout + result.stderr
    return result


@pytest.mark.control("CW-RES-02")
def test_the_rebuilt_gateways_files_are_those_backed_up(lab, before, rebuilt):
    after = checksums(lab, FAILED)
    missing = sorted(set(before["checksums"]) - set(after))
    differ = sorted(path for path in before["checksums"] if path in after and after[path] != before["checksums"][path])
    assert not missing and not differ, f"not restored: {missing}; different after the rebuild: {differ}"


@pytest.mark.control("CW-RES-02", "CW-MQTT-02")
def test_the_rebuilt_gateways_broker_serves_its_clients_again(lab, rebuilt):
    address = lab.nodes[FAILED].address
    topic, payload = f"city/ops/scada/{uuid.uuid4().hex}", f"after-rebuild-{uuid.uuid4().hex}"
    tls = ["-h", address, "-p", "8883", "--cafile", f"{CERTS}/ca.crt", "--cert", f"{CERTS}/scada.crt",
           "--key", f"{CERTS}/scada.key"]
    subscriber = subprocess.Popen(["podman", "exec", SCADA, "bash", "-c",
                                   "stdbuf -oL mosquitto_sub -d -v " + quote(*tls, "-t", topic, "-C", "1", "-W", "30")],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in subscriber.stdout:
        lines.append(line)
        if "Subscribed (mid" in line:
            break
    sent = lab.exec(SCADA, "mosquitto_pub -q 1 " + quote(*tls, "-t", topic, "-m", payload), timeout=60)
    assert sent.returncode == 0, sent.stderr
    rest, _ = subscriber.communicate(timeout=40)
    assert f"{topic} {payload}" in "".join(lines) + rest


@pytest.mark.control("CW-RES-02")
def test_a_host_removed_from_the_inventory_loses_its_access_to_the_repository_host(lab, rebuilt):
    # The rebuild's converge ran the backup role (--limit FAILED): the repository host now holds
    # the lines of the inventory's hosts only, the hosts outside the limit included.
    assert lab.exec(SERVER, ["test", "-e", f"{SERVER_DIR}/clients.d/{DEPARTED}.key"]).returncode != 0
    authorized = lab.exec(SERVER, ["cat", f"{SERVER_DIR}/authorized_keys"]).stdout
    assert f"cityward-backup:{DEPARTED}" not in authorized
    assert f"cityward-backup:{OTHER}" in authorized and f"cityward-backup:{FAILED}" in authorized


@pytest.mark.control("CW-RES-02")
def test_the_rebuilt_gateway_is_backed_up_again(lab, before, rebuilt):
    status = json.loads(lab.exec(FAILED, ["cat", STATUS]).stdout)
    assert status["result"] == "ok", status
    assert status["archive"] != before["archive"], "the converge after the restore made no new backup"
    newest = lab.exec(FAILED, ["/usr/local/sbin/cityward-backup", "latest"])
    assert newest.returncode == 0 and json.loads(newest.stdout)["archive"] == status["archive"], newest.stderr
