"""CloudWatch log groups (CW-NET-05): encrypted with a KMS key and kept at least a year."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs

from cityward.cloud.graph import has
from cityward.cloud.rules.registry import RuleSet
from cityward.cloud.types import LOG_GROUP
from cityward.cloud.values import number

RULES = RuleSet()
MIN_LOG_RETENTION_DAYS = 365


@RULES.resource("cw-net-05-log-group-kms", control="CW-NET-05", types=(LOG_GROUP,), checkov=("CKV_AWS_158",),
                description="CW-NET-05 (Checkov CKV_AWS_158): CloudWatch log groups are encrypted with a KMS key.")
def _log_group_kms(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not has(args.props, "kmsKeyId"):
        report("CW-NET-05: log group is not encrypted with a customer-managed KMS key (kmsKeyId)")


@RULES.resource("cw-net-05-log-group-retention-365", control="CW-NET-05", types=(LOG_GROUP,),
                checkov=("CKV_AWS_338",),
                description="CW-NET-05 (Checkov CKV_AWS_338): CloudWatch log groups keep logs at least 365 days.")
def _log_group_retention(args: ResourceValidationArgs, report: ReportViolation) -> None:
    days = number(args.props.get("retentionInDays"))
    if days is None or days < MIN_LOG_RETENTION_DAYS:
        report(f"CW-NET-05: log group keeps logs {days} days; set retentionInDays >= {MIN_LOG_RETENTION_DAYS}")
