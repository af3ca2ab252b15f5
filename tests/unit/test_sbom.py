"""The CycloneDX 1.5 SBOM the audit writes per host from its dpkg database (CW-GOV-06)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cityward.audit.sbom import DPKG_QUERY, cyclonedx_from_dpkg, deb_purl, host_architecture, parse_dpkg

pytestmark = pytest.mark.control("CW-GOV-06")

LINES = [
    "adduser\t3.134\tall",
    "libc6\t2.36-9+deb12u9\tamd64",
    "libc6\t2.36-9+deb12u9\ti386",  # multi-arch: the same package twice, one per architecture
    "libstdc++6\t12.2.0-14\tamd64",
    "tzdata\t2024a-0+deb12u1\tall",
    "openssh-server\t1:9.2p1-2+deb12u3\tamd64",  # an epoch
    "",
    "rc-only-package\t\tamd64",  # known to dpkg, never installed: no version
]


@pytest.fixture(scope="module")
def bom():
    return cyclonedx_from_dpkg(LINES, hostname="scada-01", distro="debian-bookworm", architecture="amd64")


def test_query_is_the_documented_one():
    assert DPKG_QUERY == "dpkg-query -W -f '${Package}\\t${Version}\\t${Architecture}\\n'"


def test_document_header(bom):
    assert bom["bomFormat"] == "CycloneDX"
    assert bom["specVersion"] == "1.5"
    assert bom["version"] == 1
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", bom["serialNumber"])
    assert uuid.UUID(bom["serialNumber"].removeprefix("urn:uuid:")).version == 4
    stamp = datetime.fromisoformat(bom["metadata"]["timestamp"].replace("Z", "+00:00"))
    assert bom["metadata"]["timestamp"].endswith("Z")
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=1)
    subject = bom["metadata"]["component"]
    assert subject == {"type": "operating-system", "bom-ref": "host:scada-01", "name": "scada-01",
                       "version": "debian-bookworm", "description": "Debian packages installed on scada-01 "
                                                                    "(debian-bookworm)",
                       "properties": [{"name": "cityward:host:architecture", "value": "amd64"}]}
    assert host_architecture(bom) == "amd64"
    assert host_architecture(cyclonedx_from_dpkg(LINES, hostname="h", distro="d")) == ""
    assert bom["metadata"]["tools"]["components"][0]["name"] == "cityward"
    # JSON-serialisable as is (the runner writes it with json.dumps)
    assert json.loads(json.dumps(bom)) == bom


def test_one_component_per_installed_package(bom):
    components = bom["components"]
    assert len(components) == 6  # the blank line and the version-less package are not software on the host
    assert [c["name"] for c in components] == ["adduser", "libc6", "libc6", "libstdc++6", "tzdata", "openssh-server"]
    refs = [c["bom-ref"] for c in components]
    assert len(set(refs)) == len(refs)
    for component in components:
        assert component["type"] == "library"
        assert component["purl"] == component["bom-ref"]
        assert set(component) <= {"type", "bom-ref", "name", "version", "purl", "properties"}


def test_purls():
    assert deb_purl("adduser", "3.134", "all") == "pkg:deb/debian/adduser@3.134?arch=all"
    assert deb_purl("libstdc++6", "12.2.0-14", "amd64") == "pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?arch=amd64"
    assert deb_purl("openssh-server", "1:9.2p1-2+deb12u3", "amd64") == \
        "pkg:deb/debian/openssh-server@1:9.2p1-2%2Bdeb12u3?arch=amd64"
    assert deb_purl("tzdata", "2024a~rc1", "all") == "pkg:deb/debian/tzdata@2024a~rc1?arch=all"


def test_malformed_line_is_refused_with_its_number():
    with pytest.raises(ValueError, match=r"line 2: expected 'name<TAB>version<TAB>arch'"):
        parse_dpkg(["adduser\t3.134\tall", "garbage without tabs"])


def test_empty_host_gives_an_empty_component_list():
    bom = cyclonedx_from_dpkg([], hostname="h", distro="debian-trixie")
    assert bom["components"] == []


def test_serial_numbers_are_unique():
    assert cyclonedx_from_dpkg(LINES, "a", "d")["serialNumber"] != cyclonedx_from_dpkg(LINES, "a", "d")["serialNumber"]


_name = st.from_regex(r"[a-z0-9][a-z0-9+.\-]{1,20}", fullmatch=True)
_version = st.from_regex(r"([0-9]:)?[0-9][A-Za-z0-9.+~\-]{0,15}", fullmatch=True)
_arch = st.sampled_from(["amd64", "arm64", "all", "i386", "armhf"])


@given(st.lists(st.tuples(_name, _version, _arch), max_size=30, unique=True))
def test_every_package_round_trips(packages):
    lines = [f"{n}\t{v}\t{a}" for n, v, a in packages]
    bom = cyclonedx_from_dpkg(lines, hostname="h", distro="debian-bookworm")
    assert len(bom["components"]) == len(packages)
    for (name, version, arch), component in zip(packages, bom["components"], strict=True):
        assert (component["name"], component["version"]) == (name, version)
        assert component["purl"] == deb_purl(name, version, arch)
        assert component["purl"].endswith(f"?arch={arch}")
        assert parse_dpkg([f"{name}\t{version}\t{arch}"]) == [(name, version, arch)]
