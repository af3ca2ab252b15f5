"""Accounts, privilege and MFA configuration: read-only checks for Molecule and the audit."""

from __future__ import annotations

import pytest


def _settings(text: str) -> dict[str, str]:
    pairs = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip() or "true"
    return pairs


@pytest.fixture(scope="module")
def passwd(host):
    rows = host.check_output("getent passwd").splitlines()
    return {row.split(":")[0]: row.split(":") for row in rows}


@pytest.fixture(scope="module")
def breakglass(hostvars):
    return hostvars.get("cityward_breakglass_user", "breakglass")


@pytest.mark.control("CW-ACC-01")
def test_faillock_locks_and_unlocks_in_sshd_and_sudo(host):
    conf = _settings(host.file("/etc/security/faillock.conf").content_string)
    assert 1 <= int(conf["deny"]) <= 10
    assert 60 <= int(conf["unlock_time"]) <= 86400
    for stack in ("/etc/pam.d/sshd", "/etc/pam.d/sudo"):
        text = host.file(stack).content_string
        assert "pam_faillock.so preauth" in text and "pam_faillock.so authfail" in text, stack


@pytest.mark.control("CW-ACC-02")
def test_password_quality_enforced(host):
    conf = _settings(host.file("/etc/security/pwquality.conf").content_string)
    assert int(conf["minlen"]) >= 14 and int(conf["minclass"]) >= 3
    assert "pam_pwquality.so" in host.file("/etc/pam.d/common-password").content_string


@pytest.mark.control("CW-ACC-03")
def test_vendor_default_accounts_locked_or_gone(host, passwd, hostvars):
    defaults = hostvars.get("accounts_vendor_defaults",
                            ["pi", "admin", "ubnt", "support", "user", "guest", "default", "vendor", "service", "test"])
    for name in set(defaults) & set(passwd):
        status = host.check_output(f"passwd -S {name}").split()
        assert status[1] == "L", f"{name} is not locked"
        assert passwd[name][6].endswith("nologin"), f"{name} still has a login shell"


@pytest.mark.control("CW-ACC-04")
def test_only_root_has_uid_zero(passwd):
    assert [name for name, row in passwd.items() if row[2] == "0"] == ["root"]


@pytest.mark.control("CW-ACC-05")
def test_sudo_through_a_group_and_one_documented_nopasswd(host, hostvars, breakglass):
    assert host.run("visudo -c").rc == 0
    rules = host.check_output("cat /etc/sudoers /etc/sudoers.d/* 2>/dev/null")
    grants = [line.split()[0] for line in rules.splitlines()
              if line.strip() and not line.lstrip().startswith(("#", "Defaults", "@include"))
              and "ALL" in line]
    automation = hostvars.get("cityward_automation_user", "")
    people = [g for g in grants if not g.startswith("%") and g not in ("root", breakglass, automation)]
    assert not people, f"sudo granted to individual users: {people}"
    nopasswd = [line for line in rules.splitlines() if "NOPASSWD" in line and not line.lstrip().startswith("#")]
    assert all(line.split()[0] == automation for line in nopasswd), nopasswd
    assert host.file("/etc/sudoers.d/60-cityward").mode == 0o440


@pytest.mark.control("CW-ACC-06")
def test_umask_and_idle_timeout_for_login_shells(host):
    out = host.check_output("bash -lc 'umask; echo $TMOUT; readonly -p | grep -c TMOUT'").split()
    assert out[0] == "0027"
    assert 0 < int(out[1]) <= 900
    assert out[2] == "1", "TMOUT can be unset by the user"
    assert "UMASK\t\t027" in host.file("/etc/login.defs").content_string
    assert "pam_umask.so" in host.file("/etc/pam.d/sshd").content_string


@pytest.mark.control("CW-ACC-07")
def test_break_glass_console_only_account(host, passwd, breakglass, hostvars):
    assert breakglass in passwd
    assert host.check_output(f"passwd -S {breakglass}").split()[1] == "P", "break-glass has no usable password"
    effective = host.check_output(f"/usr/sbin/sshd -T -C user={breakglass},host=probe.invalid,addr=192.0.2.10")
    assert breakglass in effective.split("denyusers", 1)[1].splitlines()[0]
    ssh_group = hostvars.get("cityward_ssh_group", "cityward-ssh")
    assert ssh_group not in host.user(breakglass).groups


@pytest.mark.control("CW-MFA-01", "CW-MFA-04")
def test_ssh_requires_key_then_totp_without_nullok(host):
    effective = host.check_output("/usr/sbin/sshd -T -C user=cityward-probe,host=probe.invalid,addr=192.0.2.10")
    assert "authenticationmethods publickey,keyboard-interactive" in effective
    stack = host.file("/etc/pam.d/sshd").content_string
    auth = [line for line in stack.splitlines() if line.startswith("auth")]
    assert any("pam_google_authenticator.so" in line for line in auth)
    assert not any("nullok" in line for line in auth)
    assert not any("common-auth" in line or "pam_unix" in line for line in auth), "a password would also do"


@pytest.mark.control("CW-MFA-01")
def test_totp_seeds_are_root_only(host, hostvars):
    folder = host.file(hostvars.get("mfa_secret_dir", "/var/lib/cityward/totp"))
    assert folder.is_directory and folder.user == "root" and folder.mode == 0o700


@pytest.mark.control("CW-MFA-02", "CW-MFA-04")
def test_sudo_requires_totp_without_nullok(host):
    stack = host.file("/etc/pam.d/sudo").content_string
    auth = [line for line in stack.splitlines() if line.startswith("auth")]
    assert any("pam_google_authenticator.so" in line for line in auth)
    assert not any("nullok" in line for line in auth)
    assert not any("common-auth" in line for line in stack.splitlines())
