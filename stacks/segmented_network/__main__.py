"""Pulumi entry point: read the stack config, load the zones policy, build the network.

The program is cityward.cloud.network, from the cityward package (requirements.txt), so this
project folder holds only the entry point and the stack configs; `cityward cloud plan` runs the
same program offline."""

from pathlib import Path

import pulumi

from cityward.cloud import network
from cityward.zones import load_zones

HERE = Path(__file__).resolve().parent

config = pulumi.Config()
values = {key: config.get(key) for key in network.CONFIG_KEYS if config.get(key) is not None}
settings = network.NetworkConfig.from_values(
    values,
    region=pulumi.Config("aws").get("region"),
    source=f"Pulumi.{pulumi.get_stack()}.yaml",
    base_dir=HERE,
)
net = network.build(load_zones(settings.zones_file), settings)

pulumi.export("vpcId", net.vpc.id)
pulumi.export("subnetIds", {zone: [s.id for s in subnets] for zone, subnets in net.subnets.items()})
pulumi.export("securityGroupIds", {zone: sg.id for zone, sg in net.security_groups.items()})
pulumi.export("operatorRoleArn", net.operator_role.arn)
pulumi.export("flowLogGroup", net.flow_log_group.name)
pulumi.export("trailArn", net.trail.arn)
pulumi.export("sessionLogGroup", net.session_log_group.name)
