"""A writable copy of the example city (inventories/example-city, 39 hosts) for tests that change it."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "inventories" / "example-city"


def copy_example_city(folder: Path) -> Path:
    """The example city copied to folder/city, naming the repository's zones policy by its absolute path."""
    city = folder / "city"
    shutil.copytree(EXAMPLE, city)
    settings = city / "group_vars" / "all" / "city.yml"
    data = yaml.safe_load(settings.read_text())
    data["cityward_zones_file"] = str(ROOT / "policies" / "zones.yml")
    settings.write_text(yaml.safe_dump(data, sort_keys=False))
    return city
