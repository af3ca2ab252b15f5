"""Device and city metadata in an inventory: the schema, and the governance checks built on it.

What the two checklists ask of a city that is not a host setting (asset inventory, vendor SLAs,
life cycle, CSIRT, manual-override runbooks, training, risk reviews, redundancy) is recorded as
inventory variables and checked here:

* per host, `cityward_zone` (a zone of policies/zones.yml) and `cityward_device` (`Device`);
* per city (group_vars/all), `cityward_city` (`City`) naming the incident-contacts file and the
  vendor requirements file, paths relative to the inventory directory.

`validate_inventory()` reads an inventory through `ansible-inventory --list` (the same view the
playbooks and the audit get) and reports every problem as one line naming the host and the field.
`assess_host()` turns one host's variables into a verdict per control; the checks in
src/cityward/checks/test_metadata.py assert those verdicts under Molecule and `cityward audit`:

    CW-GOV-01  metadata complete and valid, zone known        CW-GOV-02  not past vendor end of support
    CW-GOV-03  vendor SLA resolves to security terms          CW-GOV-04  incident contacts valid and reviewed
    CW-GOV-05  manual-override runbook exists and exercised   CW-GOV-08  owner training within 12 months
    CW-GOV-09  risk review with a data-retention limit        CW-GOV-11  vendor security requirements recorded
    CW-RES-01  critical assets declare redundancy or a degraded mode
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from ansible_collections.cityward.hardening.plugins.plugin_utils.inventory_schema import SCHEMA_VAR, check_schema
from ansible_collections.cityward.hardening.plugins.plugin_utils.unwrap import plain
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from cityward.errors import CitywardError
from cityward.hostvars import host_variable_problems, records_problem
from cityward.mirrors import mirror_problems
from cityward.problem_lines import problem_of
from cityward.problems import Problem
from cityward.yamlfile import check_regular_file, check_yaml_file, load_yaml
from cityward.zones import ZonesPolicy, policy_for_hosts

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
CRITICALITIES = ("critical", "high", "medium", "low")
# Assets whose loss stops a city service: they need a manual-override runbook (CW-GOV-05) and a
# redundancy partner or degraded mode (CW-RES-01).
CRITICAL = ("critical", "high")
EOL_NOTICE_DAYS = 180
NO_PEER = "none"
# How many days an approved security update may stay pending on a device that records no
# cityward_device.patch_sla_days (CW-PATCH-07): the one default, read by the audit too.
PATCH_SLA_DAYS_DEFAULT = 30

# --- field types ------------------------------------------------------------------------------

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: Any) -> date:
    # YAML turns 2030-06-30 into a date, ansible-inventory's JSON into a string: accept both, and
    # nothing else (pydantic would read an integer as a Unix timestamp).
    if isinstance(value, datetime):
        raise ValueError(f"invalid date '{value.isoformat()}' (expected YYYY-MM-DD, without a time)")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"invalid date {_show(value)} (expected YYYY-MM-DD)")


def _show(value: Any) -> str:
    text = f"'{value}'" if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _hh_mm(value: Any) -> str:
    if isinstance(value, str) and re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value.strip()):
        return value.strip()
    # YAML 1.1 reads an unquoted 02:00 as the sexagesimal integer 120.
    hint = "; quote it in YAML" if isinstance(value, int) else ""
    raise ValueError(f"invalid time {_show(value)} (expected HH:MM, 00:00 to 23:59{hint})")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
ClockTime = Annotated[str, BeforeValidator(_hh_mm)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MaintenanceWindow(_Strict):
    days: list[Weekday] = Field(min_length=1, max_length=7)
    start: ClockTime
    duration_minutes: Annotated[int, Field(strict=True, ge=15, le=720)]

    @model_validator(mode="after")
    def _days_unique(self):
        if len(set(self.days)) != len(self.days):
            raise ValueError("days must not repeat a weekday")
        return self


class Runbook(_Strict):
    path: Text
    last_exercised: IsoDate


class RiskReview(_Strict):
    date: IsoDate
    reference: Text
    # The data-retention limit the review set (CW-GOV-09); logs must not be kept longer.
    data_retention_days: Annotated[int, Field(strict=True, ge=1, le=36500)] | None = None


class Device(_Strict):
    """`cityward_device`: what the city knows about one asset."""

    vendor: Text
    model: Text
    firmware: Text
    owner: Text
    role: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=60)]
    criticality: Literal["critical", "high", "medium", "low"]
    support_end_of_life: IsoDate
    replacement_plan: Text | None = None
    vendor_sla: Text
    maintenance_window: MaintenanceWindow
    runbook: Runbook | None = None
    training_last_completed: IsoDate | None = None
    risk_review: RiskReview | None = None
    redundancy: Text | None = None
    degraded_mode: Text | None = None
    patch_sla_days: Annotated[int, Field(strict=True, ge=1, le=365)] = PATCH_SLA_DAYS_DEFAULT


def patch_sla_days(raw: Any) -> int | None:
    """The patch SLA of a device record as given (`cityward_device`): its patch_sla_days, the
    default when it records none, None when the field is invalid (CW-GOV-01 names it)."""
    raw = plain(raw)
    value = raw.get("patch_sla_days") if isinstance(raw, dict) else None
    if value is None:
        return PATCH_SLA_DAYS_DEFAULT
    try:
        return _field_adapter("patch_sla_days").validate_python(value)
    except ValidationError:
        return None


class City(_Strict):
    """`cityward_city` (group_vars/all): the city's name and its governance files."""

    name: Text
    incident_contacts_file: Text
    vendor_requirements_file: Text | None = None


class Contact(_Strict):
    name: Text
    role: Text
    phone: Text | None = None
    email: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    hours: Text | None = None

    @model_validator(mode="after")
    def _reachable(self):
        if not (self.phone or self.email):
            raise ValueError("a contact needs a phone or an email")
        return self


class Escalation(_Strict):
    after_minutes: Annotated[int, Field(strict=True, ge=0, le=10080)]
    contact: Text


class IncidentContacts(_Strict):
    """The city's incident-contacts file (CW-GOV-04): who to call, in which order."""

    city: Text | None = None
    reviewed: IsoDate
    contacts: list[Contact] = Field(min_length=1)
    escalation: list[Escalation] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self):
        names = [c.name for c in self.contacts]
        if len(set(names)) != len(names):
            raise ValueError("contact names must be unique")
        if not any(c.role.lower() == "csirt" for c in self.contacts):
            raise ValueError("no contact has role 'csirt' (the city's incident response team)")
        unknown = sorted({e.contact for e in self.escalation} - set(names))
        if unknown:
            raise ValueError(f"escalation names unknown contact(s): {', '.join(unknown)}")
        steps = [e.after_minutes for e in self.escalation]
        if steps != sorted(steps):
            raise ValueError("escalation steps must be in order of after_minutes")
        return self


class VendorSla(_Strict):
    reference: Text
    incident_notification_hours: Annotated[int, Field(strict=True, ge=1, le=720)]
    vulnerability_disclosure: Text
    valid_until: IsoDate | None = None


class Vendor(_Strict):
    name: Text
    procurement_reference: Text | None = None
    security_requirements: list[Text] = Field(default_factory=list)
    slas: list[VendorSla] = Field(default_factory=list)


class VendorRequirements(_Strict):
    """The vendor requirements file: what each vendor and service provider was procured against,
    and the security terms of its SLAs (CW-GOV-03, CW-GOV-11)."""

    vendors: list[Vendor] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self):
        names = [v.name.lower() for v in self.vendors]
        if len(set(names)) != len(names):
            raise ValueError("vendor names must be unique")
        refs = [s.reference for v in self.vendors for s in v.slas]
        if len(set(refs)) != len(refs):
            raise ValueError("SLA references must be unique across vendors")
        return self

    def vendor(self, name: str) -> Vendor | None:
        return next((v for v in self.vendors if v.name.lower() == name.lower()), None)

    def sla(self, reference: str) -> tuple[Vendor, VendorSla] | None:
        return next(((v, s) for v in self.vendors for s in v.slas if s.reference == reference), None)


# --- error lines -----------------------------------------------------------------------------


def _loc(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        part = part if isinstance(part, int) or str(part).isprintable() else repr(part)  # a key with a newline
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _messages(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """(field, message) for each pydantic error, the field spelled from `prefix`."""
    found = []
    for err in exc.errors():
        loc = [p for p in err.get("loc", ()) if not (isinstance(p, str) and p.startswith("function-"))]
        where = _loc([prefix, *loc] if prefix else loc) or prefix or "(document)"
        kind, msg = err.get("type", ""), err.get("msg", "invalid").removeprefix("Value error, ")
        value = err.get("input")
        if kind == "missing":
            msg = "required field missing"
        elif kind == "extra_forbidden":
            msg = "unknown key"
        elif not msg.startswith("invalid ") and not isinstance(value, dict | list):
            hint = "; quote it in YAML" if isinstance(value, int | float) and kind == "string_type" else ""
            msg = f"{msg} (got {_show(value)}{hint})"
        found.append((where, msg))
    return found


# --- values as ansible-inventory gives them (cityward.hardening's plugin_utils.unwrap.plain) -----


def _templated(value: Any, where: str) -> list[tuple[str, str]]:
    """Jinja in metadata: ansible-inventory does not render it, so the audit cannot check it."""
    if isinstance(value, dict):
        if "__ansible_vault" in value:
            return [(where, "vault-encrypted metadata cannot be checked: write the value itself")]
        return [f for k, v in value.items() for f in _templated(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [f for i, v in enumerate(value) for f in _templated(v, f"{where}[{i}]")]
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        return [(where, f"templated value {_show(value)} cannot be checked: write the value itself")]
    return []


@cache
def _field_adapter(name: str) -> TypeAdapter:
    return TypeAdapter(Device.model_fields[name].rebuild_annotation())


def _device_fields(raw: Mapping) -> dict[str, Any]:
    """The fields of a device that are valid on their own, so one bad field spoils one check only."""
    values = {}
    for name in Device.model_fields:
        if raw.get(name) is not None:
            try:
                values[name] = _field_adapter(name).validate_python(raw[name])
            except ValidationError:
                continue
    return values


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


def _load_model(path: Path, model: type[BaseModel]) -> tuple[Any, list[Problem]]:
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
        return None, [Problem(msg, file=str(path), field=where) for where, msg in _messages(exc)]


def _city_file(city: City, variable: str, problems: list[Problem]) -> list[Problem]:
    """A records file's problems, named by their file when known, else by the variable naming it."""
    entry = f"city '{city.name}'"
    return [replace(p, host=entry, field=p.field or variable) for p in problems]


def load_city(raw_city: Any, dirs: list[Path]) -> CityFiles:
    raw_city = plain(raw_city)
    if raw_city is None:
        return CityFiles(None, [Problem("required field missing (set it in group_vars/all)", field="cityward_city")])
    templated = _templated(raw_city, "cityward_city")
    if templated:
        return CityFiles(None, [Problem(msg, field=where) for where, msg in templated])
    if not isinstance(raw_city, dict):
        return CityFiles(None, [Problem(f"expected a mapping (got {_show(raw_city)})", field="cityward_city")])
    try:
        city = City.model_validate(raw_city)
    except ValidationError as exc:
        return CityFiles(None, [Problem(msg, field=where) for where, msg in _messages(exc, "cityward_city")])
    files = CityFiles(city)
    files.contacts_path = resolve(dirs, city.incident_contacts_file)
    files.contacts, found = _load_model(files.contacts_path, IncidentContacts)
    files.contacts_problem = "; ".join(map(str, found))
    files.problems += _city_file(city, "cityward_city.incident_contacts_file", found)
    if city.vendor_requirements_file:
        files.vendors_path = resolve(dirs, city.vendor_requirements_file)
        files.vendors, found = _load_model(files.vendors_path, VendorRequirements)
        files.vendors_problem = "; ".join(map(str, found))
        files.problems += _city_file(city, "cityward_city.vendor_requirements_file", found)
    return files


# --- verdicts per control ----------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    control: str
    status: Literal["passed", "failed", "not_applicable"]
    reason: str = ""


def _one_year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def _recent(when: date, today: date, what: str) -> str:
    """'' when `when` lies within the 12 months up to today, else why not."""
    if when > today:
        return f"{what} {when} is in the future"
    if when < _one_year_before(today):
        return f"{what} {when} is more than 12 months ago ({(today - when).days} days)"
    return ""


# journald's MaxRetentionSec= units (systemd.time(7)), in days.
_SPAN_UNITS = {
    "s": 1 / 86400, "sec": 1 / 86400, "second": 1 / 86400, "seconds": 1 / 86400,
    "m": 1 / 1440, "min": 1 / 1440, "minute": 1 / 1440, "minutes": 1 / 1440,
    "h": 1 / 24, "hr": 1 / 24, "hour": 1 / 24, "hours": 1 / 24,
    "d": 1, "day": 1, "days": 1, "w": 7, "week": 7, "weeks": 7,
    "M": 30.44, "month": 30.44, "months": 30.44, "y": 365.25, "year": 365.25, "years": 365.25,
}
_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)")
# roles/logging keeps the journal this long unless the city sets cityward_log_retention.
LOGGING_DEFAULT_RETENTION = "90day"


def span_days(value: Any) -> float | None:
    """Days in a systemd time span ('90day', '1y 6month', '12h'); None when it is not one."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) / 86400
    if not isinstance(value, str) or not value.strip():
        return None
    text, total = value.strip(), 0.0
    if _SPAN.sub("", text).strip():
        return None
    for number, unit in _SPAN.findall(text):
        if unit not in _SPAN_UNITS and unit != "":
            return None
        total += float(number) * _SPAN_UNITS.get(unit, 1 / 86400)
    return total


def log_retention(hostvars: Mapping) -> tuple[float | None, str]:
    """(days, where it comes from) of the journal retention the logging role applies to a host."""
    for name in ("logging_journal_max_retention", "cityward_log_retention"):
        value = plain(hostvars.get(name))
        if value is not None and not (isinstance(value, str) and "{{" in value):
            return span_days(value), f"{name} {_show(value)}"
    return span_days(LOGGING_DEFAULT_RETENTION), f"the logging role's default '{LOGGING_DEFAULT_RETENTION}'"


@dataclass
class HostMetadata:
    """One host: its metadata as given and as validated, its problems and its verdicts."""

    name: str
    zone: str | None
    device: Device | None
    raw: dict
    groups: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # by field, without file or host (CW-GOV-01)
    verdicts: dict[str, Verdict] = field(default_factory=dict)


def _needs(fields: dict, *names: str) -> str:
    missing = [n for n in names if n not in fields]
    if missing:
        listed = ", ".join(f"cityward_device.{n}" for n in missing)
        return f"cannot assess: {listed} missing or invalid (see CW-GOV-01)"
    return ""


def assess_host(name: str, hostvars: Mapping, inventory: str | Path, *, all_hosts: Iterable[str] | None = None,
                zones: ZonesPolicy | None = None, today: date | None = None,
                city_files: CityFiles | None = None) -> HostMetadata:
    """Validate one host's metadata and give the verdict of every metadata control.

    `hostvars` are the host's variables as `ansible-inventory --list` (or testinfra's
    `host.ansible.get_variables()`) gives them; `all_hosts` the inventory's host names (for
    redundancy partners); relative paths resolve against `inventory` (see `inventory_dirs`).
    """
    today = today or date.today()
    no_policy = ""
    try:
        zones = zones or policy_for_hosts({name: hostvars}, inventory)
    except CitywardError as exc:  # no zones policy, or a bad one: the zone cannot be judged (CW-GOV-01)
        no_policy = str(exc)
    dirs = inventory_dirs(inventory)
    raw = plain(hostvars.get("cityward_device"))
    zone = plain(hostvars.get("cityward_zone"))
    host = HostMetadata(name=name, zone=zone if isinstance(zone, str) else None,
                        device=None, raw=raw if isinstance(raw, dict) else {},
                        groups=list(hostvars.get("group_names") or []))
    problems: list[tuple[str, str]] = []
    pairing: list[tuple[str, str]] = []  # redundancy problems, also the reason of CW-RES-01

    # The inventory is written for variables this collection reads (CW-RES-04, as the preflight role).
    try:
        check_schema(plain(hostvars.get(SCHEMA_VAR)))
    except CitywardError as exc:
        problems.append((SCHEMA_VAR, str(exc)))
    # CW-GOV-01: the zone and the device record are complete and valid.
    if zone is None:
        problems.append(("cityward_zone", "required field missing (a zone of the zones policy)"))
    elif no_policy:
        problems.append(("cityward_zone", f"cannot be checked: {no_policy}"))
    elif not isinstance(zone, str) or zone not in zones.zones:
        known = ", ".join(zones.zones)
        problems.append(("cityward_zone", f"unknown zone {_show(zone)} (known: {known})"))
    templated: list[tuple[str, str]] = []
    if raw is None:
        problems.append(("cityward_device", "required field missing (vendor, model, firmware, owner, role, "
                                            "criticality, support_end_of_life, vendor_sla, maintenance_window)"))
    elif not isinstance(raw, dict):
        problems.append(("cityward_device", f"expected a mapping (got {_show(raw)})"))
    else:
        templated = _templated(raw, "cityward_device")
        problems += templated
        try:
            if not any(where == "cityward_device" for where, _ in templated):  # not all vault-encrypted
                host.device = Device.model_validate(raw)
        except ValidationError as exc:
            problems += _messages(exc, "cityward_device")
    # A templated field is not known, so no check may rely on it.
    unknown = {where.split(".")[1].split("[")[0] if "." in where else "*" for where, _ in templated}
    fields = {} if "*" in unknown else {k: v for k, v in _device_fields(host.raw).items() if k not in unknown}
    criticality = fields.get("criticality")
    if criticality in CRITICAL and "runbook" not in host.raw:
        problems.append(("cityward_device.runbook",
                         f"required when criticality is {criticality} (the manual-override runbook)"))
    peer = fields.get("redundancy")
    if peer == NO_PEER and not fields.get("degraded_mode"):
        pairing.append(("cityward_device.degraded_mode", "required when redundancy is 'none'"))
    elif peer and peer != NO_PEER:
        if peer == name:
            pairing.append(("cityward_device.redundancy", "a host cannot be its own redundancy partner"))
        elif all_hosts is not None and peer not in set(all_hosts):
            pairing.append(("cityward_device.redundancy", f"unknown host '{peer}' (not in the inventory)"))
    problems += pairing
    if problems:
        host.device = None
    host.problems = [Problem(msg, field=where) for where, msg in problems]

    verdicts: list[Verdict] = []
    add = verdicts.append
    if host.problems:
        add(Verdict("CW-GOV-01", "failed", "; ".join(map(str, host.problems))))
    else:
        add(Verdict("CW-GOV-01", "passed"))

    # CW-GOV-02: life cycle against the vendor's end of support.
    missing = _needs(fields, "support_end_of_life")
    if missing:
        add(Verdict("CW-GOV-02", "failed", missing))
    else:
        eol = fields["support_end_of_life"]
        left = (eol - today).days
        if left < 0:
            add(Verdict("CW-GOV-02", "failed", f"vendor support ended {eol} ({-left} days ago)"))
        elif left <= EOL_NOTICE_DAYS and not fields.get("replacement_plan"):
            add(Verdict("CW-GOV-02", "failed",
                        f"vendor support ends {eol} (in {left} days) and no replacement_plan is recorded"))
        else:
            add(Verdict("CW-GOV-02", "passed"))

    city = city_files or load_city(hostvars.get("cityward_city"), dirs)

    # CW-GOV-03: the SLA reference resolves to a record with security terms.
    missing = _needs(fields, "vendor_sla")
    if missing:
        add(Verdict("CW-GOV-03", "failed", missing))
    elif city.city is None or not city.city.vendor_requirements_file:
        add(Verdict("CW-GOV-03", "failed", f"SLA '{fields['vendor_sla']}' cannot be resolved: "
                                           "cityward_city.vendor_requirements_file is not set"))
    elif city.vendors is None:
        add(Verdict("CW-GOV-03", "failed", city.vendors_problem))
    else:
        found = city.vendors.sla(fields["vendor_sla"])
        if found is None:
            add(Verdict("CW-GOV-03", "failed",
                        f"SLA '{fields['vendor_sla']}' is not in {city.vendors_path} (no security terms on record)"))
        elif found[1].valid_until and found[1].valid_until < today:
            add(Verdict("CW-GOV-03", "failed", f"SLA '{fields['vendor_sla']}' expired on {found[1].valid_until}"))
        else:
            add(Verdict("CW-GOV-03", "passed"))

    # CW-GOV-04: the city's incident contacts exist, name a CSIRT, and were reviewed this year.
    if city.city is None:
        add(Verdict("CW-GOV-04", "failed", "; ".join(map(str, city.problems)) or "no cityward_city"))
    elif city.contacts is None:
        add(Verdict("CW-GOV-04", "failed", city.contacts_problem))
    else:
        stale = _recent(city.contacts.reviewed, today, "incident contacts last reviewed")
        add(Verdict("CW-GOV-04", "failed", stale) if stale else Verdict("CW-GOV-04", "passed"))

    # CW-GOV-05: critical assets have a manual-override runbook, exercised within 12 months.
    missing = _needs(fields, "criticality")
    runbook = fields.get("runbook")
    if missing:
        add(Verdict("CW-GOV-05", "failed", missing))
    elif runbook is None and criticality not in CRITICAL:
        add(Verdict("CW-GOV-05", "not_applicable",
                    f"not applicable: criticality {criticality} needs no manual-override runbook"))
    elif runbook is None:
        add(Verdict("CW-GOV-05", "failed", f"criticality {criticality} but no valid cityward_device.runbook"))
    else:
        path = resolve(dirs, runbook.path)
        if confined := records_problem(dirs, runbook.path):  # a system file must not pass for a runbook
            add(Verdict("CW-GOV-05", "failed", f"runbook {confined}"))
        elif not path.is_file():
            add(Verdict("CW-GOV-05", "failed", f"runbook {path} not found"))
        elif path.stat().st_size == 0:
            add(Verdict("CW-GOV-05", "failed", f"runbook {path} is empty"))
        else:
            stale = _recent(runbook.last_exercised, today, "runbook last exercised")
            add(Verdict("CW-GOV-05", "failed", stale) if stale else Verdict("CW-GOV-05", "passed"))

    # CW-GOV-08: the device owner's security training is recorded within 12 months.
    if "training_last_completed" not in fields:
        owner = fields.get("owner", "(unknown owner)")
        add(Verdict("CW-GOV-08", "failed", f"no valid training_last_completed for owner '{owner}'"))
    else:
        stale = _recent(fields["training_last_completed"], today, "owner training last completed")
        add(Verdict("CW-GOV-08", "failed", stale) if stale else Verdict("CW-GOV-08", "passed"))

    # CW-GOV-09: a legal, security and privacy risk review sets a data-retention limit, and the
    # host keeps its logs no longer than that.
    review = fields.get("risk_review")
    kept, kept_from = log_retention(hostvars)
    if review is None:
        add(Verdict("CW-GOV-09", "failed", "no valid cityward_device.risk_review"))
    elif review.date > today:
        add(Verdict("CW-GOV-09", "failed", f"risk review {review.reference} is dated in the future ({review.date})"))
    elif review.data_retention_days is None:
        add(Verdict("CW-GOV-09", "failed", f"risk review {review.reference} sets no data_retention_days"))
    elif kept is None:
        add(Verdict("CW-GOV-09", "failed", f"cannot read the log retention {kept_from}"))
    elif math.floor(kept) > review.data_retention_days:  # '1y' is 365.25 days: a year is fine
        add(Verdict("CW-GOV-09", "failed", f"logs are kept {kept:g} days ({kept_from}), longer than the "
                                           f"{review.data_retention_days} days set by {review.reference}"))
    else:
        add(Verdict("CW-GOV-09", "passed"))

    # CW-GOV-11: the vendor's security requirements are on record.
    missing = _needs(fields, "vendor")
    if missing:
        add(Verdict("CW-GOV-11", "failed", missing))
    elif city.vendors is None:
        add(Verdict("CW-GOV-11", "failed", city.vendors_problem
                    or "cityward_city.vendor_requirements_file is not set"))
    else:
        vendor = city.vendors.vendor(fields["vendor"])
        if vendor is None:
            add(Verdict("CW-GOV-11", "failed", f"vendor '{fields['vendor']}' has no record in {city.vendors_path}"))
        elif not vendor.security_requirements:
            add(Verdict("CW-GOV-11", "failed", f"vendor '{vendor.name}' has no security_requirements recorded"))
        else:
            add(Verdict("CW-GOV-11", "passed"))

    # CW-RES-01: critical assets name a redundancy partner or a degraded mode.
    if missing := _needs(fields, "criticality"):
        add(Verdict("CW-RES-01", "failed", missing))
    elif criticality not in CRITICAL:
        add(Verdict("CW-RES-01", "not_applicable",
                    f"not applicable: criticality {criticality} needs no redundancy declaration"))
    elif not peer:
        add(Verdict("CW-RES-01", "failed", f"criticality {criticality} but no cityward_device.redundancy "
                                           "(a partner host, or 'none' with a degraded_mode)"))
    elif pairing:
        add(Verdict("CW-RES-01", "failed", "; ".join(f"field {where}: {msg}" for where, msg in pairing)))
    else:
        add(Verdict("CW-RES-01", "passed"))

    host.verdicts = {v.control: v for v in verdicts}
    return host


# --- the whole inventory -----------------------------------------------------------------------


@dataclass
class InventoryReport:
    inventory: str
    hosts: dict[str, HostMetadata]
    cities: list[CityFiles]
    problems: list[Problem]  # the file (the inventory, or a finer one), the host or city, the field
    zones: ZonesPolicy | None = None  # the policy the hosts were checked against

    @property
    def ok(self) -> bool:
        return not self.problems


def _ansible_inventory() -> str:
    found = shutil.which("ansible-inventory") or str(Path(sys.executable).parent / "ansible-inventory")
    if not Path(found).exists():
        raise CitywardError("ansible-inventory not found: install cityward's virtualenv (scripts/bootstrap.sh)")
    return found


def _ansible_error(stderr: str) -> str:
    """ansible's own reason, short: its [ERROR] lines, the first underlying cause it warned about
    (e.g. the YAML problem) and where (file:line:column)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line.removeprefix("[ERROR]:").strip() for line in lines if line.startswith("[ERROR]")]
    causes = [lines[i + 1] for i, line in enumerate(lines[:-1]) if line == "<<< caused by >>>"]
    origins = [line.removeprefix("Origin:").strip() for line in lines if re.match(r"Origin: \S+:\d+", line)]
    parts = errors[:2]
    if causes and not any(causes[0] in part for part in parts):
        parts.append(causes[0])
    if origins:
        parts.append(f"({origins[0]})")
    return " ".join(parts or lines[-3:])[:800] or "ansible-inventory failed without a message"


RECORDS_DIR = "records"


def inventory_env() -> dict[str, str]:
    """Environment for ansible-inventory: a source it cannot parse is an error (by default only a
    warning, and the hosts silently vanish), and the city's records/ folder (incident contacts,
    vendor requirements, runbooks) is not an inventory source."""
    patterns = [p for p in os.environ.get("ANSIBLE_INVENTORY_IGNORE_REGEX", "").split(",") if p.strip()]
    return {
        "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true",
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
        "ANSIBLE_INVENTORY_IGNORE_REGEX": ",".join([*patterns, f"^{RECORDS_DIR}$"]),
        # A key given twice is an error, as in cityward's own loader (Ansible only warns by default).
        "ANSIBLE_DUPLICATE_YAML_DICT_KEY": "error",
    }


VARS_SUFFIXES = ("", ".yml", ".yaml", ".json")  # the files Ansible reads in group_vars/host_vars


def inventory_files(inventory: Path) -> list[tuple[Path, bool]]:
    """(path, is YAML) for the files ansible-inventory reads for `inventory`: the inventory file,
    or every file of the inventory folder but records/, and group_vars/ and host_vars/ next to it.
    Nothing outside the inventory folder is walked (a linked group_vars/ folder is walked itself,
    as Ansible reads it; links inside it are not followed)."""
    base = inventory if inventory.is_dir() else inventory.parent
    found = [] if inventory.is_dir() else [(inventory, inventory.suffix in VARS_SUFFIXES[1:])]
    tops = [base] if inventory.is_dir() else []
    tops += [base / name for name in ("group_vars", "host_vars") if (base / name).is_dir()]
    for top in tops:
        for folder, dirs, names in os.walk(top):
            if Path(folder) == base:  # its vars folders are tops of their own; records/ is not inventory
                dirs[:] = [d for d in dirs if d not in (RECORDS_DIR, "group_vars", "host_vars")]
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            in_vars = top != base
            for name in sorted(names):
                path = Path(folder, name)
                found.append((path, path.suffix in (VARS_SUFFIXES if in_vars else VARS_SUFFIXES[1:])))
    return found


def screen_inventory(inventory: Path) -> None:
    """Before ansible-inventory reads an inventory: refuse its files that are not regular files
    (a FIFO would hold ansible-inventory until its timeout), too large, not UTF-8, too deep or an
    alias bomb, each as one line naming the file."""
    problems = []
    for path, is_yaml in inventory_files(inventory):
        try:
            check_yaml_file(path) if is_yaml else check_regular_file(path)
        except CitywardError as exc:
            problems.append(str(exc))
    if problems:
        raise CitywardError("\n".join(problems))


def _broken_yaml(inventory: Path) -> str:
    """The first YAML file of the inventory (its hosts files, group_vars and host_vars; never
    records/) that does not parse, as 'file: line L, column C: invalid YAML: why'."""
    for path, is_yaml in inventory_files(inventory):
        try:
            if is_yaml:
                load_yaml(path)
        except CitywardError as exc:
            if "constructor for the tag '!" not in str(exc):  # Ansible's own tags (!vault) are fine
                return str(exc)
    return ""


def _warnings(stderr: str) -> list[str]:
    """ansible-inventory's [WARNING] lines, each with the file it names (its Origin line)."""
    lines = [line.strip() for line in stderr.splitlines()]
    found = []
    for index, line in enumerate(lines):
        if line.startswith("[WARNING]"):
            origin = next((m for later in lines[index + 1:index + 4]
                           if (m := re.match(r"Origin: (\S+?):(\d+)", later))), None)
            text = line.removeprefix("[WARNING]:").strip()
            found.append(f"{origin[1]}: line {origin[2]}: ansible-inventory warning: {text}" if origin
                         else f"ansible-inventory warning: {text}")
    return found


def list_inventory(inventory: str | Path, limit: str | None = None, *, export: bool = False) -> dict:
    """`ansible-inventory -i INVENTORY --list` as data; a broken inventory is a CitywardError with
    ansible's own message. The vault password comes from ANSIBLE_VAULT_PASSWORD_FILE, if set.
    `export`: variables stay on the groups that set them (`--export`, what AWX imports) instead
    of being merged into each host's."""
    path = Path(inventory)
    if not path.exists():
        raise CitywardError(f"{inventory}: inventory not found")
    screen_inventory(path)
    cmd = [_ansible_inventory(), "-i", str(path), "--list"] + (["--limit", limit] if limit else []) \
        + (["--export"] if export else [])
    env = {**os.environ, **inventory_env()}
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        raise CitywardError(f"{inventory}: ansible-inventory did not answer within 300 s") from None
    if result.returncode != 0:
        reason = _ansible_error(result.stderr)
        if "YAML parsing failed" in reason and (culprit := _broken_yaml(path)):
            raise CitywardError(culprit)  # ansible does not say which file: name it
        if "vault" in reason.lower() and not os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE"):
            reason += " (set ANSIBLE_VAULT_PASSWORD_FILE to the inventory's vault password file)"
        raise CitywardError(f"{inventory}: ansible-inventory failed: {reason}")
    if warned := _warnings(result.stderr):  # ambiguity is not accepted in silence
        raise CitywardError("\n".join(w if w[0] != "a" else f"{inventory}: {w}" for w in warned))
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        raise CitywardError(f"{inventory}: ansible-inventory gave no JSON: {result.stdout[:200]!r}") from None


def validate_inventory(inventory_path: str | Path, limit: str | None = None, *,
                       zones: ZonesPolicy | None = None, today: date | None = None,
                       inventory_dir: str | Path | None = None, sliced: bool = False) -> InventoryReport:
    """Validate the metadata of every host (of `limit`, when given) of an inventory.

    Never raises for bad metadata: each problem is one line of the report naming host (or city)
    and field. Raises CitywardError only when the inventory itself cannot be read.

    An inventory generated away from the city's folder (the one AWX hands a job, a slice of
    cityward.slices) names that folder in `inventory_dir`: relative paths resolve there. `sliced`:
    the inventory holds one slice of the city's hosts, so a redundancy partner outside it is not
    an error (it is another slice's host; the unsliced check and the audit verify it).
    """
    label = str(inventory_path)
    base = inventory_dir or inventory_path
    full = list_inventory(inventory_path)
    everyone = None if sliced else set(full.get("_meta", {}).get("hostvars", {}))
    listed = list_inventory(inventory_path, limit) if limit else full
    hostvars = listed.get("_meta", {}).get("hostvars", {})
    if not hostvars:
        raise CitywardError(f"{label}: no hosts match {limit!r}" if limit else f"{label}: no hosts")
    group_names = _group_names(listed)
    zones = zones or policy_for_hosts(full.get("_meta", {}).get("hostvars", {}), base)
    dirs = inventory_dirs(base)
    cities: dict[str, CityFiles] = {}
    problems: list[Problem] = []
    hosts: dict[str, HostMetadata] = {}
    for name in sorted(hostvars):
        variables = dict(hostvars[name])
        variables.setdefault("group_names", group_names.get(name, []))
        key = json.dumps(plain(variables.get("cityward_city")), sort_keys=True, default=str)
        if key not in cities:
            cities[key] = load_city(variables.get("cityward_city"), dirs)
            if cities[key].city is not None:
                problems += [_placed(p, label) for p in cities[key].problems]
        city = cities[key]
        if city.city is None:
            problems += [_placed(p, label, name) for p in city.problems]
        host = assess_host(name, variables, base, all_hosts=everyone, zones=zones, today=today,
                           city_files=city)
        problems += [_placed(p, label, name) for p in host.problems]
        hosts[name] = host
    problems += host_variable_problems(label, hostvars, zones, groups=group_names, dirs=dirs, today=today)
    problems += mirror_problems(label, hostvars, full.get("_meta", {}).get("hostvars", {}), zones, sliced=sliced)
    return InventoryReport(label, hosts, [c for c in cities.values() if c.city], problems, zones)


def _placed(problem: Problem | str, file: str, host: str | None = None) -> Problem:
    """The problem with the file (the inventory when it names no finer one) and the host filled in."""
    if isinstance(problem, str):
        problem = problem_of(problem)
    return replace(problem, file=problem.file or file, host=problem.host or host)


def _group_names(listing: dict) -> dict[str, list[str]]:
    """host -> the groups it belongs to (directly or through child groups), 'all' excepted."""
    def members(group: str, seen: frozenset = frozenset()) -> set[str]:
        body = listing.get(group, {})
        hosts = set(body.get("hosts", []))
        for child in body.get("children", []):
            if child not in seen:
                hosts |= members(child, seen | {group})
        return hosts

    names: dict[str, list[str]] = {}
    for group in sorted(g for g in listing if g not in ("_meta", "all")):
        for host in members(group):
            names.setdefault(host, []).append(group)
    return names


def forwarding_siem(hostvars: Mapping[str, Any]) -> str:
    """The SIEM a host forwards its logs to, as the logging role resolves it: the role's own
    logging_siem_host wins over the city-wide cityward_siem_host, even when empty (the SIEM
    itself forwards nowhere). Empty: the host forwards nothing."""
    if "logging_siem_host" in hostvars:
        return str(hostvars["logging_siem_host"] or "")
    return str(hostvars.get("cityward_siem_host") or "")
