"""What a role applied, recorded on the host for the audit: /etc/ansible/facts.d/cityward_<role>.fact.

Each role writes, in the run that enforces them, the effective settings it enforced (after every
inventory and play override) as one JSON local fact. The control checks read their expected values
from it, never from a role's defaults or the inventory. The record carries a SHA-256 seal over its
role and settings: a value changed by hand without the seal, a record moved to another role's
name, a truncated or unreadable file all read as "evidence missing", which fails the controls that
need it. (A forger who recomputes the seal is the file-integrity control's to catch: the fact
folder lies under /etc, which the baseline role's AIDE database covers.) Never put a secret in it:
the file is world-readable, as Ansible's local facts are.

One format, written by the filter `cityward.hardening.applied_fact` and read by
`cityward.checks.applied`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

FACT_DIR = "/etc/ansible/facts.d"
FORMAT = 1
_ROLE = re.compile(r"^[a-z][a-z0-9_]*$")


class EvidenceMissing(Exception):
    """The record of what a role applied is absent, unreadable or does not match its seal."""


def fact_path(role: str) -> str:
    if not _ROLE.match(role):
        raise ValueError(f"not a role name: {role!r}")
    return f"{FACT_DIR}/cityward_{role}.fact"


def _canonical(value: Any) -> Any:
    """Plain JSON data (str, int, float, bool, None, list, dict with str keys) at any depth; the
    subclasses Ansible hands a filter (tagged strings, lazy containers) made plain."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    raise TypeError(f"{type(value).__name__} is not JSON data")


def seal(role: str, settings: Mapping[str, Any]) -> str:
    """SHA-256 of the role and its settings, serialised canonically (sorted keys, no spaces)."""
    text = json.dumps({"role": role, "settings": _canonical(settings)}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def render(role: str, settings: Mapping[str, Any]) -> str:
    """The fact file's text for `role` and the settings it applied."""
    fact_path(role)
    plain = _canonical(settings)
    if not isinstance(plain, dict):
        raise TypeError("the settings a role applied must be a mapping")
    document = {"format": FORMAT, "role": role, "settings": plain, "sha256": seal(role, plain)}
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def read(role: str, text: str) -> dict[str, Any]:
    """The settings `role` recorded in the fact file `text`; EvidenceMissing saying why not."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise EvidenceMissing(f"{fact_path(role)} is not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(document, dict) or not isinstance(document.get("settings"), dict):
        raise EvidenceMissing(f"{fact_path(role)} holds no settings mapping")
    if document.get("format") != FORMAT:
        raise EvidenceMissing(f"{fact_path(role)} has format {document.get('format')!r}, not {FORMAT}")
    if document.get("role") != role:
        raise EvidenceMissing(f"{fact_path(role)} records role {document.get('role')!r}, not {role!r}")
    if document.get("sha256") != seal(role, document["settings"]):
        raise EvidenceMissing(f"{fact_path(role)} does not match its seal: edited by hand since the role wrote it")
    return document["settings"]
