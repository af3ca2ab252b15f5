"""The lab definition is read from its inventory; unsafe or incomplete hosts are refused."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cityward.errors import CitywardError
from cityward.lab.containers import lab_hosts
from cityward.lab.image import Recipe
from cityward.resources import containers_conf, podman_env


def _inventory(tmp_path, host_vars: str):
    body = textwrap.indent(host_vars, " " * 6)
    (tmp_path / "hosts.yml").write_text(
        "all:\n  hosts:\n    gw-01:\n" + body + "  vars:\n    lab_network: test-net\n    lab_subnet: 10.40.0.0/16\n"
    )
    return tmp_path


def test_shipped_lab_has_seven_hosts_in_zones_with_only_net_admin():
    hosts = lab_hosts(Path(__file__).resolve().parents[2] / "inventories" / "lab")
    assert len(hosts) >= 7
    assert {h.zone for h in hosts} >= {"management", "ot-operations", "field", "siem", "dmz"}
    assert all(set(h.capabilities) <= {"NET_ADMIN"} for h in hosts)
    assert len({h.ip for h in hosts}) == len(hosts) and len({h.ssh_port for h in hosts}) == len(hosts)


@pytest.mark.parametrize("cap", ["SYS_TIME", "sys_admin", "ALL"])
def test_dangerous_capabilities_are_refused(tmp_path, cap):
    inv = _inventory(tmp_path, f"lab_ip: 10.40.0.5\nlab_ssh_port: 2299\nlab_capabilities: [{cap}]\n")
    with pytest.raises(CitywardError, match=r"host gw-01, field lab_capabilities: .* never granted"):
        lab_hosts(inv)


def test_missing_address_names_host_and_field(tmp_path):
    inv = _inventory(tmp_path, "lab_ssh_port: 2299\n")
    with pytest.raises(CitywardError, match=r"host gw-01: missing lab_ip"):
        lab_hosts(inv)


def test_podman_uses_the_projects_containers_conf(monkeypatch):
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    env = podman_env({})
    assert env["CONTAINERS_CONF"] == str(containers_conf())
    text = containers_conf().read_text()
    assert 'runtime = "runc"' in text and "nofile=1024:4096" in text


def test_recipe_hash_changes_with_the_recipe():
    base = Recipe(release="bookworm")
    assert base.digest == Recipe(release="bookworm").digest
    assert base.digest != Recipe(release="trixie").digest
    assert base.digest != Recipe(release="bookworm", packages=(*base.packages, "curl")).digest


def test_a_missing_lab_inventory_is_one_line(tmp_path):
    with pytest.raises(CitywardError, match=r"nowhere: no lab inventory here; run from a cityward checkout"):
        lab_hosts(tmp_path / "nowhere")
