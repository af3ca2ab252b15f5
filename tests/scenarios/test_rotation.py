"""Secret rotation without lockout, proven as a city meets it: a new TOTP seed for an operator and a
new break-glass password go into the inventory's vault, playbooks/rotate_secrets.yml runs over real
SSH as the automation account against both hosts of molecule/access, and then the new secrets open
the door (SSH with key and TOTP, sudo, the console) while the old ones are refused. A seed PAM
cannot decode is refused in preflight before either host changes. At the end the lab's own secrets
are rotated back, which proves a second rotation too. Runs in molecule/access after test_access.py.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from dataclasses import dataclass, field
from functools import cache

import paramiko
import pyotp
import pytest
import yaml
from conftest import Totp, wait_for_sshd, write_automation_inventory
from console import Console
from lab_secrets import lab_secret_values

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


@pytest.fixture(scope="session")
def lab_inventory(keys_dir, tmp_path_factory):
    return write_automation_inventory(tmp_path_factory.mktemp("rotation"), SCENARIO_HOSTS, keys_dir)


@pytest.fixture(scope="session")
def refused(lab_inventory, run_playbook, tmp_path_factory):
    """A rotation to a seed PAM cannot decode (once for both hosts), with each host's files before and after."""
    before = {name: _checksums(name) for name in SCENARIO_HOSTS}
    overrides = _vault_overrides(tmp_path_factory.mktemp("undecodable"), UNDECODABLE)
    result = run_playbook(lab_inventory, "rotate_secrets.yml", "-e", f"@{overrides}")
    return {"result": result, "before": before, "after": {name: _checksums(name) for name in SCENARIO_HOSTS}}


@pytest.fixture(scope="session")
def rotation(refused, lab_inventory, new_secrets, run_playbook, tmp_path_factory):
    """The rotation run (once for both hosts), its repeat, and at the end the lab's secrets back."""
    overrides = _vault_overrides(tmp_path_factory.mktemp("vault"), new_secrets.seed,
                                 _yescrypt(new_secrets.password))
    # The access tests' failed logins from this machine come just before.
    for name in SCENARIO_HOSTS:
        wait_for_sshd(name)
    first = run_playbook(lab_inventory, "rotate_secrets.yml", "-e", f"@{overrides}")
    again = run_playbook(lab_inventory, "rotate_secrets.yml", "-e", f"@{overrides}") if first.returncode == 0 else None
    yield {"first": first, "again": again}
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
    first, again = rotation["first"], rotation["again"]
    assert first.returncode == 0, _why(first)
    assert set(_changed(first.stdout)) == set(SCENARIO_HOSTS) and all(_changed(first.stdout).values())
    # Run again with the same vault: nothing left to change.
    assert again.returncode == 0, _why(again)
    assert not any(_changed(again.stdout).values()), again.stdout[-1500:]
    shown = first.stdout + first.stderr + again.stdout + again.stderr
    for secret in (new_secrets.seed, new_secrets.password, _lab_vault()[0][ROTATED]):
        assert secret not in shown


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
