"""MQTT gateway controls (role mqtt_gateway): the broker's configuration, its listening sockets and
live TLS probes from the gateway itself. Read-only: never changes the host."""

from __future__ import annotations

import json
import re
import shlex

import pytest

from cityward.checks.outcomes import not_applicable

CONF = "/etc/mosquitto/mosquitto.conf"
ACL = "/etc/mosquitto/acl"
WEAK = re.compile(r"(?i)(CBC|-SHA$|-SHA:|RC4|3DES|DES-|NULL|EXPORT|MD5)")


@pytest.fixture(scope="module")
def gateway(hostvars):
    device = hostvars.get("cityward_device") or {}
    if "mqtt_gateways" not in hostvars.get("group_names", []) and device.get("role") != "mqtt-gateway":
        not_applicable("not applicable: not an MQTT gateway")
    return hostvars


@pytest.fixture(scope="module")
def conf(host, gateway) -> list[tuple[str, str]]:
    """The broker's directives in order, as (name, value)."""
    text = host.file(CONF).content_string
    return [tuple((line.split(None, 1) + [""])[:2]) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def values(conf, name):
    return [v for k, v in conf if k == name]


# Runs on the gateway against its own listener, without a client certificate.
PROBE = r"""
import json, socket, ssl, sys
port = int(sys.argv[1])
def attempt(version, mqtt=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ctx.maximum_version = version
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw) as tls:
                if not mqtt:
                    return "handshake"
                # MQTT 3.1.1 CONNECT, clean session, client id "probe", no credentials
                tls.sendall(bytes([0x10, 17, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 5]) + b"probe")
                answer = tls.recv(4)
                return "connack %s" % answer.hex() if answer else "closed"
    except ssl.SSLError as exc:
        return "tls-error " + (exc.reason or str(exc))
    except OSError as exc:
        return "os-error " + str(exc)
V = ssl.TLSVersion
print(json.dumps({"tls1.1": attempt(V.TLSv1_1), "anonymous-tls1.2": attempt(V.TLSv1_2, True),
                  "anonymous-tls1.3": attempt(V.TLSv1_3, True)}))
"""


@pytest.fixture(scope="module")
def probe(host, conf):
    port = values(conf, "listener")[0].split()[0]
    result = host.run("python3 -W ignore -c " + shlex.quote(PROBE) + " " + shlex.quote(port))
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.control("CW-MQTT-01")
def test_one_tls_listener_and_no_plaintext(host, conf):
    assert [v.split()[0] for v in values(conf, "listener")] == ["8883"]
    assert not values(conf, "port") and not values(conf, "include_dir"), "no default listener, no drop-ins"
    assert values(conf, "tls_version") and values(conf, "tls_version")[0] in ("tlsv1.2", "tlsv1.3")
    for name in ("cafile", "certfile", "keyfile"):
        assert values(conf, name), f"{name} missing: the listener would not speak TLS"
    ciphers = values(conf, "ciphers")
    assert ciphers and not WEAK.search(ciphers[0]), ciphers
    assert all(("GCM" in c or "CHACHA20" in c) and c.startswith("ECDHE-") for c in ciphers[0].split(":"))
    assert host.service("mosquitto").is_running and host.service("mosquitto").is_enabled
    assert host.socket("tcp://0.0.0.0:8883").is_listening
    listening = host.run("ss -Hltn").stdout
    assert not re.search(r":1883\s", listening), f"something listens on 1883:\n{listening}"


@pytest.mark.control("CW-MQTT-01")
def test_tls_below_1_2_is_refused_by_the_running_broker(probe):
    assert probe["tls1.1"].startswith("tls-error"), probe
    assert "VERSION" in probe["tls1.1"].upper(), probe


@pytest.mark.control("CW-MQTT-02")
def test_no_anonymous_access_every_client_presents_its_certificate(host, conf, probe):
    assert values(conf, "allow_anonymous") == ["false"]
    assert values(conf, "require_certificate") == ["true"]
    assert values(conf, "use_identity_as_username") == ["true"]
    assert not values(conf, "password_file") and not values(conf, "auth_plugin") and not values(conf, "plugin")
    key = host.file(values(conf, "keyfile")[0])
    assert (key.user, key.group, key.mode) == ("root", "mosquitto", 0o640)
    for attempt in ("anonymous-tls1.2", "anonymous-tls1.3"):
        assert not probe[attempt].startswith("connack 2002"), f"an anonymous client was accepted: {probe}"


@pytest.mark.control("CW-MQTT-03")
def test_topic_acls_come_from_the_inventory(host, conf, gateway):
    assert values(conf, "acl_file") == [ACL]
    acl = host.file(ACL)
    assert (acl.user, acl.group, acl.mode) == ("root", "mosquitto", 0o640)
    user, granted = None, {}
    for line in acl.content_string.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "user":
            user = words[1]
            granted.setdefault(user, set())
            continue
        assert words[0] == "topic" and user is not None, f"a rule outside a client's block applies to all: {line}"
        access, topic = (words[1], words[2]) if len(words) == 3 else ("readwrite", words[1])
        granted[user].add((access, topic))
    declared = gateway.get("mqtt_gateway_acls")
    if isinstance(declared, list):
        wanted = {e["user"]: {(a, t) for a in ("read", "write", "readwrite") for t in e.get(a, [])} for e in declared}
        assert granted == wanted

