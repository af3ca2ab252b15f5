"""The stack configuration of a segmented network (Pulumi.<stack>.yaml), read and validated.

`NetworkConfig.from_values` turns raw config values (strings from `pulumi.Config`, or parsed YAML
for the offline plan) into a frozen record; every problem names the config file and key. The
program (cityward.cloud.network) and its components read the record; nothing here declares a
resource.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityward.cloud.planning import split_per_az
from cityward.errors import CitywardError

PROJECT = "cityward-segmented-network"
# Retention values CloudWatch Logs accepts; the policy pack (CW-NET-05) requires >= 365.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkConfig:
    """The stack configuration (Pulumi.<stack>.yaml), validated."""

    region: str
    availability_zones: tuple[str, ...]
    vpc_cidr: ipaddress.IPv4Network
    endpoint_cidr: ipaddress.IPv4Network
    zones_file: Path
    name: str = "cityward"
    log_retention_days: int = 365
    # Return traffic through stateless NACLs: Linux clients use 32768-60999, Windows 49152-65535.
    # Starting at 32768 keeps admin ports (22, 3389) and most OT ports out of the return range.
    ephemeral_ports: tuple[int, int] = (32768, 65535)
    operator_principals: tuple[str, ...] = ()
    operator_max_session_seconds: int = 3600
    partition: str = "aws"
    # zones whose instances the operator role may open shells on; empty: every zone (CW-NET-11)
    operator_zones: tuple[str, ...] = ()
    # the city's incident-contacts record (CW-GOV-04): who the detection alarms notify
    incident_contacts_file: Path | None = None
    source: str = "stack config"  # the config file, named in errors found later (operatorZones)
    # the Transit Gateway attachment's segment; required when the zones policy has field sites
    transit_cidr: ipaddress.IPv4Network | None = None

    @classmethod
    def from_values(cls, values: Mapping[str, Any], region: Any, source: str, base_dir: Path) -> NetworkConfig:
        """Build from raw config values (strings from `pulumi.Config` or parsed YAML).

        `source` names the config file in errors, `base_dir` resolves a relative zonesFile.
        """
        unknown = sorted(set(values) - set(CONFIG_KEYS))
        if unknown:
            known = ", ".join(CONFIG_KEYS)
            raise CitywardError(f"{source}: config '{PROJECT}:{unknown[0]}': unknown key (known: {known})")

        def get(key: str, parse: Callable[[Any], Any], default: Any = None) -> Any:
            if values.get(key) is None:
                if default is None:
                    raise CitywardError(f"{source}: config '{PROJECT}:{key}': required")
                return default
            try:
                return parse(values[key])
            except (ValueError, TypeError) as exc:
                raise CitywardError(f"{source}: config '{PROJECT}:{key}': {exc}") from None

        if not isinstance(region, str) or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region):
            raise CitywardError(f"{source}: config 'aws:region': required, e.g. eu-west-1 (got {region!r})")
        config = cls(
            region=region,
            availability_zones=get("availabilityZones", _parse_azs(region)),
            vpc_cidr=get("vpcCidr", _parse_cidr),
            endpoint_cidr=get("endpointSubnetCidr", _parse_cidr),
            # the city's zones policy, the same file its inventory gives the hosts (relative to the project)
            zones_file=get("zonesFile", lambda v: _parse_path(base_dir, v)),
            name=get("name", _parse_name, "cityward"),
            log_retention_days=get("logRetentionDays", _parse_retention, 365),
            ephemeral_ports=get("ephemeralPorts", _parse_port_range, (32768, 65535)),
            operator_principals=get("operatorPrincipals", _parse_arns, ()),
            operator_max_session_seconds=get("operatorMaxSessionSeconds", _parse_session, 3600),
            partition=get("partition", _parse_str, "aws"),
            operator_zones=get("operatorZones", _parse_names, ()),
            incident_contacts_file=(None if values.get("incidentContactsFile") is None else
                                    get("incidentContactsFile", lambda v: _parse_path(base_dir, v))),
            source=source,
            transit_cidr=(None if values.get("transitSubnetCidr") is None else
                          get("transitSubnetCidr", _parse_cidr)),
        )
        segments = [("endpointSubnetCidr", config.endpoint_cidr)]
        if config.transit_cidr is not None:
            segments.append(("transitSubnetCidr", config.transit_cidr))
        for key, cidr in segments:
            field_name = f"{source}: config '{PROJECT}:{key}'"
            if not cidr.subnet_of(config.vpc_cidr):
                raise CitywardError(f"{field_name}: {cidr} is outside vpcCidr {config.vpc_cidr}")
            try:
                split_per_az(cidr, len(config.availability_zones))
            except ValueError as exc:
                raise CitywardError(f"{field_name}: {exc}") from None
        if config.transit_cidr is not None and config.transit_cidr.overlaps(config.endpoint_cidr):
            raise CitywardError(f"{source}: config '{PROJECT}:transitSubnetCidr': {config.transit_cidr} overlaps "
                                f"endpointSubnetCidr {config.endpoint_cidr}")
        return config


CONFIG_KEYS = ("name", "zonesFile", "vpcCidr", "availabilityZones", "endpointSubnetCidr", "logRetentionDays",
               "ephemeralPorts", "operatorPrincipals", "operatorMaxSessionSeconds", "partition", "operatorZones",
               "incidentContactsFile", "transitSubnetCidr")


def _maybe_json(value: Any) -> Any:
    # `pulumi.Config.get` hands lists back as JSON text; the plan hands over parsed YAML.
    if isinstance(value, str) and value.strip().startswith("["):
        return json.loads(value)
    return value


def _parse_str(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string (got {value!r})")
    return value


def _parse_path(base_dir: Path, value: Any) -> Path:
    # normalised, so messages name "policies/zones.yml" rather than "stacks/x/../../policies/zones.yml"
    return Path(os.path.normpath(base_dir / _parse_str(value)))


def _parse_cidr(value: Any) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(_parse_str(value))


def _parse_name(value: Any) -> str:
    value = _parse_str(value)
    if not re.fullmatch(r"[a-z][a-z0-9-]{1,20}", value):
        raise ValueError(f"use 2-21 lower-case letters, digits or '-' (got {value!r})")
    return value


def _parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected an integer (got {value!r})")
    return int(value)


def _parse_retention(value: Any) -> int:
    days = _parse_int(value)
    if days not in LOG_RETENTION_DAYS:
        raise ValueError(f"CloudWatch accepts only {', '.join(map(str, LOG_RETENTION_DAYS))} (got {days})")
    return days


def _parse_session(value: Any) -> int:
    seconds = _parse_int(value)
    if not 900 <= seconds <= 43200:
        raise ValueError(f"must be 900-43200 seconds (got {seconds})")
    return seconds


def _parse_port_range(value: Any) -> tuple[int, int]:
    low, _, high = str(value).partition("-")
    ports = (int(low), int(high or low))
    if not 1024 <= ports[0] <= ports[1] <= 65535:
        raise ValueError(f"expected LOW-HIGH within 1024-65535 (got {value!r})")
    return ports


def _parse_arns(value: Any) -> tuple[str, ...]:
    value = _maybe_json(value)
    if not isinstance(value, list) or not all(isinstance(v, str) and v.startswith("arn:") for v in value):
        raise ValueError(f"expected a list of IAM principal ARNs (got {value!r})")
    return tuple(value)


def _parse_names(value: Any) -> tuple[str, ...]:
    value = _maybe_json(value)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"expected a non-empty list of zone names (got {value!r})")
    return tuple(dict.fromkeys(value))


def _parse_azs(region: str) -> Callable[[Any], tuple[str, ...]]:
    def parse(value: Any) -> tuple[str, ...]:
        value = _maybe_json(value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"expected a list of availability zone names (got {value!r})")
        if len(set(value)) < 2:
            raise ValueError("at least two distinct availability zones are needed (CW-NET-01)")
        wrong = [az for az in value if not re.fullmatch(re.escape(region) + r"[a-z]", az)]
        if wrong:
            raise ValueError(f"{wrong[0]!r} is not an availability zone of {region}")
        return tuple(value)

    return parse
