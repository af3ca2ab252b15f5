"""SSH controls, checked on the running daemon as well as on its configuration."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess

import paramiko
import pytest

from cityward.checks.sshd_live import live_and_configured, offer


@pytest.fixture(scope="module")
def sshd_effective(host):
    """`sshd -T` for an ordinary remote user: the configuration sshd would apply to a login."""
    out = host.check_output("/usr/sbin/sshd -T -C user=cityward-probe,host=probe.invalid,addr=192.0.2.10")
    return {key: value for key, _, value in (line.partition(" ") for line in out.splitlines())}


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
def test_only_modern_algorithms_configured(sshd_effective):
    for key in ("kexalgorithms", "ciphers", "macs", "hostkeyalgorithms"):
        offered = sshd_effective[key].split(",")
        assert not [a for a in offered if re.search(r"sha1|cbc|md5|3des|arcfour|nistp|diffie-hellman-group1", a)], key
    assert all("etm" in mac for mac in sshd_effective["macs"].split(","))


@pytest.mark.control("CW-SSH-03")
def test_attempts_grace_time_and_idle_timeout_bounded(sshd_effective):
    assert 1 <= int(sshd_effective["maxauthtries"]) <= 4
    assert 0 < int(sshd_effective["logingracetime"]) <= 60
    interval = int(sshd_effective["clientaliveinterval"])
    assert 0 < interval <= 900
    assert 0 < interval * int(sshd_effective["clientalivecountmax"]) <= 1800


@pytest.mark.control("CW-SSH-04")
def test_banner_shown_before_login(host, ssh_endpoint, sshd_effective):
    assert sshd_effective["banner"] == "/etc/issue.net"
    text = host.file("/etc/issue.net").content_string.strip()
    assert len(text) > 20
    banner, _ = _probe(ssh_endpoint)
    assert banner.decode(errors="replace").strip() == text


@pytest.mark.control("CW-SSH-05")
def test_login_limited_to_groups_and_no_forwarding(sshd_effective, host):
    groups = sshd_effective.get("allowgroups", "").split()
    assert groups, "AllowGroups is not set"
    for group in groups:
        assert host.group(group).exists
    for key in ("allowtcpforwarding", "allowagentforwarding", "allowstreamlocalforwarding",
                "x11forwarding", "permittunnel", "gatewayports", "permituserenvironment"):
        assert sshd_effective[key] == "no", key


@pytest.mark.control("CW-SSH-06")
def test_verbose_logging(sshd_effective):
    assert sshd_effective["loglevel"] == "VERBOSE"
    assert sshd_effective["syslogfacility"] == "AUTH"


@pytest.mark.control("CW-RES-07")
def test_live_daemon_offers_what_its_configuration_says(host, ssh_endpoint):
    """The algorithms the running sshd offers (its KEXINIT, read over the network) are those
    `sshd -T` derives from the file on disk: the last change was reloaded into the daemon."""
    offered, wanted = live_and_configured(*ssh_endpoint, host.check_output)
    assert offer.differences(offered, wanted) == []
