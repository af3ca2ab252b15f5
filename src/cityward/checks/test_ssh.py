"""SSH controls, checked on the running daemon as well as on its configuration."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess

import paramiko
import pytest

from cityward.checks.applied import applied
from cityward.checks.sshd_live import live_and_configured, offer

# sshd -T keyword -> the key the ssh role records it under.
_ALGORITHMS = (("kexalgorithms", "kex_algorithms"), ("ciphers", "ciphers"), ("macs", "macs"),
               ("hostkeyalgorithms", "host_key_algorithms"),
               ("pubkeyacceptedalgorithms", "pubkey_accepted_algorithms"))
_LIMITS = (("maxauthtries", "max_auth_tries"), ("maxsessions", "max_sessions"),
           ("logingracetime", "login_grace_time"), ("clientaliveinterval", "client_alive_interval"),
           ("clientalivecountmax", "client_alive_count_max"))
_FORWARDING = (("allowtcpforwarding", "allow_tcp_forwarding"), ("allowagentforwarding", "allow_agent_forwarding"),
               ("allowstreamlocalforwarding", "allow_stream_local_forwarding"))


@pytest.fixture(scope="module")
def sshd_effective(host):
    """`sshd -T` for an ordinary remote user: the configuration sshd would apply to a login.
    A keyword sshd prints once per value (allowgroups, denyusers) maps to its values joined by spaces."""
    out = host.check_output("/usr/sbin/sshd -T -C user=cityward-probe,host=probe.invalid,addr=192.0.2.10")
    effective: dict[str, str] = {}
    for key, _, value in (line.partition(" ") for line in out.splitlines()):
        effective[key] = f"{effective[key]} {value}" if key in effective else value
    return effective


@pytest.fixture(scope="module")
def applied_ssh(host):
    """What the ssh role recorded it applied: the expected values (evidence missing fails)."""
    return applied(host, "ssh")



def _probe(endpoint, user="cityward-probe"):
    """Start an SSH handshake with the live daemon and ask which methods it offers (auth 'none')."""
    # A filtered port fails in seconds, not after the system's TCP timeout (over two minutes).
    transport = paramiko.Transport(socket.create_connection(endpoint, timeout=10))
    try:
        transport.start_client(timeout=10)
        try:
            transport.auth_none(user)
        except paramiko.BadAuthenticationType as exc:
            return transport.get_banner() or b"", list(exc.allowed_types)
        return transport.get_banner() or b"", ["none"]
    finally:
        transport.close()


@pytest.mark.control("CW-SSH-01")
def test_key_only_no_root_no_empty_passwords(sshd_effective):
    assert sshd_effective["permitrootlogin"] == "no"
    assert sshd_effective["passwordauthentication"] == "no"
    assert sshd_effective["permitemptypasswords"] == "no"
    assert sshd_effective["pubkeyauthentication"] == "yes"
    assert sshd_effective["hostbasedauthentication"] == "no"


@pytest.mark.control("CW-SSH-01")
def test_port_and_methods_are_those_applied(sshd_effective, applied_ssh):
    for key, name in (("port", "port"), ("authenticationmethods", "authentication_methods")):
        expected, found = str(applied_ssh[name]), sshd_effective.get(key)
        assert found == expected, f"sshd -T {key}: expected {expected!r} (applied by the ssh role), found {found!r}"


@pytest.mark.control("CW-SSH-01")
def test_running_daemon_offers_public_key_only(ssh_endpoint):
    _, methods = _probe(ssh_endpoint)
    assert "password" not in methods and "none" not in methods
    assert "publickey" in methods


@pytest.mark.control("CW-SSH-01")
def test_sshd_config_owned_by_root_and_private(host):
    config = host.file("/etc/ssh/sshd_config")
    assert config.user == "root" and config.group == "root"
    assert config.mode == 0o600


@pytest.mark.control("CW-SSH-02")
def test_ssh_audit_finds_no_weakness(ssh_endpoint):
    """Debian's ssh-audit, run from the controller against the live daemon."""
    tool = shutil.which("ssh-audit")
    if tool is None:
        pytest.fail("ssh-audit is not installed on the controller (apt-get install ssh-audit)")
    address, port = ssh_endpoint
    result = subprocess.run([tool, "-n", "-p", str(port), address], capture_output=True, text=True, timeout=60)
    report = result.stdout
    assert "(gen) banner" in report, f"ssh-audit could not scan {address}:{port}: {result.stderr or report}"
    findings = [line.strip() for line in report.splitlines() if re.search(r"\[(fail|warn)\]", line)]
    # An algorithm newer than the controller's ssh-audit (e.g. ML-KEM) is only "unknown".
    weak = [f for f in findings if "unknown algorithm" not in f]
    assert not weak, "ssh-audit findings:\n" + "\n".join(weak)


@pytest.mark.control("CW-SSH-02")
def test_only_modern_algorithms_configured(sshd_effective, applied_ssh, catalog):
    forbidden = catalog.get("CW-SSH-02").patterns("forbidden_algorithm_patterns")
    problems = []
    for key, name in _ALGORITHMS:
        expected, found = applied_ssh[name], sshd_effective.get(key, "").split(",")
        if found != expected:
            problems.append(f"sshd -T {key}: expected {expected} (applied by the ssh role), found {found}")
        weak = [a for a in found if any(re.search(pattern, a) for pattern in forbidden)]
        if weak:
            problems.append(f"sshd -T {key}: {weak} match CW-SSH-02's forbidden_algorithm_patterns {forbidden}")
    plain = [mac for mac in sshd_effective.get("macs", "").split(",") if "etm" not in mac]
    if plain:
        problems.append(f"sshd -T macs: expected encrypt-then-MAC only, found {plain}")
    if sshd_effective.get("compression") != "no":
        problems.append(f"sshd -T compression: expected 'no', found {sshd_effective.get('compression')!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.control("CW-SSH-03")
def test_attempts_grace_time_and_idle_timeout_bounded(sshd_effective, applied_ssh, catalog):
    for key, name in _LIMITS:
        expected, found = applied_ssh[name], sshd_effective.get(key)
        assert found == str(expected), (f"sshd -T {key}: expected {expected!r} (applied by the ssh role), "
                                        f"found {found!r}")
    control = catalog.get("CW-SSH-03")
    interval = applied_ssh["client_alive_interval"]
    bounded = (("MaxAuthTries", applied_ssh["max_auth_tries"], "maxauthtries_max"),
               ("LoginGraceTime", applied_ssh["login_grace_time"], "logingracetime_max"),
               ("ClientAliveInterval", interval, "clientaliveinterval_max"),
               ("ClientAliveInterval x ClientAliveCountMax", interval * applied_ssh["client_alive_count_max"],
                "idle_timeout_max"))
    for label, value, limit in bounded:
        bound = control.limit(limit)
        # 0 turns each of these off in sshd: never within a bound.
        assert 0 < value <= bound, (f"{label} {value} (applied by the ssh role): expected 1..{bound} "
                                    f"(CW-SSH-03 {limit} in the catalog)")


@pytest.mark.control("CW-SSH-04")
def test_banner_shown_before_login(host, ssh_endpoint, sshd_effective, applied_ssh):
    path = applied_ssh["banner_path"]
    assert sshd_effective.get("banner") == path, (f"sshd -T banner: expected {path!r} (applied by the ssh role), "
                                                 f"found {sshd_effective.get('banner')!r}")
    # Compared without surrounding blank space, which some backends' command output loses.
    text = host.file(path).content_string.strip()
    assert text == applied_ssh["banner_text"].strip(), f"{path}: its text is not the banner the ssh role applied"
    assert len(text) > 20, f"{path}: a banner of {len(text)} characters notifies nobody"
    banner, _ = _probe(ssh_endpoint)
    assert banner.decode(errors="replace").strip() == text, "the live daemon shows another banner than the file's"


@pytest.mark.control("CW-SSH-05")
def test_login_limited_to_groups_and_no_forwarding(sshd_effective, host, applied_ssh):
    for key, name in (("allowgroups", "allow_groups"), ("denyusers", "deny_users")):
        expected, found = applied_ssh[name], sshd_effective.get(key, "").split()
        assert found == expected, f"sshd -T {key}: expected {expected} (applied by the ssh role), found {found}"
    assert applied_ssh["allow_groups"], "AllowGroups is not set: the ssh role recorded no group"
    for group in applied_ssh["allow_groups"]:
        assert host.group(group).exists, f"AllowGroups names {group!r}, which does not exist"
    for key, name in _FORWARDING:
        expected = "yes" if applied_ssh[name] else "no"
        found = sshd_effective.get(key)
        assert found == expected, f"sshd -T {key}: expected {expected!r} (applied by the ssh role), found {found!r}"
    for key in ("x11forwarding", "permittunnel", "gatewayports", "permituserenvironment"):
        assert sshd_effective.get(key) == "no", f"sshd -T {key}: expected 'no', found {sshd_effective.get(key)!r}"


@pytest.mark.control("CW-SSH-06")
def test_verbose_logging(sshd_effective, applied_ssh):
    expected, found = applied_ssh["log_level"], sshd_effective.get("loglevel")
    assert found == expected, f"sshd -T loglevel: expected {expected!r} (applied by the ssh role), found {found!r}"
    assert found == "VERBOSE", f"sshd -T loglevel: expected 'VERBOSE' (key fingerprints of each login), found {found!r}"
    assert sshd_effective.get("syslogfacility") == "AUTH", (
        f"sshd -T syslogfacility: expected 'AUTH', found {sshd_effective.get('syslogfacility')!r}")


@pytest.mark.control("CW-RES-07")
def test_live_daemon_offers_what_its_configuration_says(host, ssh_endpoint):
    """The algorithms the running sshd offers (its KEXINIT, read over the network) are those
    `sshd -T` derives from the file on disk: the last change was reloaded into the daemon."""
    offered, wanted = live_and_configured(*ssh_endpoint, host.check_output)
    assert offer.differences(offered, wanted) == []
