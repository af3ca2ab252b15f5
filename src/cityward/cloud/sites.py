"""Field sites reach the city's VPC over site-to-site VPN on a Transit Gateway, through conduits only
(control CW-NET-16).

Each site of the zones policy gets a customer gateway and a VPN connection on one Transit Gateway.
The TGW's default route table is off (no default association, no propagation), so an attachment
routes nowhere until a route table is associated with it, and only the routes declared here exist:

- a route table per site, associated with that site's VPN attachment, with one static route per zone
  the site may reach (its own zone and the zones its zone has a conduit with) toward the VPC;
- one route table for the VPC attachment, with one route per site CIDR toward that site's VPN.

Anything else is dropped by the TGW. Which ports pass is still decided by the zones' NACLs and
security groups; this component decides which networks can meet at all.
Resource names derive from the site and zone names, never from a position in a list, so adding a
site or a conduit adds resources and replaces none.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws
from ansible_collections.cityward.hardening.plugins.plugin_utils.zones import Site

from cityward.cloud.types import SITE_TAG, ZONE_TAG
from cityward.zones import ZonesPolicy

# IKE proposals the tunnels accept (AWS's defaults also allow IKEv1, AES128, SHA1 and DH groups 2/5).
IKE_VERSIONS = ["ikev2"]
ENCRYPTION = ["AES256-GCM-16", "AES256"]
INTEGRITY = ["SHA2-256", "SHA2-384", "SHA2-512"]
DH_GROUPS = [19, 20, 21]  # elliptic-curve groups (NIST P-256/384/521)


class SiteConnectivity(pulumi.ComponentResource):
    """The Transit Gateway, its VPC attachment, and one VPN per field site of `zones`."""

    transit_gateway: aws.ec2transitgateway.TransitGateway
    vpc_attachment: aws.ec2transitgateway.VpcAttachment

    def __init__(self, name: str, *, zones: ZonesPolicy, vpc_id: pulumi.Input[str],
                 attachment_subnet_ids: Sequence[pulumi.Input[str]], log_group_arn: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("cityward:cloud:SiteConnectivity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.transit_gateway = aws.ec2transitgateway.TransitGateway(
            f"{name}-tgw",
            description="cityward field sites: routes only along conduits",
            default_route_table_association="disable",
            default_route_table_propagation="disable",
            auto_accept_shared_attachments="disable",
            tags={"Name": f"{name}-tgw"},
            opts=child,
        )
        self.vpc_attachment = aws.ec2transitgateway.VpcAttachment(
            f"{name}-vpc-attachment",
            transit_gateway_id=self.transit_gateway.id,
            vpc_id=vpc_id,
            subnet_ids=list(attachment_subnet_ids),
            transit_gateway_default_route_table_association=False,
            transit_gateway_default_route_table_propagation=False,
            tags={"Name": f"{name}-vpc-attachment"},
            opts=child,
        )
        self.vpn_connections: dict[str, aws.ec2.VpnConnection] = {}
        self.site_route_tables: dict[str, aws.ec2transitgateway.RouteTable] = {}
        for site in zones.sites.values():
            self._site(name, zones, site, log_group_arn, child)
        self.vpc_route_table = self._vpc_routes(name, zones, child)
        self.register_outputs({"transit_gateway_id": self.transit_gateway.id,
                               "vpc_attachment_id": self.vpc_attachment.id})

    def _site(self, name: str, zones: ZonesPolicy, site: Site, log_group_arn: pulumi.Input[str] | None,
              child: pulumi.ResourceOptions) -> None:
        base = f"{name}-{site.name}"
        tags = {SITE_TAG: site.name, ZONE_TAG: site.zone}
        gateway = aws.ec2.CustomerGateway(
            f"{base}-cgw",
            type="ipsec.1",
            ip_address=str(site.customer_gateway.address),
            bgp_asn=str(site.customer_gateway.bgp_asn),
            tags={"Name": f"{base}-cgw", **tags},
            opts=child,
        )
        vpn = aws.ec2.VpnConnection(
            f"{base}-vpn",
            type="ipsec.1",
            customer_gateway_id=gateway.id,
            transit_gateway_id=self.transit_gateway.id,
            static_routes_only=True,
            # the tunnels carry the site's own network only, whatever the site's router sends
            local_ipv4_network_cidr=str(site.cidr),
            # pre-shared keys live in Secrets Manager, not in the stack's state
            preshared_key_storage="SecretsManager",
            **_tunnel(1, log_group_arn),
            **_tunnel(2, log_group_arn),
            tags={"Name": f"{base}-vpn", **tags},
            opts=child,
        )
        self.vpn_connections[site.name] = vpn
        table = aws.ec2transitgateway.RouteTable(
            f"{base}-rtb", transit_gateway_id=self.transit_gateway.id, tags={"Name": f"{base}-rtb", **tags},
            opts=child)
        self.site_route_tables[site.name] = table
        aws.ec2transitgateway.RouteTableAssociation(
            f"{base}-rtb-assoc", transit_gateway_attachment_id=vpn.transit_gateway_attachment_id,
            transit_gateway_route_table_id=table.id, opts=child)
        for zone in [site.zone, *zones.peers_of(site.zone)]:
            aws.ec2transitgateway.Route(
                f"{base}-to-{zone}",
                transit_gateway_route_table_id=table.id,
                destination_cidr_block=str(zones.cidr_of(zone)),
                transit_gateway_attachment_id=self.vpc_attachment.id,
                opts=child,
            )

    def _vpc_routes(self, name: str, zones: ZonesPolicy,
                    child: pulumi.ResourceOptions) -> aws.ec2transitgateway.RouteTable:
        table = aws.ec2transitgateway.RouteTable(
            f"{name}-vpc-rtb", transit_gateway_id=self.transit_gateway.id, tags={"Name": f"{name}-vpc-rtb"},
            opts=child)
        aws.ec2transitgateway.RouteTableAssociation(
            f"{name}-vpc-rtb-assoc", transit_gateway_attachment_id=self.vpc_attachment.id,
            transit_gateway_route_table_id=table.id, opts=child)
        for site in zones.sites.values():
            aws.ec2transitgateway.Route(
                f"{name}-vpc-to-{site.name}",
                transit_gateway_route_table_id=table.id,
                destination_cidr_block=str(site.cidr),
                transit_gateway_attachment_id=self.vpn_connections[site.name].transit_gateway_attachment_id,
                opts=child,
            )
        return table


def _tunnel(number: int, log_group_arn: pulumi.Input[str] | None) -> dict:
    """Keyword arguments of one tunnel: IKEv2 only, strong proposals, logs when a group is given."""
    prefix = f"tunnel{number}_"
    args: dict = {
        f"{prefix}ike_versions": IKE_VERSIONS,
        f"{prefix}phase1_encryption_algorithms": ENCRYPTION,
        f"{prefix}phase1_integrity_algorithms": INTEGRITY,
        f"{prefix}phase1_dh_group_numbers": DH_GROUPS,
        f"{prefix}phase2_encryption_algorithms": ENCRYPTION,
        f"{prefix}phase2_integrity_algorithms": INTEGRITY,
        f"{prefix}phase2_dh_group_numbers": DH_GROUPS,
    }
    if log_group_arn is not None:
        args[f"{prefix}log_options"] = {"cloudwatch_log_options": {
            "log_enabled": True, "log_group_arn": log_group_arn, "log_output_format": "json"}}
    return args
