"""One host as the governance rules see it, gathered once before any rule runs: its variables,
its device record (validated whole, and field by field), the city's files, and the problems of
CW-GOV-01 (the record is complete and valid, the zone is known).

A field no rule may rely on is left out of `fields`: one that is invalid, templated or
vault-encrypted (ansible-inventory does not render either). The redundancy problems (`pairing`)
are CW-GOV-01's and also the reason of CW-RES-01.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ansible_collections.cityward.hardening.plugins.plugin_utils.inventory_schema import SCHEMA_VAR, check_schema
from ansible_collections.cityward.hardening.plugins.plugin_utils.unwrap import plain
from pydantic import ValidationError

from cityward.city_files import CityFiles, inventory_dirs, load_city
from cityward.device import NO_PEER, Device, valid_device_fields
from cityward.errors import CitywardError
from cityward.problems import Problem
from cityward.record_problems import field_messages, show_value, templated_fields
from cityward.zones import ZonesPolicy, policy_for_hosts

# Assets whose loss stops a city service: they need a manual-override runbook (CW-GOV-05) and a
# redundancy partner or degraded mode (CW-RES-01).
CRITICAL = ("critical", "high")

Found = list[tuple[str, str]]  # (field, message)


@dataclass(frozen=True)
class HostContext:
    name: str
    hostvars: Mapping  # as `ansible-inventory --list` (or testinfra's ansible backend) gives them
    today: date
    dirs: list[Path]  # where the inventory's relative paths resolve (cityward.city_files.inventory_dirs)
    zone: Any  # cityward_zone as given
    record: dict  # cityward_device as given; {} when it is missing or not a mapping
    device: Device | None  # the whole record, validated; None when CW-GOV-01 found any problem
    fields: Mapping[str, Any]  # the device fields valid on their own, minus templated ones
    problems: tuple[Problem, ...]  # CW-GOV-01's, by field (no file, no host)
    pairing: tuple[tuple[str, str], ...]  # (field, message): the redundancy declaration's problems
    city: CityFiles

    def needs(self, *names: str) -> str:
        """'' when every device field of `names` is known, else why a rule cannot judge."""
        missing = [n for n in names if n not in self.fields]
        if missing:
            listed = ", ".join(f"cityward_device.{n}" for n in missing)
            return f"cannot assess: {listed} missing or invalid (see CW-GOV-01)"
        return ""

    def stale(self, when: date, what: str) -> str:
        """'' when `when` lies within the 12 months up to today, else why not."""
        if when > self.today:
            return f"{what} {when} is in the future"
        if when < _one_year_before(self.today):
            return f"{what} {when} is more than 12 months ago ({(self.today - when).days} days)"
        return ""


def _one_year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def gather(name: str, hostvars: Mapping, inventory: str | Path, *, all_hosts: Iterable[str] | None = None,
           zones: ZonesPolicy | None = None, today: date | None = None,
           city_files: CityFiles | None = None) -> HostContext:
    """The context of host `name`; see cityward.governance.assess for the arguments."""
    today = today or date.today()
    no_policy = ""
    try:
        zones = zones or policy_for_hosts({name: hostvars}, inventory)
    except CitywardError as exc:  # no zones policy, or a bad one: the zone cannot be judged (CW-GOV-01)
        no_policy = str(exc)
    dirs = inventory_dirs(inventory)
    raw = plain(hostvars.get("cityward_device"))
    zone = plain(hostvars.get("cityward_zone"))
    record = raw if isinstance(raw, dict) else {}
    templated = templated_fields(raw, "cityward_device") if isinstance(raw, dict) else []
    device, invalid = _validated(raw, templated)
    fields = _known_fields(record, templated)
    pairing = _pairing_problems(name, fields, all_hosts)
    problems = [*_schema_problems(hostvars), *_zone_problems(zone, zones, no_policy), *invalid,
                *_runbook_problems(fields, record), *pairing]
    return HostContext(
        name=name, hostvars=hostvars, today=today, dirs=dirs, zone=zone, record=record,
        device=None if problems else device, fields=fields,
        problems=tuple(Problem(msg, field=where) for where, msg in problems), pairing=tuple(pairing),
        city=city_files or load_city(hostvars.get("cityward_city"), dirs))


def _schema_problems(hostvars: Mapping) -> Found:
    """The inventory is written for variables this collection reads (CW-RES-04, as the preflight role)."""
    try:
        check_schema(plain(hostvars.get(SCHEMA_VAR)))
    except CitywardError as exc:
        return [(SCHEMA_VAR, str(exc))]
    return []


def _zone_problems(zone: Any, zones: ZonesPolicy | None, no_policy: str) -> Found:
    if zone is None:
        return [("cityward_zone", "required field missing (a zone of the zones policy)")]
    if no_policy:
        return [("cityward_zone", f"cannot be checked: {no_policy}")]
    if not isinstance(zone, str) or zone not in zones.zones:
        known = ", ".join(zones.zones)
        return [("cityward_zone", f"unknown zone {show_value(zone)} (known: {known})")]
    return []


def _validated(raw: Any, templated: Found) -> tuple[Device | None, Found]:
    """The device record validated whole, and its problems (templated values first)."""
    if raw is None:
        return None, [("cityward_device", "required field missing (vendor, model, firmware, owner, role, "
                                          "criticality, support_end_of_life, vendor_sla, maintenance_window)")]
    if not isinstance(raw, dict):
        return None, [("cityward_device", f"expected a mapping (got {show_value(raw)})")]
    if any(where == "cityward_device" for where, _ in templated):  # all of it vault-encrypted
        return None, list(templated)
    try:
        return Device.model_validate(raw), list(templated)
    except ValidationError as exc:
        return None, [*templated, *field_messages(exc, "cityward_device")]


def _known_fields(record: dict, templated: Found) -> dict[str, Any]:
    """The fields valid on their own, less the templated ones: a templated field is not known."""
    unknown = {where.split(".")[1].split("[")[0] if "." in where else "*" for where, _ in templated}
    if "*" in unknown:
        return {}
    return {k: v for k, v in valid_device_fields(record).items() if k not in unknown}


def _runbook_problems(fields: Mapping[str, Any], record: dict) -> Found:
    criticality = fields.get("criticality")
    if criticality in CRITICAL and "runbook" not in record:
        return [("cityward_device.runbook",
                 f"required when criticality is {criticality} (the manual-override runbook)")]
    return []


def _pairing_problems(name: str, fields: Mapping[str, Any], all_hosts: Iterable[str] | None) -> Found:
    """A redundancy partner must be another host of the inventory; no partner needs a degraded mode."""
    peer = fields.get("redundancy")
    if peer == NO_PEER and not fields.get("degraded_mode"):
        return [("cityward_device.degraded_mode", "required when redundancy is 'none'")]
    if peer and peer != NO_PEER:
        if peer == name:
            return [("cityward_device.redundancy", "a host cannot be its own redundancy partner")]
        if all_hosts is not None and peer not in set(all_hosts):
            return [("cityward_device.redundancy", f"unknown host '{peer}' (not in the inventory)")]
    return []
