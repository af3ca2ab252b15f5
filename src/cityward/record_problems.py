"""How a problem with an inventory record is worded: a value as a message shows it, pydantic's
errors as (field, message) pairs, and the values that cannot be checked at all (templated or
vault-encrypted: ansible-inventory hands them over unrendered).

The device schema (cityward.device), the city files (cityward.city_files) and the governance
rules (cityward.governance) word their problems through it, so the same mistake reads the same
wherever it is found.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError


def show_value(value: Any) -> str:
    """`value` as a problem message quotes it: a string in quotes, anything else as its repr,
    cut to 60 characters."""
    text = f"'{value}'" if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _loc(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        part = part if isinstance(part, int) or str(part).isprintable() else repr(part)  # a key with a newline
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def field_messages(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
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
            msg = f"{msg} (got {show_value(value)}{hint})"
        found.append((where, msg))
    return found


def templated_fields(value: Any, where: str) -> list[tuple[str, str]]:
    """(field, message) for each templated or vault-encrypted value in `value` (a record as
    cityward.hardening's plugin_utils.unwrap.plain gives it): ansible-inventory does not render
    Jinja, so no check can rely on such a value."""
    if isinstance(value, dict):
        if "__ansible_vault" in value:
            return [(where, "vault-encrypted metadata cannot be checked: write the value itself")]
        return [f for k, v in value.items() for f in templated_fields(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [f for i, v in enumerate(value) for f in templated_fields(v, f"{where}[{i}]")]
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        return [(where, f"templated value {show_value(value)} cannot be checked: write the value itself")]
    return []
