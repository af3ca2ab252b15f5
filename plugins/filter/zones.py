"""Filters over the cityward segmentation policy (cityward_zones / cityward_zones_file).

They run on the controller, so a bad or missing policy is refused with one line naming the
variable, the file, the entry and the field, before any task touches a host (control CW-FW-01).
The policy model is the collection's own (plugins/plugin_utils/zones.py).

    policy: "{{ firewall_zones | cityward.hardening.zones_policy(file=firewall_zones_file, inventory_dir=inventory_dir,
                                                                 city_dir=cityward_inventory_dir | default(none)) }}"
    rules:  "{{ policy | cityward.hardening.host_rules(zone, host=inventory_hostname, service_hosts=...) }}"
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.cityward.hardening.plugins.plugin_utils.errors import CitywardError

# The policy model (plugins/plugin_utils/zones.py, pydantic) is imported when a filter of this file
# runs, not when the file is: Ansible imports every filter file of the collection to find any one
# of its filters (the preflight's schema filter too), in each forked worker, where pydantic alone
# costs about 0.3 CPU-seconds a task.


def _zones():
    from ansible_collections.cityward.hardening.plugins.plugin_utils import zones

    return zones


def as_builtin(value: Any) -> Any:
    """Ansible's lazy, tagged containers and scalars as built-in Python types (what pydantic expects)."""
    if isinstance(value, Mapping):
        return {as_builtin(k): as_builtin(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_builtin(v) for v in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def zones_policy(policy: Any, file: Any = None, inventory_dir: Any = None, city_dir: Any = None) -> dict[str, Any]:
    """Validate the zones policy a host was given, as plain data: `policy` is the value of
    cityward_zones (the policy itself), `file` of cityward_zones_file (its path, relative paths
    taken from `city_dir` when given, else from `inventory_dir`). Exactly one of them.

    `city_dir` is cityward_inventory_dir: the city's inventory folder when the play runs from an
    inventory generated elsewhere (AWX hands every job one); a relative value is taken from the
    folder ansible-playbook runs in (AWX's project checkout)."""
    base = os.path.abspath(as_builtin(city_dir)) if city_dir not in (None, "") else as_builtin(inventory_dir)
    try:
        loaded = _zones().policy_input(as_builtin(policy), as_builtin(file), base)
    except CitywardError as exc:
        raise AnsibleFilterError(f"CW-FW-01 refused the zones policy: {exc}") from None
    return loaded.as_data()


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


def host_rules(policy_data: Any, zone: Any, host: str = "?", service_hosts: Any = None,
               dns_resolvers: Any = None, extra_management: Any = None, controller: Any = "") -> dict[str, Any]:
    """What the firewall of `host` in `zone` opens (see ZonesPolicy.host_rules), plus the role's
    own inputs checked here: DNS resolvers, extra management sources and the address the
    controller connects from (SSH_CLIENT), kept open during the run when no management CIDR
    already covers it (CW-FW-04)."""
    policy_data, zone, service_hosts = as_builtin(policy_data), as_builtin(zone), as_builtin(service_hosts)
    dns_resolvers, extra_management = as_builtin(dns_resolvers), as_builtin(extra_management)
    try:
        policy = _zones().parse_zones(policy_data, "zones policy")
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
        return {"zones_policy": zones_policy, "host_rules": host_rules}
