"""Secret rotation without lockout, proven as a city meets it: a new TOTP seed for an operator and a
new break-glass password go into the inventory's vault, playbooks/rotate_secrets.yml runs over real
SSH as the automation account against both hosts of molecule/access, and then the new secrets open
the door (SSH with key and TOTP, sudo, the console) while the old ones are refused. A seed PAM
cannot decode is refused in preflight before either host changes. At the end the lab's own secrets
are rotated back, which proves a second rotation too. Runs in molecule/access after test_access.py.

The rotation is also the proof of change control (CW-GOV-10): its inventory is a git repository,
as a city's is, and its runs go without the scenario's override. Applied straight away, the rotation
is refused before any host is touched; after its --check --diff run it goes ahead, and the change
records, the hosts' journals and the audit's judgement say what ran, after which dry run, where.
"""

from __future__ import annotations

import getpass
import os
import re
import secrets
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import paramiko
import pyotp
import pytest
import yaml
from conftest import Totp, wait_for_sshd, write_automation_inventory
from console import Console
from lab_secrets import lab_secret_values

from cityward import __version__
from cityward.changes import OVERRIDE_ENV, judge_host, read_records, records_dir

# Every host of molecule/access: one rotation run covers both, as it would a city's estate.
SCENARIO_HOSTS = ["cw-access-bookworm", "cw-access-trixie"]
ROTATED = "alice"
# Files a refused run must leave as they were: the operator's seed, the password database.
WATCHED = ["/var/lib/cityward/totp/" + ROTATED, "/etc/shadow"]
# A seed with a digit base32 does not have (1, 8, 9, 0): pam_google_authenticator cannot decode it.
UNDECODABLE = "JBSWY3DPEHPK3PX1JBSWY3DPEHPK3PX1"


def _yescrypt(password: str) -> str:
    """The hash a city would put in its vault (mkpasswd, from Debian's whois package)."""
    return subprocess.run(["mkpasswd", "--method=yescrypt", "--stdin"], input=password, capture_output=True,
                          text=True, check=True).stdout.strip()


@cache
def _lab_vault() -> tuple[dict[str, str], str]:
    """The lab vault's TOTP seeds and break-glass hash (decrypted once)."""
    values = lab_secret_values()
    seeds = {key.split(".", 1)[1]: value for key, value in values.items() if key.startswith("vault_totp_secrets.")}
    return seeds, values["vault_breakglass_password_hash"]


def _vault_overrides(folder, seed: str, password_hash: str | None = None):
    """The vault with new values, as extra vars in a root-only file (never on a command line)."""
    seeds, lab_hash = _lab_vault()
    path = folder / "rotated-secrets.yml"
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump({"vault_totp_secrets": dict(seeds, **{ROTATED: seed}),
                                    "vault_breakglass_password_hash": password_hash or lab_hash}))
    return path


def _changed(output: str) -> dict[str, int]:
    """Changed tasks per scenario host, from the play recap (the controller's own play left out)."""
    recap = re.findall(r"^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)", output, re.M)
    return {host: int(count) for host, count in recap if host in SCENARIO_HOSTS}


def _why(result: subprocess.CompletedProcess) -> str:
    """What a failed run says about its failures (fatal and unreachable hosts), then its recap."""
    lines = [line for line in result.stdout.splitlines() if re.search(r"fatal:|UNREACHABLE|FAILED!|\[ERROR\]", line)]
    return "\n".join(lines)[-3000:] + "\n" + result.stdout[-1200:]


def _checksums(name: str) -> str:
    return subprocess.run(["podman", "exec", name, "sha256sum", *WATCHED], capture_output=True, text=True,
                          check=True).stdout


@dataclass(frozen=True)
class NewSecrets:
    """The rotated secrets; never in a traceback's locals (repr shows no value)."""

    seed: str = field(repr=False)
    password: str = field(repr=False)


@pytest.fixture(scope="session")
def new_secrets():
    return NewSecrets(seed=pyotp.random_base32(32), password="rotated-" + secrets.token_urlsafe(15))


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=City OT", "-c", "user.email=ot@city.example",
                           *args], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="session")
def lab_inventory(keys_dir, tmp_path_factory):
    """Both hosts' inventory, committed to a git repository of its own, as a city keeps its inventory."""
    inventory = write_automation_inventory(tmp_path_factory.mktemp("rotation"), SCENARIO_HOSTS, keys_dir)
    _git(inventory.parent, "init", "-q")
    _git(inventory.parent, "add", "-A")
    _git(inventory.parent, "commit", "-q", "-m", "The city's inventory")
    return inventory


def _records(inventory: Path) -> list[dict]:
    found, unreadable = read_records(records_dir(inventory.parent))
    assert unreadable == []
    return found


@pytest.fixture(scope="session")
def rotated_vault(new_secrets, tmp_path_factory):
    return _vault_overrides(tmp_path_factory.mktemp("vault"), new_secrets.seed, _yescrypt(new_secrets.password))


@pytest.fixture(scope="session")
def ungated(refused, lab_inventory, rotated_vault, run_playbook):
    """The rotation applied at once, without a dry run before it and without an override."""
    before = _records(lab_inventory)
    result = run_playbook(lab_inventory, "rotate_secrets.yml", "-e", f"@{rotated_vault}", override=False)
    return {"result": result, "records_before": before, "records": _records(lab_inventory),
            "after": {name: _checksums(name) for name in SCENARIO_HOSTS}}


@pytest.fixture(scope="session")
def refused(lab_inventory, run_playbook, tmp_path_factory):
    """A rotation to a seed PAM cannot decode (once for both hosts), with each host's files before and after."""
    before = {name: _checksums(name) for name in SCENARIO_HOSTS}
    overrides = _vault_overrides(tmp_path_factory.mktemp("undecodable"), UNDECODABLE)
    result = run_playbook(lab_inventory, "rotate_secrets.yml", "-e", f"@{overrides}")
    return {"result": result, "before": before, "after": {name: _checksums(name) for name in SCENARIO_HOSTS}}


@pytest.fixture(scope="session")
def rotation(ungated, lab_inventory, rotated_vault, run_playbook):
    """The rotation's dry run, the rotation (once for both hosts) and its repeat, all through the
    change gate; at the end the lab's secrets back, with the scenario's override."""
    # The access tests' failed logins from this machine come just before.
    for name in SCENARIO_HOSTS:
        wait_for_sshd(name)
    vault = ("-e", f"@{rotated_vault}")
    dry = run_playbook(lab_inventory, "rotate_secrets.yml", *vault, "--check", "--diff", override=False)
    first = again = None
    if dry.returncode == 0:
        first = run_playbook(lab_inventory, "rotate_secrets.yml", *vault, override=False)
    if first is not None and first.returncode == 0:
        again = run_playbook(lab_inventory, "rotate_secrets.yml", *vault, override=False)
    yield {"dry": dry, "first": first, "again": again, "records": _records(lab_inventory)}
    back = run_playbook(lab_inventory, "rotate_secrets.yml")
    assert back.returncode == 0, _why(back)
    assert set(_changed(back.stdout)) == set(SCENARIO_HOSTS) and all(_changed(back.stdout).values())


@pytest.mark.control("CW-ACC-08", "CW-MFA-01")
def test_a_seed_pam_cannot_decode_is_refused_before_any_host_changes(refused, hostvars):
    result, name = refused["result"], hostvars["inventory_hostname"]
    assert result.returncode != 0
    assert f"cityward_totp_secrets of {ROTATED} is not a base32 TOTP seed" in result.stdout, _why(result)
    assert UNDECODABLE not in result.stdout + result.stderr
    assert not any(_changed(result.stdout).values()), result.stdout[-1500:]
    assert refused["after"][name] == refused["before"][name]


@pytest.mark.control("CW-MFA-01", "CW-ACC-07", "CW-RES-08")
def test_the_rotation_changes_both_hosts_once_and_shows_no_secret(rotation, new_secrets):
    dry, first, again = rotation["dry"], rotation["first"], rotation["again"]
    assert dry.returncode == 0, _why(dry)
    assert first is not None and first.returncode == 0, _why(first)
    assert set(_changed(first.stdout)) == set(SCENARIO_HOSTS) and all(_changed(first.stdout).values())
    # Run again with the same vault: nothing left to change.
    assert again.returncode == 0, _why(again)
    assert not any(_changed(again.stdout).values()), again.stdout[-1500:]
    shown = dry.stdout + dry.stderr + first.stdout + first.stderr + again.stdout + again.stderr
    for secret in (new_secrets.seed, new_secrets.password, _lab_vault()[0][ROTATED]):
        assert secret not in shown


@pytest.mark.control("CW-GOV-10")
def test_an_apply_without_its_dry_run_is_refused_before_any_host_is_touched(ungated, refused, hostvars):
    result, name = ungated["result"], hostvars["inventory_hostname"]
    assert result.returncode != 0
    assert "no successful --check --diff run of these inputs in the last 24 h" in result.stdout, _why(result)
    assert "the change was refused before any host was touched" in result.stdout
    # No scenario host in the recap: the run stopped in the controller's check play.
    assert _changed(result.stdout) == {}, result.stdout[-1500:]
    assert ungated["after"][name] == refused["after"][name]
    assert ungated["records"] == ungated["records_before"]  # no record: nothing ran


@pytest.mark.control("CW-GOV-10")
def test_the_rotation_is_recorded_after_its_dry_run(rotation, lab_inventory, hostvars):
    """The dry run's record, then the apply's naming it, from the committed inventory, with the
    hosts it changed; the repeat names the same dry run and changed nothing; the audit passes."""
    records, name = rotation["records"], hostvars["inventory_hostname"]
    # First the rotation to an undecodable seed, run with the scenario's override: recorded, failed on both hosts.
    (refused,) = [record for record in records if record["override"]]
    assert (refused["kind"], refused["result"], refused["hosts_failed"], refused["override"]["reason"]) == \
        ("apply", "failed", SCENARIO_HOSTS, os.environ[OVERRIDE_ENV])
    dry, first, again = [record for record in records if not record["override"]]
    assert (dry["kind"], dry["diff"], dry["result"], dry["hosts_changed"]) == \
        ("dry-run", True, "succeeded", SCENARIO_HOSTS)
    commit = _git(lab_inventory.parent, "rev-parse", "HEAD")
    for record in (first, again):
        assert record["kind"] == "apply" and record["result"] == "succeeded" and record["status"] == "finished"
        assert record["dry_run"]["id"] == dry["id"] and record["override"] is None
        assert record["inventory"]["commit"] == commit and record["inventory"]["uncommitted"] == []
        assert record["operator"].startswith(f"{getpass.getuser()}@") and record["cityward_version"] == __version__
        assert record["playbook"].endswith("playbooks/rotate_secrets.yml")
        assert set(SCENARIO_HOSTS) <= set(record["hosts_targeted"]) and record["finished"] >= record["started"]
    assert (first["hosts_changed"], again["hosts_changed"]) == (SCENARIO_HOSTS, [])
    assert judge_host(name, records, [], records_dir(lab_inventory.parent)) is None
    # Each host's journal names the change before the roles ran, for its forwarder to take to the SIEM.
    journal = subprocess.run(["podman", "exec", name, "journalctl", "--no-pager", "-o", "cat", "-t", "cityward-change"],
                             capture_output=True, text=True, check=True).stdout
    for record in (first, again):
        assert f"cityward change {record['id']}: apply of {record['playbook']} from commit {commit[:12]}, " \
               f"by {record['operator']}, cityward {__version__}, after dry run {dry['id']}" in journal, journal
    assert dry["id"] not in journal.replace(f"after dry run {dry['id']}", "")


@pytest.mark.control("CW-MFA-01", "CW-MFA-02")
def test_the_new_totp_seed_gets_in_and_the_old_one_is_refused(rotation, new_secrets, ssh, totp):
    new = Totp(new_secrets.seed)
    session = ssh(ROTATED, code=new.fresh())
    assert session.authenticated
    status, out, err = session.run("sudo -k; sudo -S -p 'CODE:' id -u", stdin=new.fresh() + "\n")
    assert (status, out.strip()) == (0, "0"), err
    # The code of the seed that was enrolled before: a valid one for that seed, refused now.
    with pytest.raises(paramiko.AuthenticationException):
        ssh(ROTATED, code=totp[ROTATED].fresh())


@pytest.mark.control("CW-ACC-07")
def test_the_new_break_glass_password_opens_the_console_and_the_old_one_does_not(rotation, new_secrets, container,
                                                                                 host, hostvars):
    user = hostvars.get("cityward_breakglass_user", "breakglass")
    old, new = hostvars["vault_lab_breakglass_password"], new_secrets.password
    try:
        console = Console(container, user, secrets=(old, new))
        try:
            assert console.expect(b"assword"), console.transcript()
            console.send(old)
            assert console.expect(b"Login incorrect", timeout=30), console.transcript()
        finally:
            console.close()
        console = Console(container, user, secrets=(old, new))
        try:
            assert console.expect(b"assword"), console.transcript()
            console.send(new)
            assert console.expect(b"$ "), f"no shell with the rotated password: {console.transcript()}"
        finally:
            console.close()
    finally:
        # The refused attempt counts towards faillock; leave the account as the next test meets it.
        host.run(f"faillock --user {user} --reset")
