"""Operator access as a ComponentResource: the MFA-only operator role whose shells reach only the
instances of the operator's zones (CW-NET-11), the instance profile Session Manager needs, and the
Session Manager preferences that log every session to an encrypted log group (CW-NET-15)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from cityward.cloud.declare import child, key_by_alias, log_group, log_group_arn, policy_json, tags
from cityward.cloud.rules.session_manager import SESSION_DOCUMENT
from cityward.cloud.types import ZONE_TAG

if TYPE_CHECKING:
    from cityward.cloud.network_config import NetworkConfig

IDLE_TIMEOUT_MINUTES = 20


def session_preferences(log_group_name: str, kms_key: str) -> str:
    """The Session document's content: stream every session, encrypted, to the log group."""
    return json.dumps({
        "schemaVersion": "1.0",
        "description": "cityward: every Session Manager session is logged to CloudWatch, encrypted",
        "sessionType": "Standard_Stream",
        "inputs": {
            "s3BucketName": "",
            "s3KeyPrefix": "",
            "s3EncryptionEnabled": True,
            "cloudWatchLogGroupName": log_group_name,
            "cloudWatchEncryptionEnabled": True,
            "cloudWatchStreamingEnabled": True,
            "kmsKeyId": kms_key,
            "runAsEnabled": False,
            "runAsDefaultUser": "",
            "idleSessionTimeout": str(IDLE_TIMEOUT_MINUTES),
            "maxSessionDuration": "",
            "shellProfile": {"linux": "", "windows": ""},
        },
    }, sort_keys=True)


def operator_session_statements(config: NetworkConfig, account: str, zones: list[str]) -> list[dict]:
    """StartSession only on instances tagged with one of `zones`, through the preferences document."""
    arn = f"arn:{config.partition}"
    return [
        {
            "Sid": "StartShellsInTheOperatorsZones",
            "Effect": "Allow",
            "Action": "ssm:StartSession",
            "Resource": f"{arn}:ec2:{config.region}:{account}:instance/*",
            "Condition": {"StringEquals": {f"ssm:resourceTag/{ZONE_TAG}": zones}},
        },
        {
            "Sid": "StartShellsWithTheLoggedPreferences",
            "Effect": "Allow",
            "Action": "ssm:StartSession",
            "Resource": f"{arn}:ssm:{config.region}:{account}:document/{SESSION_DOCUMENT}",
        },
        {
            "Sid": "ManageOwnSessions",
            "Effect": "Allow",
            "Action": ["ssm:TerminateSession", "ssm:ResumeSession"],
            "Resource": f"{arn}:ssm:*:{account}:session/${{aws:userid}}-*",
        },
        {
            "Sid": "SeeInstances",
            "Effect": "Allow",
            "Action": ["ec2:DescribeInstances", "ssm:DescribeInstanceInformation", "ssm:DescribeSessions",
                       "ssm:GetConnectionStatus"],
            "Resource": "*",
        },
    ]


class OperatorAccess(pulumi.ComponentResource):
    def __init__(self, config: NetworkConfig, zones: list[str], account: pulumi.Output[str],
                 logs_key: aws.kms.Key) -> None:
        n = config.name
        super().__init__("cityward:cloud:OperatorAccess", f"{n}-operator-access")

        def trust(a: str) -> str:
            principals = list(config.operator_principals) or [f"arn:{config.partition}:iam::{a}:root"]
            return policy_json([{
                "Sid": "OperatorsWithMfa",
                "Effect": "Allow",
                "Principal": {"AWS": principals},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "Bool": {"aws:MultiFactorAuthPresent": "true"},
                    "NumericLessThan": {"aws:MultiFactorAuthAge": str(config.operator_max_session_seconds)},
                },
            }])

        self.role = aws.iam.Role(
            f"{n}-operator-role",
            name=f"{n}-operator",
            description="cityward operators: Session Manager shells, MFA required",
            assume_role_policy=account.apply(trust),
            max_session_duration=config.operator_max_session_seconds,
            tags=tags(f"{n}-operator-role"),
            opts=child(self),
        )
        # only the account id goes in: the policy is known on a first preview, so the pack decides
        aws.iam.RolePolicy(
            f"{n}-operator-sessions", role=self.role.id,
            policy=account.apply(lambda a: policy_json(operator_session_statements(config, a, zones))),
            opts=child(self))

        self.log_group = log_group(n, "sessions", config.log_retention_days, logs_key, opts=child(self, moved=False))
        group_name, logs_alias = f"/cityward/{n}/sessions", f"alias/{n}-logs"  # what the key and group are named
        # the alias ARN is known before the key exists, so the document's content is too
        key_alias = account.apply(lambda a: f"arn:{config.partition}:kms:{config.region}:{a}:{logs_alias}")
        self.document = aws.ssm.Document(
            f"{n}-session-preferences",
            name=SESSION_DOCUMENT,
            document_type="Session",
            document_format="JSON",
            content=key_alias.apply(lambda alias: session_preferences(group_name, alias)),
            tags=tags(f"{n}-session-preferences"),
            opts=child(self, moved=False, depends_on=[self.log_group, logs_key]),
        )
        # session data is encrypted with the logs key: the operator's client asks for data keys. The
        # key is named by its alias so the policy is known on a first preview.
        aws.iam.RolePolicy(
            f"{n}-operator-session-key", role=self.role.id,
            policy=policy_json([{"Sid": "EncryptSessions", "Effect": "Allow", "Action": "kms:GenerateDataKey",
                                 "Resource": "*", "Condition": key_by_alias(logs_alias)}]),
            opts=child(self, moved=False))

        instance_role = aws.iam.Role(
            f"{n}-instance-role",
            name=f"{n}-instance",
            description="cityward instances: registered with Systems Manager",
            assume_role_policy=policy_json([{
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }]),
            tags=tags(f"{n}-instance-role"),
            opts=child(self),
        )
        aws.iam.RolePolicyAttachment(
            f"{n}-instance-ssm-core",
            role=instance_role.name,
            policy_arn=f"arn:{config.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore",
            opts=child(self),
        )
        # the agent streams the session into the log group and decrypts the session's data key
        aws.iam.RolePolicy(
            f"{n}-instance-sessions", role=instance_role.id,
            policy=log_group_arn(config.partition, config.region, account, group_name).apply(
                lambda arn: policy_json([
                    {"Sid": "StreamSessionLogs", "Effect": "Allow",
                     "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups",
                                "logs:DescribeLogStreams"],
                     "Resource": [arn, f"{arn}:*"]},
                    {"Sid": "DecryptSessions", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                     "Resource": "*", "Condition": key_by_alias(logs_alias)},
                ])),
            opts=child(self, moved=False))
        self.instance_profile = aws.iam.InstanceProfile(f"{n}-instance-profile", name=f"{n}-instance",
                                                        role=instance_role.name, opts=child(self))
        self.register_outputs({"operatorRoleArn": self.role.arn})
