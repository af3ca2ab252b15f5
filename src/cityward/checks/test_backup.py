"""Backup controls (role backup, CW-RES-02), read from the host and never changed.

On a backed-up host: the secrets are root's only, the timer fires in the schedule the role
recorded, the last backup succeeded and was checked, is younger than the recorded maximum age and
newer than the last change a cityward role recorded, and the repository answers with this host's
newest archive (the host itself asks it: its key, its passphrase, its repository). On a repository
host: the borg-only SSH service runs with key-only logins, no forwarding and no terminal, and every
key it accepts is held to `borg serve` on its own host's repository.

Expected values are what the role recorded it applied (cityward_backup.fact)."""

from __future__ import annotations

import json
import re
import shlex
from datetime import UTC, datetime

import pytest

from cityward.checks.applied import applied
from cityward.checks.hoststate import snapshot
from cityward.checks.outcomes import not_applicable

PROGRAM = "/usr/local/sbin/cityward-backup"
RECORDS = "/etc/ansible/facts.d/cityward_*.fact"
SERVER_CONFIG = "/etc/ssh/sshd_cityward_backup_config"
SERVER_UNIT = "cityward-backup-sshd.service"
SERVER_KEYS = "/etc/cityward/backup-server/authorized_keys"
# One line per host, as the role writes it: the forced command, the key, the host's name.
KEY_LINE = re.compile(r'^(?P<options>restrict,command="[^"]*") (?P<key>ssh-ed25519 \S+) cityward-backup:(?P<host>\S+)$')
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def _server_of(hostvars) -> str:
    return str(hostvars.get("backup_server") or hostvars.get("cityward_backup_server") or "")


@pytest.fixture(scope="module")
def backed_up(hostvars):
    """This host's backup server; a host whose inventory names none is not applicable (the audit
    report shows it, with the reason, for every such host)."""
    server = _server_of(hostvars)
    if not server:
        not_applicable("not applicable: the inventory names no backup server for this host (cityward_backup_server)")
    return server


@pytest.fixture(scope="module")
def recorded(host, backed_up):
    """What the backup role recorded (a key it lacks fails the check that reads it as evidence missing)."""
    return applied(host, "backup")


@pytest.fixture(scope="module")
def state(host, recorded):
    return snapshot(host, {
        "modes": "stat -c '%n %U %G %a' " + " ".join(shlex.quote(recorded[k]) for k in ("passphrase_file", "ssh_key")),
        "status": f"cat {shlex.quote(recorded['status_file'])}",
        "records": f"stat -c '%Y %n' {RECORDS}",
        "timer": "systemctl show cityward-backup.timer -p UnitFileState -p ActiveState -p TimersCalendar",
        "normalized": f"systemd-analyze calendar {shlex.quote(recorded['schedule'])}",
    })


@pytest.mark.control("CW-RES-02")
def test_backup_secrets_are_root_only(state, recorded):
    rc, out = state["modes"]
    assert rc == 0, f"the passphrase or key file is missing: {out.strip()}"
    modes = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    for key in ("passphrase_file", "ssh_key"):
        assert modes.get(recorded[key]) == ["root", "root", "600"], (
            f"{recorded[key]}: expected root root 600 (it opens this host's backups), found {modes.get(recorded[key])}")


@pytest.mark.control("CW-RES-02")
def test_backup_timer_fires_in_the_recorded_window(state, recorded):
    rc, out = state["timer"]
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    found = f"{props.get('UnitFileState')}/{props.get('ActiveState')}"
    assert found == "enabled/active", f"cityward-backup.timer: expected enabled/active, found {found}"
    rc, normalized = state["normalized"]
    forms = [line.split(":", 1)[1].strip() for line in normalized.splitlines() if "Normalized form" in line]
    assert rc == 0 and forms, (
        f"systemd cannot read the recorded schedule {recorded['schedule']!r}: {normalized.strip()}")
    assert f"OnCalendar={forms[0]} " in props.get("TimersCalendar", "") + " ", (
        f"cityward-backup.timer fires at {props.get('TimersCalendar')}, not at the recorded {forms[0]}")


@pytest.mark.control("CW-RES-02")
def test_last_backup_succeeded_was_checked_and_is_current(state, recorded):
    rc, text = state["status"]
    assert rc == 0, f"no backup has run on this host ({recorded['status_file']}: {text.strip()})"
    status = json.loads(text)
    assert status.get("result") == "ok", (
        f"the last backup failed at {status.get('failed_step')} ({status.get('last_attempt')}): {status.get('error')}")
    assert status.get("checked") is True, "the last backup's repository check did not run"
    done = datetime.strptime(status["last_success"], STAMP).replace(tzinfo=UTC)
    age = (datetime.now(UTC) - done).total_seconds() / 3600
    assert age <= recorded["max_age_hours"], (
        f"the last successful backup ({status['last_success']}) is {age:.0f} h old, more than the recorded "
        f"{recorded['max_age_hours']} h: a backup window was missed")
    rc, out = state["records"]
    changes = [(int(line.split()[0]), line.split()[1]) for line in out.splitlines() if line.split()[:1] != []]
    newest = max(changes, default=(0, ""))
    assert done.timestamp() >= newest[0], (
        f"{newest[1]} changed at {datetime.fromtimestamp(newest[0], UTC):{STAMP}}, after the last backup "
        f"({status['last_success']}): the repository does not hold the host's current state")


@pytest.mark.control("CW-RES-02")
def test_repository_holds_this_hosts_newest_archive(host, hostvars, recorded, state):
    """The host asks its repository itself (its key, its passphrase): borg decrypts the newest
    archive's identity, which must name this host and be the archive the last backup made."""
    result = host.run(f"{PROGRAM} latest")
    assert result.rc == 0, f"the repository {recorded['repository']} did not answer: {result.stderr.strip()}"
    newest = json.loads(result.stdout)
    assert newest["host"] == hostvars["inventory_hostname"], (
        f"the newest archive {newest['archive']} names host {newest['host']!r}, not this one")
    status = json.loads(state["status"][1])
    assert newest["archive"] == status.get("archive"), (
        f"the repository's newest archive is {newest['archive']}, the last backup recorded {status.get('archive')}")


@pytest.fixture(scope="module")
def server(hostvars):
    if "backup_servers" not in hostvars.get("group_names", []):
        not_applicable("not applicable: not a backup repository host (group backup_servers)")
    return hostvars


@pytest.mark.control("CW-RES-02")
def test_repository_service_serves_borg_to_keys_only(host, server):
    found = snapshot(host, {
        "active": f"systemctl is-active {SERVER_UNIT}",
        "effective": f"sshd -T -f {SERVER_CONFIG}",
        "keys": f"cat {SERVER_KEYS}",
    })
    assert found["active"][1].strip() == "active", f"{SERVER_UNIT} is {found['active'][1].strip()}"
    rc, out = found["effective"]
    assert rc == 0, f"sshd -T -f {SERVER_CONFIG}: {out.strip()}"
    effective = dict((line.split(None, 1) + [""])[:2] for line in out.splitlines() if line.strip())
    expected = {"authenticationmethods": "publickey", "passwordauthentication": "no", "disableforwarding": "yes",
                "kbdinteractiveauthentication": "no", "permitrootlogin": "no", "permittty": "no",
                "allowtcpforwarding": "no", "allowagentforwarding": "no", "allowstreamlocalforwarding": "no",
                "x11forwarding": "no", "permittunnel": "no", "permituserrc": "no"}
    wrong = {k: effective.get(k) for k, v in expected.items() if effective.get(k) != v}
    assert not wrong, f"the backup service's sshd: expected {expected}, these differ: {wrong}"
    root = server.get("backup_server_root", "/srv/cityward-backup")
    lines = [line for line in found["keys"][1].splitlines() if line.strip()]
    assert lines, f"{SERVER_KEYS} authorizes no host"
    for line in lines:
        entry = KEY_LINE.match(line)
        held = entry and f'command="borg serve --restrict-to-repository {root}/{entry["host"]}"'
        assert entry and entry["options"] == f"restrict,{held}", (
            f"{SERVER_KEYS}: a key that is not held to borg serve on its own repository: {line[:120]}")
