"""Segmented zero-trust AWS network built from a city's zones policy: the program of a Pulumi project
such as stacks/segmented_network.

`build(zones, config)` declares every resource; a project's `__main__.py` only reads its stack
config and calls it, so tests and `cityward cloud plan` run the very same code under Pulumi mocks.

The program is made of ComponentResources over a pure plan (cityward.cloud.planning: conduits ->
security-group rules, NACL entries, routes): SegmentedVpc (the VPC, its emptied defaults, the
endpoints segment), one Zone per zone of the policy (subnets per AZ, a route table and a NACL with
inline routes and entries, a security group with separate rule resources), AuditTrail and
OperatorAccess. Only zones with `internet: true` and a conduit with the internet get an
internet-gateway route; field sites are routed to the transit gateway, whose VPC attachment sits
in a transit segment of its own (`transitSubnetCidr`); there is no NAT gateway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from cityward.cloud import planning
from cityward.cloud.access import OperatorAccess
from cityward.cloud.audit import AuditTrail
from cityward.cloud.contacts import alert_emails
from cityward.cloud.declare import STACK_TAG, kms_key, log_group, log_group_arn, policy_json, service_role, tags
from cityward.cloud.detection import Detection
from cityward.cloud.network_config import CONFIG_KEYS, PROJECT, NetworkConfig  # noqa: F401 - the stack program's config
from cityward.cloud.planning import (
    NACL_RULES_PER_DIRECTION,  # noqa: F401 - re-exported
    split_per_az,
)
from cityward.cloud.segments import SegmentedVpc, Zone, plan_config
from cityward.cloud.sites import SiteConnectivity
from cityward.errors import CitywardError
from cityward.zones import ZonesPolicy

ENDPOINT_SEGMENT = planning.ENDPOINT_SEGMENT
TRANSIT_SEGMENT = planning.TRANSIT_SEGMENT
ENDPOINT_SERVICES = ("ssm", "ssmmessages", "ec2messages", "logs", "kms")


# --- the plan of addresses -------------------------------------------------------------------


def check_layout(zones: ZonesPolicy, config: NetworkConfig) -> None:
    """Every zone and the endpoint segment fit, without overlap, in the VPC CIDR; the transit
    segment is given when there are field sites and overlaps no zone or site; the operator's zones
    exist; every zone's NACL fits the quota. Raises one CitywardError line naming the field."""
    for zone in zones.zones.values():
        if zone.name in (ENDPOINT_SEGMENT, TRANSIT_SEGMENT):
            raise CitywardError(f"{config.zones_file}: zone '{zone.name}', field '(name)': reserved for the "
                                f"stack's {zone.name} segment")
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
    _check_transit(zones, config)
    for name in config.operator_zones:
        if name not in zones.zones:
            raise CitywardError(
                f"{config.source}: config '{PROJECT}:operatorZones': unknown zone '{name}' (zones of "
                f"{config.zones_file}: {', '.join(zones.zones)})")
    for name in zones.zones:
        planning.nacl_rules(zones, name, plan_config(config))
    if zones.sites:
        planning.transit_nacl_rules(zones, plan_config(config))
    if config.incident_contacts_file is None:
        raise CitywardError(f"{config.source}: config '{PROJECT}:incidentContactsFile': required: the detection "
                            "alarms (CW-NET-15) notify the city's incident contacts (CW-GOV-04)")
    alert_emails(config.incident_contacts_file)  # a record nobody can be mailed from is refused here


def _check_transit(zones: ZonesPolicy, config: NetworkConfig) -> None:
    """transitSubnetCidr: required with field sites; never overlapping a zone or a site (with or
    without sites: a given value is checked even when no segment is built from it)."""
    key = f"{config.source}: config '{PROJECT}:transitSubnetCidr'"
    if config.transit_cidr is None:
        if zones.sites:
            raise CitywardError(
                f"{key}: required: the field sites ({', '.join(zones.sites)}) attach through a transit segment "
                f"of its own, a range of vpcCidr {config.vpc_cidr} outside every zone (e.g. a /24)")
        return
    taken = [(f"zone '{z.name}'", z.cidr) for z in zones.zones.values()]
    taken += [(f"site '{s.name}'", s.cidr) for s in zones.sites.values()]
    for what, cidr in taken:
        if config.transit_cidr.overlaps(cidr):
            raise CitywardError(f"{key}: {config.transit_cidr} overlaps {what} ({cidr}) of {config.zones_file}")


def operator_zones(zones: ZonesPolicy, config: NetworkConfig) -> list[str]:
    return list(config.operator_zones or zones.zones)


# --- resources -------------------------------------------------------------------------------


@dataclass
class Network:
    """Handles on what `build` declared, for exports, the hooks, and tests that extend the program."""

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
    segmented_vpc: SegmentedVpc | None = None
    zones: dict[str, Zone] = field(default_factory=dict)
    trail_log_group: aws.cloudwatch.LogGroup | None = None
    trail_bucket: aws.s3.Bucket | None = None
    session_log_group: aws.cloudwatch.LogGroup | None = None
    session_document: aws.ssm.Document | None = None
    account: pulumi.Output[str] | None = None
    # (transit gateway, VPC attachment) once field sites are connected (_connect_sites)
    transit: tuple[Any, Any] | None = None


def build(zones: ZonesPolicy, config: NetworkConfig) -> Network:
    """Declare the whole segmented network for `zones` with `config`."""
    check_layout(zones, config)
    account = aws.get_caller_identity_output().account_id

    segmented = SegmentedVpc(zones, config)
    net = Network(vpc=segmented.vpc, segmented_vpc=segmented, internet_gateway=segmented.internet_gateway,
                  account=account)
    net.subnets[ENDPOINT_SEGMENT] = segmented.subnets
    net.route_tables[ENDPOINT_SEGMENT] = segmented.route_table
    net.nacls[ENDPOINT_SEGMENT] = segmented.nacl
    net.security_groups[ENDPOINT_SEGMENT] = segmented.security_group
    if segmented.transit is not None:
        net.subnets[TRANSIT_SEGMENT] = segmented.transit.subnets
        net.route_tables[TRANSIT_SEGMENT] = segmented.transit.route_table
        net.nacls[TRANSIT_SEGMENT] = segmented.transit.nacl

    net.transit = transit = _connect_sites(net, zones, config)
    for name in zones.zones:
        zone = Zone(name, zones, config, segmented, transit)
        net.zones[name] = zone
        net.subnets[name] = zone.subnets
        net.route_tables[name] = zone.route_table
        net.nacls[name] = zone.nacl
        net.security_groups[name] = zone.security_group

    _endpoints(net, config, account)
    logs_key = kms_key(config.name, "logs", config.partition, account, _logs_key_statements(config, account))
    net.keys["logs"] = logs_key
    _flow_logs(net, config, account, logs_key)
    _account_baseline(config.name)

    access = OperatorAccess(config, operator_zones(zones, config), account, logs_key)
    net.operator_role, net.session_log_group, net.session_document = access.role, access.log_group, access.document
    trail = AuditTrail(config, account, logs_key)
    net.keys["trail"] = trail.key
    net.trail, net.trail_bucket, net.trail_log_group = trail.trail, trail.bucket, trail.log_group
    _detect(net, zones, config, account)
    return net


def _connect_sites(net: Network, zones: ZonesPolicy, config: NetworkConfig) -> tuple[Any, Any] | None:
    """The field sites' connectivity (Transit Gateway, a VPN per site, CW-NET-16), attached through
    the transit segment; (transit gateway, VPC attachment), or None when the policy has no sites."""
    if not zones.sites:
        return None
    sites = SiteConnectivity(config.name, zones=zones, vpc_id=net.vpc.id,
                             attachment_subnet_ids=[s.id for s in net.subnets[TRANSIT_SEGMENT]])
    return sites.transit_gateway, sites.vpc_attachment


def _detect(net: Network, zones: ZonesPolicy, config: NetworkConfig, account: pulumi.Output[str]) -> None:
    """Detective controls (CW-NET-14/15): GuardDuty, Security Hub, Config, alarms on the trail's log
    group to the city's incident contacts, DNS query logging."""
    Detection(config.name, region=config.region, partition=config.partition, account=account,
              trail_log_group_name=net.trail_log_group.name, kms_key=net.keys["logs"], vpc_id=net.vpc.id,
              log_retention_days=config.log_retention_days,
              alert_emails=alert_emails(config.incident_contacts_file), tags=STACK_TAG)


def endpoint_policy(account: str, extra: list[dict] | None = None) -> str:
    """Confine an endpoint to this account: its principals, acting on its resources.

    Why the extra statements: the SSM agent also reads what AWS owns in the region (its update and
    plugin buckets, AWS-owned documents), whose aws:ResourceAccount is not ours; those are allowed
    by name, still to this account's principals only, so the agent keeps working."""
    same = {"aws:PrincipalAccount": account, "aws:ResourceAccount": account}
    return policy_json([
        {"Sid": "ThisAccountOnly", "Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*",
         "Condition": {"StringEquals": same}},
        *(extra or []),
    ])


def _agent_reads_aws_owned(config: NetworkConfig, service: str, account: str) -> list[dict]:
    r, arn = config.region, f"arn:{config.partition}"
    if service == "ssm":
        actions, resources = ["ssm:GetDocument", "ssm:DescribeDocument"], [f"{arn}:ssm:{r}::document/*"]
    elif service == "s3":
        actions = ["s3:GetObject"]
        resources = [f"{arn}:s3:::{b}/*" for b in (
            f"amazon-ssm-{r}", f"aws-ssm-{r}", f"amazon-ssm-packages-{r}", f"{r}-birdwatcher-prod",
            f"aws-ssm-distributor-file-{r}", f"aws-ssm-document-attachments-{r}", f"patch-baseline-snapshot-{r}")]
    else:
        return []
    return [{"Sid": "AgentReadsAwsOwned", "Effect": "Allow", "Principal": "*", "Action": actions,
             "Resource": resources, "Condition": {"StringEquals": {"aws:PrincipalAccount": account}}}]


def _endpoints(net: Network, config: NetworkConfig, account: pulumi.Output[str]) -> None:
    """Interface endpoints so operators use Session Manager without any internet path (CW-NET-07),
    an S3 gateway endpoint on every zone's route table, each confined to this account (CW-NET-16)."""
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
            policy=account.apply(lambda a, s=service: endpoint_policy(a, _agent_reads_aws_owned(config, s, a))),
            tags=tags(f"{n}-vpce-{service}"),
        )
    net.endpoints["s3"] = aws.ec2.VpcEndpoint(
        f"{n}-vpce-s3",
        vpc_id=net.vpc.id,
        service_name=f"com.amazonaws.{config.region}.s3",
        vpc_endpoint_type="Gateway",
        # the zones' tables only: the segments' tables route nowhere beyond `local`
        route_table_ids=[t.id for name, t in net.route_tables.items()
                         if name not in (ENDPOINT_SEGMENT, TRANSIT_SEGMENT)],
        policy=account.apply(lambda a: endpoint_policy(a, _agent_reads_aws_owned(config, "s3", a))),
        tags=tags(f"{n}-vpce-s3"),
    )


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


def _flow_logs(net: Network, config: NetworkConfig, account: pulumi.Output[str], key: aws.kms.Key) -> None:
    """All VPC traffic (accepted and rejected) into an encrypted log group (CW-NET-05)."""
    n = config.name
    group = log_group(n, "vpc-flow-logs", config.log_retention_days, key)
    role = service_role(
        n, "flow-logs", "vpc-flow-logs.amazonaws.com", account,
        ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeLogStreams"],
        log_group_arn(config.partition, config.region, account, f"/cityward/{n}/vpc-flow-logs"),
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
        tags=tags(f"{n}-vpc-flow-log"),
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
