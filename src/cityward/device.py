"""The schema of what a city records outside its hosts' settings, as inventory variables:

* per host, `cityward_device` (`Device`): the asset, its owner, vendor, life cycle, runbook,
  training, risk review, redundancy and patch SLA;
* per city (group_vars/all), `cityward_city` (`City`), naming the incident-contacts file
  (`IncidentContacts`) and the vendor requirements file (`VendorRequirements`), paths relative
  to the inventory directory.

Only the records' shape lives here. Reading the city's files is cityward.city_files; what the
records must say to pass a control is cityward.governance.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from functools import cache
from typing import Annotated, Any, Literal

from ansible_collections.cityward.hardening.plugins.plugin_utils.unwrap import plain
from pydantic import (
    BeforeValidator,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from cityward.record_problems import show_value
from cityward.strict_model import StrictModel

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
CRITICALITIES = ("critical", "high", "medium", "low")
# cityward_device.redundancy when the asset has no partner host (it then names a degraded_mode).
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
    raise ValueError(f"invalid date {show_value(value)} (expected YYYY-MM-DD)")


def _hh_mm(value: Any) -> str:
    if isinstance(value, str) and re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value.strip()):
        return value.strip()
    # YAML 1.1 reads an unquoted 02:00 as the sexagesimal integer 120.
    hint = "; quote it in YAML" if isinstance(value, int) else ""
    raise ValueError(f"invalid time {show_value(value)} (expected HH:MM, 00:00 to 23:59{hint})")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
ClockTime = Annotated[str, BeforeValidator(_hh_mm)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
# Debian's architectures a city's servers and gateways run (dpkg --print-architecture).
Architecture = Literal["amd64", "arm64", "armhf", "armel", "i386", "riscv64"]
# An absolute path on the host, one line, no glob or shell syntax (what the backup saves and restores).
StatePath = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^/[A-Za-z0-9._@+/-]*$", max_length=255)]

# --- the device record -----------------------------------------------------------------------


class MaintenanceWindow(StrictModel):
    days: list[Weekday] = Field(min_length=1, max_length=7)
    start: ClockTime
    duration_minutes: Annotated[int, Field(strict=True, ge=15, le=720)]

    @model_validator(mode="after")
    def _days_unique(self):
        if len(set(self.days)) != len(self.days):
            raise ValueError("days must not repeat a weekday")
        return self


class Runbook(StrictModel):
    path: Text
    last_exercised: IsoDate


class RiskReview(StrictModel):
    date: IsoDate
    reference: Text
    # The data-retention limit the review set (CW-GOV-09); logs must not be kept longer.
    data_retention_days: Annotated[int, Field(strict=True, ge=1, le=36500)] | None = None


class Device(StrictModel):
    """`cityward_device`: what the city knows about one asset."""

    vendor: Text
    model: Text
    firmware: Text
    # Debian's name of the CPU architecture; the audit compares it with the host's (CW-GOV-01).
    architecture: Architecture | None = None
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
    # Where the device's application keeps its state (e.g. /var/lib/mosquitto): backed up with its
    # configuration and restored onto a rebuilt host (CW-RES-02).
    application_state: list[StatePath] = Field(default_factory=list, max_length=50)


@cache
def _field_adapter(name: str) -> TypeAdapter:
    return TypeAdapter(Device.model_fields[name].rebuild_annotation())


def valid_device_fields(raw: Mapping) -> dict[str, Any]:
    """The fields of a device record that are valid on their own, so one bad field spoils the
    controls that read it, not every control."""
    values = {}
    for name in Device.model_fields:
        if raw.get(name) is not None:
            try:
                values[name] = _field_adapter(name).validate_python(raw[name])
            except ValidationError:
                continue
    return values


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


# --- the city and its records ----------------------------------------------------------------


class City(StrictModel):
    """`cityward_city` (group_vars/all): the city's name and its governance files."""

    name: Text
    incident_contacts_file: Text
    vendor_requirements_file: Text | None = None


class Contact(StrictModel):
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


class Escalation(StrictModel):
    after_minutes: Annotated[int, Field(strict=True, ge=0, le=10080)]
    contact: Text


class IncidentContacts(StrictModel):
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


class VendorSla(StrictModel):
    reference: Text
    incident_notification_hours: Annotated[int, Field(strict=True, ge=1, le=720)]
    vulnerability_disclosure: Text
    valid_until: IsoDate | None = None


class Vendor(StrictModel):
    name: Text
    procurement_reference: Text | None = None
    security_requirements: list[Text] = Field(default_factory=list)
    slas: list[VendorSla] = Field(default_factory=list)


class VendorRequirements(StrictModel):
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
