"""An inventory written for another cityward version is stopped before any host is touched: by
`cityward check` and by the preflight role every role depends on (CW-RES-04)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from ansible_collections.cityward.hardening.plugins.plugin_utils.inventory_schema import NEWEST, check_schema
from local_play import run_task

from cityward.check import run_check
from cityward.errors import CitywardError

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.control("CW-RES-04")


def test_the_shipped_inventories_declare_the_schema_this_collection_reads():
    for city in ("lab", "example-city"):
        text = "\n".join(p.read_text() for p in (ROOT / "inventories" / city / "group_vars" / "all").glob("*.yml"))
        assert f"cityward_inventory_schema: {NEWEST}" in text, city


@pytest.mark.parametrize(("value", "message"), [
    (NEWEST + 1, "newer than this cityward.hardening reads"),
    (1, "older than this cityward.hardening reads"),
    ("two", "expected a whole number"),
    (True, "expected a whole number"),
])
def test_an_unreadable_schema_says_what_to_do(value, message):
    with pytest.raises(CitywardError, match=message):
        check_schema(value)


def test_an_undeclared_or_current_schema_is_read():
    assert check_schema(None) is None
    assert check_schema(NEWEST) == NEWEST == check_schema(str(NEWEST))


def test_cityward_check_names_the_inventory_host_and_field(tmp_path):
    city = tmp_path / "city"
    shutil.copytree(ROOT / "inventories" / "example-city", city)
    path = city / "group_vars" / "all" / "city.yml"
    data = yaml.safe_load(path.read_text())
    data.update(cityward_inventory_schema=NEWEST + 1, cityward_zones_file=str(ROOT / "policies" / "zones.yml"))
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run_check([city])
    assert not result.ok
    assert any(line.startswith(f"{city}: host ") and f"field cityward_inventory_schema: the inventory is written "
               f"for schema {NEWEST + 1}, newer than" in line and "upgrade the collection" in line
               for line in map(str, result.problems)), result.problems


def test_the_preflight_role_stops_a_play_before_its_first_task(tmp_path):
    """Any cityward role, in a city's own play: the dependency fails on the controller first."""
    task = {"name": "CW-TEST-01 | a role of the collection",
            "ansible.builtin.include_role": {"name": "cityward.hardening.preflight"}}
    code, _, output = run_task(tmp_path, task, play_vars={"cityward_inventory_schema": NEWEST + 1})
    assert code != 0
    assert f"localhost: cityward_inventory_schema: the inventory is written for schema {NEWEST + 1}" in output
    assert "Traceback" not in output
    code, _, output = run_task(tmp_path, task, play_vars={"cityward_inventory_schema": NEWEST})
    assert code == 0, output
