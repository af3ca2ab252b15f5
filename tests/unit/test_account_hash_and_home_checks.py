"""The CW-ACC-02 yescrypt check and the CW-ACC-06 home check on a fake host: they fail on what they
must (a SHA-crypt hash, a loose login.defs, an open home the account owns) and leave alone what the
role never touches (a home at / or a folder another account owns)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cityward.catalog import load_catalog
from cityward.checks import test_accounts as checks

LOGIN_DEFS = "UMASK\t\t027\nHOME_MODE\t\t0700\nENCRYPT_METHOD\t\tYESCRYPT\n"
PAM_STACK = "password\t[success=1 default=ignore]\tpam_unix.so obscure yescrypt\n"
RECORD = {"password_hash": "yescrypt", "home_mode": "0700"}


class FakeHost:
    def __init__(self, files: dict[str, str], outputs: dict[str, str]):
        self.files, self.outputs = files, outputs
        self.commands: list[str] = []

    def file(self, path):
        return SimpleNamespace(content_string=self.files[path])

    def check_output(self, command):
        self.commands.append(command)
        return next(out for start, out in self.outputs.items() if command.startswith(start))


def _hash_host(shadow_schemes: str, login_defs: str = LOGIN_DEFS) -> FakeHost:
    return FakeHost({"/etc/login.defs": login_defs, "/etc/pam.d/common-password": PAM_STACK},
                    {"awk": shadow_schemes})


def test_yescrypt_everywhere_passes_and_only_names_and_schemes_are_read():
    host = _hash_host("breakglass $y$\nalice $y$\n")
    checks.test_passwords_are_hashed_with_yescrypt(host, RECORD, load_catalog())
    assert "/etc/shadow" in host.commands[0] and 'print $1, "$" f[2] "$"' in host.commands[0]


def test_a_sha_crypt_hash_or_login_defs_fails():
    with pytest.raises(AssertionError, match=r"found account and scheme \['breakglass \$6\$'\]"):
        checks.test_passwords_are_hashed_with_yescrypt(_hash_host("breakglass $6$\n"), RECORD, load_catalog())
    with pytest.raises(AssertionError, match="login.defs ENCRYPT_METHOD: expected \\['YESCRYPT'\\]"):
        checks.test_passwords_are_hashed_with_yescrypt(
            _hash_host("", LOGIN_DEFS.replace("YESCRYPT", "SHA512")), RECORD, load_catalog())


PASSWD = {
    "alice": ["alice", "x", "1000", "1000", "", "/home/alice", "/bin/bash"],
    "odd": ["odd", "x", "1001", "1001", "", "/", "/bin/sh"],
    "guest": ["guest", "x", "1002", "1002", "", "/srv/shared", "/bin/bash"],
    "svc": ["svc", "x", "1003", "1003", "", "/var/lib/svc", "/usr/sbin/nologin"],
}


def _home_host(listing: str) -> FakeHost:
    return FakeHost({"/etc/login.defs": LOGIN_DEFS}, {"stat": listing})


def test_closed_homes_pass_and_homes_the_role_never_touches_are_left_out():
    # /srv/shared is open but belongs to root (uid 0), not to guest: not the account's own home.
    host = _home_host("1000 700 /home/alice\n0 755 /srv/shared\n")
    checks.test_homes_of_login_accounts_closed_to_others(host, PASSWD, RECORD)
    asked = host.commands[0]
    assert "/home/alice" in asked and "/srv/shared" in asked and "/var/lib/svc" not in asked and " / " not in asked


def test_an_open_home_or_a_loose_mode_fails():
    with pytest.raises(AssertionError, match=r"found \['1000 755 /home/alice'\]"):
        checks.test_homes_of_login_accounts_closed_to_others(_home_host("1000 755 /home/alice\n"), PASSWD, RECORD)
    with pytest.raises(AssertionError, match="expected 750 or stricter"):
        checks.test_homes_of_login_accounts_closed_to_others(_home_host(""), PASSWD, dict(RECORD, home_mode="0755"))
