"""The inventory schema filter: whether this collection reads the inventory a host comes from
(plugins/plugin_utils/inventory_schema.py), for the preflight role."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.cityward.hardening.plugins.plugin_utils.errors import CitywardError
from ansible_collections.cityward.hardening.plugins.plugin_utils.inventory_schema import SCHEMA_VAR, check_schema


def inventory_schema_readable(value: Any, host: str = "?") -> bool:
    """True when the collection reads the declared schema (or none is declared); an error saying what
    to do otherwise."""
    try:
        check_schema(value)
    except CitywardError as exc:
        raise AnsibleFilterError(f"{host}: {SCHEMA_VAR}: {exc}") from None
    return True


class FilterModule:
    """cityward inventory schema filter."""

    def filters(self):
        return {"inventory_schema_readable": inventory_schema_readable}
