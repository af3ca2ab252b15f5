"""What a resource property means, as every rule module reads it: the engine hands numbers as
floats, flags as booleans or strings, protocols by name or number, networks as text; and a value
a rule cannot know yet gets one phrase everywhere ("cannot decide at preview")."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

CANNOT_DECIDE = "cannot decide at preview"
WORLD = ("0.0.0.0/0", "::/0")  # a peer range that is the whole internet


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


def has_ports(proto: str) -> bool:
    """A protocol (as protocol_name gives it) that has ports: ICMP types are not ports."""
    return proto in ("tcp", "udp", "-1", "all")


def port_range(props: Mapping[str, Any], proto_key: str) -> tuple[int, int]:
    """(from, to) a rule opens; all protocols, or no ports given, means every port."""
    low, high = number(props.get("fromPort")), number(props.get("toPort"))
    if all_protocols(props.get(proto_key)) or (low is None and high is None):
        return (0, 65535)
    low = high if low is None else low
    high = low if high is None else high
    return (low, high)


def listify(value: Any) -> list:
    """A list property as a list: the engine hands lists over as read-only Sequence proxies. Unlike
    graph.items it reads every item, so an unknown one raises (the rule then cannot decide)."""
    if value is None:
        return []
    return list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]


def tags(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return props.get("tags") or {}


def network(value: Any, version: int | None = None) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """An address range property (of `version` when given); None when it is not one."""
    try:
        net = ipaddress.ip_network(str(value))
    except ValueError:
        return None
    return net if version is None or net.version == version else None


def inside(cidr: Any, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """The address range `cidr` lies within one of `networks` (of its own version)."""
    net = network(cidr)
    return net is not None and any(net.version == n.version and net.subnet_of(n) for n in networks)
