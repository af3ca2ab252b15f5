"""Let testinfra read an inventory `cityward audit` has already resolved, instead of running
`ansible-inventory` again in every process that looks up a host.

The audit resolves the inventory once (about a second and a half of CPU each time) and hands the
result to its per-host processes in a private file named by CITYWARD_INVENTORY_JSON, and to its
own lookups with `preload`. Otherwise testinfra behaves as usual. Importing the module installs
the wrapper.
"""

from __future__ import annotations

import json
import os

from testinfra.utils import ansible_runner

ENV = "CITYWARD_INVENTORY_JSON"
_original = ansible_runner.get_ansible_inventory
_PRELOADED: dict[str, dict] = {}


def preload(inventory_file: str, inventory: dict) -> None:
    """Answer this process's lookups in `inventory_file` with the already resolved `inventory`."""
    _PRELOADED[inventory_file] = inventory


def _get_ansible_inventory(config, inventory_file):
    if inventory_file in _PRELOADED:
        return _PRELOADED[inventory_file]
    resolved = os.environ.get(ENV)
    if resolved:
        with open(resolved, encoding="utf-8") as handle:
            return json.load(handle)
    return _original(config, inventory_file)


if ansible_runner.get_ansible_inventory is not _get_ansible_inventory:
    ansible_runner.get_ansible_inventory = _get_ansible_inventory
