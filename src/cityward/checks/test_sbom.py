"""CW-GOV-06: a fresh CycloneDX SBOM exists for the host and matches its live package database.

`cityward audit` writes the SBOM (src/cityward/audit/sbom.py) to $CITYWARD_AUDIT_OUT/sbom/ before it
runs these checks; under Molecule there is no audit output, so the check does not apply there.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest

from cityward.audit.sbom import DPKG_QUERY, deb_purl, parse_dpkg
from cityward.checks.outcomes import not_applicable

MAX_AGE = timedelta(hours=24)
SERIAL = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MARK = "::cityward-dpkg::"


@pytest.fixture(scope="module")
def sbom(hostvars):
    out = os.environ.get("CITYWARD_AUDIT_OUT")
    if not out:
        not_applicable("not applicable: the SBOM is produced by cityward audit")
    path = Path(out) / "sbom" / f"{hostvars['inventory_hostname']}.cdx.json"
    if not path.is_file():
        pytest.fail(f"no SBOM at {path}", pytrace=False)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        pytest.fail(f"{path} is not JSON: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def live(host):
    """(last change of the package database, installed packages) in one round trip."""
    out = host.check_output(f"stat -c %Y /var/lib/dpkg/status; echo '{MARK}'; {DPKG_QUERY}")
    changed, _, listing = out.partition(MARK)
    return datetime.fromtimestamp(int(changed.strip()), UTC), parse_dpkg(listing.strip("\n").splitlines())


def _timestamp(text) -> datetime:
    try:
        stamp = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        pytest.fail(f"metadata.timestamp {text!r} is not ISO 8601", pytrace=False)
    if stamp.tzinfo is None:
        pytest.fail(f"metadata.timestamp {text!r} has no time zone", pytrace=False)
    return stamp


@pytest.mark.control("CW-GOV-06")
def test_sbom_is_cyclonedx_1_5_and_fresh(sbom, live):
    assert sbom.get("bomFormat") == "CycloneDX"
    assert sbom.get("specVersion") == "1.5"
    assert SERIAL.match(str(sbom.get("serialNumber", ""))), f"serialNumber {sbom.get('serialNumber')!r}"
    stamp = _timestamp(sbom.get("metadata", {}).get("timestamp"))
    now = datetime.now(UTC)
    assert now - MAX_AGE <= stamp <= now + timedelta(minutes=5), f"SBOM made {stamp}, not within 24 h of {now}"
    changed, _ = live
    # Second resolution on both sides: an SBOM taken in the same second as the change is current.
    assert stamp >= changed.replace(microsecond=0), f"packages changed at {changed}, after the SBOM ({stamp})"


@pytest.mark.control("CW-GOV-06")
def test_sbom_lists_exactly_the_installed_packages(sbom, live):
    components = sbom.get("components")
    assert isinstance(components, list), "components missing"
    for index, component in enumerate(components):
        for key in ("name", "version", "purl"):
            assert component.get(key), f"component #{index} has no {key}: {component}"
        purl = component["purl"]
        arch = unquote(purl.rpartition("?arch=")[2])
        assert purl == deb_purl(component["name"], component["version"], arch), f"component #{index}: purl {purl}"
    _, packages = live
    assert len(components) == len(packages), f"SBOM lists {len(components)} packages, the host has {len(packages)}"
    listed = {(c["name"], c["version"], unquote(c["purl"].rpartition("?arch=")[2])) for c in components}
    installed = set(packages)
    missing, extra = sorted(installed - listed)[:5], sorted(listed - installed)[:5]
    assert not missing and not extra, f"not in the SBOM: {missing}; not on the host: {extra}"
