"""The hardened MQTT gateways proven with real clients (Debian's mosquitto_pub and mosquitto_sub)
in the molecule/firewall lab: SCADA on the OT server reaches each gateway's broker over the
ot-operations -> field MQTT/TLS conduit; each gateway's protocol converter publishes to its own
broker over loopback. Runs only in that scenario."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
from firewall_lab import DROPPED, NOT_IN_LAB, REFUSED, Lab, lab_available, quote

pytestmark = pytest.mark.skipif(not lab_available(), reason=NOT_IN_LAB)

SCADA = "cw-fw-ot"
CERTS = "/root/cw-fw-mqtt"
GATEWAYS = ["cw-fw-gw12", "cw-fw-gw13"]  # Debian 12 and Debian 13


@pytest.fixture(scope="module")
def lab():
    return Lab()


def client(user: str | None, gateway_address: str, *extra: str, tls: bool = True) -> str:
    """mosquitto_* options for `user` (its certificate) to the gateway's TLS listener."""
    options = ["-h", gateway_address, "-p", "8883"]
    if tls:
        options += ["--cafile", f"{CERTS}/ca.crt"]
    if user:
        options += ["--cert", f"{CERTS}/{user}.crt", "--key", f"{CERTS}/{user}.key"]
    return quote(*options, *extra)


class Subscriber:
    """mosquitto_sub in a lab container, started and subscribed before anything is published."""

    def __init__(self, node: str, command: str):
        self.proc = subprocess.Popen(["podman", "exec", node, "bash", "-c", command],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        for line in self.proc.stdout:
            self.lines.append(line)
            if "Subscribed (mid" in line:
                return
        raise AssertionError("the subscriber never subscribed:\n" + "".join(self.lines))

    def output(self, timeout: float = 30) -> str:
        rest, _ = self.proc.communicate(timeout=timeout)
        return "".join(self.lines) + rest


def subscribe(lab, gateway, user, topic, count=1, wait=10) -> Subscriber:
    address = lab.nodes[gateway].address
    # line-buffered: the test waits for the SUBACK line before anything is published
    return Subscriber(SCADA, "stdbuf -oL mosquitto_sub -d -v " + client(user, address, "-t", topic, "-C", str(count),
                                                                "-W", str(wait)))


def publish(lab, node, gateway, user, topic, payload, *extra) -> subprocess.CompletedProcess:
    address = lab.nodes[gateway].address
    return lab.exec(node, "mosquitto_pub -q 1 " + client(user, address, "-t", topic, "-m", payload, *extra),
                    timeout=60)


@pytest.mark.parametrize("gateway", GATEWAYS)
@pytest.mark.control("CW-MQTT-02", "CW-MQTT-03")
def test_an_authorised_client_publishes_and_receives_its_message(lab, gateway):
    topic, payload = f"city/ops/scada/{uuid.uuid4().hex}", f"hello-{uuid.uuid4().hex}"
    subscriber = subscribe(lab, gateway, "scada", topic)
    sent = publish(lab, SCADA, gateway, "scada", topic, payload)
    assert sent.returncode == 0, sent.stderr
    assert f"{topic} {payload}" in subscriber.output()


@pytest.mark.parametrize("gateway", GATEWAYS)
@pytest.mark.control("CW-MQTT-03")
def test_a_publish_outside_the_acl_never_reaches_a_subscriber(lab, gateway):
    nonce = uuid.uuid4().hex
    # SCADA may read all telemetry; a client with a valid certificate but no ACL entry may read nothing.
    scada = subscribe(lab, gateway, "scada", "city/telemetry/#", count=1)
    unlisted = subscribe(lab, gateway, "unlisted", "city/#", count=1, wait=4)
    # The gateway's converter for the north feeds publishes over loopback to its own broker.
    v5 = ("-V", "mqttv5")  # MQTT 5 reports the refusal in the PUBACK
    leak = publish(lab, gateway, gateway, "sensor-north", f"city/telemetry/south/{nonce}", f"LEAK-{nonce}", *v5)
    stray = publish(lab, SCADA, gateway, "unlisted", f"city/telemetry/north/{nonce}", f"STRAY-{nonce}", *v5)
    fence = publish(lab, gateway, gateway, "sensor-north", f"city/telemetry/north/{nonce}", f"FENCE-{nonce}", *v5)
    assert "Not authorized" in leak.stderr and "Not authorized" in stray.stderr, (leak.stderr, stray.stderr)
    assert fence.returncode == 0 and "Not authorized" not in fence.stderr, fence.stderr
    # QoS 1: the broker had handled each refused publish before the fence was sent, so the first
    # (and only) message SCADA receives must be the fence.
    received = scada.output()
    assert f"FENCE-{nonce}" in received and "LEAK" not in received and "STRAY" not in received, received
    nothing = unlisted.output()
    assert nonce not in nothing, nothing


@pytest.mark.parametrize("gateway", GATEWAYS)
@pytest.mark.control("CW-MQTT-02")
def test_anonymous_and_untrusted_clients_are_refused(lab, gateway):
    topic = "city/commands/north/anything"
    anonymous = publish(lab, SCADA, gateway, None, topic, "anonymous")
    rogue = publish(lab, SCADA, gateway, "rogue-scada", topic, "rogue")  # CN scada, issued by another CA
    assert anonymous.returncode != 0, anonymous.stdout + anonymous.stderr
    assert rogue.returncode != 0, rogue.stdout + rogue.stderr


@pytest.mark.parametrize("gateway", GATEWAYS)
@pytest.mark.control("CW-MQTT-01")
def test_plaintext_mqtt_is_closed(lab, gateway):
    address = lab.nodes[gateway].address
    observed = lab.probe([(SCADA, gateway, "tcp", 1883), (gateway, gateway, "tcp", 1883)])
    assert observed[(SCADA, gateway, "tcp", 1883)] == DROPPED  # the firewall opens no 1883
    assert observed[(gateway, gateway, "tcp", 1883)] == REFUSED  # and nothing listens there
    plain = lab.exec(SCADA, "mosquitto_pub -q 1 " + quote("-h", address, "-p", "8883", "-t", "city/x", "-m", "plain"),
                     timeout=60)
    assert plain.returncode != 0  # MQTT without TLS on the TLS port


TLS_PROBE = r"""
import json, socket, ssl, sys
address, certs = sys.argv[1], sys.argv[2]
def attempt(version, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs + "/ca.crt")
    ctx.load_cert_chain(certs + "/scada.crt", certs + "/scada.key")
    ctx.set_ciphers(ciphers or "DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ctx.maximum_version = version
    try:
        with socket.create_connection((address, 8883), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=address) as tls:
                return {"ok": True, "version": tls.version(), "cipher": tls.cipher()[0]}
    except (ssl.SSLError, OSError) as exc:
        return {"ok": False, "error": str(exc)}
V = ssl.TLSVersion
print(json.dumps({
    "tls1.1": attempt(V.TLSv1_1),
    "tls1.2": attempt(V.TLSv1_2),
    "tls1.3": attempt(V.TLSv1_3),
    "tls1.2-cbc": attempt(V.TLSv1_2, "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA:@SECLEVEL=0"),
}))
"""


@pytest.mark.parametrize("gateway", GATEWAYS)
@pytest.mark.control("CW-MQTT-01")
def test_only_tls_1_2_or_newer_with_aead_ciphers(lab, gateway):
    result = lab.exec(SCADA, ["python3", "-W", "ignore", "-c", TLS_PROBE, lab.nodes[gateway].address, CERTS])
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert not seen["tls1.1"]["ok"], seen
    assert seen["tls1.2"]["ok"] and seen["tls1.2"]["cipher"].startswith("ECDHE-"), seen
    assert any(a in seen["tls1.2"]["cipher"] for a in ("GCM", "CHACHA20")), seen
    assert seen["tls1.3"]["ok"] and seen["tls1.3"]["version"] == "TLSv1.3", seen
    assert not seen["tls1.2-cbc"]["ok"], seen
