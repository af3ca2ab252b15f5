"""The city's files: `cityward_city` and the records it names (incident contacts, vendor
requirements), read and validated once per city, each problem naming the file or the city and
the field; and where an inventory's relative paths resolve (`inventory_dirs`, `resolve`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ansible_collections.cityward.hardening.plugins.plugin_utils.unwrap import plain
from pydantic import BaseModel, ValidationError

from cityward.device import City, IncidentContacts, VendorRequirements
from cityward.errors import CitywardError
from cityward.problem_lines import problem_of
from cityward.problems import Problem
from cityward.record_problems import field_messages, show_value, templated_fields
from cityward.yamlfile import load_yaml

# --- paths -------------------------------------------------------------------------------------


def inventory_dirs(inventory: str | Path) -> list[Path]:
    """Where relative paths of an inventory resolve: its directory (the inventory itself, or the
    folder of an inventory file), then the folders its group_vars/host_vars links point into (a
    Molecule scenario links the lab's group_vars into its own, temporary inventory)."""
    base = Path(inventory)
    base = base if base.is_dir() else base.parent
    dirs = [base]
    for name in ("group_vars", "host_vars"):
        link = base / name
        if link.is_symlink():
            target = link.resolve().parent
            if target not in dirs:
                dirs.append(target)
    return dirs


def resolve(dirs: list[Path], relative: str) -> Path:
    """The first existing `relative` under `dirs` (or the path itself when absolute); else where
    it was expected, for the message."""
    path = Path(relative)
    if path.is_absolute():
        return path
    for base in dirs:
        if (base / path).exists():
            return base / path
    return dirs[0] / path


# --- city files --------------------------------------------------------------------------------


@dataclass
class CityFiles:
    """The city block and the files it names, loaded once per city."""

    city: City | None
    problems: list[Problem] = field(default_factory=list)  # the file or the city, the field, the message
    contacts: IncidentContacts | None = None
    contacts_path: Path | None = None
    contacts_problem: str = ""
    vendors: VendorRequirements | None = None
    vendors_path: Path | None = None
    vendors_problem: str = ""


def load_model(path: Path, model: type[BaseModel]) -> tuple[Any, list[Problem]]:
    """(the record at `path` validated as `model`, []), or (None, its problems, each naming the file)."""
    if not path.exists():
        return None, [Problem("file not found", file=str(path))]
    try:
        data = load_yaml(path)
    except CitywardError as exc:
        return None, [problem_of(line) for line in str(exc).split("\n") if line.strip()]
    if not isinstance(data, dict):
        return None, [Problem("expected a mapping", file=str(path), field="(document)")]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, [Problem(msg, file=str(path), field=where) for where, msg in field_messages(exc)]


def _city_file(city: City, variable: str, problems: list[Problem]) -> list[Problem]:
    """A records file's problems, named by their file when known, else by the variable naming it."""
    entry = f"city '{city.name}'"
    return [replace(p, host=entry, field=p.field or variable) for p in problems]


def load_city(raw_city: Any, dirs: list[Path]) -> CityFiles:
    """`cityward_city` as a host's variables give it, and the files it names, under `dirs`."""
    raw_city = plain(raw_city)
    if raw_city is None:
        return CityFiles(None, [Problem("required field missing (set it in group_vars/all)", field="cityward_city")])
    templated = templated_fields(raw_city, "cityward_city")
    if templated:
        return CityFiles(None, [Problem(msg, field=where) for where, msg in templated])
    if not isinstance(raw_city, dict):
        return CityFiles(None, [Problem(f"expected a mapping (got {show_value(raw_city)})", field="cityward_city")])
    try:
        city = City.model_validate(raw_city)
    except ValidationError as exc:
        return CityFiles(None, [Problem(msg, field=where) for where, msg in field_messages(exc, "cityward_city")])
    files = CityFiles(city)
    files.contacts_path = resolve(dirs, city.incident_contacts_file)
    files.contacts, found = load_model(files.contacts_path, IncidentContacts)
    files.contacts_problem = "; ".join(map(str, found))
    files.problems += _city_file(city, "cityward_city.incident_contacts_file", found)
    if city.vendor_requirements_file:
        files.vendors_path = resolve(dirs, city.vendor_requirements_file)
        files.vendors, found = load_model(files.vendors_path, VendorRequirements)
        files.vendors_problem = "; ".join(map(str, found))
        files.problems += _city_file(city, "cityward_city.vendor_requirements_file", found)
    return files
