"""The segmentation policy, as the command reads it.

The model and its validation live in the collection (plugins/plugin_utils/zones.py), where the
firewall role's filter uses them too; this module names them for the cityward package and adds
what only the command needs: the policy an inventory gives its hosts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ansible_collections.cityward.hardening.plugins.plugin_utils.zones import (
    FILE_VAR,
    INTERNET,
    POLICY_VAR,
    Conduit,
    Zone,
    ZonesPolicy,
    load_zones,
    parse_zones,
    policy_input,
)

from cityward.errors import CitywardError

__all__ = ["INTERNET", "Conduit", "Zone", "ZonesPolicy", "inventory_base", "load_zones", "parse_zones",
           "policy_for_hosts", "policy_input"]


def inventory_base(inventory: str | Path) -> Path:
    """The folder a relative cityward_zones_file is taken from: the inventory folder, or the
    folder of an inventory file (what Ansible calls inventory_dir)."""
    path = Path(inventory)
    return path if path.is_dir() else path.parent


def policy_for_hosts(hostvars: Mapping[str, Mapping[str, Any]], inventory: str | Path) -> ZonesPolicy:
    """The one zones policy the hosts of an inventory were given (cityward_zones or
    cityward_zones_file); CitywardError naming the inventory, host and variable otherwise."""
    base = inventory_base(inventory)
    chosen: dict[tuple[str, str], list[str]] = {}
    for host, variables in sorted(hostvars.items()):
        policy, path = variables.get(POLICY_VAR), variables.get(FILE_VAR)
        if isinstance(path, str) and "{{" in path:
            raise CitywardError(f"{inventory}: host {host}, field {FILE_VAR}: a template cannot be resolved outside a "
                                "play; give a path (absolute or relative to the inventory folder) or --zones FILE")
        key = (repr(policy), str(path))
        chosen.setdefault(key, []).append(host)
    if len(chosen) > 1:
        groups = "; ".join(f"{', '.join(hosts)}" for hosts in chosen.values())
        raise CitywardError(f"{inventory}: field {POLICY_VAR}/{FILE_VAR}: the hosts name different zones policies "
                            f"({groups}); a city has one")
    host = next(iter(chosen.values()))[0] if chosen else None
    if host is None:
        raise CitywardError(f"{inventory}: no hosts to read {FILE_VAR} from")
    try:
        return policy_input(hostvars[host].get(POLICY_VAR), hostvars[host].get(FILE_VAR), base)
    except CitywardError as exc:
        raise CitywardError(f"{inventory}: host {host}: {exc}") from None
