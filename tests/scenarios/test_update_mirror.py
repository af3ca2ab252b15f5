"""The city's signed update mirror proven in the molecule/firewall lab (issue 24): an update staged on
the DMZ mirror is invisible until the city approves it; once approved it reaches the OT server
through the ot-operations -> dmz tcp/443 conduit, installed by unattended-upgrades when the
maintenance window's timers fire; a publication signed by another key, or a package altered on the
mirror, is refused on the OT server and the refusal is in its journal.

The tests run in file order and build on each other (stage, approve, tamper, restore), as the city's
operators would. The maintenance window cannot be waited for in CI: a test checks that the timers
fire only inside the window, and then starts the two services those timers start (apt-daily, then
apt-daily-upgrade) with apt's daily stamps cleared, as a new window would find them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
from pathlib import Path

import pytest
import yaml
from firewall_lab import NOT_IN_LAB, PROJECT, Lab, lab_available, recap

pytestmark = pytest.mark.skipif(not lab_available(), reason=NOT_IN_LAB)

MIRROR, OT = "cw-fw-dmz", "cw-fw-ot"
PACKAGE = "cityward-lab-scada"
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
STAGE = PROJECT / "playbooks" / "update_mirror_stage.yml"
CONVERGE = PROJECT / "molecule" / "firewall" / "converge.yml"
SECURITY = "/var/lib/aptly/public/debian-security"
POOL_V2 = f"{SECURITY}/pool/main/c/{PACKAGE}/{PACKAGE}_2.0_all.deb"


@pytest.fixture(scope="module")
def lab():
    return Lab()


def installed(lab: Lab) -> str:
    return lab.exec(OT, ["dpkg-query", "-W", "-f", "${Version}", PACKAGE]).stdout


def candidate(lab: Lab) -> str:
    result = lab.exec(OT, f"apt-get update -q >/dev/null && apt-cache policy {PACKAGE}")
    assert result.returncode == 0, result.stdout + result.stderr
    return re.search(r"Candidate: (\S+)", result.stdout).group(1)


def publications(security_snapshot: str) -> list[dict]:
    """The mirror's approved publications from molecule.yml, with another security snapshot approved."""
    config = yaml.safe_load(Path(os.environ["MOLECULE_FILE"]).read_text())
    approved = config["provisioner"]["inventory"]["host_vars"][MIRROR]["update_mirror_publications"]
    return [{**p, "snapshot": security_snapshot} if p["distribution"] == "bookworm-security" else p for p in approved]


def approve(lab: Lab, security_snapshot: str):
    """What a city does: name the snapshot in the inventory and run the mirror's role."""
    extra = EPHEMERAL / f"approve-{security_snapshot}.json"
    extra.write_text(json.dumps({"update_mirror_publications": publications(security_snapshot)}))
    result = lab.playbook(CONVERGE, "--limit", MIRROR, "--tags", "update_mirror", "-e", f"@{extra}")
    assert result.returncode == 0, result.stdout[-3000:]
    return result


def window(lab: Lab) -> str:
    """Start what the window's timers start, in their order; return the journal those runs wrote."""
    marker = lab.exec(OT, "date '+%Y-%m-%d %H:%M:%S'").stdout.strip()
    run = lab.exec(OT, "rm -f /var/lib/apt/periodic/*-stamp && systemctl start apt-daily.service "
                       "&& systemctl start apt-daily-upgrade.service", timeout=600)
    assert run.returncode == 0, run.stderr
    journal = lab.exec(OT, ["journalctl", "-q", "--no-pager", "-o", "cat", "--since", marker,
                            "-u", "apt-daily.service", "-u", "apt-daily-upgrade.service"])
    return journal.stdout


@pytest.mark.control("CW-PATCH-05")
def test_the_ot_server_trusts_only_the_mirror_and_its_pinned_key(lab):
    uris = set(lab.exec(OT, ["apt-get", "indextargets", "--format", "$(REPO_URI)"]).stdout.split())
    assert uris, "apt lists no index targets"
    outside = [uri for uri in uris if not uri.startswith("https://10.140.16.10/")]
    assert not outside, f"{OT} uses a source outside the approved mirror: {outside}"
    stanzas = lab.exec(OT, "grep -h -E '^(URIs|Signed-By):' /etc/apt/sources.list.d/*.sources; "
                           "grep -h -E '^deb' /etc/apt/sources.list || true").stdout.splitlines()
    assert not [line for line in stanzas if line.startswith("deb")], f"{OT}: one-line sources remain: {stanzas}"
    signed_by = {line.split(":", 1)[1].strip() for line in stanzas if line.startswith("Signed-By:")}
    assert signed_by == {"/etc/apt/keyrings/cityward-mirror.asc"}, f"{OT}: sources pinned to {signed_by}"
    assert stanzas.count("Signed-By: /etc/apt/keyrings/cityward-mirror.asc") == \
        len([line for line in stanzas if line.startswith("URIs:")]), f"{OT}: a source without the pinned key: {stanzas}"
    assert installed(lab) == "1.0"


@pytest.mark.control("CW-PATCH-05")
def test_only_the_mirror_reaches_the_package_archive(lab):
    address = lab.exec(MIRROR, ["getent", "ahostsv4", "deb.debian.org"]).stdout.split()
    assert address, f"{MIRROR} cannot resolve deb.debian.org"
    probe = "import socket,sys; s=socket.socket(); s.settimeout(5); s.connect((sys.argv[1], 80)); print('open')"
    assert lab.exec(MIRROR, ["python3", "-c", probe, address[0]]).stdout.strip() == "open"
    blocked = lab.exec(OT, ["python3", "-c", probe, address[0]])
    assert "open" not in blocked.stdout, f"{OT} reached {address[0]}:80 directly"


@pytest.mark.control("CW-PATCH-06")
def test_a_staged_update_stays_invisible_until_approved(lab):
    debs = EPHEMERAL / "mirror" / "debs"
    extra = EPHEMERAL / "stage-2.json"
    extra.write_text(json.dumps({"update_mirror_stage_id": "2", "update_mirror_stage_packages": [
        {"repo": "city-bookworm-security", "file": str(debs / f"{PACKAGE}_2.0_all.deb")}]}))
    staged = lab.playbook(STAGE, "-e", f"@{extra}")
    assert staged.returncode == 0, staged.stdout[-3000:]
    assert "city-bookworm-security-2" in lab.exec(MIRROR, ["aptly", "snapshot", "list", "-raw"]).stdout
    assert f"{PACKAGE}_2.0" in staged.stdout, "the stage report does not show what the snapshot would change"
    assert candidate(lab) == "1.0"
    assert installed(lab) == "1.0"


@pytest.mark.control("CW-PATCH-05")
def test_a_publication_signed_by_another_key_is_refused_and_logged(lab):
    resign = f"""set -e
export GNUPGHOME=$(mktemp -d)
gpg --batch --quiet --passphrase '' --quick-gen-key 'rogue <rogue@lab.invalid>' ed25519 sign 1d
d={SECURITY}/dists/bookworm-security
gpg --batch --yes --clearsign -o $d/InRelease $d/Release
gpg --batch --yes -abs -o $d/Release.gpg $d/Release
rm -rf "$GNUPGHOME"
"""
    assert lab.exec(MIRROR, resign).returncode == 0
    refused = lab.exec(OT, "apt-get update -q")
    assert refused.returncode != 0 or "W:" in refused.stderr, refused.stdout
    assert re.search(r"NO_PUBKEY|not signed|couldn't be verified", refused.stdout + refused.stderr)
    journal = window(lab)
    assert re.search(r"NO_PUBKEY|not signed|couldn't be verified", journal), journal[-2000:]
    assert installed(lab) == "1.0"
    # The mirror's role signs its publications again with the city's key.
    repaired = approve(lab, "city-bookworm-security-1")
    assert recap(repaired, MIRROR)["changed"] > 0
    assert candidate(lab) == "1.0"


@pytest.mark.control("CW-PATCH-01")
def test_the_update_timers_fire_only_inside_the_maintenance_window(lab):
    # molecule.yml: Sunday 03:00 for 120 minutes; apt-daily from the start, apt-daily-upgrade from
    # the second quarter, each with a random delay of up to a quarter (30 min).
    for unit, first, last in (("apt-daily.timer", 180, 210), ("apt-daily-upgrade.timer", 210, 240)):
        show = lab.exec(OT, ["systemctl", "show", "-p", "NextElapseUSecRealtime", "--value", unit]).stdout.strip()
        when = dt.datetime.strptime(" ".join(show.split()[1:3]), "%Y-%m-%d %H:%M:%S")
        minute = when.hour * 60 + when.minute
        assert when.strftime("%a") == "Sun" and first <= minute <= last, f"{unit} fires at {show}"


@pytest.mark.control("CW-PATCH-06")
def test_an_approved_update_is_reported_before_it_is_installed(lab):
    approve(lab, "city-bookworm-security-2")
    assert candidate(lab) == "2.0"
    assert installed(lab) == "1.0", "the update was installed before the window"
    report = lab.playbook(CONVERGE, "--limit", OT, "--tags", "patching")
    assert report.returncode == 0, report.stdout[-3000:]
    pending = json.loads((EPHEMERAL / "reports" / "patching" / f"{OT}.json").read_text())
    assert {p["name"]: p["available"] for p in pending["packages"]}.get(PACKAGE) == "2.0", pending


@pytest.mark.control("CW-PATCH-05")
def test_a_package_altered_on_the_mirror_is_refused_and_logged(lab):
    # The published file is a hard link into aptly's pool: appending changes both, copying back restores both.
    tamper = f"cp -p {POOL_V2} /root/original.deb && printf 'tampered' >> {POOL_V2}"
    assert lab.exec(MIRROR, tamper).returncode == 0
    try:
        journal = window(lab)
        assert installed(lab) == "1.0"
        assert re.search(r"Hash Sum mismatch|unexpected size", journal), journal[-2000:]
        assert re.search(rf"{PACKAGE}_2\.0_all\.deb failed to download", journal), journal[-2000:]
    finally:
        assert lab.exec(MIRROR, f"cp -p /root/original.deb {shlex.quote(POOL_V2)}").returncode == 0


@pytest.mark.control("CW-PATCH-01")
def test_the_approved_update_arrives_in_the_window_through_the_conduit(lab):
    journal = window(lab)
    assert installed(lab) == "2.0", journal[-2000:]
    log = lab.exec(OT, "cat /var/log/unattended-upgrades/unattended-upgrades.log").stdout
    assert re.search(rf"Packages that will be upgraded:.*\b{PACKAGE}\b", log), log[-2000:]
    version = lab.exec(OT, f"cat /usr/share/{PACKAGE}/VERSION").stdout.strip()
    assert version == "2.0"
