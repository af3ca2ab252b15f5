"""Fixtures the control checks (and the Molecule scenario tests) share: the host under test, its
inventory variables and its inventory.

Two ways in, no patching of testinfra:
- Molecule verify: testinfra's own `host` (its ansible backend over Molecule's inventory); a
  Podman host is handed on to testinfra's podman backend (`podman exec`), twenty times faster than
  a module run per command.
- `cityward audit`: one process per host, named by CITYWARD_AUDIT_HOST, with the inventory the
  audit resolved once in the private file CITYWARD_INVENTORY_JSON. testinfra's own host is then
  the unused default (no --hosts given) and the host comes from that inventory.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import testinfra

from cityward.catalog import load_catalog
from cityward.testinfra_hosts import host_for, host_variables, podman_spec

AUDIT_HOST = "CITYWARD_AUDIT_HOST"
AUDIT_INVENTORY_JSON = "CITYWARD_INVENTORY_JSON"
AUDIT_INVENTORY = "CITYWARD_INVENTORY"
AUDIT_INVENTORY_DIR = "CITYWARD_INVENTORY_DIR"


def _audited() -> tuple[str, dict] | None:
    """(host name, resolved inventory) inside a `cityward audit` process, else None."""
    name = os.environ.get(AUDIT_HOST)
    if not name:
        return None
    with open(os.environ[AUDIT_INVENTORY_JSON], encoding="utf-8") as handle:
        return name, json.load(handle)


@pytest.fixture(scope="module")
def hostvars(host):
    audited = _audited()
    if audited:
        return host_variables(*audited)
    return _VARIABLES.get(host) or host.ansible.get_variables()


# The variables of each host `host` handed on, read once from testinfra's ansible backend.
_VARIABLES: dict[testinfra.host.Host, dict] = {}


@pytest.fixture(scope="module")
def host(host):  # testinfra's own fixture, overridden by name
    """The host under test, reached through testinfra's native backend where there is one."""
    audited = _audited()
    if audited:
        name, inventory = audited
        return host_for(name, inventory, os.environ.get(AUDIT_INVENTORY, ""))
    variables = host.ansible.get_variables()
    spec = podman_spec(variables)
    if spec is None:
        return host
    native = testinfra.get_host(spec)
    _VARIABLES[native] = variables
    return native


@pytest.fixture(scope="module")
def in_container(host) -> bool:
    """Whether the host under test is a container (systemd-detect-virt --container): its kernel,
    kernel audit system and clock are then its host's, so their live values are not its own."""
    return host.run("systemd-detect-virt --container").rc == 0


@pytest.fixture(scope="module")
def inventory_path(request) -> str:
    """Where the inventory's relative paths (records, zones policy) resolve: the city's inventory
    folder the audit was given (--inventory-dir), else the inventory it audits, else the one
    testinfra reads (Molecule's own inventory, whose group_vars/host_vars links lead to the lab's files)."""
    molecule = os.environ.get("MOLECULE_INVENTORY_FILE")
    for candidate in (os.environ.get(AUDIT_INVENTORY_DIR), os.environ.get(AUDIT_INVENTORY),
                      request.config.getoption("ansible_inventory", None),
                      molecule and os.path.dirname(molecule)):
        if candidate:
            return candidate
    pytest.fail("cannot tell which inventory this host comes from: set CITYWARD_INVENTORY", pytrace=False)


@pytest.fixture(scope="module")
def ssh_endpoint(host, hostvars):
    """(address, port) of the host's sshd as reached from the controller."""
    return sshd_endpoint(hostvars)


def sshd_endpoint(hostvars) -> tuple[str, int]:
    """(address, port) of a host's sshd as reached from the controller: a Podman host's address
    from `podman inspect`, else its ansible_host and port. The checks (ssh_endpoint) and the
    audit's ssh-audit scan (cityward.audit.scanners) both use it."""
    if podman_spec(hostvars):
        name = hostvars.get("ansible_host", hostvars["inventory_hostname"])
        out = subprocess.run(["podman", "inspect", name], capture_output=True, text=True, check=True).stdout
        networks = json.loads(out)[0]["NetworkSettings"]["Networks"]
        address = next(n["IPAddress"] for n in networks.values() if n.get("IPAddress"))
        return address, int(hostvars.get("ssh_port", 22))
    port = int(hostvars.get("ansible_port", hostvars.get("ssh_port", 22)))
    return hostvars.get("ansible_host", hostvars["inventory_hostname"]), port


@pytest.fixture(scope="module")
def catalog():
    """The control catalog (policies/controls.yml): the fixed limits the checks hold records to."""
    return load_catalog()
