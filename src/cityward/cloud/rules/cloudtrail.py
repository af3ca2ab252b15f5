"""CloudTrail (CW-NET-12): a multi-region trail that logs, includes global service events, validates
its log files, is encrypted with a KMS key and delivers to CloudWatch Logs."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs

from cityward.cloud.graph import has
from cityward.cloud.rules.registry import RuleSet
from cityward.cloud.types import TRAIL
from cityward.cloud.values import is_false, is_true

RULES = RuleSet()


@RULES.resource("cw-net-12-cloudtrail-multi-region-validated", control="CW-NET-12", types=(TRAIL,),
                checkov=("CKV_AWS_67", "CKV_AWS_36"), security_hub=("CloudTrail.1", "CloudTrail.4"),
                description="CW-NET-12 (FSBP CloudTrail.1, CloudTrail.4; Checkov CKV_AWS_67, CKV_AWS_36): trails are "
                            "multi-region, include global service events, log, and validate log files.")
def _trail_multi_region_validated(args: ResourceValidationArgs, report: ReportViolation) -> None:
    p = args.props
    if not is_true(p.get("isMultiRegionTrail")):
        report("CW-NET-12: trail is not multi-region (isMultiRegionTrail)")
    if not is_true(p.get("enableLogFileValidation")):
        report("CW-NET-12: trail has no log file validation (enableLogFileValidation)")
    if is_false(p.get("enableLogging")):
        report("CW-NET-12: trail logging is switched off (enableLogging)")
    if is_false(p.get("includeGlobalServiceEvents")):
        report("CW-NET-12: trail skips global service events (IAM, STS)")


@RULES.resource("cw-net-12-cloudtrail-kms", control="CW-NET-12", types=(TRAIL,), checkov=("CKV_AWS_35",),
                security_hub=("CloudTrail.2",),
                description="CW-NET-12 (FSBP CloudTrail.2; Checkov CKV_AWS_35): trail logs are encrypted with a KMS "
                            "key.")
def _trail_kms(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not has(args.props, "kmsKeyId"):
        report("CW-NET-12: trail logs are not encrypted with a KMS key (kmsKeyId)")


@RULES.resource("cw-net-12-cloudtrail-cloudwatch-logs", control="CW-NET-12", types=(TRAIL,),
                checkov=("CKV2_AWS_10",), security_hub=("CloudTrail.5",),
                description="CW-NET-12 (FSBP CloudTrail.5; Checkov CKV2_AWS_10): trails deliver to CloudWatch Logs.")
def _trail_cloudwatch(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not (has(args.props, "cloudWatchLogsGroupArn") and has(args.props, "cloudWatchLogsRoleArn")):
        report("CW-NET-12: trail does not deliver to CloudWatch Logs (cloudWatchLogsGroupArn/RoleArn)")


RULES.declared("cw-net-12-cloudtrail-declared", control="CW-NET-12", resource_type=TRAIL,
               label="multi-region CloudTrail with log file validation",
               ok=lambda p: is_true(p.get("isMultiRegionTrail")) and is_true(p.get("enableLogFileValidation")),
               security_hub=("CloudTrail.1",),
               description="CW-NET-12 (FSBP CloudTrail.1): the stack declares a multi-region trail with log file "
                           "validation.")
