"""Build the CycloneDX 1.5 SBOM of a Debian host from its package listing (control CW-GOV-06).

The audit's collector (cityward.audit.collect.collect_sbom) lists the host's packages with
DPKG_QUERY over the host's own connection and writes `cyclonedx_from_dpkg(...)` to
`<audit out>/sbom/<host>.cdx.json`; the check in src/cityward/checks/test_sbom.py then compares
that file with the live package list.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from urllib.parse import quote

from cityward import __version__

DPKG_FORMAT = "${Package}\\t${Version}\\t${Architecture}\\n"
DPKG_QUERY = f"dpkg-query -W -f '{DPKG_FORMAT}'"
SPEC_VERSION = "1.5"


def parse_dpkg(lines: list[str]) -> list[tuple[str, str, str]]:
    """(name, version, arch) per package line of DPKG_QUERY, in order; blank lines are skipped.

    A package dpkg knows without a version (a name only, never installed) is not software on the
    host, so it is left out here and in the check alike.
    """
    packages = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.rstrip("\r\n").split("\t")
        if len(parts) != 3 or not parts[0]:
            raise ValueError(f"dpkg-query line {number}: expected 'name<TAB>version<TAB>arch', got {line!r}")
        name, version, arch = (p.strip() for p in parts)
        if version:
            packages.append((name, version, arch))
    return packages


def deb_purl(name: str, version: str, arch: str) -> str:
    """pkg:deb/debian/NAME@VERSION?arch=ARCH, percent-encoded as the purl spec asks ('+' is %2B,
    the epoch colon stays)."""
    purl = f"pkg:deb/debian/{quote(name, safe='')}@{quote(version, safe=':~')}"
    return f"{purl}?arch={quote(arch, safe='')}" if arch else purl


ARCH_QUERY = "dpkg --print-architecture"
ARCH_PROPERTY = "cityward:host:architecture"


def cyclonedx_from_dpkg(lines: list[str], hostname: str, distro: str, architecture: str = "") -> dict:
    """A CycloneDX 1.5 JSON document (as a dict) listing every package of DPKG_QUERY's output.

    `distro` names the operating system release, e.g. 'debian-bookworm', and `architecture` the
    host's (ARCH_QUERY's answer, e.g. 'arm64'). The host itself is the document's subject
    (metadata.component); each package is one component whose bom-ref is its purl.
    """
    packages = parse_dpkg(lines)
    now = datetime.now(UTC).replace(microsecond=0)
    components = []
    for name, version, arch in packages:
        purl = deb_purl(name, version, arch)
        components.append({
            "type": "library",
            "bom-ref": purl,
            "name": name,
            "version": version,
            "purl": purl,
            "properties": [{"name": "cityward:dpkg:architecture", "value": arch}],
        })
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": now.isoformat().replace("+00:00", "Z"),
            "tools": {"components": [{"type": "application", "name": "cityward", "version": __version__}]},
            "component": {
                "type": "operating-system",
                "bom-ref": f"host:{hostname}",
                "name": hostname,
                "version": distro,
                "description": f"Debian packages installed on {hostname} ({distro})",
                **({"properties": [{"name": ARCH_PROPERTY, "value": architecture}]} if architecture else {}),
            },
            "properties": [
                {"name": "cityward:control", "value": "CW-GOV-06"},
                {"name": "cityward:source", "value": DPKG_QUERY},
                {"name": "cityward:package-count", "value": str(len(components))},
            ],
        },
        "components": components,
    }


def host_architecture(bom: dict) -> str:
    """The host's architecture an SBOM of cyclonedx_from_dpkg records ('' when it records none)."""
    component = (bom.get("metadata") or {}).get("component") or {}
    return next((p.get("value", "") for p in component.get("properties") or [] if p.get("name") == ARCH_PROPERTY), "")
