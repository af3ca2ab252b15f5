"""Validate everything a run reads before the run touches a host (control CW-RES-04): the control
catalog, the zones policy, the inventory's device metadata and the city's waivers
(cityward.waivers). `cityward check` and the first play of playbooks/site.yml call `run_check`,
so the operator and the playbook see the same errors.

Each problem is one line naming the file, the host or entry, and the field. A stage that cannot
be read at all (broken YAML, an unparsable inventory) is one problem too, and the other stages
still run, so one check shows everything there is to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from cityward.catalog import Catalog, load_catalog
from cityward.errors import CitywardError
from cityward.inventory import validate_inventory
from cityward.problem_lines import problem_of
from cityward.problems import Problem
from cityward.waivers import read_waivers
from cityward.zones import ZonesPolicy, load_zones


@dataclass
class CheckResult:
    inventories: list[str]
    hosts: list[str] = field(default_factory=list)
    zones: int = 0
    conduits: int = 0
    controls: int = 0
    problems: list[Problem] = field(default_factory=list)
    # The zones policy's exceptions that waive one of its rules today, one line each: the
    # operator sees every departure the city knowingly keeps, with its reason and expiry.
    exceptions: list[str] = field(default_factory=list)
    # The city's waivers in force, one line each with reason, approver and expiry; and the expired
    # ones, as warnings (not bad input: the audit counts what they cover as failed).
    waivers: list[str] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_data(self) -> dict:
        """As JSON: each problem as {file, host, field, message} and its one-line `text`."""
        return {"ok": self.ok, "inventories": self.inventories, "hosts": self.hosts, "zones": self.zones,
                "conduits": self.conduits, "controls": self.controls, "exceptions": self.exceptions,
                "waivers": self.waivers, "warnings": [{**p.as_data(), "text": str(p)} for p in self.warnings],
                "problems": [{**p.as_data(), "text": str(p)} for p in self.problems]}


def _lines(exc: CitywardError, file: str | Path | None = None) -> list[Problem]:
    """A stage's error, one Problem per line; `file` when a line names none."""
    return [problem_of(line, str(file) if file else None) for line in str(exc).split("\n") if line.strip()]


def _same_inventories(inventories: list[str | Path]) -> list[Problem]:
    """An inventory given twice (also as a folder and a file inside it) would be read twice: its
    hosts, and so every problem, counted twice."""
    problems, seen = [], {}
    for inventory in inventories:
        path = Path(inventory).resolve()
        for other, first in seen.items():
            if path == other or other in path.parents or path in other.parents:
                problems.append(Problem(f"the same inventory as {first} (given twice)", file=str(inventory),
                                        field="--inventory"))
                break
        else:
            seen[path] = str(inventory)
    return problems


def run_check(inventories: list[str | Path], *, zones_path: str | Path | None = None, limit: str | None = None,
              policies: Path | None = None, today: date | None = None, inventory_dir: str | Path | None = None,
              job_slices: int = 1) -> CheckResult:
    """Check catalog, zones policy and every inventory; never raises for bad input.

    The zones policy is `zones_path` when given, else the one each inventory gives its hosts
    (cityward_zones or cityward_zones_file). `inventory_dir` and `job_slices` describe a generated
    inventory (AWX's, or one slice of a job run as `job_slices` slices): see validate_inventory."""
    result = CheckResult([str(i) for i in inventories])
    catalog: Catalog | None = None
    try:
        catalog = load_catalog(policies)
        result.controls = len(catalog.controls)
    except CitywardError as exc:
        result.problems += _lines(exc)
    if inventory_dir is not None and not Path(inventory_dir).is_dir():
        result.problems.append(Problem("inventory folder not found (given as the city's inventory folder)",
                                       file=str(inventory_dir), field="--inventory-dir"))
        return result
    if twice := _same_inventories(inventories):
        result.problems += twice
        return result
    zones: ZonesPolicy | None = None
    if zones_path:
        try:
            zones = load_zones(Path(zones_path))
        except CitywardError as exc:
            result.problems += _lines(exc, zones_path)
            # Host zones cannot be judged against a policy that does not load.
            result.problems.append(Problem("inventory not checked: the zones policy must load first",
                                           file=str(zones_path)))
            return result
    for inventory in inventories:
        try:
            report = validate_inventory(inventory, limit=limit, zones=zones, today=today,
                                        inventory_dir=inventory_dir, sliced=job_slices > 1)
        except CitywardError as exc:
            result.problems += _lines(exc, inventory)
            continue
        if report.zones is not None:
            result.zones, result.conduits = len(report.zones.zones), len(report.zones.conduits)
            result.exceptions = report.zones.exceptions_in_force(today)
        result.hosts += sorted(report.hosts)
        result.problems += report.problems
        _check_waivers(result, inventory, catalog, today, inventory_dir, job_slices > 1)
    return result


def _check_waivers(result: CheckResult, inventory: str | Path, catalog: Catalog | None, today: date | None,
                   inventory_dir: str | Path | None, sliced: bool) -> None:
    """The inventory's waiver file: its problems, its waivers in force and the expired ones.
    Without a catalog its control IDs are not judged (the catalog's own problems say why)."""
    try:
        found = read_waivers(inventory, inventory_dir=inventory_dir, today=today, sliced=sliced,
                             control_ids=catalog.ids if catalog is not None else None)
    except CitywardError as exc:  # the inventory listed once more, for the hosts a waiver may name
        result.problems += _lines(exc, inventory)
        return
    result.problems += found.problems
    result.warnings += found.warnings
    result.waivers += [w.describe() for w in found.waivers if not w.expired(today)]
