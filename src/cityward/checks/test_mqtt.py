"""MQTT gateway controls (role mqtt_gateway): the broker's configuration, its listening sockets and
live TLS probes from the gateway itself, judged by the settings the role recorded it applied
(/etc/ansible/facts.d/cityward_mqtt_gateway.fact: port, TLS version and ciphers, TLS file paths,
topic ACLs, limits) and by fixed bounds (never 1883, TLS 1.2 or newer, AEAD ciphers only).
Read-only: never changes the host."""

from __future__ import annotations

import json
import re
import shlex

import pytest
from ansible_collections.cityward.hardening.plugins.plugin_utils.applied import fact_path

from cityward.checks.applied import applied
from cityward.checks.certificates import expiry_problem, threshold
from cityward.checks.outcomes import not_applicable

CONF = "/etc/mosquitto/mosquitto.conf"  # where Debian's mosquitto.service reads its configuration
PLAINTEXT = 1883
# What the checks read from the role's record.
RECORDED = frozenset({"port", "tls_version", "ciphers", "ciphers_tls13", "cafile", "certfile", "keyfile", "acl_file",
                      "acls", "max_connections", "max_packet_size", "max_keepalive"})
WEAK = re.compile(r"(?i)(CBC|-SHA$|-SHA:|RC4|3DES|DES-|NULL|EXPORT|MD5)")


@pytest.fixture(scope="module")
def gateway(hostvars):
    device = hostvars.get("cityward_device") or {}
    if "mqtt_gateways" not in hostvars.get("group_names", []) and device.get("role") != "mqtt-gateway":
        not_applicable("not applicable: not an MQTT gateway")
    return hostvars


@pytest.fixture(scope="module")
def applied_mqtt(host, gateway):
    settings = applied(host, "mqtt_gateway")
    missing = sorted(RECORDED - set(settings))
    if missing:
        pytest.fail(f"evidence missing: {fact_path('mqtt_gateway')} does not record {', '.join(missing)}: "
                    "re-apply the mqtt_gateway role", pytrace=False)
    return settings


def directives(text: str) -> list[tuple[str, str]]:
    """A mosquitto configuration's directives in order, as (name, value)."""
    return [tuple((line.split(None, 1) + [""])[:2]) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


@pytest.fixture(scope="module")
def conf(host, gateway) -> list[tuple[str, str]]:
    """The broker's directives in order, as (name, value)."""
    return directives(host.file(CONF).content_string)


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


def expect(found, expected, what: str) -> None:
    """`found` in the live configuration equals what the mqtt_gateway role applied."""
    __tracebackhide__ = True
    assert found == expected, f"{what}: expected {expected!r} (applied by the mqtt_gateway role), found {found!r}"


@pytest.fixture(scope="module")
def probe(host, applied_mqtt):
    port = str(applied_mqtt["port"])
    result = host.run("python3 -W ignore -c " + shlex.quote(PROBE) + " " + shlex.quote(port))
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.control("CW-MQTT-01")
def test_one_tls_listener_and_no_plaintext(host, conf, applied_mqtt):
    port = applied_mqtt["port"]
    assert port != PLAINTEXT, f"the mqtt_gateway role recorded port {port}: plaintext MQTT"
    expect([v.split()[0] for v in values(conf, "listener")], [str(port)], f"listeners in {CONF}")
    assert not values(conf, "port") and not values(conf, "include_dir"), "no default listener, no drop-ins"
    expect(values(conf, "tls_version"), [applied_mqtt["tls_version"]], "tls_version")
    assert applied_mqtt["tls_version"] in ("tlsv1.2", "tlsv1.3"), (
        f"minimum TLS version: expected tlsv1.2 or tlsv1.3, found {applied_mqtt['tls_version']!r}")
    for name in ("cafile", "certfile", "keyfile"):
        expect(values(conf, name), [applied_mqtt[name]], f"{name} (without it the listener would not speak TLS)")
    expect(values(conf, "ciphers"), [applied_mqtt["ciphers"]], "ciphers")
    expect(values(conf, "ciphers_tls1.3"), [applied_mqtt["ciphers_tls13"]], "ciphers_tls1.3")
    ciphers = values(conf, "ciphers")[0]
    assert not WEAK.search(ciphers), f"weak cipher in {ciphers!r}"
    assert all(("GCM" in c or "CHACHA20" in c) and c.startswith("ECDHE-") for c in ciphers.split(":")), (
        f"expected forward-secret AEAD suites only (ECDHE with GCM or CHACHA20), found {ciphers!r}")
    for name in ("max_connections", "max_packet_size", "max_keepalive"):
        expect(values(conf, name), [str(applied_mqtt[name])], name)
    assert host.service("mosquitto").is_running and host.service("mosquitto").is_enabled
    assert host.socket(f"tcp://0.0.0.0:{port}").is_listening, f"nothing listens on 0.0.0.0:{port}"
    listening = host.run("ss -Hltn").stdout
    assert not re.search(rf":{PLAINTEXT}\s", listening), f"something listens on {PLAINTEXT}:\n{listening}"


@pytest.mark.control("CW-MQTT-01")
def test_broker_certificate_is_not_due_for_renewal(host, applied_mqtt, hostvars):
    path = applied_mqtt["certfile"]
    problem = expiry_problem(path, host.file(path).content_string, threshold(hostvars))
    assert not problem, problem


@pytest.mark.control("CW-MQTT-01")
def test_tls_below_1_2_is_refused_by_the_running_broker(probe):
    assert probe["tls1.1"].startswith("tls-error"), probe
    assert "VERSION" in probe["tls1.1"].upper(), probe


@pytest.mark.control("CW-MQTT-02")
def test_no_anonymous_access_every_client_presents_its_certificate(host, conf, probe, applied_mqtt):
    assert values(conf, "allow_anonymous") == ["false"]
    assert values(conf, "require_certificate") == ["true"]
    assert values(conf, "use_identity_as_username") == ["true"]
    assert not values(conf, "password_file") and not values(conf, "auth_plugin") and not values(conf, "plugin")
    expect(values(conf, "keyfile"), [applied_mqtt["keyfile"]], "keyfile")
    key = host.file(applied_mqtt["keyfile"])
    found = (key.user, key.group, key.mode)
    assert found == ("root", "mosquitto", 0o640), (
        f"{applied_mqtt['keyfile']}: expected root:mosquitto 0640, found {found[0]}:{found[1]} {found[2]:04o}")
    for attempt in ("anonymous-tls1.2", "anonymous-tls1.3"):
        assert not probe[attempt].startswith("connack 2002"), f"an anonymous client was accepted: {probe}"


def granted_topics(text: str) -> dict[str, set[tuple[str, str]]]:
    """{user: {(access, topic)}} of a mosquitto ACL file; AssertionError for a rule outside a user block."""
    user, granted = None, {}
    for line in text.splitlines():
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
    return granted


def declared_topics(acls: list) -> dict[str, set[tuple[str, str]]]:
    """{user: {(access, topic)}} of the mqtt_gateway_acls entries the role recorded."""
    return {e["user"]: {(a, t) for a in ("read", "write", "readwrite") for t in e.get(a) or []} for e in acls}


@pytest.mark.control("CW-MQTT-03")
def test_topic_acls_come_from_the_inventory(host, conf, applied_mqtt):
    path = applied_mqtt["acl_file"]
    expect(values(conf, "acl_file"), [path], "acl_file")
    acl = host.file(path)
    found = (acl.user, acl.group, acl.mode)
    assert found == ("root", "mosquitto", 0o640), (
        f"{path}: expected root:mosquitto 0640, found {found[0]}:{found[1]} {found[2]:04o}")
    expect(granted_topics(acl.content_string), declared_topics(applied_mqtt["acls"]), f"topic grants in {path}")
