"""Accounts, privilege and MFA configuration: read-only checks for Molecule and the audit.

The expected values are those the accounts and mfa roles recorded they applied
(cityward.checks.applied); the fixed bounds they are held to are the catalog's limits."""

from __future__ import annotations

import re
import shlex

import pytest

from cityward.checks.applied import applied

# A umask must take at least these bits away: group write, everything for others (CW-ACC-06).
_UMASK_REQUIRED = 0o027
_SSHD_T = "/usr/sbin/sshd -T -C user={user},host=probe.invalid,addr=192.0.2.10"


def _settings(text: str) -> dict[str, str]:
    pairs = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip() or "true"
    return pairs


def _auth_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("auth")]


def _same(what: str, expected, found) -> None:
    __tracebackhide__ = True
    assert found == expected, f"{what}: expected {expected!r} (applied by the accounts role), found {found!r}"


def _within(what: str, value, low, high, limits: str) -> None:
    __tracebackhide__ = True
    assert low <= value <= high, f"{what} {value} (applied by the accounts role): expected {low}..{high} ({limits})"


@pytest.fixture(scope="module")
def passwd(host):
    rows = host.check_output("getent passwd").splitlines()
    return {row.split(":")[0]: row.split(":") for row in rows}


@pytest.fixture(scope="module")
def applied_accounts(host):
    """What the accounts role recorded it applied (evidence missing fails the check)."""
    return applied(host, "accounts")


@pytest.fixture(scope="module")
def applied_mfa(host):
    """What the mfa role recorded it applied (evidence missing fails the check)."""
    return applied(host, "mfa")



@pytest.mark.control("CW-ACC-01")
def test_faillock_locks_and_unlocks_in_sshd_and_sudo(host, applied_accounts, catalog):
    conf = _settings(host.file("/etc/security/faillock.conf").content_string)
    for key in ("deny", "fail_interval", "unlock_time"):
        _same(f"faillock.conf {key}", str(applied_accounts[f"faillock_{key}"]), conf.get(key))
    control = catalog.get("CW-ACC-01")
    # deny = 0 never locks.
    _within("faillock deny", applied_accounts["faillock_deny"], 1, control.limit("deny_max"), "CW-ACC-01 deny_max")
    _within("faillock unlock_time", applied_accounts["faillock_unlock_time"], control.limit("unlock_time_min"),
            control.limit("unlock_time_max"), "CW-ACC-01 unlock_time_min, unlock_time_max")
    for stack in ("/etc/pam.d/sshd", "/etc/pam.d/sudo"):
        text = host.file(stack).content_string
        assert "pam_faillock.so preauth" in text and "pam_faillock.so authfail" in text, f"{stack}: no pam_faillock"


@pytest.mark.control("CW-ACC-02")
def test_password_quality_enforced(host, applied_accounts, catalog):
    conf = _settings(host.file("/etc/security/pwquality.conf").content_string)
    wanted = applied_accounts["pwquality"]
    for key, value in wanted.items():
        # The role writes a true setting as the bare key, read back as "true".
        _same(f"pwquality.conf {key}", "true" if value is True else str(value), conf.get(key))
    control = catalog.get("CW-ACC-02")
    for key in ("minlen", "minclass"):
        # A setting the role left out takes pam_pwquality's own default, below any bound here.
        value, bound = int(wanted.get(key, 0)), control.limit(f"{key}_min")
        assert value >= bound, (f"pwquality {key} {value} (applied by the accounts role): "
                                f"expected at least {bound} (CW-ACC-02 {key}_min)")
    assert "pam_pwquality.so" in host.file("/etc/pam.d/common-password").content_string, "no pam_pwquality"


@pytest.mark.control("CW-ACC-02")
def test_passwords_are_hashed_with_yescrypt(host, applied_accounts, catalog):
    """What hashes a new password (pam_unix for passwd, login.defs for chpasswd and newusers) and
    every usable hash already in /etc/shadow. Only account names and scheme IDs leave the host."""
    scheme = applied_accounts["password_hash"]
    found = re.findall(r"^\s*ENCRYPT_METHOD\s+(\S+)", host.file("/etc/login.defs").content_string, re.MULTILINE)
    _same("login.defs ENCRYPT_METHOD", [scheme.upper()], found)
    unix = [line.split() for line in host.file("/etc/pam.d/common-password").content_string.splitlines()
            if line.startswith("password") and "pam_unix.so" in line]
    assert unix and all(scheme in words for words in unix), (
        f"/etc/pam.d/common-password: expected pam_unix with {scheme} (applied by the accounts role), found {unix}")
    patterns = catalog.get("CW-ACC-02").patterns("password_hash_patterns")
    # Locked (!, *) and empty fields hold no usable password; the rest print as "name $id$".
    usable = host.check_output(
        r"""awk -F: '$2 != "" && $2 !~ /^[!*]/ { split($2, f, "$"); print $1, "$" f[2] "$" }' /etc/shadow""")
    weak = [line for line in usable.splitlines() if not any(re.search(p, line.split()[1]) for p in patterns)]
    assert not weak, (f"/etc/shadow: expected every usable password hash to match {patterns} (CW-ACC-02 "
                      f"password_hash_patterns), found account and scheme {weak}; the account sets its password again")


@pytest.mark.control("CW-ACC-03")
def test_vendor_default_accounts_locked_or_gone(host, passwd, applied_accounts):
    present = sorted(set(applied_accounts["vendor_defaults"]) & set(passwd))
    if applied_accounts["vendor_default_action"] == "remove":
        assert not present, f"vendor default accounts: expected removed (applied by the accounts role), found {present}"
    for name in present:
        status = host.check_output(f"passwd -S {name}").split()
        _same(f"{name} password status", "L", status[1])
        assert passwd[name][6].endswith("nologin"), f"{name}: expected a nologin shell, found {passwd[name][6]!r}"


@pytest.mark.control("CW-ACC-04")
def test_only_root_has_uid_zero(passwd):
    uid_zero = [name for name, row in passwd.items() if row[2] == "0"]
    assert uid_zero == ["root"], f"accounts with UID 0: expected only ['root'], found {uid_zero}"


@pytest.mark.control("CW-ACC-05")
def test_sudo_through_a_group_and_one_documented_nopasswd(host, applied_accounts):
    breakglass, automation = applied_accounts["breakglass_user"], applied_accounts["automation_user"]
    assert host.run("visudo -c").rc == 0
    rules = host.check_output("cat /etc/sudoers /etc/sudoers.d/* 2>/dev/null")
    grants = [line.split()[0] for line in rules.splitlines()
              if line.strip() and not line.lstrip().startswith(("#", "Defaults", "@include"))
              and "ALL" in line]
    group = f"%{applied_accounts['sudo_group']}"
    assert group in grants, f"sudo: expected a grant to {group} (applied by the accounts role), found grants {grants}"
    people = [g for g in grants if not g.startswith("%") and g not in ("root", breakglass, automation)]
    assert not people, (f"sudo: expected grants to groups only (besides root, {breakglass} and {automation}, "
                        f"applied by the accounts role), found grants to individual users: {people}")
    nopasswd = [line for line in rules.splitlines() if "NOPASSWD" in line and not line.lstrip().startswith("#")]
    _same("users with NOPASSWD sudo", [automation] if nopasswd else [], sorted({line.split()[0] for line in nopasswd}))
    dropin = host.file("/etc/sudoers.d/60-cityward")
    assert dropin.mode == 0o440
    expected = applied_accounts["sudo_timestamp_timeout"]
    found = re.findall(r"^Defaults\s+timestamp_timeout=(\d+)\s*$", dropin.content_string, re.MULTILINE)
    _same("sudo timestamp_timeout", [str(expected)], found)


@pytest.mark.control("CW-ACC-06")
def test_umask_and_idle_timeout_for_login_shells(host, applied_accounts, catalog):
    umask, timeout = applied_accounts["umask"], applied_accounts["shell_timeout"]
    assert int(umask, 8) & _UMASK_REQUIRED == _UMASK_REQUIRED, (
        f"umask {umask} (applied by the accounts role): expected at least {_UMASK_REQUIRED:03o}")
    # TMOUT = 0 never ends a session.
    _within("TMOUT", timeout, 1, catalog.get("CW-ACC-06").limit("shell_timeout_max"), "CW-ACC-06 shell_timeout_max")
    out = host.check_output("bash -lc 'umask; echo $TMOUT; readonly -p | grep -c TMOUT'").split()
    _same("login shell umask", f"{int(umask, 8):04o}", out[0])
    _same("login shell TMOUT", str(timeout), out[1])
    assert out[2] == "1", "TMOUT can be unset by the user"
    found = re.findall(r"^\s*UMASK\s+(\S+)", host.file("/etc/login.defs").content_string, re.MULTILINE)
    _same("login.defs UMASK", [f"{int(umask, 8):04o}"], [f"{int(value, 8):04o}" for value in found])
    assert "pam_umask.so" in host.file("/etc/pam.d/sshd").content_string


@pytest.mark.control("CW-ACC-06")
def test_homes_of_login_accounts_closed_to_others(host, passwd, applied_accounts):
    """login.defs makes new homes with the mode applied; no person's login account (UID 1000..59999,
    a login shell) has a home others can enter or its group can write (750 or stricter)."""
    mode = applied_accounts["home_mode"]
    assert int(mode, 8) & _UMASK_REQUIRED == 0, (
        f"home mode {mode} (applied by the accounts role): expected 750 or stricter (no bit of {_UMASK_REQUIRED:03o})")
    found = re.findall(r"^\s*HOME_MODE\s+(\S+)", host.file("/etc/login.defs").content_string, re.MULTILINE)
    _same("login.defs HOME_MODE", [f"{int(mode, 8):04o}"], [f"{int(value, 8):04o}" for value in found])
    # The homes the role closes: each login account's own (it owns it), never / or a shared folder.
    owners = {row[5]: row[2] for row in passwd.values()
              if row[2].isdigit() and 1000 <= int(row[2]) < 60000 and not re.search(r"/(nologin|false)$", row[6])
              and row[5] != "/"}
    assert owners, "no login account with a home to check"
    listing = host.check_output("stat -c '%u %a %n' -- " + " ".join(map(shlex.quote, owners)) + " 2>/dev/null; true")
    loose = [line for line in listing.splitlines()
             if owners.get(line.split(" ", 2)[2]) == line.split()[0] and int(line.split()[1], 8) & _UMASK_REQUIRED]
    assert not loose, (f"homes open to others or writable by their group (owner uid, mode, path): "
                       f"expected none, found {loose}")


@pytest.mark.control("CW-ACC-07")
def test_break_glass_console_only_account(host, passwd, applied_accounts):
    breakglass, ssh_group = applied_accounts["breakglass_user"], applied_accounts["ssh_group"]
    assert breakglass in passwd, f"break-glass account {breakglass!r} (applied by the accounts role) does not exist"
    assert host.check_output(f"passwd -S {breakglass}").split()[1] == "P", "break-glass has no usable password"
    effective = host.check_output(_SSHD_T.format(user=breakglass))
    denied = [word for line in effective.splitlines() if line.startswith("denyusers ") for word in line.split()[1:]]
    assert breakglass in denied, f"sshd -T denyusers: expected {breakglass!r} among them, found {denied}"
    assert ssh_group not in host.user(breakglass).groups, f"{breakglass} is in the SSH group {ssh_group!r}"


@pytest.mark.control("CW-MFA-01", "CW-MFA-04")
def test_ssh_requires_key_then_totp_without_nullok(host, applied_mfa):
    assert "sshd" in applied_mfa["pam_services"], (
        f"TOTP for sshd: the mfa role recorded PAM services {applied_mfa['pam_services']} (MFA turned off)")
    effective = host.check_output(_SSHD_T.format(user="cityward-probe"))
    assert "authenticationmethods publickey,keyboard-interactive" in effective
    auth = _auth_lines(host.file("/etc/pam.d/sshd").content_string)
    secret = f"secret={applied_mfa['secret_dir']}/${{USER}}"
    assert any("pam_google_authenticator.so" in line and secret in line for line in auth), (
        f"/etc/pam.d/sshd: expected pam_google_authenticator with {secret} (applied by the mfa role)")
    assert not any("nullok" in line for line in auth)
    assert not any("common-auth" in line or "pam_unix" in line for line in auth), "a password would also do"


@pytest.mark.control("CW-MFA-01")
def test_totp_seeds_are_root_only(host, applied_mfa):
    path = applied_mfa["secret_dir"]
    folder = host.file(path)
    assert folder.is_directory, f"{path} (applied by the mfa role) is not a directory"
    found = f"{folder.user} {folder.mode:04o}"
    assert found == "root 0700", f"{path} (applied by the mfa role): expected owner root, mode 0700, found {found}"


@pytest.mark.control("CW-MFA-02", "CW-MFA-04")
def test_sudo_requires_totp_without_nullok(host, applied_mfa):
    assert "sudo" in applied_mfa["pam_services"], (
        f"TOTP for sudo: the mfa role recorded PAM services {applied_mfa['pam_services']} (MFA turned off)")
    stack = host.file("/etc/pam.d/sudo").content_string
    auth = _auth_lines(stack)
    secret = f"secret={applied_mfa['secret_dir']}/${{USER}}"
    assert any("pam_google_authenticator.so" in line and secret in line for line in auth), (
        f"/etc/pam.d/sudo: expected pam_google_authenticator with {secret} (applied by the mfa role)")
    assert not any("nullok" in line for line in auth)
    assert not any("common-auth" in line for line in stack.splitlines())
    # Only the break-glass account skips TOTP (it authenticates with its password, on the console).
    exempt = f"user = {applied_mfa['breakglass_user']}"
    skips = [line for line in auth if "pam_succeed_if.so" in line]
    assert all(line.endswith(exempt) for line in skips), f"pam.d/sudo: only {exempt!r} may skip TOTP, found {skips}"
