"""KMS keys (CW-NET-06): symmetric customer-managed keys rotate automatically, at least yearly."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs

from cityward.cloud.rules.registry import RuleSet
from cityward.cloud.types import KMS_KEY
from cityward.cloud.values import is_true, number

RULES = RuleSet()


@RULES.resource("cw-net-06-kms-key-rotation", control="CW-NET-06", types=(KMS_KEY,), checkov=("CKV_AWS_7",),
                security_hub=("KMS.4",),
                description="CW-NET-06 (Checkov CKV_AWS_7; FSBP KMS.4): symmetric customer-managed KMS keys rotate "
                            "automatically, at least yearly.")
def _kms_rotation(args: ResourceValidationArgs, report: ReportViolation) -> None:
    p = args.props
    spec = p.get("customerMasterKeySpec") or "SYMMETRIC_DEFAULT"
    if spec != "SYMMETRIC_DEFAULT" or p.get("keyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
        return  # AWS rotates only symmetric encryption keys
    if not is_true(p.get("enableKeyRotation")):
        report("CW-NET-06: KMS key does not rotate (enableKeyRotation)")
    period = number(p.get("rotationPeriodInDays"))
    if period is not None and period > 365:
        report(f"CW-NET-06: KMS key rotates every {period} days; at most 365")
