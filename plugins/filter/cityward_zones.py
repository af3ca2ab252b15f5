"""Ansible filters over the cityward segmentation policy (policies/zones.yml).

They run on the controller, where cityward is installed (the .venv Ansible runs from), so a bad
policy is refused with the loader's one-line message, naming the file, the entry and the field,
before any task touches a host (control CW-FW-01).

    policy: "{{ 'policies/zones.yml' | cityward_zones }}"
    rules:  "{{ policy | cityward_host_rules(zone, host=inventory_hostname, service_hosts=...) }}"
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleFilterError

try:
    from cityward.errors import CitywardError
    from cityward.zones import load_zones, parse_zones
except ImportError:  # a controller without the package installed: use this checkout's sources
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    try:
        from cityward.errors import CitywardError
        from cityward.zones import load_zones, parse_zones
    except ImportError as exc:
        raise AnsibleFilterError(
            f"cityward_zones: cannot import the cityward package on the controller ({exc}); "
            "run Ansible from the project's .venv (source scripts/bootstrap.sh)") from None


def _plain(value: Any) -> Any:
    """Ansible's lazy, tagged containers and scalars as built-in Python types (what pydantic expects)."""
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def cityward_zones(source: Any) -> dict[str, Any]:
    """Validate a zones policy (a file path, or already-parsed data) and return it as plain data."""
    try:
        if isinstance(source, Mapping):
            policy = parse_zones(_plain(source), "zones policy")
        else:
            policy = load_zones(Path(str(source)).expanduser())
    except CitywardError as exc:
        raise AnsibleFilterError(f"CW-FW-01 refused the zones policy: {exc}") from None
    return policy.as_data()


def _ip_list(values: Any, host: str, variable: str) -> list[str]:
    if values in (None, ""):
        return []
    if isinstance(values, str) or not isinstance(values, list | tuple):
        raise AnsibleFilterError(f"{host}: {variable}: expected a list of IP addresses or CIDRs, got {values!r}")
    result = []
    for value in values:
        try:
            result.append(str(ipaddress.ip_network(str(value), strict=True)).removesuffix("/32").removesuffix("/128"))
        except ValueError as exc:
            raise AnsibleFilterError(f"{host}: {variable}: {value!r} is not an IP address or CIDR ({exc})") from None
    return result


def cityward_host_rules(policy_data: Any, zone: Any, host: str = "?", service_hosts: Any = None,
                        dns_resolvers: Any = None, extra_management: Any = None,
                        controller: Any = "") -> dict[str, Any]:
    """What the firewall of `host` in `zone` opens (see ZonesPolicy.host_rules), plus the role's
    own inputs checked here: DNS resolvers, extra management sources and the address the
    controller connects from (SSH_CLIENT), kept open during the run when no management CIDR
    already covers it (CW-FW-04)."""
    policy_data, zone, service_hosts = _plain(policy_data), _plain(zone), _plain(service_hosts)
    dns_resolvers, extra_management = _plain(dns_resolvers), _plain(extra_management)
    try:
        policy = parse_zones(policy_data, "zones policy")
    except CitywardError as exc:
        raise AnsibleFilterError(f"CW-FW-01 refused the zones policy: {exc}") from None
    if not isinstance(zone, str) or not zone:
        raise AnsibleFilterError(f"{host}: cityward_zone is not set: name the host's zone from the zones policy "
                                 f"({', '.join(policy.zones)})")
    try:
        rules = policy.host_rules(zone, service_hosts)
    except CitywardError as exc:
        variable = "cityward_zone" if zone not in policy.zones else "firewall_service_hosts"
        raise AnsibleFilterError(f"{host}: {variable}: {exc}") from None

    extra = _ip_list(extra_management, host, "firewall_management_sources")
    if not rules["management"] and not extra:
        raise AnsibleFilterError(
            f"{host}: refusing a ruleset without management SSH (CW-FW-04): the zones policy has no zone of kind "
            "'management' and firewall_management_sources is empty")
    rules["management_v4"] = rules["management"] + [a for a in extra if ":" not in a]
    rules["management_v6"] = [a for a in extra if ":" in a]
    rules["dns"] = _ip_list(dns_resolvers, host, "firewall_dns_resolvers")

    rules["controller"] = None
    address = str(controller or "").split()[0] if str(controller or "").split() else ""
    try:
        ip = ipaddress.ip_address(address) if address else None
    except ValueError:
        ip = None
    if ip is not None:
        covered = any(ip in ipaddress.ip_network(n) for n in rules["management_v4"] + rules["management_v6"])
        if not covered:
            rules["controller"] = {"family": "ip" if ip.version == 4 else "ip6", "address": str(ip)}
    return rules


class FilterModule:
    """cityward zones policy filters."""

    def filters(self):
        return {"cityward_zones": cityward_zones, "cityward_host_rules": cityward_host_rules}
