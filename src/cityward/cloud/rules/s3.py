"""S3 public access (CW-NET-10): the account-level block is declared, and every account and bucket
public access block has all four settings on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs

from cityward.cloud.rules.registry import RuleSet
from cityward.cloud.types import S3_ACCOUNT_PAB, S3_BUCKET_PAB
from cityward.cloud.values import is_true

RULES = RuleSet()
PAB_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


@RULES.resource("cw-net-10-s3-public-access-block", control="CW-NET-10", types=(S3_ACCOUNT_PAB, S3_BUCKET_PAB),
                checkov=("CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56"), security_hub=("S3.1", "S3.8"),
                description="CW-NET-10 (FSBP S3.1, S3.8; Checkov CKV_AWS_53, CKV_AWS_54, CKV_AWS_55, CKV_AWS_56): S3 "
                            "account and bucket public access blocks have all four settings on.")
def _public_access_block(args: ResourceValidationArgs, report: ReportViolation) -> None:
    off = [f for f in PAB_FLAGS if not is_true(args.props.get(f))]
    if off:
        scope = "account" if args.resource_type == S3_ACCOUNT_PAB else "bucket"
        report(f"CW-NET-10: S3 {scope} public access block leaves {', '.join(off)} off")


def _pab_all_on(props: Mapping[str, Any]) -> bool:
    return all(is_true(props.get(f)) for f in PAB_FLAGS)


RULES.declared("cw-net-10-s3-account-public-access-block-declared", control="CW-NET-10", resource_type=S3_ACCOUNT_PAB,
               label="S3 account public access block with all four settings on", ok=_pab_all_on,
               security_hub=("S3.1",),
               description="CW-NET-10 (FSBP S3.1): the stack declares the S3 account-level public access block with "
                           "all four settings on.")
