"""Small helpers every part of the network program declares resources with."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

STACK_TAG = {"cityward:stack": "segmented_network"}


def tags(name: str, **extra: str) -> dict[str, str]:
    return {"Name": name, **STACK_TAG, **extra}


def policy_json(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def child(parent: pulumi.Resource, moved: bool = True, **options: Any) -> pulumi.ResourceOptions:
    """Options for a resource inside a component. `moved`: it was declared at the stack's root
    before the program had components; the alias keeps an existing stack from replacing it."""
    aliases = [pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)] if moved else None
    return pulumi.ResourceOptions(parent=parent, aliases=aliases, **options)


def log_group(name: str, purpose: str, retention_days: int, key: aws.kms.Key,
              opts: pulumi.ResourceOptions | None = None) -> aws.cloudwatch.LogGroup:
    """A KMS-encrypted log group /cityward/<name>/<purpose> (CW-NET-05)."""
    return aws.cloudwatch.LogGroup(
        f"{name}-{purpose}-logs",
        name=f"/cityward/{name}/{purpose}",
        retention_in_days=retention_days,
        kms_key_id=key.arn,
        tags=tags(f"{name}-{purpose}-logs"),
        opts=opts,
    )


def log_group_arn(partition: str, region: str, account: pulumi.Output[str], name: str) -> pulumi.Output[str]:
    """A log group's ARN from its name: known on a first preview, unlike the group's `arn` output, so
    the policies that name it are known too and the pack can judge them before anything exists."""
    return account.apply(lambda a: f"arn:{partition}:logs:{region}:{a}:log-group:{name}")


def key_by_alias(alias: str) -> dict:
    """A condition naming a KMS key by its alias (the key's id is unknown until it exists)."""
    return {"ForAnyValue:StringEquals": {"kms:ResourceAliases": alias}}


def root_statement(partition: str, account: pulumi.Output[str]) -> pulumi.Output[dict]:
    return account.apply(lambda a: {
        "Sid": "AccountAdministers",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{a}:root"},
        "Action": "kms:*",
        "Resource": "*",
    })


def kms_key(name: str, purpose: str, partition: str, account: pulumi.Output[str], statements: pulumi.Output[list],
            opts: pulumi.ResourceOptions | None = None, description: str | None = None,
            key_tags: Mapping[str, str] | None = None) -> aws.kms.Key:
    """A symmetric customer-managed key that rotates yearly, with its alias alias/<name>-<purpose>
    (CW-NET-06). The account administers it; `statements` say who else may use it."""
    policy = pulumi.Output.all(root_statement(partition, account), statements).apply(
        lambda parts: policy_json([parts[0], *parts[1]])
    )
    key = aws.kms.Key(
        f"{name}-{purpose}-key",
        description=description or f"cityward {name}: {purpose}",
        enable_key_rotation=True,
        rotation_period_in_days=365,
        deletion_window_in_days=30,
        policy=policy,
        tags=dict(key_tags) if key_tags is not None else tags(f"{name}-{purpose}-key"),
        opts=opts,
    )
    aws.kms.Alias(f"{name}-{purpose}-key-alias", name=f"alias/{name}-{purpose}", target_key_id=key.key_id,
                  opts=opts)
    return key


def service_role(name: str, purpose: str, service: str, account: pulumi.Output[str], actions: list[str],
                 resource: pulumi.Output[str], opts: pulumi.ResourceOptions | None = None) -> aws.iam.Role:
    """A role that one AWS service assumes for this account only, with one inline policy."""
    role = aws.iam.Role(
        f"{name}-{purpose}-role",
        description=f"cityward {name}: {service} writes {purpose}",
        assume_role_policy=account.apply(lambda a: policy_json([{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": a}},
        }])),
        tags=tags(f"{name}-{purpose}-role"),
        opts=opts,
    )
    aws.iam.RolePolicy(
        f"{name}-{purpose}-policy",
        role=role.id,
        policy=resource.apply(
            lambda arn: policy_json([{"Effect": "Allow", "Action": actions, "Resource": [arn, f"{arn}:*"]}])
        ),
        opts=opts,
    )
    return role
