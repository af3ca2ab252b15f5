"""Host variables as `ansible-inventory --list` gives them, made plain data again."""

from __future__ import annotations

from typing import Any


def plain(value: Any) -> Any:
    """Strip ansible-inventory's JSON wrappers ({'__ansible_unsafe': ...}) at any depth; vault
    values ({'__ansible_vault': ...}) stay as they are, for the caller to recognise."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return plain(value["__ansible_unsafe"])
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
