"""What a resource property means, as every rule module reads it: the engine hands numbers as
floats, flags as booleans or strings, protocols by name or number, networks as text; and a value
a rule cannot know yet gets one phrase everywhere ("cannot decide at preview")."""

from __future__ import annotations

import ipaddress
from typing import Any

CANNOT_DECIDE = "cannot decide at preview"


def cannot_decide(what: str, control: str | None = None) -> str:
    """The message of a rule that fails closed because `what` is unknown on a first preview."""
    return f"{control}: {CANNOT_DECIDE}: {what}" if control else f"{CANNOT_DECIDE}: {what}"


def number(value: Any) -> int | None:
    """An integer property (the engine sends numbers as floats); None when absent, unknown or not one."""
    try:
        return None if value is None or isinstance(value, bool) else int(float(value))
    except (TypeError, ValueError):
        return None


def is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def protocol_name(value: Any) -> str:
    """'tcp', 'udp', '-1' for all protocols, else the value in lower case (icmp, 58, ...)."""
    text = str(value).lower()
    return {"6": "tcp", "17": "udp", "all": "-1"}.get(text, text)


def all_protocols(value: Any) -> bool:
    return protocol_name(value) == "-1"


def network(value: Any, version: int | None = None) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """An address range property (of `version` when given); None when it is not one."""
    try:
        net = ipaddress.ip_network(str(value))
    except ValueError:
        return None
    return net if version is None or net.version == version else None
