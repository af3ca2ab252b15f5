"""The catalog's fixed limits: bounds the control checks hold the applied settings to, read
through cityward.catalog; a limit that is not what its name says is a catalog error naming
control and field."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from cityward.catalog import load_catalog
from cityward.errors import CitywardError

ROOT = Path(__file__).resolve().parents[2]

# Every limit the checks in src/cityward/checks read (test_ssh.py, test_accounts.py).
USED = [
    ("CW-SSH-03", "maxauthtries_max"), ("CW-SSH-03", "logingracetime_max"),
    ("CW-SSH-03", "clientaliveinterval_max"), ("CW-SSH-03", "idle_timeout_max"),
    ("CW-ACC-01", "deny_max"), ("CW-ACC-01", "unlock_time_min"), ("CW-ACC-01", "unlock_time_max"),
    ("CW-ACC-02", "minlen_min"), ("CW-ACC-02", "minclass_min"), ("CW-ACC-06", "shell_timeout_max"),
]


@pytest.fixture
def policies_copy(tmp_path):
    shutil.copytree(ROOT / "policies", tmp_path / "policies", ignore=shutil.ignore_patterns("pulumi", "*.py"))
    return tmp_path / "policies"


def _set_limits(policies: Path, control_id: str, limits) -> None:
    path = policies / "controls.yml"
    data = yaml.safe_load(path.read_text())
    next(c for c in data["controls"] if c["id"] == control_id)["limits"] = limits
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize(("control_id", "name"), USED)
def test_the_limits_the_checks_read_are_numbers_in_the_shipped_catalog(control_id, name):
    value = load_catalog(ROOT / "policies").get(control_id).limit(name)
    assert isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def test_the_ssh_bounds_are_those_of_the_policy():
    control = load_catalog(ROOT / "policies").get("CW-SSH-03")
    assert (control.limit("maxauthtries_max"), control.limit("logingracetime_max"),
            control.limit("clientaliveinterval_max"), control.limit("idle_timeout_max")) == (4, 60, 900, 1800)


def test_forbidden_algorithm_patterns_catch_legacy_algorithms_only():
    patterns = load_catalog(ROOT / "policies").get("CW-SSH-02").patterns("forbidden_algorithm_patterns")
    legacy = ["diffie-hellman-group1-sha1", "ssh-rsa", "aes128-cbc", "hmac-sha1", "hmac-md5", "3des-cbc",
              "ecdh-sha2-nistp256", "ssh-dss"]
    modern = ["curve25519-sha256", "sntrup761x25519-sha512", "mlkem768x25519-sha256", "aes256-gcm@openssh.com",
              "chacha20-poly1305@openssh.com", "hmac-sha2-512-etm@openssh.com", "ssh-ed25519", "rsa-sha2-512",
              "sk-ssh-ed25519@openssh.com"]
    assert all(any(re.search(p, name) for p in patterns) for name in legacy)
    assert not [name for name in modern if any(re.search(p, name) for p in patterns)]


def test_a_control_without_limits_has_none():
    control = load_catalog(ROOT / "policies").get("CW-SSH-01")
    assert control.limits == {}
    with pytest.raises(CitywardError, match=r"control CW-SSH-01 has no limit 'maxauthtries_max'"):
        control.limit("maxauthtries_max")


def test_a_number_limit_is_not_a_pattern_list_and_back():
    control = load_catalog(ROOT / "policies").get("CW-SSH-03")
    with pytest.raises(CitywardError, match="has no limit 'maxauthtries_max'"):
        control.patterns("maxauthtries_max")
    with pytest.raises(CitywardError, match="has no limit 'forbidden_algorithm_patterns'"):
        load_catalog(ROOT / "policies").get("CW-SSH-02").limit("forbidden_algorithm_patterns")


@pytest.mark.parametrize(("limits", "words"), [
    ({"maxauthtries_max": "four"}, "limits.maxauthtries_max: expected a number, found 'four'"),
    ({"maxauthtries_max": "4"}, "limits.maxauthtries_max: expected a number, found '4'"),
    ({"maxauthtries_max": True}, "limits.maxauthtries_max: expected a number, found True"),
    ({"maxauthtries_max": None}, "limits.maxauthtries_max: expected a number, found None"),
    ({"maxauthtries_max": [4]}, "limits.maxauthtries_max: expected a number, found [4]"),
    ({"maxauthtries_max": float("nan")}, "limits.maxauthtries_max: expected a number, found nan"),
    ({"weak_patterns": "cbc"}, "limits.weak_patterns: expected a list of regular expressions"),
    ({"weak_patterns": []}, "limits.weak_patterns: expected a list of regular expressions"),
    ({"weak_patterns": [3]}, "limits.weak_patterns: expected a list of regular expressions"),
    ({"weak_patterns": ["(cbc"]}, "limits.weak_patterns: '(cbc' is not a regular expression"),
    ({"maxauthtries": 4}, "limits.maxauthtries: a limit is named <setting>_max or <setting>_min"),
    (["maxauthtries_max", 4], "valid dictionary"),
])
def test_a_bad_limit_names_control_and_field(policies_copy, limits, words):
    _set_limits(policies_copy, "CW-SSH-03", limits)
    with pytest.raises(CitywardError) as err:
        load_catalog(policies_copy)
    message = str(err.value)
    assert "controls.yml" in message and "control CW-SSH-03, field 'limits'" in message
    assert words in message


def test_whole_and_decimal_numbers_are_limits(policies_copy):
    _set_limits(policies_copy, "CW-SSH-03", {"maxauthtries_max": 4, "ratio_min": 0.5, "offset_min": -1})
    control = load_catalog(policies_copy).get("CW-SSH-03")
    assert (control.limit("maxauthtries_max"), control.limit("ratio_min"), control.limit("offset_min")) == (4, 0.5, -1)


# --- the checks hold the applied record to the catalog's limits, not to constants -------------

SSHD_T = {"kexalgorithms": "curve25519-sha256", "ciphers": "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com",
          "macs": "hmac-sha2-512-etm@openssh.com", "hostkeyalgorithms": "ssh-ed25519",
          "pubkeyacceptedalgorithms": "ssh-ed25519", "maxauthtries": "3", "maxsessions": "4",
          "logingracetime": "30", "clientaliveinterval": "300", "clientalivecountmax": "2", "compression": "no"}
# A city that overrides ssh_ciphers: the record follows the override, and so does the check.
RECORD = {"kex_algorithms": ["curve25519-sha256"],
          "ciphers": ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com"],
          "macs": ["hmac-sha2-512-etm@openssh.com"], "host_key_algorithms": ["ssh-ed25519"],
          "pubkey_accepted_algorithms": ["ssh-ed25519"], "max_auth_tries": 3, "max_sessions": 4,
          "login_grace_time": 30, "client_alive_interval": 300, "client_alive_count_max": 2}


def test_ssh_checks_follow_the_record_and_the_catalog():
    from cityward.checks import test_ssh as checks

    catalog = load_catalog(ROOT / "policies")
    checks.test_only_modern_algorithms_configured(SSHD_T, RECORD, catalog)
    checks.test_attempts_grace_time_and_idle_timeout_bounded(SSHD_T, RECORD, catalog)
    # sshd runs other ciphers than the role recorded it applied.
    with pytest.raises(AssertionError, match=r"sshd -T ciphers: expected \['chacha20"):
        checks.test_only_modern_algorithms_configured(dict(SSHD_T, ciphers="aes256-gcm@openssh.com"), RECORD, catalog)
    # sshd compresses (Lynis SSH-7408 Compression): a fixed requirement of CW-SSH-02.
    with pytest.raises(AssertionError, match=r"sshd -T compression: expected 'no', found 'delayed'"):
        checks.test_only_modern_algorithms_configured(dict(SSHD_T, compression="delayed"), RECORD, catalog)
    # A role that applied (and sshd runs) more auth tries than the catalog allows.
    tries = dict(RECORD, max_auth_tries=6)
    with pytest.raises(AssertionError, match=r"MaxAuthTries 6 .*expected 1\.\.4 \(CW-SSH-03 maxauthtries_max"):
        checks.test_attempts_grace_time_and_idle_timeout_bounded(dict(SSHD_T, maxauthtries="6"), tries, catalog)


def test_ssh_checks_take_the_bounds_from_the_catalog(policies_copy):
    from cityward.checks import test_ssh as checks

    _set_limits(policies_copy, "CW-SSH-03", {"maxauthtries_max": 2, "logingracetime_max": 60,
                                             "clientaliveinterval_max": 900, "idle_timeout_max": 1800})
    _set_limits(policies_copy, "CW-SSH-02", {"forbidden_algorithm_patterns": ["chacha20"]})
    catalog = load_catalog(policies_copy)
    with pytest.raises(AssertionError, match=r"MaxAuthTries 3 .*expected 1\.\.2"):
        checks.test_attempts_grace_time_and_idle_timeout_bounded(SSHD_T, RECORD, catalog)
    with pytest.raises(AssertionError, match=r"\['chacha20-poly1305@openssh.com'\] match CW-SSH-02"):
        checks.test_only_modern_algorithms_configured(SSHD_T, RECORD, catalog)
