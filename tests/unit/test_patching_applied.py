"""The records the patching and update_mirror roles write of what they applied, rendered by
ansible-playbook on this machine from the roles' own defaults and vars with a city's overrides, and
read back as the audit reads them: the overrides land in the record with their JSON types, no
secret does, and every key the checks read is there. Also the pure helpers the patching checks
added for the record (patch_evidence.recorded_mirrors, deb822_stanzas)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from ansible_collections.cityward.hardening.plugins.plugin_utils.applied import read
from local_play import ROOT, playbook
from test_patching_checks import FPR_T, KEY_T

from cityward.checks.patch_evidence import deb822_stanzas, mirrors_for, recorded_mirrors

CHECKS = ROOT / "src" / "cityward" / "checks"


def record(tmp_path: Path, role: str, overrides: dict) -> tuple[dict, str]:
    """(the settings `role` records with `overrides` as extra vars, the record's text)."""
    out = tmp_path / "record.fact"
    play = [{
        "hosts": "localhost",
        "gather_facts": False,
        "vars_files": [str(ROOT / "roles" / role / part / "main.yml") for part in ("defaults", "vars")],
        "tasks": [{"name": "Render the record", "ansible.builtin.copy": {
            "content": f"{{{{ _{role}_applied | cityward.hardening.applied_fact('{role}') }}}}",
            "dest": str(out), "mode": "0600"}}],
    }]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    (tmp_path / "overrides.json").write_text(json.dumps(overrides))
    proc = playbook(tmp_path, "-e", f"@{tmp_path / 'overrides.json'}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = out.read_text()
    return read(role, text), text


def keys_read(module: str, pattern: str) -> set[str]:
    """The record keys a check module reads, found by `pattern` in its source."""
    return set(re.findall(pattern, (CHECKS / module).read_text()))


PATCHING_READS = r'(?:settings|_applied\(recorded\))\["(\w+)"\]'
MIRROR_READS = r'fact(?:\["(\w+)"\]|\.get\("(\w+)")'


def test_patching_records_its_defaults_with_their_types(tmp_path):
    settings, _ = record(tmp_path, "patching", {})
    assert settings["origins"] == ["origin=Debian,codename=${distro_codename}-security,label=Debian-Security"]
    assert settings["maintenance_window"] == {"days": ["Sun"], "start": "03:00", "duration_minutes": 120}
    assert settings["automatic_reboot"] is False and settings["reboot_time"] == ""
    assert settings["mirrors"] == {"debian": ["http://deb.debian.org/debian"],
                                   "security": ["http://deb.debian.org/debian-security"]}
    assert settings["components"] == ["main"]
    assert settings["keyring"] == "/usr/share/keyrings/debian-archive-keyring.gpg"
    assert settings["key_fingerprint"] == ""
    assert settings["replace_legacy_sources"] is True
    assert settings["approved_mirrors"] == {}
    assert settings["report_path"] == "/var/lib/cityward/patching/pending.json"
    assert keys_read("test_patching.py", PATCHING_READS) <= set(settings)


def test_patching_records_a_citys_overrides(tmp_path):
    overrides = {
        "cityward_device": {"maintenance_window": {"days": ["Sat", "Sun"], "start": "22:30", "duration_minutes": 240}},
        "patching_automatic_reboot": True,
        "cityward_apt_mirrors": {"debian": ["https://mirror.city/debian"], "security": ["https://mirror.city/debian-security"]},
        "patching_components": ["main", "contrib"],
        "cityward_update_mirror_public_key": KEY_T,
        "cityward_update_mirrors": [{"name": "city", "url": "https://mirror.city/", "host": "cw-mirror", "zone": "dmz"},
                                    {"name": "debian", "url": "http://deb.debian.org/debian"}],
        "patching_report_path": "/srv/reports/pending.json",
    }
    settings, text = record(tmp_path, "patching", overrides)
    assert settings["maintenance_window"] == {"days": ["Sat", "Sun"], "start": "22:30", "duration_minutes": 240}
    # Window end (02:30) minus the 30-minute margin.
    assert settings["automatic_reboot"] is True and settings["reboot_time"] == "02:00"
    assert settings["mirrors"] == overrides["cityward_apt_mirrors"]
    assert settings["components"] == ["main", "contrib"]
    assert settings["keyring"] == "/etc/apt/keyrings/cityward-mirror.asc"
    assert settings["key_fingerprint"] == FPR_T
    assert "PGP PUBLIC KEY" not in text  # the fingerprint names the key
    assert settings["approved_mirrors"] == {"https://mirror.city": "cw-mirror", "http://deb.debian.org/debian": ""}
    assert settings["report_path"] == "/srv/reports/pending.json"

    mirrors = recorded_mirrors(settings["approved_mirrors"])
    assert [m.url for m in mirrors_for("cw-ot", mirrors)] == ["https://mirror.city"]
    assert sorted(m.url for m in mirrors_for("cw-mirror", mirrors)) == ["http://deb.debian.org/debian",
                                                                        "https://mirror.city"]


def test_update_mirror_records_what_it_serves_and_no_secret(tmp_path):
    overrides = {
        "update_mirror_url": "https://mirror.city:8443",
        "update_mirror_public_key": KEY_T,
        "update_mirror_signing_key": "SECRET-SIGNING-KEY-MARKER",
        "update_mirror_tls_key": "SECRET-TLS-KEY-MARKER",
        "update_mirror_tls_protocols": ["TLSv1.3"],
        "update_mirror_upstreams": [{"name": "debian-bookworm", "url": "http://deb.debian.org/debian",
                                     "distribution": "bookworm", "components": ["main"]}],
        "update_mirror_publications": [{"prefix": "debian", "distribution": "bookworm", "snapshot": "debian-bookworm-1",
                                        "origin": "Debian", "label": "Debian"}],
    }
    settings, text = record(tmp_path, "update_mirror", overrides)
    assert "SECRET" not in text and "PGP" not in text
    assert settings["url"] == "https://mirror.city:8443" and settings["port"] == 8443
    assert settings["web_root"] == "/var/lib/aptly/public"
    assert settings["key_fingerprint"] == FPR_T
    assert re.match(r"^\d{4}-\d\d-\d\d", settings["key_expires"]), settings["key_expires"]
    assert settings["public_key"] == "/etc/cityward/update-mirror/signing-key.asc"
    assert settings["tls_cert"] == "/etc/cityward/update-mirror/tls.crt"
    assert settings["tls_protocols"] == ["TLSv1.3"]
    assert settings["published"] == overrides["update_mirror_publications"]
    assert settings["upstreams"] == overrides["update_mirror_upstreams"]
    assert {key for pair in keys_read("test_update_mirror.py", MIRROR_READS) for key in pair if key} <= set(settings)


def test_recorded_mirrors_refuse_another_shape():
    with pytest.raises(ValueError, match="mapping of mirror URL"):
        recorded_mirrors(["https://mirror.city"])


def test_deb822_stanzas_keep_enabled_entries_with_their_fields():
    text = """# Ansible managed
Types: deb
URIs: https://mirror.city/debian
# a comment inside the stanza
Suites: bookworm bookworm-updates
Components: main
Signed-By: /etc/apt/keyrings/cityward-mirror.asc

Types: deb
URIs: http://elsewhere/debian
Enabled: no
Signed-By: /etc/apt/keyrings/other.asc

Types: deb
URIs: https://mirror.city/debian-security
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
"""
    stanzas = deb822_stanzas(text)
    assert [s["URIs"] for s in stanzas] == ["https://mirror.city/debian", "https://mirror.city/debian-security"]
    assert stanzas[0]["Signed-By"] == "/etc/apt/keyrings/cityward-mirror.asc"
    assert stanzas[0]["Components"] == "main"
    assert stanzas[1]["Signed-By"].startswith("\n-----BEGIN PGP")
