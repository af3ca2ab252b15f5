"""Update mirror controls (role update_mirror, CW-PATCH-06), read from the mirror host and never
changed: aptly publishes exactly the approved snapshots its fact records, each InRelease is signed
by the city's key (gpgv against that key alone), the key is not about to expire, and nginx serves
the published tree only over TLS 1.2+ on the fact's port, listing nothing else.

Commands run on the mirror host (as the audit user, root):
  cat /etc/ansible/facts.d/cityward_update_mirror.fact
  aptly publish list -json   (as the fact's `user`, with its `config`, when given)
  gpg --dearmor < <public_key> (or gpg --export <key_fingerprint>) into a mktemp keyring, then
  gpgv --status-fd 1 --keyring <that keyring> <web_root>/<prefix>/dists/<distribution>/InRelease
  ss -Hltnp ; python3 (TLS 1.1 / 1.2 handshakes and GET / against the fact's url and port)
"""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from cityward.checks.hoststate import snapshot
from cityward.checks.outcomes import not_applicable
from cityward.checks.patch_evidence import (
    fact_publications,
    key_expiry_problem,
    listed_outside,
    listening_ports,
    publish_snapshots,
    valid_signer,
)

FACT = "/etc/ansible/facts.d/cityward_update_mirror.fact"
GROUP = "update_mirrors"
KEY_MARGIN_DAYS = 7

# Runs on the mirror against its own listener: the TLS versions it accepts and what GET / shows.
PROBE = r"""
import json, socket, ssl, sys
host, port = sys.argv[1], int(sys.argv[2])
def tls(version=None, get=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer TLS 1.1: the server must refuse it
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    try:
        with socket.create_connection((host, port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as conn:
                if not get:
                    return {"ok": True, "version": conn.version()}
                conn.sendall(("GET / HTTP/1.0\r\nHost: %s\r\n\r\n" % host).encode())
                body = b""
                while len(body) < 1 << 20:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                return {"ok": True, "version": conn.version(), "response": body.decode("utf-8", "replace")}
    except (ssl.SSLError, OSError) as exc:
        return {"ok": False, "error": str(exc)}
def http_status_line():
    try:
        with socket.create_connection((host, port), timeout=10) as raw:
            raw.sendall(("GET / HTTP/1.0\r\nHost: %s\r\n\r\n" % host).encode())
            return raw.recv(200).decode("utf-8", "replace").split("\r\n")[0]
    except OSError as exc:
        return "error " + str(exc)
V = ssl.TLSVersion
print(json.dumps({"tls1.1": tls(V.TLSv1_1), "tls1.2": tls(V.TLSv1_2), "get": tls(get=True),
                  "http_status_line": http_status_line()}))
"""


@pytest.fixture(scope="module")
def mirror(hostvars):
    if GROUP not in hostvars.get("group_names", []):
        not_applicable(f"not applicable: not an update mirror (not in group {GROUP})")
    return hostvars


# The fact is read in a fixture but judged inside the tests: missing evidence fails the control,
# where a failing fixture would be reported as a crashed check.
@pytest.fixture(scope="module")
def fact_read(host, mirror):
    result = host.run(f"cat {FACT}")
    return result.rc, result.stdout if result.rc == 0 else (result.stderr or result.stdout)


def _parse(fact_read) -> tuple[dict | None, str]:
    """(the mirror's fact, '') or (None, why it is not evidence)."""
    rc, out = fact_read
    if rc != 0:
        return None, f"evidence missing: {FACT} cannot be read: {out.strip()[:200]}"
    try:
        found = json.loads(out)
    except ValueError:
        return None, f"evidence missing: {FACT} is not JSON"
    missing = [f for f in ("url", "port", "web_root", "key_fingerprint", "key_expires", "published") if f not in found]
    if missing or not isinstance(found, dict):
        return None, f"evidence missing: {FACT} has no {missing}"
    if not found["published"]:
        return None, f"{FACT}: the mirror publishes nothing"
    return found, ""


def _fact(fact_read) -> dict:
    found, problem = _parse(fact_read)
    assert found is not None, problem
    return found


def _as_user(fact, command: str) -> str:
    """`command` run as the aptly user the fact names (else the audit user, root)."""
    user = fact.get("user")
    return f"runuser -u {shlex.quote(user)} -- {command}" if user and user != "root" else command


def _inrelease(fact, prefix: str, distribution: str) -> str:
    base = fact["web_root"].rstrip("/") + ("" if prefix in (".", "") else "/" + prefix.strip("/"))
    return f"{base}/dists/{distribution}/InRelease"


@pytest.fixture(scope="module")
def state(host, fact_read):
    fact, _ = _parse(fact_read)
    if fact is None:
        return {}  # each test fails on the missing evidence first
    config = f" -config={shlex.quote(fact['config'])}" if fact.get("config") else ""
    if fact.get("public_key"):
        keyring = f"GNUPGHOME=\"$d\" gpg --batch --dearmor < {shlex.quote(fact['public_key'])} > \"$d/k.gpg\""
    else:
        keyring = _as_user(fact, f"gpg --batch --export {shlex.quote(fact['key_fingerprint'])}") + " > \"$d/k.gpg\""
    commands = {
        "json": _as_user(fact, f"aptly{config} publish list -json"),
        "listen": "ss -Hltnp",
        "probe": "python3 -W ignore -c " + shlex.quote(PROBE) + " "
                 + shlex.quote(urlsplit(fact["url"]).hostname or "127.0.0.1") + " " + shlex.quote(str(fact["port"])),
    }
    for i, entry in enumerate(fact["published"]):
        inrelease = shlex.quote(_inrelease(fact, entry.get("prefix") or ".", entry["distribution"]))
        commands[f"sig{i}"] = (f"d=$(mktemp -d) && trap 'rm -rf \"$d\"' EXIT && {keyring} && "
                               f"gpgv --status-fd 1 --keyring \"$d/k.gpg\" {inrelease}")
    return snapshot(host, commands)


def _probe(state) -> dict:
    rc, out = state["probe"]
    assert rc == 0, f"the TLS probe could not run on the mirror: {out.strip()[-300:]}"
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.control("CW-PATCH-06")
def test_aptly_publishes_exactly_the_approved_snapshots(state, fact_read):
    fact = _fact(fact_read)
    expected = fact_publications(fact["published"])
    rc, listing = state["json"]
    assert rc == 0, f"aptly publish list -json failed: {listing.strip()[-300:]}"
    snapshots = publish_snapshots(listing)
    assert set(snapshots) == set(expected), (
        f"aptly publishes {sorted(snapshots)}, the fact approves {sorted(expected)}")
    for key, names in expected.items():
        assert snapshots.get(key) == names, (
            f"{key[0]} {key[1]}: aptly publishes {snapshots.get(key)}, the fact approves snapshot(s) {names}")


@pytest.mark.control("CW-PATCH-06")
def test_every_release_is_signed_by_the_citys_key(state, fact_read):
    fact = _fact(fact_read)
    expected = fact["key_fingerprint"].upper()
    assert len(expected) == 40, f"{FACT}: key_fingerprint {fact['key_fingerprint']!r} is not a 40-hex fingerprint"
    for i, entry in enumerate(fact["published"]):
        rc, status = state[f"sig{i}"]
        where = _inrelease(fact, entry.get("prefix") or ".", entry["distribution"])
        signer = valid_signer(status)
        assert rc == 0 and signer, f"{where}: no good signature by the city's key: {status.strip()[-300:]}"
        assert signer == expected, f"{where}: signed by {signer}, not the city's key {expected}"


@pytest.mark.control("CW-PATCH-06")
def test_the_signing_key_is_not_about_to_expire(fact_read):
    fact = _fact(fact_read)
    problem = key_expiry_problem(fact["key_expires"], datetime.now(UTC), KEY_MARGIN_DAYS)
    assert not problem, f"{FACT}: {problem} ({fact['key_fingerprint']})"


@pytest.mark.control("CW-PATCH-06")
def test_nginx_serves_only_tls_on_the_facts_port(state, fact_read):
    fact = _fact(fact_read)
    probe = _probe(state)
    rc, out = state["listen"]
    assert rc == 0, out
    ports = listening_ports(out, "nginx")
    assert ports == {int(fact["port"])}, f"nginx listens on {sorted(ports)}, expected only {fact['port']}"
    assert probe["tls1.2"]["ok"], f"no TLS 1.2 handshake on port {fact['port']}: {probe['tls1.2'].get('error')}"
    assert not probe["tls1.1"]["ok"], f"port {fact['port']} accepts TLS 1.1"
    status = probe["http_status_line"]  # what plain HTTP, without TLS, gets on the TLS port
    assert status.split()[1:2] != ["200"], f"port {fact['port']} serves plain HTTP: {status}"


@pytest.mark.control("CW-PATCH-06")
def test_the_root_lists_nothing_but_the_published_prefixes(state, fact_read):
    fact = _fact(fact_read)
    probe = _probe(state)
    get = probe["get"]
    assert get["ok"], f"GET / over TLS failed: {get.get('error')}"
    if get["response"].split()[1:2] != ["200"]:
        return  # no listing at all (403/404)
    outside = listed_outside(get["response"], [e.get("prefix") or "." for e in fact["published"]])
    assert not outside, f"GET / on {fact['url']} lists {outside}, outside the published prefixes"
