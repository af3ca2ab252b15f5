"""The pure rules behind the patching and update-mirror audit checks (src/cityward/checks/
patch_evidence.py, needrestart's configuration order in checks/test_patching.py), and the source
and needrestart parsing of the patching fact script: each must be able to fail."""

from __future__ import annotations

import base64
import importlib.machinery
import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import pytest
import yaml

from cityward.checks.patch_evidence import (
    approved_mirrors,
    fact_publications,
    key_expiry_problem,
    listed_outside,
    listening_ports,
    mirrors_for,
    openpgp_fingerprints,
    overdue,
    publish_snapshots,
    unapproved_uris,
    valid_signer,
)
from cityward.checks.test_patching import NEEDRESTART_CONF, needrestart_settings, nrconf_assignments

FACT_SCRIPT = Path(__file__).resolve().parents[2] / "roles/patching/files/cityward_patching_pending.fact"

# gpg --quick-gen-key "t <t@x>" ed25519: one primary key, no subkey.
KEY_T = """-----BEGIN PGP PUBLIC KEY BLOCK-----

mDMEaxW9IBYJKwYBBAHaRw8BAQdATvvbIdyHnKtQ1Ml29Pxa9bB7pH7ySEpjUkzB
vGd01M+0B3QgPHRAeD6IlgQTFggAPhYhBNs+Q6VlO7R8vbhlA2c2P3f42zpbBQJr
Fb0gAhsDBQkB4TOABQsJCAcCBhUKCQgLAgQWAgMBAh4BAheAAAoJEGc2P3f42zpb
Rs4BAOC8dKnukBOY41my6qMRRVmxhvn4P/KFcvnTU/zSfI89APwOMG95EGkx4oq6
DSZ2ZkkHIXne3iwWJic1VgtN0t/KDg==
=bBBE
-----END PGP PUBLIC KEY BLOCK-----
"""
FPR_T = "DB3E43A5653BB47CBDB8650367363F77F8DB3A5B"
# gpg --quick-gen-key "u <u@x>" future-default: primary F669..., encryption subkey F246...0F6E.
KEY_U = """-----BEGIN PGP PUBLIC KEY BLOCK-----
Comment: a header line before the empty line

mDMEaxW9qBYJKwYBBAHaRw8BAQdAReockQOW6wZ9tR8VYlo+UOknPtUIOsmkMxwT
84rhWnG0B3UgPHVAeD6IlgQTFggAPhYhBPZpjrVOEAaxnqfrydyQcfTtRYD9BQJr
Fb2oAhsDBQkB4TOABQsJCAcCBhUKCQgLAgQWAgMBAh4BAheAAAoJENyQcfTtRYD9
c3EBAPw7g7l2jbQOx++Fsx/BCNPHXdk42jLsboeqoq5Gq4RuAQCthvUz0e33ML9U
VRQPTXm4ScQucAgaflgMpr2dMRdRDbg4BGsVvagSCisGAQQBl1UBBQEBB0AYmQUX
123bte/etXQS5cOsgN7Dhheg+uA8DXNHlPkFZAMBCAeIeAQYFggAIBYhBPZpjrVO
EAaxnqfrydyQcfTtRYD9BQJrFb2oAhsMAAoJENyQcfTtRYD9tVsBAJoO1bIBMMp5
UJp917bFxauDeZhUmx6CTPrNLHMsnPEFAP4kxiBaUXoQhPaaXPzdfxPbPVuMU1Mm
3bWTYFQc4aLaAw==
=KL6H
-----END PGP PUBLIC KEY BLOCK-----
"""
FPR_U = "F6698EB54E1006B19EA7EBC9DC9071F4ED4580FD"
SUBKEY_U = "F24640F51AA9628689840845DAA076396E144F6E"


def _binary(armored: str) -> bytes:
    body = armored.split("\n\n", 1)[1].split("\n=", 1)[0]
    return base64.b64decode("".join(body.split()))


def _new_format(binary: bytes) -> bytes:
    """The same packets re-framed with RFC 4880 new-format headers (gpg writes old-format ones)."""
    out, at = b"", 0
    while at < len(binary):
        tag, kind = (binary[at] >> 2) & 0x0F, binary[at] & 0x03
        size = (1, 2, 4)[kind]
        length = int.from_bytes(binary[at + 1:at + 1 + size], "big")
        body = binary[at + 1 + size:at + 1 + size + length]
        if length < 192:
            header = bytes([length])
        elif length < 8384:
            header = bytes([((length - 192) >> 8) + 192, (length - 192) & 0xFF])
        else:
            header = b"\xff" + length.to_bytes(4, "big")
        out += bytes([0xC0 | tag]) + header + body
        at += 1 + size + length
    return out


# --- CW-PATCH-05: keyring fingerprints -------------------------------------------------------------


@pytest.mark.control("CW-PATCH-05")
def test_fingerprints_of_armored_binary_and_new_format_keyrings():
    assert openpgp_fingerprints(KEY_T.encode()) == [FPR_T]
    assert openpgp_fingerprints(_binary(KEY_T)) == [FPR_T]
    assert openpgp_fingerprints(_new_format(_binary(KEY_U))) == [FPR_U]


@pytest.mark.control("CW-PATCH-05")
def test_a_keyring_of_two_keys_lists_both_primaries_and_no_subkey():
    found = openpgp_fingerprints((KEY_T + KEY_U).encode())
    assert found == [FPR_T, FPR_U]
    assert SUBKEY_U not in found
    assert openpgp_fingerprints(_binary(KEY_T) + _binary(KEY_U)) == [FPR_T, FPR_U]


@pytest.mark.control("CW-PATCH-05")
@pytest.mark.parametrize("data", [b"", b"not a key", _binary(KEY_T)[:40],
                                  b"-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n"])
def test_unreadable_keyrings_are_refused(data):
    with pytest.raises(ValueError):
        openpgp_fingerprints(data)


# --- CW-PATCH-05: sources under the approved mirrors ----------------------------------------------

DECLARED = [{"name": "dmz", "url": "https://10.40.16.10/", "host": "dmz-mirror-01"},
            {"name": "debian", "url": "https://deb.debian.org", "zone": "internet"}]


@pytest.mark.control("CW-PATCH-05")
def test_uris_under_an_approved_mirror_pass_and_others_are_named():
    mirrors = approved_mirrors(DECLARED)
    sources = [{"file": "/etc/apt/sources.list.d/debian.sources",
                "uris": ["https://10.40.16.10/debian", "https://10.40.16.10", "https://10.40.16.10:443/debian-security/"]}]
    assert unapproved_uris(sources, mirrors) == []
    bad = [{"file": "/etc/apt/sources.list.d/x.list", "uris": ["http://10.40.16.10/debian", "https://10.40.16.100/debian",
                                                              "https://10.40.16.10:8443/debian"]}]
    assert unapproved_uris(bad, mirrors) == ["/etc/apt/sources.list.d/x.list: http://10.40.16.10/debian",
                                             "/etc/apt/sources.list.d/x.list: https://10.40.16.100/debian",
                                             "/etc/apt/sources.list.d/x.list: https://10.40.16.10:8443/debian"]


@pytest.mark.control("CW-PATCH-05")
def test_a_path_prefix_is_not_a_parent_folder():
    mirrors = approved_mirrors([{"name": "m", "url": "https://m.example/debian", "host": "m1"}])
    sources = [{"file": "f", "uris": ["https://m.example/debian-evil", "https://m.example/debian/sub"]}]
    assert unapproved_uris(sources, mirrors) == ["f: https://m.example/debian-evil"]


@pytest.mark.control("CW-PATCH-05")
def test_the_outside_archive_serves_only_the_mirror_host():
    mirrors = approved_mirrors(DECLARED)
    upstream = [{"file": "f", "uris": ["https://deb.debian.org/debian"]}]
    assert unapproved_uris(upstream, mirrors_for("dmz-mirror-01", mirrors)) == []
    assert unapproved_uris(upstream, mirrors_for("ot-plc-01", mirrors)) == ["f: https://deb.debian.org/debian"]


@pytest.mark.control("CW-PATCH-05")
@pytest.mark.parametrize("declared", [[], "https://m", [{"name": "m"}], [None]])
def test_a_malformed_declaration_is_refused(declared):
    with pytest.raises(ValueError, match="cityward_update_mirrors"):
        approved_mirrors(declared)


def _fact_module():
    loader = importlib.machinery.SourceFileLoader("cityward_patching_fact", str(FACT_SCRIPT))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


@pytest.mark.control("CW-PATCH-05")
def test_the_fact_reads_one_line_sources_with_their_signed_by(tmp_path):
    listing = tmp_path / "x.list"
    listing.write_text("# deb http://disabled bookworm main\n"
                       "deb [arch=amd64 signed-by=/etc/apt/keyrings/a.asc,/etc/apt/keyrings/b.gpg] "
                       "https://10.40.16.10/debian bookworm main contrib # note\n"
                       "deb-src http://unsigned.example/debian bookworm main\n", encoding="utf-8")
    assert _fact_module().one_line_sources(str(listing)) == [
        {"file": str(listing), "types": ["deb"], "uris": ["https://10.40.16.10/debian"], "suites": ["bookworm"],
         "components": ["main", "contrib"], "signed_by": ["/etc/apt/keyrings/a.asc", "/etc/apt/keyrings/b.gpg"]},
        {"file": str(listing), "types": ["deb-src"], "uris": ["http://unsigned.example/debian"],
         "suites": ["bookworm"], "components": ["main"], "signed_by": []},
    ]


# --- CW-PATCH-03: services running replaced code (needrestart) ----------------------------------

# needrestart -b -r l -k -l on a VM with outdated services (README.batch.md's format: SVC lines
# sorted case-insensitively, containers and sessions on lines of their own).
NEEDRESTART_OUTDATED = """NEEDRESTART-VER: 3.6
NEEDRESTART-KCUR: 6.1.0-25-amd64
NEEDRESTART-KEXP: 6.1.0-28-amd64
NEEDRESTART-KSTA: 3
NEEDRESTART-SVC: systemd-journald.service
NEEDRESTART-SVC: cron.service
NEEDRESTART-SVC: ssh.service
NEEDRESTART-CONT: LXC web1
NEEDRESTART-SESS: operator @ session #28017
"""
# The same in a container: nothing outdated, and no kernel lines (needrestart skips the kernel there).
NEEDRESTART_CURRENT = "NEEDRESTART-VER: 3.8\n"


@pytest.mark.control("CW-PATCH-03")
def test_the_fact_reads_needrestarts_services_and_kernel_status():
    fact = _fact_module()
    assert fact.needrestart_batch(NEEDRESTART_OUTDATED) == (["cron.service", "ssh.service",
                                                             "systemd-journald.service"], 3)
    assert fact.needrestart_batch(NEEDRESTART_CURRENT) == ([], None)
    assert fact.needrestart_batch("NEEDRESTART-VER: 3.6\nNEEDRESTART-KCUR: 6.1.0-28-amd64\n"
                                  "NEEDRESTART-KSTA: 1\n") == ([], 1)


@pytest.mark.control("CW-PATCH-03")
@pytest.mark.parametrize("text", ["", "Scanning processes...\nNo services need to be restarted.\n",
                                  "NEEDRESTART-VER: 3.6\nNEEDRESTART-KSTA: ?\n"])
def test_what_is_not_needrestarts_batch_output_is_refused(text):
    with pytest.raises(ValueError):
        _fact_module().needrestart_batch(text)


def _fake_needrestart(tmp_path, monkeypatch, body: str):
    """The fact module, finding a needrestart that is `body` (a shell script) and running as root."""
    fact = _fact_module()
    binary = tmp_path / "needrestart"
    binary.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path / 'args'}\n{body}\n", encoding="utf-8")
    binary.chmod(0o755)
    monkeypatch.setattr(fact.shutil, "which", lambda name, path=None: str(binary) if name == "needrestart" else None)
    monkeypatch.setattr(fact.os, "geteuid", lambda: 0)
    return fact


@pytest.mark.control("CW-PATCH-03")
def test_the_fact_runs_needrestart_in_batch_list_mode(tmp_path, monkeypatch):
    fact = _fake_needrestart(tmp_path, monkeypatch, f"cat <<'EOF'\n{NEEDRESTART_OUTDATED}EOF")
    assert fact.restart_state() == {"restart_needed": ["cron.service", "ssh.service", "systemd-journald.service"],
                                    "kernel_status": 3}
    assert (tmp_path / "args").read_text().split() == ["-b", "-r", "l", "-k", "-l"]


@pytest.mark.control("CW-PATCH-03")
@pytest.mark.parametrize(("body", "why"), [
    ("echo 'Error parsing /etc/needrestart/conf.d/60-cityward.conf' >&2; exit 1", "failed (exit 1): Error parsing"),
    ("echo 'Scanning processes...'", "not needrestart's batch output"),
])
def test_a_failing_needrestart_is_an_unknown_never_an_empty_list(tmp_path, monkeypatch, body, why):
    found = _fake_needrestart(tmp_path, monkeypatch, body).restart_state()
    assert found["restart_needed"] is None and found["kernel_status"] is None
    assert why in found["restart_error"]


@pytest.mark.control("CW-PATCH-03")
def test_without_needrestart_or_root_the_services_are_unknown(tmp_path, monkeypatch):
    fact = _fake_needrestart(tmp_path, monkeypatch, "echo NEEDRESTART-VER: 3.6")
    monkeypatch.setattr(fact.os, "geteuid", lambda: 1000)
    assert fact.restart_state() == {"restart_needed": None, "kernel_status": None,
                                    "restart_error": "needrestart lists the services to restart only when run as root"}
    monkeypatch.setattr(fact.shutil, "which", lambda name, path=None: None)
    assert fact.restart_state() == {"restart_needed": None, "kernel_status": None,
                                    "restart_error": "needrestart is not installed"}


# needrestart.conf as Debian ships it: its settings commented out, conf.d included at the end.
DEBIAN_NEEDRESTART_CONF = """# Restart mode: (l)ist only, (i)nteractive or (a)utomatically.
#$nrconf{restart} = 'i';
#$nrconf{kernelhints} = -1;

# Read additional config snippets.
if(-d q(/etc/needrestart/conf.d)) {
      foreach my $fn (sort </etc/needrestart/conf.d/*.conf>) {
              eval do { local(@ARGV, $/) = $fn; <>};
      }
}
"""
OURS = "/etc/needrestart/conf.d/60-cityward.conf"
# The role's drop-in, rendered from the values the role applies and records (vars/main.yml).
_ROLE = FACT_SCRIPT.parents[1]
_NEEDRESTART = yaml.safe_load((_ROLE / "vars" / "main.yml").read_text(encoding="utf-8"))["_patching_needrestart"]
OURS_TEXT = jinja2.Template((_ROLE / "templates" / "needrestart-list-only.conf.j2").read_text(encoding="utf-8")).render(
    _patching_needrestart=_NEEDRESTART)


@pytest.mark.control("CW-PATCH-03")
def test_the_role_drop_in_sets_list_only_mode():
    assert nrconf_assignments(OURS_TEXT) == {"restart": "l", "kernelhints": "-1"}
    assert nrconf_assignments("# $nrconf{restart} = 'a';\n  $nrconf{'restart'} = \"a\"; # later wins\n"
                              "$nrconf{restart}='i';\n") == {"restart": "i"}


@pytest.mark.control("CW-PATCH-03")
def test_a_later_drop_in_wins_and_an_earlier_one_does_not():
    files = {NEEDRESTART_CONF: DEBIAN_NEEDRESTART_CONF, OURS: OURS_TEXT,
             "/etc/needrestart/conf.d/10-vendor.conf": "$nrconf{restart} = 'a';\n"}
    settings, read = needrestart_settings(files)
    assert settings["restart"] == ("l", OURS) and settings["kernelhints"] == ("-1", OURS)
    assert read == [NEEDRESTART_CONF, "/etc/needrestart/conf.d/10-vendor.conf", OURS]
    files["/etc/needrestart/conf.d/90-vendor.conf"] = "$nrconf{restart} = 'a';\n"
    settings, _ = needrestart_settings(files)
    assert settings["restart"] == ("a", "/etc/needrestart/conf.d/90-vendor.conf")


@pytest.mark.control("CW-PATCH-03")
def test_needrestart_conf_after_its_include_or_without_it():
    after = {NEEDRESTART_CONF: DEBIAN_NEEDRESTART_CONF + "$nrconf{restart} = 'a';\n", OURS: OURS_TEXT}
    assert needrestart_settings(after)[0]["restart"] == ("a", NEEDRESTART_CONF)
    without = {NEEDRESTART_CONF: "$nrconf{restart} = 'i';\n", OURS: OURS_TEXT}
    settings, read = needrestart_settings(without)
    assert settings["restart"] == ("i", NEEDRESTART_CONF) and read == [NEEDRESTART_CONF]


# --- CW-PATCH-07: pending updates against the SLA --------------------------------------------------

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _pending(published: str) -> dict:
    return {"name": "openssl", "installed": "3.0.15-1~deb12u1", "available": "3.0.17-1~deb12u2",
            "archive": "bookworm-security", "published": published}


@pytest.mark.control("CW-PATCH-07")
def test_an_update_within_the_sla_passes_and_one_past_it_is_named():
    assert overdue([_pending("2026-11-07T12:00:00Z")], 30, NOW) == []  # 29 days
    late = overdue([_pending("2026-11-05T11:59:59Z")], 30, NOW)  # 31 days
    assert late == ["openssl 3.0.15-1~deb12u1 -> 3.0.17-1~deb12u2: published 2026-11-05T11:59:59Z, "
                    "pending 31 days, over the 30-day SLA"]


@pytest.mark.control("CW-PATCH-07")
def test_the_sla_boundary_and_a_short_sla():
    assert overdue([_pending("2026-11-06T12:00:00Z")], 30, NOW) == []  # exactly 30 days
    assert overdue([_pending("2026-11-06T11:59:59Z")], 30, NOW)
    assert overdue([_pending("2026-12-04T12:00:00Z")], 1, NOW)


@pytest.mark.control("CW-PATCH-07")
@pytest.mark.parametrize("published", ["", "Fri, 04 Dec 2026 03:54:28 UTC", None])
def test_an_unknown_publication_date_fails(published):
    late = overdue([_pending(published)], 30, NOW)
    assert len(late) == 1 and "publication date unknown" in late[0] and "openssl" in late[0]


@pytest.mark.control("CW-PATCH-07")
def test_no_pending_update_passes():
    assert overdue([], 1, NOW) == []


# --- CW-PATCH-06: aptly, gpgv, key expiry, listener, listing ---------------------------------------

FACT_PUBLISHED = [{"prefix": "debian-security", "distribution": "bookworm-security", "snapshot": "city-ot-2",
                   "origin": "Debian", "label": "Debian-Security"},
                  {"prefix": "debian", "distribution": "bookworm", "snapshot": "city-base-1"}]
APTLY_JSON = json.dumps([
    {"Storage": "", "Prefix": "debian-security", "Distribution": "bookworm-security", "SourceKind": "snapshot",
     "Sources": [{"Component": "main", "Name": "city-ot-2"}], "Architectures": ["amd64"]},
    {"Storage": "", "Prefix": "debian", "Distribution": "bookworm", "SourceKind": "snapshot",
     "Sources": [{"Component": "main", "Name": "city-base-1"}], "Architectures": ["amd64"]},
])


@pytest.mark.control("CW-PATCH-06")
def test_aptly_publications_match_the_fact():
    expected = fact_publications(FACT_PUBLISHED)
    assert set(publish_snapshots(APTLY_JSON)) == set(expected)
    assert publish_snapshots(APTLY_JSON) == expected


@pytest.mark.control("CW-PATCH-06")
def test_an_unapproved_publication_or_snapshot_differs():
    expected = fact_publications(FACT_PUBLISHED)
    extra = [*json.loads(APTLY_JSON), {"Prefix": "staging", "Distribution": "bookworm", "SourceKind": "snapshot",
                                         "Sources": [{"Component": "main", "Name": "city-base-1"}]}]
    assert set(publish_snapshots(json.dumps(extra))) != set(expected)
    staged = json.loads(APTLY_JSON)
    staged[0]["Sources"][0]["Name"] = "city-ot-3-staged"
    assert publish_snapshots(json.dumps(staged)) != expected
    staged[0]["SourceKind"], staged[0]["Sources"][0]["Name"] = "local", "city-ot-2"
    assert publish_snapshots(json.dumps(staged))[("debian-security", "bookworm-security")] == ["local:city-ot-2"]
    with pytest.raises(ValueError):
        publish_snapshots("Published repositories:\n  * debian/bookworm [amd64] publishes {main: [city-base-1]}\n")


GOOD = """[GNUPG:] NEWSIG
[GNUPG:] KEY_CONSIDERED DB3E43A5653BB47CBDB8650367363F77F8DB3A5B 0
[GNUPG:] SIG_ID x9Yf4vyhe/JZ1g367iijvK+KU6Y 2026-12-06 1796586784
[GNUPG:] GOODSIG 67363F77F8DB3A5B t <t@x>
[GNUPG:] VALIDSIG 1111111111111111111111111111111111111111 2026-12-06 1796586784 0 4 0 22 8 01 \
DB3E43A5653BB47CBDB8650367363F77F8DB3A5B
"""


@pytest.mark.control("CW-PATCH-06")
def test_the_signer_is_the_primary_key_of_a_good_signature():
    assert valid_signer(GOOD) == FPR_T
    assert valid_signer(GOOD.replace(" DB3E43A5653BB47CBDB8650367363F77F8DB3A5B\n", "\n")) == "1" * 40


@pytest.mark.control("CW-PATCH-06")
@pytest.mark.parametrize("status", [
    "[GNUPG:] ERRSIG 67363F77F8DB3A5B 22 8 01 1796586784 9 -\n[GNUPG:] NO_PUBKEY 67363F77F8DB3A5B\n",
    "[GNUPG:] BADSIG 67363F77F8DB3A5B t <t@x>\n",
    GOOD.replace("GOODSIG", "EXPKEYSIG"),
    "gpgv: can't open '/var/lib/aptly/public/debian/dists/bookworm/InRelease'\n",
])
def test_bad_missing_or_expired_signatures_have_no_signer(status):
    assert valid_signer(status) == ""


@pytest.mark.control("CW-PATCH-06")
def test_key_expiry():
    today = datetime(2026, 12, 6, tzinfo=UTC)
    assert key_expiry_problem("", today) == ""
    assert key_expiry_problem("2027-12-06", today) == ""
    assert "within 7 days" in key_expiry_problem("2026-12-12", today)
    assert "expired" in key_expiry_problem("2026-12-01", today)
    assert key_expiry_problem("2027-12-06T20:09:20+00:00", today) == ""  # what the mirror's fact records
    assert "expired" in key_expiry_problem("2026-12-05T23:00:00+00:00", today)
    assert "not an ISO 8601 date" in key_expiry_problem("next year", today)


@pytest.mark.control("CW-PATCH-06")
def test_nginx_listening_ports():
    ss = ('LISTEN 0 511 10.140.16.10:443 0.0.0.0:* users:(("nginx",pid=812,fd=6),("nginx",pid=811,fd=6))\n'
          'LISTEN 0 511 [::]:80 [::]:* users:(("nginx",pid=811,fd=7))\n'
          'LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=500,fd=3))\n')
    assert listening_ports(ss, "nginx") == {443, 80}
    assert listening_ports(ss, "sshd") == {22}


@pytest.mark.control("CW-PATCH-06")
def test_the_root_listing_shows_only_published_prefixes():
    page = ('HTTP/1.1 200 OK\r\n\r\n<html><body><pre><a href="../">../</a>\n<a href="debian/">debian/</a>\n'
            '<a href="debian-security/">debian-security/</a>\n')
    assert listed_outside(page, ["debian", "debian-security"]) == []
    assert listed_outside(page + '<a href="staging/">staging/</a>\n<a href="key.asc">key.asc</a>',
                          ["debian", "debian-security"]) == ["staging/", "key.asc"]
    assert listed_outside('<a href="dists/">dists/</a><a href="pool/">pool/</a>', ["."]) == []
