"""What the logging role will apply to a host, read from the host's variables before any run
(`cityward check`): how long the journal is kept (`log_retention`, in days: `span_days` reads
journald's time spans) and which SIEM the host forwards to (`forwarding_siem`). The audit reads
what the role did apply from its record on the host instead (cityward.checks.applied).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.cityward.hardening.plugins.plugin_utils.unwrap import plain

from cityward.hostvar_specs import role_options
from cityward.record_problems import show_value

# journald's MaxRetentionSec= units (systemd.time(7)), in days.
_SPAN_UNITS = {
    "s": 1 / 86400, "sec": 1 / 86400, "second": 1 / 86400, "seconds": 1 / 86400,
    "m": 1 / 1440, "min": 1 / 1440, "minute": 1 / 1440, "minutes": 1 / 1440,
    "h": 1 / 24, "hr": 1 / 24, "hour": 1 / 24, "hours": 1 / 24,
    "d": 1, "day": 1, "days": 1, "w": 7, "week": 7, "weeks": 7,
    "M": 30.44, "month": 30.44, "months": 30.44, "y": 365.25, "year": 365.25, "years": 365.25,
}
_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)")


def role_default_retention() -> Any:
    """How long the logging role keeps the journal when the city sets neither variable: the
    default its argument specs document (roles/logging/meta/argument_specs.yml), None if none."""
    return role_options().get("logging_journal_max_retention", {}).get("default")


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
            return span_days(value), f"{name} {show_value(value)}"
    default = role_default_retention()
    return span_days(default), f"the logging role's default {show_value(default)}"


def forwarding_siem(hostvars: Mapping[str, Any]) -> str:
    """The SIEM a host forwards its logs to, as the logging role resolves it: the role's own
    logging_siem_host wins over the city-wide cityward_siem_host, even when empty (the SIEM
    itself forwards nowhere). Empty: the host forwards nothing."""
    if "logging_siem_host" in hostvars:
        return str(hostvars["logging_siem_host"] or "")
    return str(hostvars.get("cityward_siem_host") or "")
