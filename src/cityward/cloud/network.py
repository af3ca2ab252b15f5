"""Segmented zero-trust AWS network built from a city's zones policy: the program of a Pulumi project
such as stacks/segmented_network.

`build(zones, config)` declares every resource; a project's `__main__.py` only reads its stack
config and calls it, so tests and `cityward cloud plan` run the very same code under Pulumi mocks.

Layout: one VPC; each zone's CIDR is split into one subnet per availability zone; interface
endpoints live in their own `endpoints` subnets. Each zone gets its own route table, NACL and
security group, generated from the conduits (security-group rules as separate
aws.vpc.SecurityGroupIngressRule/EgressRule resources, never inline). Only zones with
`internet: true` (the DMZ) get an internet-gateway route; there is no NAT gateway at all.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from cityward.errors import CitywardError
from cityward.zones import INTERNET, Conduit, ZonesPolicy

PROJECT = "cityward-segmented-network"
ENDPOINT_SEGMENT = "endpoints"
ENDPOINT_SERVICES = ("ssm", "ssmmessages", "ec2messages", "logs", "kms")
# Retention values CloudWatch Logs accepts; the policy pack (CW-NET-05) requires >= 365.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)
# AWS's default quota of rules per NACL direction; above it the apply would fail late.
NACL_RULES_PER_DIRECTION = 20
STACK_TAG = {"cityward:stack": "segmented_network"}


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
        )
        field_name = f"{source}: config '{PROJECT}:endpointSubnetCidr'"
        if not config.endpoint_cidr.subnet_of(config.vpc_cidr):
            raise CitywardError(f"{field_name}: {config.endpoint_cidr} is outside vpcCidr {config.vpc_cidr}")
        try:
            split_per_az(config.endpoint_cidr, len(config.availability_zones))
        except ValueError as exc:
            raise CitywardError(f"{field_name}: {exc}") from None
        return config


CONFIG_KEYS = ("name", "zonesFile", "vpcCidr", "availabilityZones", "endpointSubnetCidr", "logRetentionDays",
               "ephemeralPorts", "operatorPrincipals", "operatorMaxSessionSeconds", "partition")


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


# --- the plan of addresses -------------------------------------------------------------------


def split_per_az(cidr: ipaddress.IPv4Network, count: int) -> list[ipaddress.IPv4Network]:
    """The first `count` equal subnets of `cidr`, one per availability zone."""
    prefix = cidr.prefixlen + math.ceil(math.log2(count))
    if prefix > 28:  # AWS's smallest subnet
        raise ValueError(f"{cidr} is too small for {count} subnets of at least /28")
    return list(cidr.subnets(new_prefix=prefix))[:count]


def check_layout(zones: ZonesPolicy, config: NetworkConfig) -> None:
    """Every zone and the endpoint segment fit, without overlap, in the VPC CIDR."""
    for zone in zones.zones.values():
        if not zone.cidr.subnet_of(config.vpc_cidr):
            raise CitywardError(
                f"{config.zones_file}: zone '{zone.name}', field 'cidr': {zone.cidr} is outside the stack's "
                f"vpcCidr {config.vpc_cidr}"
            )
        if zone.cidr.overlaps(config.endpoint_cidr):
            raise CitywardError(
                f"{config.zones_file}: zone '{zone.name}', field 'cidr': {zone.cidr} overlaps the stack's "
                f"endpointSubnetCidr {config.endpoint_cidr}"
            )
        try:
            split_per_az(zone.cidr, len(config.availability_zones))
        except ValueError as exc:
            raise CitywardError(f"{config.zones_file}: zone '{zone.name}', field 'cidr': {exc}") from None
        if zone.is_ot and zone.internet:  # the schema already refuses it; never build it anyway
            raise CitywardError(f"{config.zones_file}: zone '{zone.name}', field 'internet': OT zones never face it")


@dataclass(frozen=True)
class AclRule:
    egress: bool
    protocol: str
    cidr: str
    from_port: int
    to_port: int


def nacl_rules(zones: ZonesPolicy, zone: str, config: NetworkConfig) -> list[AclRule]:
    """Stateless rules for one zone: each conduit in both directions plus its return traffic."""
    low, high = config.ephemeral_ports
    endpoints = str(config.endpoint_cidr)
    rules: list[AclRule] = []
    for c in zones.conduits_to(zone):
        peer = str(zones.cidr_of(c.from_))
        rules.append(AclRule(False, c.protocol, peer, c.port, c.port))
        rules.append(AclRule(True, c.protocol, peer, low, high))
    for c in zones.conduits_from(zone):
        peer = str(zones.cidr_of(c.to))
        rules.append(AclRule(True, c.protocol, peer, c.port, c.port))
        rules.append(AclRule(False, c.protocol, peer, low, high))
    # Session Manager and AWS APIs through the interface endpoints.
    rules.append(AclRule(True, "tcp", endpoints, 443, 443))
    rules.append(AclRule(False, "tcp", endpoints, low, high))
    unique = list(dict.fromkeys(rules))
    for egress in (False, True):
        count = sum(1 for r in unique if r.egress == egress)
        if count > NACL_RULES_PER_DIRECTION:
            raise CitywardError(
                f"{config.zones_file}: zone '{zone}': its conduits need {count} "
                f"{'outbound' if egress else 'inbound'} NACL rules, over AWS's default quota of "
                f"{NACL_RULES_PER_DIRECTION}"
            )
    return unique


# --- resources -------------------------------------------------------------------------------


@dataclass
class Network:
    """Handles on what `build` declared, for exports and for tests that extend the program."""

    vpc: aws.ec2.Vpc
    subnets: dict[str, list[aws.ec2.Subnet]] = field(default_factory=dict)
    route_tables: dict[str, aws.ec2.RouteTable] = field(default_factory=dict)
    nacls: dict[str, aws.ec2.NetworkAcl] = field(default_factory=dict)
    security_groups: dict[str, aws.ec2.SecurityGroup] = field(default_factory=dict)
    endpoints: dict[str, aws.ec2.VpcEndpoint] = field(default_factory=dict)
    internet_gateway: aws.ec2.InternetGateway | None = None
    flow_log: aws.ec2.FlowLog | None = None
    flow_log_group: aws.cloudwatch.LogGroup | None = None
    keys: dict[str, aws.kms.Key] = field(default_factory=dict)
    operator_role: aws.iam.Role | None = None
    trail: aws.cloudtrail.Trail | None = None


def _tags(name: str, **extra: str) -> dict[str, str]:
    return {"Name": name, **STACK_TAG, **extra}


def _rule_description(c: Conduit) -> str:
    # SG rule descriptions accept a limited character set and at most 255 characters.
    text = re.sub(r"[^a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]", " ", f"{c.service}: {c.purpose}")
    return text[:255]


def _policy(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def build(zones: ZonesPolicy, config: NetworkConfig) -> Network:
    """Declare the whole segmented network for `zones` with `config`."""
    check_layout(zones, config)
    n = config.name
    account = aws.get_caller_identity_output().account_id

    vpc = aws.ec2.Vpc(
        f"{n}-vpc",
        cidr_block=str(config.vpc_cidr),
        enable_dns_support=True,
        enable_dns_hostnames=True,  # needed for private DNS on the interface endpoints
        tags=_tags(f"{n}-vpc", **{"cityward:zones": ",".join(zones.zones)}),
    )
    net = Network(vpc=vpc)
    _defaults(net, n)
    _segments(net, zones, config)
    _security_groups(net, zones, config)
    _endpoints(net, config)
    keys_logs = _kms_key(net, config, account, "logs", _logs_key_statements(config, account))
    _flow_logs(net, config, account, keys_logs)
    _account_baseline(n)
    _operator_access(net, config, account)
    _cloudtrail(net, config, account, keys_logs)
    return net


def _defaults(net: Network, n: str) -> None:
    """Adopt the VPC's default SG, NACL and route table and leave them empty (CW-NET-04)."""
    aws.ec2.DefaultSecurityGroup(f"{n}-default-sg", vpc_id=net.vpc.id, tags=_tags(f"{n}-default-sg-unused"))
    aws.ec2.DefaultNetworkAcl(
        f"{n}-default-nacl",
        default_network_acl_id=net.vpc.default_network_acl_id,
        tags=_tags(f"{n}-default-nacl-unused"),
        # every subnet is associated with its zone NACL explicitly; AWS moves it off the default
        opts=pulumi.ResourceOptions(ignore_changes=["subnetIds"]),
    )
    aws.ec2.DefaultRouteTable(
        f"{n}-default-rt",
        default_route_table_id=net.vpc.default_route_table_id,
        routes=[],
        tags=_tags(f"{n}-default-rt-unused"),
    )


def _segments(net: Network, zones: ZonesPolicy, config: NetworkConfig) -> None:
    """Subnets per zone and AZ, a route table and a NACL per zone (CW-NET-01/02/03)."""
    n = config.name
    if any(z.internet for z in zones.zones.values()):
        net.internet_gateway = aws.ec2.InternetGateway(f"{n}-igw", vpc_id=net.vpc.id, tags=_tags(f"{n}-igw"))

    segments = [(z.name, z.kind, z.cidr, z.internet) for z in zones.zones.values()]
    segments.append((ENDPOINT_SEGMENT, "platform", config.endpoint_cidr, False))
    for name, kind, cidr, internet in segments:
        zone_tags = {"cityward:zone": name, "cityward:zone-kind": kind}
        table = aws.ec2.RouteTable(f"{n}-{name}-rt", vpc_id=net.vpc.id, tags=_tags(f"{n}-{name}-rt", **zone_tags))
        net.route_tables[name] = table
        if internet:
            aws.ec2.Route(
                f"{n}-{name}-default-igw",
                route_table_id=table.id,
                destination_cidr_block="0.0.0.0/0",
                gateway_id=net.internet_gateway.id,
            )
        acl = aws.ec2.NetworkAcl(f"{n}-{name}-nacl", vpc_id=net.vpc.id, tags=_tags(f"{n}-{name}-nacl", **zone_tags))
        net.nacls[name] = acl
        net.subnets[name] = []
        for az, subnet_cidr in zip(config.availability_zones, split_per_az(cidr, len(config.availability_zones)),
                                   strict=True):
            subnet = aws.ec2.Subnet(
                f"{n}-{name}-{az}",
                vpc_id=net.vpc.id,
                cidr_block=str(subnet_cidr),
                availability_zone=az,
                map_public_ip_on_launch=False,  # CW-NET-08: public addresses only by explicit EIP/LB
                tags=_tags(f"{n}-{name}-{az}", **zone_tags),
            )
            net.subnets[name].append(subnet)
            aws.ec2.RouteTableAssociation(f"{n}-{name}-{az}-rt", subnet_id=subnet.id, route_table_id=table.id)
            aws.ec2.NetworkAclAssociation(f"{n}-{name}-{az}-nacl", subnet_id=subnet.id, network_acl_id=acl.id)

    low, high = config.ephemeral_ports
    endpoint_rules = [AclRule(False, "tcp", str(config.vpc_cidr), 443, 443),
                      AclRule(True, "tcp", str(config.vpc_cidr), low, high)]
    for name, acl in net.nacls.items():
        rules = endpoint_rules if name == ENDPOINT_SEGMENT else nacl_rules(zones, name, config)
        for egress in (False, True):
            direction = [r for r in rules if r.egress == egress]
            for index, rule in enumerate(direction):
                number = 100 + 10 * index
                aws.ec2.NetworkAclRule(
                    f"{n}-{name}-{'out' if egress else 'in'}-{number}",
                    network_acl_id=acl.id,
                    rule_number=number,
                    egress=egress,
                    protocol=rule.protocol,
                    rule_action="allow",
                    cidr_block=rule.cidr,
                    from_port=rule.from_port,
                    to_port=rule.to_port,
                    # rule numbers are reused when conduits change: free the number first
                    opts=pulumi.ResourceOptions(delete_before_replace=True),
                )


def _security_groups(net: Network, zones: ZonesPolicy, config: NetworkConfig) -> None:
    """One SG per zone; each conduit is one ingress rule on `to` and one egress rule on `from`."""
    n = config.name
    endpoint_sg = aws.ec2.SecurityGroup(
        f"{n}-{ENDPOINT_SEGMENT}-sg",
        name=f"{n}-{ENDPOINT_SEGMENT}",
        description="cityward interface endpoints: HTTPS from the VPC only",
        vpc_id=net.vpc.id,
        revoke_rules_on_delete=True,
        tags=_tags(f"{n}-{ENDPOINT_SEGMENT}-sg", **{"cityward:zone": ENDPOINT_SEGMENT}),
    )
    net.security_groups[ENDPOINT_SEGMENT] = endpoint_sg
    aws.vpc.SecurityGroupIngressRule(
        f"{n}-{ENDPOINT_SEGMENT}-in-vpc-tcp443",
        security_group_id=endpoint_sg.id,
        ip_protocol="tcp",
        from_port=443,
        to_port=443,
        cidr_ipv4=str(config.vpc_cidr),
        description="HTTPS to AWS APIs and Session Manager from inside the VPC",
        tags=_tags(f"{n}-{ENDPOINT_SEGMENT}-in-vpc-tcp443", **{"cityward:conduit": "vpc->endpoints:tcp/443"}),
    )

    for zone in zones.zones.values():
        net.security_groups[zone.name] = aws.ec2.SecurityGroup(
            f"{n}-{zone.name}-sg",
            name=f"{n}-{zone.name}",
            description=f"cityward zone {zone.name} ({zone.kind}): conduits from the zones policy only",
            vpc_id=net.vpc.id,
            revoke_rules_on_delete=True,
            tags=_tags(f"{n}-{zone.name}-sg", **{"cityward:zone": zone.name, "cityward:zone-kind": zone.kind}),
        )

    for c in zones.conduits:
        common = {
            "ip_protocol": c.protocol,
            "from_port": c.port,
            "to_port": c.port,
            "description": _rule_description(c),
        }
        if c.to != INTERNET:
            name = f"{n}-{c.to}-in-{c.from_}-{c.protocol}{c.port}"
            aws.vpc.SecurityGroupIngressRule(
                name,
                security_group_id=net.security_groups[c.to].id,
                cidr_ipv4=str(zones.cidr_of(c.from_)),
                tags=_tags(name, **{"cityward:conduit": c.label}),
                **common,
            )
        if c.from_ != INTERNET:
            name = f"{n}-{c.from_}-out-{c.to}-{c.protocol}{c.port}"
            aws.vpc.SecurityGroupEgressRule(
                name,
                security_group_id=net.security_groups[c.from_].id,
                cidr_ipv4=str(zones.cidr_of(c.to)),
                tags=_tags(name, **{"cityward:conduit": c.label}),
                **common,
            )

    for zone in zones.zones.values():
        name = f"{n}-{zone.name}-out-{ENDPOINT_SEGMENT}-tcp443"
        aws.vpc.SecurityGroupEgressRule(
            name,
            security_group_id=net.security_groups[zone.name].id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            referenced_security_group_id=endpoint_sg.id,
            description="Session Manager agent and AWS APIs through the interface endpoints",
            tags=_tags(name, **{"cityward:conduit": f"{zone.name}->{ENDPOINT_SEGMENT}:tcp/443"}),
        )


def _endpoints(net: Network, config: NetworkConfig) -> None:
    """Interface endpoints so operators use Session Manager without any internet path (CW-NET-07)."""
    n = config.name
    subnet_ids = [s.id for s in net.subnets[ENDPOINT_SEGMENT]]
    for service in ENDPOINT_SERVICES:
        net.endpoints[service] = aws.ec2.VpcEndpoint(
            f"{n}-vpce-{service}",
            vpc_id=net.vpc.id,
            service_name=f"com.amazonaws.{config.region}.{service}",
            vpc_endpoint_type="Interface",
            private_dns_enabled=True,
            subnet_ids=subnet_ids,
            security_group_ids=[net.security_groups[ENDPOINT_SEGMENT].id],
            tags=_tags(f"{n}-vpce-{service}"),
        )


def _root_statement(config: NetworkConfig, account: pulumi.Output[str]) -> pulumi.Output[dict]:
    return account.apply(lambda a: {
        "Sid": "AccountAdministers",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{config.partition}:iam::{a}:root"},
        "Action": "kms:*",
        "Resource": "*",
    })


def _logs_key_statements(config: NetworkConfig, account: pulumi.Output[str]) -> pulumi.Output[list]:
    def statements(a: str) -> list[dict]:
        return [{
            "Sid": "CloudWatchLogsUsesKey",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{config.region}.amazonaws.com"},
            "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            "Resource": "*",
            "Condition": {"ArnLike": {
                "kms:EncryptionContext:aws:logs:arn": f"arn:{config.partition}:logs:{config.region}:{a}:log-group:*"
            }},
        }]

    return account.apply(statements)


def _trail_key_statements(config: NetworkConfig, account: pulumi.Output[str]) -> pulumi.Output[list]:
    def statements(a: str) -> list[dict]:
        trail_arn = f"arn:{config.partition}:cloudtrail:*:{a}:trail/*"
        return [
            {
                "Sid": "CloudTrailEncryptsLogs",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:GenerateDataKey*",
                "Resource": "*",
                "Condition": {"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": trail_arn}},
            },
            {
                "Sid": "CloudTrailDescribesKey",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "kms:DescribeKey",
                "Resource": "*",
            },
            {
                "Sid": "AccountReadsLogs",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Decrypt", "kms:ReEncryptFrom"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"kms:CallerAccount": a},
                    "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": trail_arn},
                },
            },
        ]

    return account.apply(statements)


def _kms_key(net: Network, config: NetworkConfig, account: pulumi.Output[str], purpose: str,
             statements: pulumi.Output[list]) -> aws.kms.Key:
    """A symmetric customer-managed key that rotates yearly (CW-NET-06)."""
    n = config.name
    policy = pulumi.Output.all(_root_statement(config, account), statements).apply(
        lambda parts: _policy([parts[0], *parts[1]])
    )
    key = aws.kms.Key(
        f"{n}-{purpose}-key",
        description=f"cityward {n}: {purpose}",
        enable_key_rotation=True,
        rotation_period_in_days=365,
        deletion_window_in_days=30,
        policy=policy,
        tags=_tags(f"{n}-{purpose}-key"),
    )
    aws.kms.Alias(f"{n}-{purpose}-key-alias", name=f"alias/{n}-{purpose}", target_key_id=key.key_id)
    net.keys[purpose] = key
    return key


def _service_role(n: str, purpose: str, service: str, account: pulumi.Output[str],
                  actions: list[str], resource: pulumi.Output[str]) -> aws.iam.Role:
    """A role that one AWS service assumes for this account only, with one inline policy."""
    role = aws.iam.Role(
        f"{n}-{purpose}-role",
        description=f"cityward {n}: {service} writes {purpose}",
        assume_role_policy=account.apply(lambda a: _policy([{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": a}},
        }])),
        tags=_tags(f"{n}-{purpose}-role"),
    )
    aws.iam.RolePolicy(
        f"{n}-{purpose}-policy",
        role=role.id,
        policy=resource.apply(
            lambda arn: _policy([{"Effect": "Allow", "Action": actions, "Resource": [arn, f"{arn}:*"]}])
        ),
    )
    return role


def _log_group(config: NetworkConfig, purpose: str, key: aws.kms.Key) -> aws.cloudwatch.LogGroup:
    n = config.name
    return aws.cloudwatch.LogGroup(
        f"{n}-{purpose}-logs",
        name=f"/cityward/{n}/{purpose}",
        retention_in_days=config.log_retention_days,
        kms_key_id=key.arn,
        tags=_tags(f"{n}-{purpose}-logs"),
    )


def _flow_logs(net: Network, config: NetworkConfig, account: pulumi.Output[str], key: aws.kms.Key) -> None:
    """All VPC traffic (accepted and rejected) into an encrypted log group (CW-NET-05)."""
    n = config.name
    group = _log_group(config, "vpc-flow-logs", key)
    role = _service_role(
        n, "flow-logs", "vpc-flow-logs.amazonaws.com", account,
        ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeLogStreams"],
        group.arn,
    )
    net.flow_log_group = group
    net.flow_log = aws.ec2.FlowLog(
        f"{n}-vpc-flow-log",
        vpc_id=net.vpc.id,
        traffic_type="ALL",
        log_destination_type="cloud-watch-logs",
        log_destination=group.arn,
        iam_role_arn=role.arn,
        max_aggregation_interval=60,
        tags=_tags(f"{n}-vpc-flow-log"),
    )


def _account_baseline(n: str) -> None:
    """Region/account defaults: IMDSv2 (CW-NET-08), EBS encryption (CW-NET-09), S3 PAB (CW-NET-10)."""
    aws.ec2.InstanceMetadataDefaults(
        f"{n}-imds-defaults",
        http_tokens="required",
        http_endpoint="enabled",  # the SSM agent reads its identity from IMDS
        http_put_response_hop_limit=1,  # containers on the host cannot reach IMDS
        instance_metadata_tags="disabled",
    )
    aws.ebs.EncryptionByDefault(f"{n}-ebs-encryption", enabled=True)
    aws.s3.AccountPublicAccessBlock(
        f"{n}-s3-account-pab",
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
    )


def _operator_access(net: Network, config: NetworkConfig, account: pulumi.Output[str]) -> None:
    """The operator role (MFA only, CW-NET-11) and the instance profile Session Manager needs."""
    n = config.name

    def trust(a: str) -> str:
        principals = list(config.operator_principals) or [f"arn:{config.partition}:iam::{a}:root"]
        return _policy([{
            "Sid": "OperatorsWithMfa",
            "Effect": "Allow",
            "Principal": {"AWS": principals},
            "Action": "sts:AssumeRole",
            "Condition": {
                "Bool": {"aws:MultiFactorAuthPresent": "true"},
                "NumericLessThan": {"aws:MultiFactorAuthAge": str(config.operator_max_session_seconds)},
            },
        }])

    role = aws.iam.Role(
        f"{n}-operator-role",
        name=f"{n}-operator",
        description="cityward operators: Session Manager shells, MFA required",
        assume_role_policy=account.apply(trust),
        max_session_duration=config.operator_max_session_seconds,
        tags=_tags(f"{n}-operator-role"),
    )
    net.operator_role = role

    def session_policy(a: str) -> str:
        arn = f"arn:{config.partition}"
        return _policy([
            {
                "Sid": "StartShellsOnManagedInstances",
                "Effect": "Allow",
                "Action": "ssm:StartSession",
                "Resource": [f"{arn}:ec2:{config.region}:{a}:instance/*",
                             f"{arn}:ssm:{config.region}::document/SSM-SessionManagerRunShell"],
            },
            {
                "Sid": "ManageOwnSessions",
                "Effect": "Allow",
                "Action": ["ssm:TerminateSession", "ssm:ResumeSession"],
                "Resource": f"{arn}:ssm:*:{a}:session/${{aws:userid}}-*",
            },
            {
                "Sid": "SeeInstances",
                "Effect": "Allow",
                "Action": ["ec2:DescribeInstances", "ssm:DescribeInstanceInformation", "ssm:DescribeSessions",
                           "ssm:GetConnectionStatus"],
                "Resource": "*",
            },
        ])

    aws.iam.RolePolicy(f"{n}-operator-sessions", role=role.id, policy=account.apply(session_policy))

    instance_role = aws.iam.Role(
        f"{n}-instance-role",
        name=f"{n}-instance",
        description="cityward instances: registered with Systems Manager",
        assume_role_policy=_policy([{
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }]),
        tags=_tags(f"{n}-instance-role"),
    )
    aws.iam.RolePolicyAttachment(
        f"{n}-instance-ssm-core",
        role=instance_role.name,
        policy_arn=f"arn:{config.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore",
    )
    aws.iam.InstanceProfile(f"{n}-instance-profile", name=f"{n}-instance", role=instance_role.name)


def _cloudtrail(net: Network, config: NetworkConfig, account: pulumi.Output[str], logs_key: aws.kms.Key) -> None:
    """Multi-region trail, log file validation, KMS, CloudWatch Logs (CW-NET-12)."""
    n = config.name
    key = _kms_key(net, config, account, "trail", _trail_key_statements(config, account))
    trail_name = f"{n}-trail"
    bucket = aws.s3.Bucket(
        f"{n}-trail-bucket",
        bucket=account.apply(lambda a: f"{n}-cloudtrail-{a}-{config.region}"),
        force_destroy=False,
        tags=_tags(f"{n}-trail-bucket"),
    )
    aws.s3.BucketOwnershipControls(f"{n}-trail-bucket-ownership", bucket=bucket.id,
                                   rule={"object_ownership": "BucketOwnerEnforced"})
    aws.s3.BucketPublicAccessBlock(
        f"{n}-trail-bucket-pab",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
    )
    aws.s3.BucketVersioning(f"{n}-trail-bucket-versioning", bucket=bucket.id,
                            versioning_configuration={"status": "Enabled"})
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{n}-trail-bucket-sse",
        bucket=bucket.id,
        rules=[{
            "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": key.arn},
            "bucket_key_enabled": True,
        }],
    )

    def bucket_policy(args: list[str]) -> str:
        a, bucket_arn = args
        source_arn = f"arn:{config.partition}:cloudtrail:{config.region}:{a}:trail/{trail_name}"
        return _policy([
            {
                "Sid": "CloudTrailAclCheck",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": bucket_arn,
                "Condition": {"StringEquals": {"aws:SourceArn": source_arn}},
            },
            {
                "Sid": "CloudTrailWrite",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/AWSLogs/{a}/*",
                "Condition": {"StringEquals": {"aws:SourceArn": source_arn,
                                               "s3:x-amz-acl": "bucket-owner-full-control"}},
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ])

    policy = aws.s3.BucketPolicy(
        f"{n}-trail-bucket-policy",
        bucket=bucket.id,
        policy=pulumi.Output.all(account, bucket.arn).apply(bucket_policy),
    )
    group = _log_group(config, "cloudtrail", logs_key)
    role = _service_role(n, "trail-logs", "cloudtrail.amazonaws.com", account,
                         ["logs:CreateLogStream", "logs:PutLogEvents"], group.arn)
    net.trail = aws.cloudtrail.Trail(
        f"{n}-trail",
        name=trail_name,
        s3_bucket_name=bucket.bucket,
        is_multi_region_trail=True,
        include_global_service_events=True,
        enable_log_file_validation=True,
        enable_logging=True,
        kms_key_id=key.arn,
        cloud_watch_logs_group_arn=group.arn.apply(lambda arn: f"{arn}:*"),
        cloud_watch_logs_role_arn=role.arn,
        tags=_tags(f"{n}-trail"),
        opts=pulumi.ResourceOptions(depends_on=[policy]),
    )
