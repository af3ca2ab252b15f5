"""Access control, proven like a person would meet it: over a real SSH connection to the
published sshd, and at the console. Runs in molecule/access only (it changes faillock state)."""

from __future__ import annotations

import re
import time

import paramiko
import pytest
from console import Console


@pytest.mark.control("CW-MFA-01", "CW-SSH-01")
def test_key_and_current_totp_get_in(ssh, totp):
    session = ssh("alice", code=totp["alice"].fresh())
    assert session.authenticated
    status, out, _ = session.run("id -un")
    assert (status, out.strip()) == (0, "alice")


@pytest.mark.control("CW-MFA-01")
def test_key_alone_is_not_enough(ssh):
    session = ssh("alice")
    # The key is accepted as the first factor only: sshd still demands the TOTP step.
    assert session.remaining == ["keyboard-interactive"]
    assert not session.authenticated


@pytest.mark.control("CW-SSH-01")
def test_password_alone_is_refused(ssh):
    with pytest.raises(paramiko.BadAuthenticationType) as refused:
        ssh("alice", password="correct horse battery staple")  # noqa: S106 - a guess, refused
    assert "password" not in refused.value.allowed_types


@pytest.mark.control("CW-MFA-01")
def test_key_and_wrong_totp_are_refused(ssh, totp):
    with pytest.raises(paramiko.AuthenticationException):
        ssh("alice", code=totp["alice"].wrong())


@pytest.mark.control("CW-MFA-04")
def test_operator_without_enrolled_secret_is_refused(ssh, totp):
    # dave has a valid key but no seed: any code, even another operator's valid one, fails.
    with pytest.raises(paramiko.AuthenticationException):
        ssh("dave", code=totp["alice"].fresh())


@pytest.mark.control("CW-MFA-02")
def test_sudo_asks_for_the_totp(ssh, totp):
    session = ssh("alice", code=totp["alice"].fresh())
    status, out, err = session.run("sudo -S -p 'CODE:' id -u", stdin=totp["alice"].wrong() + "\n")
    assert status != 0 and "CODE:" in err
    status, out, err = session.run("sudo -k; sudo -S -p 'CODE:' id -u", stdin=totp["alice"].fresh() + "\n")
    assert (status, out.strip()) == (0, "0"), err
    assert "CODE:" in err


@pytest.mark.control("CW-MFA-03")
def test_fido2_group_refuses_keys_without_a_security_key(ssh, host):
    # bob is in the FIDO2 group: his plain ed25519 key is not acceptable, only sk-ssh-ed25519.
    with pytest.raises(paramiko.AuthenticationException):
        ssh("bob")
    effective = host.check_output("/usr/sbin/sshd -T -C user=bob,host=probe.invalid,addr=192.0.2.10")
    assert "pubkeyauthoptions verify-required" in effective
    assert "pubkeyacceptedalgorithms sk-ssh-ed25519@openssh.com" in effective


@pytest.mark.control("CW-ACC-05")
def test_automation_account_is_key_only_with_passwordless_sudo(ssh):
    session = ssh("cityward-automation", key="automation")
    assert session.authenticated
    status, out, _ = session.run("sudo -n id -u")
    assert (status, out.strip()) == (0, "0")


@pytest.mark.control("CW-ACC-01")
def test_repeated_failures_trip_faillock(ssh, totp, host, hostvars):
    deny = int(hostvars.get("accounts_faillock_deny", 5))
    for _ in range(deny):
        with pytest.raises(paramiko.AuthenticationException):
            ssh("carol", code=totp["carol"].wrong())
    try:
        # The right code no longer opens the door while the account is locked.
        with pytest.raises(paramiko.AuthenticationException):
            ssh("carol", code=totp["carol"].fresh())
        tally = host.check_output("faillock --user carol")
        assert tally.count("RHOST") >= 1 and len(tally.splitlines()) >= deny + 1
    finally:
        host.run("faillock --user carol --reset")
    assert ssh("carol", code=totp["carol"].fresh()).authenticated


@pytest.mark.control("CW-ACC-07")
def test_break_glass_is_refused_over_ssh(ssh, host, hostvars):
    user = hostvars.get("cityward_breakglass_user", "breakglass")
    password = hostvars["vault_lab_breakglass_password"]
    with pytest.raises(paramiko.BadAuthenticationType):
        ssh(user, password=password)
    # Even with a key sshd names the reason: the account is denied outright.
    with pytest.raises(paramiko.AuthenticationException):
        ssh(user, key="alice")
    time.sleep(1)
    log = host.check_output("journalctl -u ssh --no-pager -n 200")
    assert f"User {user} from" in log and "DenyUsers" in log


@pytest.mark.control("CW-ACC-07")
def test_break_glass_works_on_the_console_and_is_logged(container, host, hostvars):
    user = hostvars.get("cityward_breakglass_user", "breakglass")
    password = hostvars["vault_lab_breakglass_password"]
    console = Console(container, user, secrets=(password,))
    try:
        assert console.expect(b"assword"), console.transcript()
        console.send(password)
        assert console.expect(b"$ "), "no shell after the break-glass password (no TOTP on the console)"
        # Tokens are split in the command line so that only the program's output matches them.
        console.send("P=SUDO; sudo -k; sudo -p \"${P}PROMPT:\" id -u; echo END-\"\"OF-SUDO")
        assert console.expect(b"SUDOPROMPT:"), console.transcript()
        console.send(password)
        assert console.expect(b"END-OF-SUDO"), console.transcript()
        after_prompt = console.output.split(b"SUDOPROMPT:", 1)[1]
        assert re.search(rb"\n0\r?\n", after_prompt), console.transcript()
    finally:
        console.close()
    log = host.check_output("journalctl -t cityward-breakglass --no-pager -n 20")
    assert "break-glass login" in log


@pytest.mark.control("CW-ACC-08")
@pytest.mark.parametrize(("override", "reason"), [
    (["cityward_breakglass_password_hash"], "no break-glass account"),
    (["cityward_automation_user"], "would be locked out"),
])
def test_preflight_refuses_before_any_change(override, reason, automation_inventory, run_playbook, host):
    """Ansible over real SSH as the automation account: with an inventory that would lock it
    out, the play stops in preflight and no file on the host changes."""
    watched = "/etc/ssh/sshd_config /etc/pam.d/sshd /etc/pam.d/sudo /etc/sudoers.d/60-cityward /etc/passwd"
    before = host.check_output(f"sha256sum {watched}")
    extra = " ".join(f"{key}=''" for key in override)
    result = run_playbook(automation_inventory, "site.yml", "-e", extra)
    assert result.returncode != 0
    assert reason in result.stdout, result.stdout[-2000:]
    assert host.check_output(f"sha256sum {watched}") == before
