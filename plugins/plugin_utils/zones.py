"""The segmentation policy (a city's zones.yml): zones and the conduits allowed between them.

One policy feeds the host firewall role (through the zones filter), the Pulumi network stack and
the audit (through the cityward package), so it is checked here once (control CW-FW-01) and every
consumer reads the validated `ZonesPolicy`.
Errors are one line naming the file, the entry (zone name, conduit index with from->to:port, or
exception index) and the field. Beyond the schema, a well-formed but dangerous policy is refused
unless an exception waives it (plugins/plugin_utils/zones_sense.py, issue 23).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from ansible_collections.cityward.hardening.plugins.plugin_utils.errors import CitywardError
from ansible_collections.cityward.hardening.plugins.plugin_utils.yamlfile import load_yaml
from ansible_collections.cityward.hardening.plugins.plugin_utils.zones_sense import (
    PolicyException,
    UsedException,
    one_line,
    policy_sense,
)
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

INTERNET = "internet"
"""Reserved pseudo-zone name for 0.0.0.0/0 in conduits; only zones with `internet: true` may meet it."""

INTERNET_CIDR = ipaddress.IPv4Network("0.0.0.0/0")

ZONE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")

# Addresses a site's VPN peer cannot have: private, shared (carrier NAT), loopback, link-local and
# "this network". The documentation ranges (RFC 5737) stay allowed so examples remain fictional.
NOT_ROUTABLE = tuple(ipaddress.IPv4Network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"))

# Syslog over TLS (RFC 5425): the one flow a quarantined host keeps besides management SSH.
LOG_PORT = 6514


def _ipv4_network(value: Any) -> ipaddress.IPv4Network:
    # ipaddress says *why* ("has host bits set", "does not appear to be an IPv4 network").
    if isinstance(value, ipaddress.IPv4Network):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a CIDR string such as 10.40.0.0/20")
    try:
        return ipaddress.IPv4Network(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


Cidr = Annotated[ipaddress.IPv4Network, BeforeValidator(_ipv4_network)]
Port = Annotated[int, Field(strict=True, ge=1, le=65535)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")]
Line = Annotated[str, BeforeValidator(one_line)]


class _PolicyPart(BaseModel):
    """A part of the zones policy: an unknown key is an error and the part never changes once
    validated (as cityward's own records), and a field whose key is a Python keyword may also be
    given by its field name (Conduit's `from`, or `from_`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Zone(_PolicyPart):
    name: str
    kind: Literal["it", "dmz", "management", "ot"]
    cidr: Cidr
    internet: bool = False
    description: Line = ""

    @property
    def is_ot(self) -> bool:
        return self.kind == "ot"


class Conduit(_PolicyPart):
    from_: str = Field(alias="from")
    to: str
    protocol: Literal["tcp", "udp"]
    port: Port
    service: Slug
    purpose: Line = Field(min_length=3, max_length=200)

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.from_, self.to, self.protocol, self.port)

    @property
    def label(self) -> str:
        """'from->to:proto/port', the conduit's identity in messages and resource tags."""
        return f"{self.from_}->{self.to}:{self.protocol}/{self.port}"


class CustomerGateway(_PolicyPart):
    """The site's end of the site-to-site VPN: its public address and BGP ASN."""

    address: ipaddress.IPv4Address
    bgp_asn: Annotated[int, Field(strict=True, ge=64512, le=65534)] = 65000


class Site(_PolicyPart):
    """A field site outside the city's network (a depot, a pumping station) that belongs to an OT
    zone: it reaches the zones that zone has conduits with, over a site-to-site VPN, and only those."""

    name: str
    zone: str
    cidr: Cidr
    customer_gateway: CustomerGateway
    description: Line = ""


class ZonesPolicy(_PolicyPart):
    version: Literal[1]
    description: Line = ""
    zones: dict[str, Zone] = Field(min_length=1)
    conduits: list[Conduit] = Field(default_factory=list)
    # Field sites connected over VPN (the cloud stack's site connectivity); hosts ignore them.
    sites: dict[str, Site] = Field(default_factory=dict)
    # Knowingly kept departures from the policy-sense rules (zones_sense.py), reported by the audit.
    exceptions: list[PolicyException] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _name_zones_from_keys(cls, data: Any) -> Any:
        # Zones are a mapping keyed by name; the model keeps the name on the zone for consumers.
        # Zones and sites are mappings keyed by name; the model keeps the name on each entry.
        for key in ("zones", "sites"):
            if isinstance(data, dict) and isinstance(data.get(key), dict):
                named = {}
                for name, body in data[key].items():
                    if isinstance(body, dict) and "name" not in body:
                        body = {"name": name, **body}
                    named[name] = body
                data = {**data, key: named}
        return data

    # --- queries the consumers use
    def zone(self, name: str) -> Zone:
        return self.zones[name]

    def cidr_of(self, name: str) -> ipaddress.IPv4Network:
        """CIDR of a zone, or 0.0.0.0/0 for the `internet` pseudo-zone."""
        return INTERNET_CIDR if name == INTERNET else self.zones[name].cidr

    def kind_of(self, name: str) -> str:
        return "internet" if name == INTERNET else self.zones[name].kind

    def conduits_from(self, name: str) -> Iterator[Conduit]:
        return (c for c in self.conduits if c.from_ == name)

    def conduits_to(self, name: str) -> Iterator[Conduit]:
        return (c for c in self.conduits if c.to == name)

    def sites_of(self, zone: str) -> list[Site]:
        """The field sites that belong to `zone`, in policy order."""
        return [s for s in self.sites.values() if s.zone == zone]

    def networks_of(self, zone: str) -> list[ipaddress.IPv4Network]:
        """Where a zone's hosts live: its CIDR, then the CIDRs of its field sites."""
        return [self.cidr_of(zone), *(s.cidr for s in self.sites_of(zone))]

    def site_of(self, net: Any) -> Site | None:
        """The field site whose network holds the address range `net`, or None."""
        return next((s for s in self.sites.values() if net.version == 4 and net.subnet_of(s.cidr)), None)

    def zone_of(self, net: Any) -> str | None:
        """The zone whose CIDR or one of whose field sites holds `net`, or None."""
        found = {z for z in self.zones for n in self.networks_of(z) if net.version == 4 and net.subnet_of(n)}
        return found.pop() if len(found) == 1 else None

    def peers_of(self, zone: str) -> list[str]:
        """Zones that have a conduit with `zone` in either direction (the internet excluded)."""
        peers = {c.to for c in self.conduits_from(zone)} | {c.from_ for c in self.conduits_to(zone)}
        return sorted(peers - {INTERNET})

    def ot_zones(self) -> list[Zone]:
        return [z for z in self.zones.values() if z.is_ot]

    def as_data(self) -> dict[str, Any]:
        """Plain JSON-able data (CIDRs as strings, `from` spelled as in the file) for templates."""
        return self.model_dump(mode="json", by_alias=True)

    def used_exceptions(self, today: Any = None) -> list[UsedException]:
        """The exceptions that waive a finding of this policy today (each with the finding), for
        the check output and the audit. Source exceptions are per host: zones_sense.judge_sources."""
        return policy_sense(self, today)[1]

    def exceptions_in_force(self, today: Any = None) -> list[str]:
        """One line per exception that waives a finding today: what `cityward check` and the audit
        report (an exception waiving several findings is listed once)."""
        return list(dict.fromkeys(used.exception.describe() for used in self.used_exceptions(today)))

    def management_cidrs(self) -> list[ipaddress.IPv4Network]:
        """CIDRs of the management zones: SSH from them is always accepted (CW-FW-04)."""
        return [z.cidr for z in self.zones.values() if z.kind == "management"]

    def host_rules(self, zone: str, service_hosts: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """What the host firewall of a host in `zone` opens, as plain data for a template or a check.

        - inbound: one entry per conduit into the zone, `source` its from-zone CIDR (None: any,
          for the internet pseudo-zone);
        - outbound: one entry per conduit from the zone, `destinations` the to-zone CIDR, or the
          addresses `service_hosts[service]` narrows it to (each must lie in that CIDR);
          hosts enforce it where `egress_limited` (OT zones, CW-FW-03);
        - logging: the outbound entries to syslog over TLS (what isolation keeps, CW-FW-05);
        - management: the management zone CIDRs (SSH always accepted, CW-FW-04).
        Raises CitywardError naming the zone or the service and address at fault.
        """
        if zone not in self.zones:
            known = ", ".join(sorted(self.zones))
            raise CitywardError(f"zone '{zone}' is not in the zones policy (known: {known})")
        narrowed = _service_hosts(self, service_hosts or {})
        inbound = [
            {"label": c.label, "service": c.service, "protocol": c.protocol, "port": c.port,
             "source": None if c.from_ == INTERNET else str(self.cidr_of(c.from_))}
            for c in self.conduits_to(zone)
        ]
        outbound = []
        for c in self.conduits_from(zone):
            destinations: list[str] = []  # empty: any address (the internet pseudo-zone)
            if c.to != INTERNET:
                cidr = self.cidr_of(c.to)
                hosts = narrowed.get(c.service)
                destinations = [_address(h) for h in hosts or () if h.subnet_of(cidr)]
                if hosts and not destinations:
                    raise CitywardError(
                        f"service '{c.service}': none of {', '.join(map(_address, hosts))} lies in zone "
                        f"'{c.to}' ({cidr}), the destination of conduit {c.label}")
                destinations = destinations or [str(cidr)]
            outbound.append({"label": c.label, "service": c.service, "protocol": c.protocol, "port": c.port,
                             "destinations": destinations, "internet": c.to == INTERNET})
        return {
            "zone": zone,
            "kind": self.zones[zone].kind,
            "cidr": str(self.zones[zone].cidr),
            "egress_limited": self.zones[zone].is_ot,
            "management": [str(c) for c in self.management_cidrs()],
            "inbound": inbound,
            "outbound": outbound,
            "logging": [r for r in outbound if r["protocol"] == "tcp" and r["port"] == LOG_PORT],
        }


def _address(net: ipaddress.IPv4Network) -> str:
    """'10.0.0.5' for a single host, the CIDR otherwise (as nft lists them)."""
    return str(net.network_address) if net.prefixlen == 32 else str(net)


def _service_hosts(policy: ZonesPolicy, raw: Mapping[str, Any]) -> dict[str, list[ipaddress.IPv4Network]]:
    """Validate {service: [address or CIDR, ...]}: known services, parseable IPv4 addresses."""
    if not isinstance(raw, Mapping):
        raise CitywardError("service hosts: expected a mapping of service name to a list of addresses")
    services = {c.service for c in policy.conduits}
    result = {}
    for service, hosts in raw.items():
        if service not in services:
            raise CitywardError(f"service '{service}': no conduit of the zones policy names this service")
        if isinstance(hosts, str) or not isinstance(hosts, list | tuple) or not hosts:
            raise CitywardError(f"service '{service}': expected a non-empty list of IPv4 addresses or CIDRs")
        parsed = []
        for host in hosts:
            try:
                parsed.append(ipaddress.IPv4Network(str(host)))
            except ValueError as exc:
                raise CitywardError(f"service '{service}': {host!r} is not an IPv4 address or CIDR ({exc})") from None
        result[service] = parsed
    return result


# --- loading ---------------------------------------------------------------------------------


def _conduit_label(raw: Any, index: int) -> str:
    if isinstance(raw, dict):
        return f"conduit #{index} ({raw.get('from', '?')}->{raw.get('to', '?')}:{raw.get('port', '?')})"
    return f"conduit #{index}"


def _locate(data: Any, loc: tuple) -> tuple[str, str]:
    """(entry, field) for a pydantic error location in the raw document."""
    if len(loc) >= 2 and loc[0] == "zones":
        field = ".".join(str(p) for p in loc[2:]) or "(zone)"
        return f"zone '{loc[1]}'", field
    if len(loc) >= 2 and loc[0] == "conduits" and isinstance(loc[1], int):
        raw = data.get("conduits", [])[loc[1]] if isinstance(data, dict) else None
        field = ".".join(str(p) for p in loc[2:]) or "(conduit)"
        return _conduit_label(raw, loc[1]), field
    if len(loc) >= 2 and loc[0] == "sites":
        field = ".".join(str(p) for p in loc[2:]) or "(site)"
        return f"site '{loc[1]}'", field
    if len(loc) >= 2 and loc[0] == "exceptions" and isinstance(loc[1], int):
        field = ".".join(str(p) for p in loc[2:]) or "(exception)"
        return f"exception #{loc[1]}", field
    return "top level", ".".join(str(p) for p in loc) or "(document)"


def _schema_errors(exc: ValidationError, data: Any) -> list[str]:
    lines = []
    for err in exc.errors():
        entry, field = _locate(data, tuple(err.get("loc", ())))
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown key"
        elif "input" in err and not isinstance(err["input"], dict | list):
            msg = f"{msg} (got {err['input']!r})"
        lines.append(f"{entry}, field '{field}': {msg}")
    return lines


def _semantic_errors(policy: ZonesPolicy) -> list[str]:
    """Checks across entries that a schema cannot express."""
    errors: list[str] = []
    for name, zone in policy.zones.items():
        entry = f"zone '{name}'"
        if zone.name != name:
            errors.append(f"{entry}, field 'name': must not differ from the key ('{zone.name}')")
        if name == INTERNET:
            errors.append(f"{entry}, field '(name)': '{INTERNET}' is reserved for 0.0.0.0/0 in conduits")
        elif not ZONE_NAME.match(name):
            errors.append(f"{entry}, field '(name)': use lower-case letters, digits and '-' (max 31)")
        if zone.internet and zone.kind != "dmz":
            errors.append(f"{entry}, field 'internet': only a dmz may face the internet, not {zone.kind}")

    names = list(policy.zones)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if policy.zones[a].cidr.overlaps(policy.zones[b].cidr):
                cidr_a, cidr_b = policy.zones[a].cidr, policy.zones[b].cidr
                errors.append(f"zone '{b}', field 'cidr': {cidr_b} overlaps zone '{a}' ({cidr_a})")

    errors.extend(_site_errors(policy))

    seen: dict[tuple, int] = {}
    for index, c in enumerate(policy.conduits):
        entry = f"conduit #{index} ({c.from_}->{c.to}:{c.port})"
        known = True
        for field, zone_name in (("from", c.from_), ("to", c.to)):
            if zone_name != INTERNET and zone_name not in policy.zones:
                errors.append(f"{entry}, field '{field}': unknown zone '{zone_name}'")
                known = False
        if not known:
            continue
        if c.from_ == c.to:
            errors.append(f"{entry}, field 'to': a conduit joins two different zones")
        for field, here, there in (("from", c.from_, c.to), ("to", c.to, c.from_)):
            if here == INTERNET and (there == INTERNET or not policy.zones[there].internet):
                errors.append(f"{entry}, field '{field}': only an 'internet: true' zone meets the internet")
        if c.key in seen:
            errors.append(f"{entry}, field '(conduit)': duplicate of conduit #{seen[c.key]}")
        else:
            seen[c.key] = index
    if not errors:
        # Sense (ADMIN_PORTS, OT protocols, public CIDRs, exceptions) needs known zones on every conduit.
        errors = policy_sense(policy)[0]
    return errors


def _site_errors(policy: ZonesPolicy) -> list[str]:
    """A site belongs to a known OT zone, lives in private space outside every zone and every other
    site, and its VPN peer is a public address (a private one cannot terminate an AWS VPN)."""
    errors: list[str] = []
    taken = [(f"zone '{z.name}'", z.cidr) for z in policy.zones.values()]
    gateways: dict[ipaddress.IPv4Address, str] = {}
    for name, site in policy.sites.items():
        entry = f"site '{name}'"
        if site.name != name:
            errors.append(f"{entry}, field 'name': must not differ from the key ('{site.name}')")
        if not ZONE_NAME.match(name):
            errors.append(f"{entry}, field '(name)': use lower-case letters, digits and '-' (max 31)")
        if site.zone not in policy.zones:
            errors.append(f"{entry}, field 'zone': unknown zone '{site.zone}'")
        elif not policy.zones[site.zone].is_ot:
            errors.append(f"{entry}, field 'zone': '{site.zone}' is a {policy.zones[site.zone].kind} zone; "
                          "field sites belong to an OT zone")
        if not site.cidr.is_private:
            errors.append(f"{entry}, field 'cidr': {site.cidr} is not private address space")
        for other, cidr in taken:
            if site.cidr.overlaps(cidr):
                errors.append(f"{entry}, field 'cidr': {site.cidr} overlaps {other} ({cidr})")
        taken.append((entry, site.cidr))
        address = site.customer_gateway.address
        if any(address in net for net in NOT_ROUTABLE) or address.is_multicast or address.is_reserved:
            errors.append(f"{entry}, field 'customer_gateway.address': {address} is not a public address; "
                          "the VPN terminates on the site's internet-facing router")
        elif address in gateways:
            # one customer gateway per address: the pack tells sites apart by it
            errors.append(f"{entry}, field 'customer_gateway.address': {address} is already the customer "
                          f"gateway of site '{gateways[address]}'")
        gateways.setdefault(address, name)
    return errors


def parse_zones(data: Any, source: str | Path = "<zones>") -> ZonesPolicy:
    """Validate already-parsed zones data; `source` names the file in error messages."""
    if not isinstance(data, dict):
        expected = "expected a mapping of version, zones, conduits"
        raise CitywardError(f"{source}: top level, field '(document)': {expected}")
    try:
        policy = ZonesPolicy.model_validate(data)
    except ValidationError as exc:
        errors = _schema_errors(exc, data)
    else:
        errors = _semantic_errors(policy)
    if errors:
        more = f" (and {len(errors) - 1} more: {'; '.join(errors[1:])})" if len(errors) > 1 else ""
        raise CitywardError(f"{source}: {errors[0]}{more}")
    return policy


def load_zones(path: str | Path) -> ZonesPolicy:
    """Read and validate a zones policy file; raise CitywardError naming file, entry and field."""
    path = Path(path)
    return parse_zones(load_yaml(path, "zones policy"), path)


# --- the policy as an input of a play or an audit --------------------------------------------

POLICY_VAR = "cityward_zones"
FILE_VAR = "cityward_zones_file"
HOW_TO_GIVE = (f"set {FILE_VAR} (the path of the zones policy YAML, absolute or relative to the inventory "
               f"folder) or {POLICY_VAR} (the policy itself) in the inventory")
# How an inventory gives the policy, documented in the firewall role's argument_specs: the path may
# use ~ and $VARIABLES (as Ansible's path options do); a relative one is taken from the inventory
# folder, so that `cityward check`, `cityward audit` and the role all find the same file.


def policy_input(policy: Any = None, path: Any = None, base_dir: str | Path | None = None) -> ZonesPolicy:
    """The zones policy a host was given: `policy` (the value of cityward_zones) or `path` (of
    cityward_zones_file; a relative path is taken from `base_dir`, the inventory folder).
    Exactly one of them; CitywardError naming the variable otherwise."""
    if policy in (None, "") and path in (None, ""):
        raise CitywardError(f"no zones policy: {HOW_TO_GIVE}")
    if policy not in (None, "") and path not in (None, ""):
        raise CitywardError(f"both {POLICY_VAR} and {FILE_VAR} are set: give the policy one way only")
    if policy not in (None, ""):
        if not isinstance(policy, Mapping):
            raise CitywardError(f"{POLICY_VAR}: expected the zones policy as a mapping (version, zones, conduits), "
                                f"got {type(policy).__name__}")
        return parse_zones(dict(policy), POLICY_VAR)
    if not isinstance(path, str | Path):
        raise CitywardError(f"{FILE_VAR}: expected a file path, got {type(path).__name__}")
    resolved = Path(os.path.expandvars(str(path))).expanduser()
    if not resolved.is_absolute():
        if base_dir in (None, ""):
            raise CitywardError(f"{FILE_VAR}: '{path}' is relative, and there is no inventory folder to take it from")
        resolved = Path(os.path.normpath(Path(base_dir) / resolved))
    if not resolved.is_file():
        raise CitywardError(f"{FILE_VAR}: {resolved} is not a file")
    return load_zones(resolved)
