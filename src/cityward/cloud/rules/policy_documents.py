"""Reading IAM policy documents as the rules meet them (identity, endpoint and resource policies):
parsed JSON or UNKNOWN at preview, their statements, IAM's action and log-group wildcards, and
condition values. No rules here; session_manager, endpoints and detection read documents with it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from cityward.cloud.graph import UNKNOWN, items, peek


def policy_document(props: Any, key: str) -> Any:
    """A JSON policy/document prop: its parsed value, UNKNOWN, or None when absent or not JSON."""
    value = peek(props, key)
    if value is UNKNOWN or value is None:
        return value
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, Mapping) else None


def policy_statements(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in items(doc.get("Statement")) if isinstance(s, Mapping)]


def action_matches(pattern: str, action: str) -> bool:
    """IAM action matching with a trailing or lone wildcard (ssm:*, ssm:Start*, *)."""
    pattern, action = pattern.lower(), action.lower()
    return pattern == action or pattern == "*" or (pattern.endswith("*") and action.startswith(pattern[:-1]))


def condition_values(statement: Mapping[str, Any], operator: str, key: str) -> list[str]:
    block = (statement.get("Condition") or {}).get(operator) or {}
    return [str(v) for v in items(block.get(key))] if isinstance(block, Mapping) else []


def covers_log_group(resource: str, group: str) -> bool:
    """An IAM resource that covers log group `group` or its streams (wildcards as IAM reads them)."""
    if resource == "*":
        return True
    head, sep, tail = resource.partition(":log-group:")
    if not sep or head.split(":")[2:3] != ["logs"]:
        return False
    return fnmatchcase(group, tail) or fnmatchcase(f"{group}:log-stream:session", tail)

