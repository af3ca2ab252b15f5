"""The audit trail as a ComponentResource (CW-NET-12, CW-NET-15 access logging): a multi-region
CloudTrail with log file validation, its KMS key, its private bucket (server access logging into a
second locked-down bucket) and its CloudWatch log group."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from cityward.cloud.declare import child, kms_key, log_group, log_group_arn, policy_json, service_role, tags

if TYPE_CHECKING:
    from cityward.cloud.network_config import NetworkConfig


def trail_key_statements(config: NetworkConfig, account: pulumi.Output[str]) -> pulumi.Output[list]:
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


def _deny_insecure_transport(bucket_arn: str) -> dict:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


class AuditTrail(pulumi.ComponentResource):
    def __init__(self, config: NetworkConfig, account: pulumi.Output[str], logs_key: aws.kms.Key) -> None:
        n = config.name
        super().__init__("cityward:cloud:AuditTrail", f"{n}-audit-trail")
        self.stack_name = n
        self.key = kms_key(n, "trail", config.partition, account, trail_key_statements(config, account),
                           opts=child(self))
        trail_name = f"{n}-trail"
        self.access_log_bucket = self._bucket(
            "trail-access-logs", account.apply(lambda a: f"{n}-trail-access-{a}-{config.region}"),
            # S3 server access logs can only land in a bucket encrypted with S3-managed keys
            {"sse_algorithm": "AES256"}, moved=False)
        self.bucket = self._bucket(
            "trail-bucket", account.apply(lambda a: f"{n}-cloudtrail-{a}-{config.region}"),
            {"sse_algorithm": "aws:kms", "kms_master_key_id": self.key.arn}, moved=True)
        access_policy = aws.s3.BucketPolicy(
            f"{n}-trail-access-logs-policy",
            bucket=self.access_log_bucket.id,
            policy=pulumi.Output.all(account, self.access_log_bucket.arn, self.bucket.arn).apply(
                lambda args: policy_json([
                    {
                        "Sid": "S3ServerAccessLogsOfTheTrailBucket",
                        "Effect": "Allow",
                        "Principal": {"Service": "logging.s3.amazonaws.com"},
                        "Action": "s3:PutObject",
                        "Resource": f"{args[1]}/trail-bucket/*",
                        "Condition": {"ArnLike": {"aws:SourceArn": args[2]},
                                      "StringEquals": {"aws:SourceAccount": args[0]}},
                    },
                    _deny_insecure_transport(args[1]),
                ])),
            opts=child(self, moved=False),
        )
        aws.s3.BucketLogging(
            f"{n}-trail-bucket-logging",
            bucket=self.bucket.id,
            target_bucket=self.access_log_bucket.id,
            target_prefix="trail-bucket/",
            opts=child(self, moved=False, depends_on=[access_policy]),
        )

        def bucket_policy(args: list[str]) -> str:
            a, bucket_arn = args
            source_arn = f"arn:{config.partition}:cloudtrail:{config.region}:{a}:trail/{trail_name}"
            return policy_json([
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
                _deny_insecure_transport(bucket_arn),
            ])

        policy = aws.s3.BucketPolicy(
            f"{n}-trail-bucket-policy",
            bucket=self.bucket.id,
            policy=pulumi.Output.all(account, self.bucket.arn).apply(bucket_policy),
            opts=child(self),
        )
        self.log_group = log_group(n, "cloudtrail", config.log_retention_days, logs_key, opts=child(self))
        role = service_role(n, "trail-logs", "cloudtrail.amazonaws.com", account,
                            ["logs:CreateLogStream", "logs:PutLogEvents"],
                            log_group_arn(config.partition, config.region, account, f"/cityward/{n}/cloudtrail"),
                            opts=child(self))
        self.trail = aws.cloudtrail.Trail(
            trail_name,
            name=trail_name,
            s3_bucket_name=self.bucket.bucket,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_log_file_validation=True,
            enable_logging=True,
            kms_key_id=self.key.arn,
            cloud_watch_logs_group_arn=self.log_group.arn.apply(lambda arn: f"{arn}:*"),
            cloud_watch_logs_role_arn=role.arn,
            tags=tags(trail_name),
            opts=child(self, depends_on=[policy]),
        )
        self.register_outputs({"trailArn": self.trail.arn})

    def _bucket(self, purpose: str, name: pulumi.Output[str], encryption: dict, moved: bool) -> aws.s3.Bucket:
        """A private, versioned, encrypted bucket owned by this account (ACLs disabled)."""
        prefix = f"{self.stack_name}-{purpose}"
        opts = child(self, moved=moved)
        bucket = aws.s3.Bucket(prefix, bucket=name, force_destroy=False, tags=tags(prefix), opts=opts)
        aws.s3.BucketOwnershipControls(f"{prefix}-ownership", bucket=bucket.id,
                                       rule={"object_ownership": "BucketOwnerEnforced"}, opts=opts)
        aws.s3.BucketPublicAccessBlock(
            f"{prefix}-pab",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=opts,
        )
        aws.s3.BucketVersioning(f"{prefix}-versioning", bucket=bucket.id,
                                versioning_configuration={"status": "Enabled"}, opts=opts)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{prefix}-sse",
            bucket=bucket.id,
            # S3 Bucket Keys cut KMS calls; they apply to KMS encryption only
            rules=[{"apply_server_side_encryption_by_default": encryption,
                    "bucket_key_enabled": encryption["sse_algorithm"] == "aws:kms"}],
            opts=opts,
        )
        return bucket
