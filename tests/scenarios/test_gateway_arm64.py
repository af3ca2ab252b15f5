"""The gateway play on Debian arm64 (molecule/gateway-arm64): the container runs arm64 programs
through qemu-user, and the hardened gateway is met as its users meet it: an operator logs in over
SSH with key and TOTP, the gateway's protocol converter publishes over MQTT/TLS through the ACL."""

from __future__ import annotations

import shlex
import uuid

import pytest

CERTS = "/root/cw-gw-mqtt"


@pytest.mark.control("CW-GOV-01")
def test_the_gateway_runs_arm64(host):
    # The kernel is the machine's (amd64); every program in the container is arm64, run by qemu-user.
    assert host.check_output("dpkg --print-architecture") == "arm64"
    assert host.check_output("uname -m") == "aarch64"
    # sshd's ELF header names its machine: 0xb7 is EM_AARCH64.
    assert host.check_output("od -An -tx1 -j18 -N2 /usr/sbin/sshd").split() == ["b7", "00"]


@pytest.mark.control("CW-MFA-01", "CW-SSH-01")
def test_key_and_current_totp_get_in(ssh, totp):
    session = ssh("alice", code=totp["alice"].fresh())
    assert session.authenticated
    status, out, _ = session.run("id -un; dpkg --print-architecture")
    assert (status, out.split()) == (0, ["alice", "arm64"])


@pytest.mark.control("CW-MFA-01")
def test_key_alone_is_not_enough(ssh):
    session = ssh("alice")
    assert session.remaining == ["keyboard-interactive"]
    assert not session.authenticated


def mqtt_exchange(host, publisher: str, topic: str, payload: str, subscriber: str = "scada",
                  pattern: str = "city/telemetry/#", wait: int = 30) -> tuple[int, str]:
    """Subscribe as `subscriber`, wait for the broker's SUBACK, publish as `publisher` over TLS on
    loopback; return mosquitto_pub's exit status and everything the subscriber printed."""
    tls = f"-h 127.0.0.1 -p 8883 --cafile {CERTS}/ca.crt"
    script = f"""
out=$(mktemp)
stdbuf -oL mosquitto_sub -d -v {tls} --cert {CERTS}/{subscriber}.crt --key {CERTS}/{subscriber}.key \\
  -t {shlex.quote(pattern)} -C 1 -W {wait} > "$out" 2>&1 &
sub=$!
for _ in $(seq 120); do grep -q 'Subscribed (mid' "$out" && break; sleep 0.5; done
mosquitto_pub -q 1 {tls} --cert {CERTS}/{publisher}.crt --key {CERTS}/{publisher}.key \\
  -t {shlex.quote(topic)} -m {shlex.quote(payload)} >&2
echo "published: $?" >&2
wait "$sub"
cat "$out"
"""
    result = host.run("bash -c " + shlex.quote(script))
    published = next((int(line.split(":")[1]) for line in result.stderr.splitlines() if line.startswith("published:")),
                     -1)
    return published, result.stdout


@pytest.mark.control("CW-MQTT-02", "CW-MQTT-03")
def test_the_protocol_converter_publishes_over_tls_through_its_acl(host):
    topic, payload = f"city/telemetry/arm64/{uuid.uuid4().hex}", f"reading-{uuid.uuid4().hex}"
    published, received = mqtt_exchange(host, "sensor-arm64", topic, payload)
    assert published == 0
    assert f"{topic} {payload}" in received


@pytest.mark.parametrize(("publisher", "district"), [
    # sensor-arm64 may write city/telemetry/arm64/# only: another district's topic is dropped.
    pytest.param("sensor-arm64", "north", id="outside-its-acl"),
    # a client the CA trusts but the ACL does not name may write nothing.
    pytest.param("unlisted", "arm64", id="no-acl-entry"),
])
@pytest.mark.control("CW-MQTT-02", "CW-MQTT-03")
def test_a_publish_the_acl_does_not_allow_never_reaches_a_subscriber(host, publisher, district):
    topic, payload = f"city/telemetry/{district}/{uuid.uuid4().hex}", f"forged-{uuid.uuid4().hex}"
    _, received = mqtt_exchange(host, publisher, topic, payload, wait=10)
    assert "Subscribed (mid" in received
    assert payload not in received
