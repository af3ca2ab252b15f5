"""Which inventories this collection reads.

An inventory may declare the version of cityward's variables it is written for, with
`cityward_inventory_schema: N`. A collection older than the inventory would silently ignore
settings it does not know (a false sense of safety on a city's hosts), and one newer than the
inventory would ask for variables the inventory does not give; both are stopped before any host is
touched, by the preflight role (every role depends on it) and by `cityward check`, with one line
saying what to do. An inventory that declares nothing is read as written for this collection.

Schema 2 (cityward 0.2): the zones policy is an inventory input (cityward_zones or
cityward_zones_file). Schema 1 (cityward 0.1) read it from the checkout.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.cityward.hardening.plugins.plugin_utils.errors import CitywardError

SCHEMA_VAR = "cityward_inventory_schema"
OLDEST, NEWEST = 2, 2


def check_schema(value: Any) -> int | None:
    """The schema an inventory declares (None: undeclared); CitywardError saying what to do when this
    collection cannot read it."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise CitywardError(f"expected a whole number, the inventory schema version (got {value!r})")
    schema = int(value)
    if schema > NEWEST:
        raise CitywardError(
            f"the inventory is written for schema {schema}, newer than this cityward.hardening reads "
            f"(schema {OLDEST} to {NEWEST}): upgrade the collection (pip install -U cityward, or "
            "ansible-galaxy collection install --upgrade cityward.hardening) before running it")
    if schema < OLDEST:
        raise CitywardError(
            f"the inventory is written for schema {schema}, older than this cityward.hardening reads "
            f"(schema {OLDEST} to {NEWEST}): bring it up to date as CHANGELOG.md describes (schema 2 gives "
            f"the zones policy as cityward_zones_file or cityward_zones) and set {SCHEMA_VAR}: {NEWEST}")
    return schema
