"""Run a Pulumi program in-process under the SDK's mocks and collect what it registers.

Only the SDK's documented testing interface: `pulumi.runtime.set_mocks` with a fresh MockMonitor
for every run (its registrations are the plan), and `pulumi.runtime.test`, which runs the program
and waits for every output.

Two modes. By default (`preview=False`) every output is known, so `apply` callbacks run and nothing
is silently skipped. With `first_preview=True` the run looks like a first `pulumi preview` of a stack
that does not exist: no resource has an id, outputs are only the inputs, so every id, ARN and
computed output is unknown and the `apply` callbacks over them do not run. Unknowns are recorded as
the sentinel strings the engine hands a policy pack. In both modes each resource's property
dependencies (which resources a property was computed from) are recorded, as the engine sends them.
"""

from __future__ import annotations

import gc
import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.output import Unknown
from pulumi.runtime.mocks import MockMonitor
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from cityward.errors import CitywardError

ACCOUNT_ID = "123456789012"  # AWS's documentation account: obviously not real

# id prefixes AWS uses, so id-shaped checks (igw-..., nat-...) behave as on a real plan
_ID_PREFIX = {
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/internetGateway:InternetGateway": "igw",
    "aws:ec2/natGateway:NatGateway": "nat",
    "aws:ec2/eip:Eip": "eipalloc",
    "aws:ec2/routeTable:RouteTable": "rtb",
    "aws:ec2/networkAcl:NetworkAcl": "acl",
    "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce",
    "aws:ec2/flowLog:FlowLog": "fl",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc",
    "aws:ec2/networkAclAssociation:NetworkAclAssociation": "aclassoc",
    "aws:ec2transitgateway/transitGateway:TransitGateway": "tgw",
    "aws:ec2transitgateway/vpcAttachment:VpcAttachment": "tgw-attach",
    "aws:ec2transitgateway/routeTable:RouteTable": "tgw-rtb",
    "aws:ec2/customerGateway:CustomerGateway": "cgw",
    "aws:ec2/vpnConnection:VpnConnection": "vpn",
}


def _fake_id(prefix: str, name: str) -> str:
    return f"{prefix}-{hashlib.sha256(name.encode()).hexdigest()[:17]}"


@dataclass
class PlannedResource:
    """One resource the program registered: its inputs (what a preview sends), mock outputs, and
    per property the URNs of the resources that property was computed from."""

    type: str
    name: str
    urn: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    dependencies: dict[str, list[str]] = field(default_factory=dict)


def engine_value(value: Any) -> Any:
    """`value` with the SDK's unknowns replaced by the sentinel the engine sends (recursively)."""
    if isinstance(value, Unknown):
        return UNKNOWN_STRING_VALUE
    if isinstance(value, dict):
        return {key: engine_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [engine_value(item) for item in value]
    return value


class CitywardMocks(pulumi.runtime.Mocks):
    """Deterministic ids and ARNs; outputs echo the inputs plus what AWS would compute."""

    def __init__(self, region: str = "eu-west-1", account: str = ACCOUNT_ID, first_preview: bool = False) -> None:
        self.region = region
        self.account = account
        self.first_preview = first_preview
        self.registered: list[tuple[str, str, dict[str, Any]]] = []

    def call(self, args: pulumi.runtime.MockCallArgs):
        answers = {
            "aws:index/getCallerIdentity:getCallerIdentity": {
                "accountId": self.account, "arn": f"arn:aws:iam::{self.account}:user/cityward-plan",
                "userId": "AIDACITYWARDPLAN", "id": self.account},
            "aws:index/getRegion:getRegion": {"name": self.region, "region": self.region, "id": self.region},
            "aws:index/getPartition:getPartition": {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"},
        }
        if args.token not in answers:
            raise CitywardError(f"the offline plan cannot answer the data source {args.token}; "
                                "take the value from the stack config")
        return answers[args.token]

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.registered.append((args.typ, args.name, dict(args.inputs)))
        if self.first_preview:
            # nothing exists yet: no id, and the outputs are what the program sent
            return "", dict(args.inputs)
        state = dict(args.inputs)
        typ, name, region, account = args.typ, args.name, self.region, self.account
        rid = _fake_id(_ID_PREFIX.get(typ, typ.rsplit(":", 1)[-1].lower()), name)
        if typ == "aws:ec2/vpc:Vpc":
            state.update(
                defaultNetworkAclId=_fake_id("acl", name + "/default"),
                defaultSecurityGroupId=_fake_id("sg", name + "/default"),
                defaultRouteTableId=_fake_id("rtb", name + "/default"),
                mainRouteTableId=_fake_id("rtb", name + "/default"),
                arn=f"arn:aws:ec2:{region}:{account}:vpc/{rid}",
            )
        elif typ == "aws:ec2/defaultNetworkAcl:DefaultNetworkAcl":
            rid = state.get("defaultNetworkAclId", rid)
        elif typ == "aws:ec2/defaultRouteTable:DefaultRouteTable":
            rid = state.get("defaultRouteTableId", rid)
        elif typ == "aws:kms/key:Key":
            state.update(keyId=rid, arn=f"arn:aws:kms:{region}:{account}:key/{rid}")
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            group = state.setdefault("name", name)
            rid = group
            state["arn"] = f"arn:aws:logs:{region}:{account}:log-group:{group}"
        elif typ == "aws:iam/role:Role":
            role = state.setdefault("name", name)
            rid = role
            state["arn"] = f"arn:aws:iam::{account}:role/{role}"
        elif typ == "aws:iam/instanceProfile:InstanceProfile":
            state["arn"] = f"arn:aws:iam::{account}:instance-profile/{state.setdefault('name', name)}"
        elif typ == "aws:s3/bucket:Bucket":
            bucket = state.setdefault("bucket", name)
            rid = bucket
            state["arn"] = f"arn:aws:s3:::{bucket}"
        elif typ == "aws:cloudtrail/trail:Trail":
            state["arn"] = f"arn:aws:cloudtrail:{region}:{account}:trail/{state.setdefault('name', name)}"
        elif typ == "aws:ec2/vpnConnection:VpnConnection" and state.get("transitGatewayId"):
            # a VPN on a Transit Gateway creates its own TGW attachment
            state["transitGatewayAttachmentId"] = _fake_id("tgw-attach", name + "/vpn")
        elif typ == "aws:ec2/securityGroup:SecurityGroup":
            state.setdefault("name", name)
            state["arn"] = f"arn:aws:ec2:{region}:{account}:security-group/{rid}"
        else:
            service = typ.split(":")[1].split("/")[0]
            state.setdefault("arn", f"arn:aws:{service}:{region}:{account}:{rid}")
        state["id"] = rid
        return rid, state


class _DependencyMonitor(MockMonitor):
    """The SDK's mock monitor, also keeping each registration's property dependencies."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.property_dependencies: dict[str, dict[str, list[str]]] = {}

    def RegisterResource(self, request):  # noqa: N802 - the gRPC method's name
        response = super().RegisterResource(request)
        if response.urn:
            self.property_dependencies[response.urn] = {
                prop: list(deps.urns) for prop, deps in request.propertyDependencies.items() if deps.urns}
        return response


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: a run allocates hundreds of thousands of short-lived
    objects (futures, Outputs, pulumi_aws's classes as its modules load), and the collector walking
    the whole heap over and over cost 0.7 to 0.9 s of the plan's ~3 s to free a few MB (peak
    memory measured the same either way). The previous state is restored after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class ProgramRun:
    resources: list[PlannedResource]
    warnings: list[str] = field(default_factory=list)


def run_program(program: Callable[[], Any], *, project: str, stack: str, region: str,
                source: str = "the stack program", first_preview: bool = False) -> ProgramRun:
    """Run `program` under fresh mocks; return what it registered, in registration order.

    `first_preview`: run it as a first `pulumi preview` sees it (ids and computed outputs unknown)."""
    mocks = CitywardMocks(region=region, first_preview=first_preview)
    monitor = _DependencyMonitor(mocks)
    logger = logging.getLogger("cityward.cloud.pulumi")
    logger.propagate = False  # engine log lines are collected into the plan, not printed
    collect = _Collect()
    logger.addHandler(collect)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=first_preview, monitor=monitor,
                             logger=logger)
    # pulumi.runtime.test drops what an earlier (failed) run left pending, runs the program and
    # waits for all its outputs.
    try:
        with collector_paused():
            pulumi.runtime.test(program)()
    except CitywardError:
        raise
    except Exception as exc:
        raise CitywardError(f"{source}: failed under the offline plan ({type(exc).__name__}: {exc})") from None
    finally:
        logger.removeHandler(collect)

    by_key = {}
    for urn, reg in monitor.get_registered_resources().items():
        typ, name = urn.split("::")[-2].split("$")[-1], urn.split("::")[-1]
        by_key[(typ, name)] = (urn, reg)
    resources = []
    for typ, name, inputs in mocks.registered:
        urn, reg = by_key[(typ, name)]
        resources.append(PlannedResource(typ, name, urn, reg.id, engine_value(inputs), engine_value(dict(reg.state)),
                                         monitor.property_dependencies.get(urn, {})))
    return ProgramRun(resources, collect.messages)
