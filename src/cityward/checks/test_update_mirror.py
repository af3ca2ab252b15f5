"""Update mirror controls (role update_mirror, CW-PATCH-06), read from the mirror host and never
changed: aptly publishes exactly the approved snapshots the role recorded it applied, each InRelease
is signed by the city's key (gpgv against that key alone), the key is not about to expire, and nginx
serves the published tree only over the TLS versions the role applied (never below 1.2) on the
recorded port, listing nothing else.

The expected values are the update_mirror role's record of what it applied
(/etc/ansible/facts.d/cityward_update_mirror.fact, sealed; read by cityward.checks.applied).
Commands run on the mirror host (as the audit user, root):
  stat and cat of that record
  aptly publish list -json
  gpg --dearmor < <public_key> (or gpg --export <key_fingerprint>) into a mktemp keyring, then
  gpgv --status-fd 1 --keyring <that keyring> <web_root>/<prefix>/dists/<distribution>/InRelease
  ss -Hltnp ; python3 (TLS 1.1 / 1.2 / 1.3 handshakes and GET / against the recorded url and port)
"""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from cityward.checks.applied import applied
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

RECORD = "the update_mirror role's record (cityward_update_mirror.fact)"
GROUP = "update_mirrors"
KEY_MARGIN_DAYS = 7
# The TLS versions a mirror may offer, as nginx's ssl_protocols names them -> the probe's result;
# the probe also tries TLS 1.1, which must always be refused.
PROBED = {"TLSv1.2": "tls1.2", "TLSv1.3": "tls1.3"}

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
print(json.dumps({"tls1.1": tls(V.TLSv1_1), "tls1.2": tls(V.TLSv1_2), "tls1.3": tls(V.TLSv1_3),
                  "get": tls(get=True), "http_status_line": http_status_line()}))
"""


@pytest.fixture(scope="module")
def mirror(hostvars):
    if GROUP not in hostvars.get("group_names", []):
        not_applicable(f"not applicable: not an update mirror (not in group {GROUP})")
    return hostvars


@pytest.fixture(scope="module")
def recorded(host, mirror):
    """What the update_mirror role recorded it applied, or the failure reading it: judged inside each
    check (`_fact`), since a failing fixture would report the check as an error, not a failed control."""
    try:
        return applied(host, "update_mirror")
    except pytest.fail.Exception as exc:
        return exc


def _parse(recorded) -> tuple[dict | None, str]:
    """(the mirror's record, '') or (None, why it is not evidence)."""
    if isinstance(recorded, pytest.fail.Exception):
        return None, recorded.msg
    if not recorded.get("published"):
        return None, f"{RECORD}: the mirror publishes nothing"
    return recorded, ""


def _fact(recorded) -> dict:
    __tracebackhide__ = True
    found, problem = _parse(recorded)
    if found is None:
        pytest.fail(problem, pytrace=False)
    return found


def _inrelease(fact, prefix: str, distribution: str) -> str:
    base = fact["web_root"].rstrip("/") + ("" if prefix in (".", "") else "/" + prefix.strip("/"))
    return f"{base}/dists/{distribution}/InRelease"


@pytest.fixture(scope="module")
def state(host, recorded):
    fact, _ = _parse(recorded)
    if fact is None:
        return {}  # each test fails on the missing evidence first
    if fact.get("public_key"):
        keyring = f"GNUPGHOME=\"$d\" gpg --batch --dearmor < {shlex.quote(fact['public_key'])} > \"$d/k.gpg\""
    else:
        keyring = f"gpg --batch --export {shlex.quote(fact['key_fingerprint'])} > \"$d/k.gpg\""
    commands = {
        "json": "aptly publish list -json",
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
def test_aptly_publishes_exactly_the_approved_snapshots(state, recorded):
    fact = _fact(recorded)
    expected = fact_publications(fact["published"])
    rc, listing = state["json"]
    assert rc == 0, f"aptly publish list -json failed: {listing.strip()[-300:]}"
    snapshots = publish_snapshots(listing)
    assert set(snapshots) == set(expected), (
        f"publications: expected {sorted(expected)} (approved, applied by the update_mirror role), "
        f"aptly publishes {sorted(snapshots)}")
    for key, names in expected.items():
        assert snapshots.get(key) == names, (
            f"{key[0]} {key[1]}: expected snapshot(s) {names} (applied by the update_mirror role), "
            f"aptly publishes {snapshots.get(key)}")


@pytest.mark.control("CW-PATCH-06")
def test_every_release_is_signed_by_the_citys_key(state, recorded):
    fact = _fact(recorded)
    expected = fact["key_fingerprint"].upper()
    assert len(expected) == 40, f"{RECORD}: key_fingerprint {fact['key_fingerprint']!r} is not a 40-hex fingerprint"
    for i, entry in enumerate(fact["published"]):
        rc, status = state[f"sig{i}"]
        where = _inrelease(fact, entry.get("prefix") or ".", entry["distribution"])
        signer = valid_signer(status)
        assert rc == 0 and signer, f"{where}: no good signature by the city's key: {status.strip()[-300:]}"
        assert signer == expected, (
            f"{where}: expected a signature by the city's key {expected} (applied by the update_mirror role), "
            f"found one by {signer}")


@pytest.mark.control("CW-PATCH-06")
def test_the_signing_key_is_not_about_to_expire(recorded):
    fact = _fact(recorded)
    problem = key_expiry_problem(fact["key_expires"], datetime.now(UTC), KEY_MARGIN_DAYS)
    assert not problem, f"{RECORD}: {problem} ({fact['key_fingerprint']})"


@pytest.mark.control("CW-PATCH-06")
def test_nginx_serves_only_tls_on_the_facts_port(state, recorded):
    fact = _fact(recorded)
    probe = _probe(state)
    rc, out = state["listen"]
    assert rc == 0, out
    ports = listening_ports(out, "nginx")
    assert ports == {int(fact["port"])}, (
        f"nginx ports: expected only {fact['port']} (applied by the update_mirror role), found {sorted(ports)}")
    assert not probe["tls1.1"]["ok"], f"port {fact['port']} accepts TLS 1.1 (1.2 at least)"
    applied_versions = set(fact["tls_protocols"])
    for version, name in PROBED.items():
        accepted = probe[name]["ok"]
        assert accepted == (version in applied_versions), (
            f"port {fact['port']}: {version} expected {'accepted' if version in applied_versions else 'refused'} "
            f"(ssl_protocols {sorted(applied_versions)} applied by the update_mirror role), found "
            f"{'accepted' if accepted else 'refused: ' + str(probe[name].get('error'))}")
    status = probe["http_status_line"]  # what plain HTTP, without TLS, gets on the TLS port
    assert status.split()[1:2] != ["200"], f"port {fact['port']} serves plain HTTP: {status}"


@pytest.mark.control("CW-PATCH-06")
def test_the_root_lists_nothing_but_the_published_prefixes(state, recorded):
    fact = _fact(recorded)
    probe = _probe(state)
    get = probe["get"]
    assert get["ok"], f"GET / over TLS failed: {get.get('error')}"
    if get["response"].split()[1:2] != ["200"]:
        return  # no listing at all (403/404)
    outside = listed_outside(get["response"], [e.get("prefix") or "." for e in fact["published"]])
    assert not outside, f"GET / on {fact['url']} lists {outside}, outside the published prefixes"
