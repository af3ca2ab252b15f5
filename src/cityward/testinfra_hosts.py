"""testinfra hosts for an Ansible inventory's hosts, through testinfra's public API only.

testinfra's ansible backend runs every command through an Ansible module (about a second each)
for connection types it has no backend for, Podman among them, and resolves the inventory again
(`ansible-inventory`) in every process. `cityward audit` resolves the inventory once and, from
that, gives each host testinfra's own backend: podman:// for Podman hosts, and for SSH (and local)
hosts the one testinfra.utils.ansible_runner.get_ansible_host builds from the same variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import testinfra
from testinfra.host import Host
from testinfra.utils import ansible_runner

PODMAN = ("podman", "containers.podman.podman")


def podman_spec(hostvars: Mapping[str, Any]) -> str | None:
    """'podman://[user@]container' for a host Ansible reaches through Podman, else None."""
    if hostvars.get("ansible_connection") not in PODMAN:
        return None
    container = hostvars.get("ansible_host", hostvars.get("inventory_hostname"))
    user = hostvars.get("ansible_user")
    return f"podman://{user + '@' if user else ''}{container}"


def host_for(name: str, inventory: Mapping[str, Any], inventory_path: str) -> Host:
    """The testinfra host of `name`, from an inventory already resolved (`ansible-inventory --list`).
    A connection testinfra has no backend for goes through its ansible backend (slower, same result)."""
    hostvars = inventory.get("_meta", {}).get("hostvars", {}).get(name, {})
    # A resolved inventory has no inventory_hostname: a container named as its host (Molecule's) needs it.
    spec = podman_spec({"inventory_hostname": name, **hostvars})
    if spec:
        return testinfra.get_host(spec)
    found = ansible_runner.get_ansible_host(ansible_runner.get_ansible_config(), dict(inventory), name)
    return found or testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory_path)


def host_variables(name: str, inventory: Mapping[str, Any]) -> dict[str, Any]:
    """The variables of `name` as testinfra's `host.ansible.get_variables()` gives them (its
    hostvars plus inventory_hostname, group_names and groups), from the resolved inventory."""
    variables = dict(inventory.get("_meta", {}).get("hostvars", {}).get(name, {}))
    variables.setdefault("inventory_hostname", name)
    groups = {group: sorted(ansible_runner.itergroup(dict(inventory), group))
              for group in sorted(inventory) if group != "_meta"}
    variables.setdefault("group_names", [group for group, members in groups.items() if name in members])
    variables.setdefault("groups", groups)
    return variables
