"""EC2 instances at launch (CW-NET-08, CW-NET-09): IMDSv2 required (per instance, per launch
template and as the region's default), no public IPv4 address, EBS volumes encrypted by default."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs

from cityward.cloud.rules.registry import RuleSet
from cityward.cloud.types import EBS_DEFAULT_ENCRYPTION, IMDS_DEFAULTS, INSTANCE, LAUNCH_TEMPLATE, SUBNET
from cityward.cloud.values import is_false, is_true, listify

RULES = RuleSet()


@RULES.resource("cw-net-08-imdsv2-required", control="CW-NET-08", types=(IMDS_DEFAULTS, INSTANCE, LAUNCH_TEMPLATE),
                checkov=("CKV_AWS_79",), security_hub=("EC2.8",),
                description="CW-NET-08 (Checkov CKV_AWS_79; FSBP EC2.8): account metadata defaults, instances and "
                            "launch templates require IMDSv2 tokens.")
def _imdsv2(args: ResourceValidationArgs, report: ReportViolation) -> None:
    p = args.props
    tokens = p.get("httpTokens") if args.resource_type == IMDS_DEFAULTS else (p.get("metadataOptions") or {}).get(
        "httpTokens")
    if tokens != "required":
        report(f"CW-NET-08: instance metadata tokens are {tokens!r}; require IMDSv2 (httpTokens 'required')")


RULES.declared("cw-net-08-imdsv2-account-default", control="CW-NET-08", resource_type=IMDS_DEFAULTS,
               label="InstanceMetadataDefaults with httpTokens 'required'",
               ok=lambda p: p.get("httpTokens") == "required",
               description="CW-NET-08 (FSBP EC2.8 at account level): the stack sets the region's instance metadata "
                           "defaults to IMDSv2 required (aws.ec2.InstanceMetadataDefaults).")


@RULES.resource("cw-net-08-no-public-ip-on-launch", control="CW-NET-08", types=(SUBNET, INSTANCE, LAUNCH_TEMPLATE),
                checkov=("CKV_AWS_130", "CKV_AWS_88"), security_hub=("EC2.15",),
                description="CW-NET-08 (Checkov CKV_AWS_130, CKV_AWS_88; FSBP EC2.15): subnets, instances and launch "
                            "templates assign no public IPv4 address at launch.")
def _no_public_ip(args: ResourceValidationArgs, report: ReportViolation) -> None:
    p = args.props
    if args.resource_type == SUBNET and is_true(p.get("mapPublicIpOnLaunch")):
        report("CW-NET-08: subnet assigns public IPv4 addresses at launch (mapPublicIpOnLaunch)")
    if args.resource_type == INSTANCE and is_true(p.get("associatePublicIpAddress")):
        report("CW-NET-08: instance gets a public IPv4 address (associatePublicIpAddress)")
    if args.resource_type == LAUNCH_TEMPLATE:
        for nic in listify(p.get("networkInterfaces")):
            if is_true(nic.get("associatePublicIpAddress")):
                report("CW-NET-08: launch template gives instances a public IPv4 address")


@RULES.resource("cw-net-09-ebs-encryption-by-default", control="CW-NET-09", types=(EBS_DEFAULT_ENCRYPTION,),
                checkov=("CKV_AWS_106",), security_hub=("EC2.7",),
                description="CW-NET-09 (Checkov CKV_AWS_106; FSBP EC2.7): EBS encryption by default stays enabled.")
def _ebs_default_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if is_false(args.props.get("enabled")):
        report("CW-NET-09: EBS encryption by default is disabled")


RULES.declared("cw-net-09-ebs-encryption-declared", control="CW-NET-09", resource_type=EBS_DEFAULT_ENCRYPTION,
               label="enabled EBS encryption by default", ok=lambda p: not is_false(p.get("enabled")),
               checkov=("CKV_AWS_106",), security_hub=("EC2.7",),
               description="CW-NET-09 (Checkov CKV_AWS_106; FSBP EC2.7): the stack enables EBS encryption by default "
                           "(aws.ebs.EncryptionByDefault).")
