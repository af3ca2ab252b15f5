"""Detective controls of the account (CW-NET-14, CW-NET-15) as one Pulumi component.

Threat detection and configuration monitoring (CW-NET-14): GuardDuty, Security Hub with the FSBP
and CIS AWS Foundations standards, AWS Config (recorder, delivery channel to a bucket of its
own, managed rules tied to cityward controls). Alarms (CW-NET-15): a metric filter and an alarm
on the trail's log group for each change class of cityward.cloud.detection_catalog.WATCHES, to
a KMS-encrypted SNS topic whose subscribers are the city's incident contacts; GuardDuty findings
to the same topic; Route 53 Resolver query logging of the VPC.

Resource names are the component's name plus what the resource is (a rule identifier, a change
class, an e-mail address): adding one adds resources and replaces none.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from cityward.cloud.declare import key_by_alias, kms_key, log_group_arn, policy_json
from cityward.cloud.detection_catalog import (
    CONFIG_RULES,
    DELIVERY_ACTIONS,
    DELIVERY_SERVICE,
    GUARDDUTY_FEATURES,
    GUARDDUTY_FREQUENCY,
    METRIC_NAMESPACE,
    STANDARD_VERSIONS,
    WATCHES,
    standards_arn,
)
from cityward.errors import CitywardError

TYPE = "cityward:cloud:Detection"
CONTROL_TAG = "cityward:control"
WATCHES_TAG = "cityward:watches"  # the control whose drift an alarm or Config rule reveals
ALARM_PERIOD_SECONDS = 300


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _email_key(email: str) -> str:
    # readable and unique: a.b@x and a-b@x slug alike, their digests do not
    return f"{_slug(email)[:40]}-{hashlib.sha256(email.lower().encode()).hexdigest()[:6]}"


class Detection(pulumi.ComponentResource):
    """GuardDuty, Security Hub, AWS Config, change alarms and DNS query logging for one account."""

    def __init__(self, name: str, *, region: str, partition: str, account: pulumi.Input[str],
                 trail_log_group_name: pulumi.Input[str], kms_key: aws.kms.Key, vpc_id: pulumi.Input[str],
                 log_retention_days: int, alert_emails: Sequence[str],
                 tags: Mapping[str, str] | None = None, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE, name, None, opts)
        if not alert_emails:
            raise CitywardError(f"detection '{name}': no alert e-mail address; the alarms must reach a person "
                                "(the city's incident-contacts record, field 'contacts')")
        self._name, self._region, self._partition = name, region, partition
        self._account = pulumi.Output.from_input(account)
        self._extra_tags = dict(tags or {})
        self._child = pulumi.ResourceOptions(parent=self)

        self.key = self._key()
        self.detector = self._guardduty()
        self.security_hub = self._security_hub()
        self.recorder = self._config()
        self.topic = self._topic(alert_emails)
        self.alarms = self._alarms(trail_log_group_name)
        self._findings_to_topic()
        self.query_log_group = self._query_logging(vpc_id, kms_key, log_retention_days)
        self.register_outputs({"alertTopicArn": self.topic.arn, "detectorId": self.detector.id})

    # --- helpers ---------------------------------------------------------------------------

    def _tags(self, thing: str, control: str, **extra: str) -> dict[str, str]:
        return {"Name": f"{self._name}-{thing}", **self._extra_tags, CONTROL_TAG: control, **extra}

    def _opts(self, *depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)) if depends_on else self._child

    def _key(self) -> aws.kms.Key:
        """A rotating key for the alert topic and the Config bucket: the services that write to
        them (CloudWatch alarms, EventBridge, AWS Config) may use it for this account only."""
        return kms_key(
            self._name, "detection", self._partition, self._account,
            self._account.apply(lambda account: [
                {"Sid": "AlarmsAndEventsPublish", "Effect": "Allow",
                 "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
                 "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"},
                {"Sid": "ConfigDelivers", "Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"},
                 "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
                 "Condition": {"StringEquals": {"aws:SourceAccount": account}}},
            ]),
            opts=self._child, description=f"cityward {self._name}: security alerts and AWS Config history",
            key_tags=self._tags("detection-key", "CW-NET-15"),
        )

    # --- CW-NET-14 -------------------------------------------------------------------------

    def _guardduty(self) -> aws.guardduty.Detector:
        detector = aws.guardduty.Detector(
            f"{self._name}-guardduty",
            enable=True,
            finding_publishing_frequency=GUARDDUTY_FREQUENCY,
            tags=self._tags("guardduty", "CW-NET-14"),
            opts=self._child,
        )
        for feature in GUARDDUTY_FEATURES:
            aws.guardduty.DetectorFeature(
                f"{self._name}-guardduty-{_slug(feature)}",
                detector_id=detector.id,
                name=feature,
                status="ENABLED",
                opts=self._child,
            )
        return detector

    def _security_hub(self) -> aws.securityhub.Account:
        # the standards are subscribed explicitly, not left to "default standards"
        hub = aws.securityhub.Account(
            f"{self._name}-security-hub",
            enable_default_standards=False,
            auto_enable_controls=True,
            control_finding_generator="SECURITY_CONTROL",
            opts=self._child,
        )
        for path, version in STANDARD_VERSIONS.items():
            aws.securityhub.StandardsSubscription(
                f"{self._name}-standard-{path}",
                standards_arn=standards_arn(self._partition, self._region, path, version),
                opts=self._opts(hub),
            )
        return hub

    def _config(self) -> aws.cfg.Recorder:
        n, p = self._name, self._partition
        bucket = self._config_bucket()
        role = aws.iam.Role(
            f"{n}-config-role",
            description=f"cityward {n}: AWS Config records resources and delivers their history",
            assume_role_policy=self._account.apply(lambda a: policy_json([{
                "Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"}, "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": a}},
            }])),
            tags=self._tags("config-role", "CW-NET-14"),
            opts=self._child,
        )
        aws.iam.RolePolicyAttachment(f"{n}-config-role-managed", role=role.name,
                                     policy_arn=f"arn:{p}:iam::aws:policy/service-role/AWS_ConfigRole",
                                     opts=self._child)
        aws.iam.RolePolicy(
            f"{n}-config-delivery",
            role=role.id,
            # from names and the account only, so the pack can read it on a first preview (CW-NET-11)
            policy=self._account.apply(lambda a: policy_json([
                {"Effect": "Allow", "Action": "s3:PutObject",
                 "Resource": f"arn:{p}:s3:::{self._config_bucket_name(a)}/AWSLogs/{a}/Config/*",
                 "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}},
                {"Effect": "Allow", "Action": "s3:GetBucketAcl",
                 "Resource": f"arn:{p}:s3:::{self._config_bucket_name(a)}"},
                {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
                 "Condition": key_by_alias(f"alias/{n}-detection")},
            ])),
            opts=self._opts(bucket),
        )
        recorder = aws.cfg.Recorder(
            f"{n}-config-recorder",
            name=f"{n}-recorder",
            role_arn=role.arn,
            recording_group={"all_supported": True, "include_global_resource_types": True},
            opts=self._child,
        )
        channel = aws.cfg.DeliveryChannel(
            f"{n}-config-delivery-channel",
            name=f"{n}-delivery",
            s3_bucket_name=bucket.bucket,
            s3_kms_key_arn=self.key.arn,
            snapshot_delivery_properties={"delivery_frequency": "TwentyFour_Hours"},
            opts=self._opts(recorder),
        )
        aws.cfg.RecorderStatus(f"{n}-config-recorder-status", name=recorder.name, is_enabled=True,
                               opts=self._opts(channel))
        for identifier, control in CONFIG_RULES.items():
            rule = _slug(identifier)
            aws.cfg.Rule(
                f"{n}-config-{rule}",
                name=f"{n}-{rule}",
                description=f"cityward {control}: AWS managed rule {identifier}",
                source={"owner": "AWS", "source_identifier": identifier},
                tags=self._tags(f"config-{rule}", "CW-NET-14", **{WATCHES_TAG: control}),
                opts=self._opts(recorder),
            )
        return recorder

    def _config_bucket_name(self, account: str) -> str:
        return f"{self._name}-config-{account}-{self._region}"

    def _config_bucket(self) -> aws.s3.Bucket:
        """Configuration history: private, versioned, KMS-encrypted, TLS only."""
        n = self._name
        bucket = aws.s3.Bucket(
            f"{n}-config-bucket",
            bucket=self._account.apply(self._config_bucket_name),
            force_destroy=False,
            tags=self._tags("config-bucket", "CW-NET-14"),
            opts=self._child,
        )
        aws.s3.BucketOwnershipControls(f"{n}-config-bucket-ownership", bucket=bucket.id,
                                       rule={"object_ownership": "BucketOwnerEnforced"}, opts=self._child)
        aws.s3.BucketPublicAccessBlock(f"{n}-config-bucket-pab", bucket=bucket.id, block_public_acls=True,
                                       block_public_policy=True, ignore_public_acls=True,
                                       restrict_public_buckets=True, opts=self._child)
        aws.s3.BucketVersioning(f"{n}-config-bucket-versioning", bucket=bucket.id,
                                versioning_configuration={"status": "Enabled"}, opts=self._child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{n}-config-bucket-sse",
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms",
                                                                "kms_master_key_id": self.key.arn},
                    "bucket_key_enabled": True}],
            opts=self._child,
        )

        def policy(args: list[str]) -> str:
            account, arn = args
            source = {"StringEquals": {"aws:SourceAccount": account}}
            config = {"Service": "config.amazonaws.com"}
            return policy_json([
                {"Sid": "ConfigChecksBucket", "Effect": "Allow", "Principal": config,
                 "Action": ["s3:GetBucketAcl", "s3:ListBucket"], "Resource": arn, "Condition": source},
                {"Sid": "ConfigDelivers", "Effect": "Allow", "Principal": config, "Action": "s3:PutObject",
                 "Resource": f"{arn}/AWSLogs/{account}/Config/*",
                 "Condition": {"StringEquals": {"aws:SourceAccount": account,
                                                "s3:x-amz-acl": "bucket-owner-full-control"}}},
                {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                 "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            ])

        aws.s3.BucketPolicy(f"{n}-config-bucket-policy", bucket=bucket.id,
                            policy=pulumi.Output.all(self._account, bucket.arn).apply(policy), opts=self._child)
        return bucket

    # --- CW-NET-15 -------------------------------------------------------------------------

    def _topic(self, emails: Sequence[str]) -> aws.sns.Topic:
        n = self._name
        topic = aws.sns.Topic(
            f"{n}-security-alerts",
            name=f"{n}-security-alerts",
            kms_master_key_id=self.key.arn,
            tags=self._tags("security-alerts", "CW-NET-15"),
            opts=self._child,
        )

        def policy(args: list[str]) -> str:
            account, arn = args
            return policy_json([
                {"Sid": "AlarmsAndFindingsPublish", "Effect": "Allow",
                 "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
                 "Action": "sns:Publish", "Resource": arn,
                 "Condition": {"StringEquals": {"aws:SourceAccount": account}}},
                {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "sns:Publish",
                 "Resource": arn, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            ])

        aws.sns.TopicPolicy(f"{n}-security-alerts-policy", arn=topic.arn,
                            policy=pulumi.Output.all(self._account, topic.arn).apply(policy), opts=self._child)
        for email in dict.fromkeys(emails):
            aws.sns.TopicSubscription(f"{n}-alert-{_email_key(email)}", topic=topic.arn, protocol="email",
                                      endpoint=email, opts=self._child)
        return topic

    def _alarms(self, log_group_name: pulumi.Input[str]) -> dict[str, aws.cloudwatch.MetricAlarm]:
        n, alarms = self._name, {}
        for watch in WATCHES:
            aws.cloudwatch.LogMetricFilter(
                f"{n}-{watch.key}",
                name=f"{n}-{watch.key}",
                log_group_name=log_group_name,
                pattern=watch.pattern,
                metric_transformation={"name": watch.metric, "namespace": METRIC_NAMESPACE, "value": "1"},
                opts=self._child,
            )
            alarms[watch.key] = aws.cloudwatch.MetricAlarm(
                f"{n}-{watch.key}-alarm",
                name=f"{n}-{watch.key}",
                alarm_description=f"cityward {watch.watches}: {watch.title} ({watch.reference})",
                metric_name=watch.metric,
                namespace=METRIC_NAMESPACE,
                statistic="Sum",
                period=ALARM_PERIOD_SECONDS,
                evaluation_periods=1,
                threshold=1,
                comparison_operator="GreaterThanOrEqualToThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=[self.topic.arn],
                tags=self._tags(f"{watch.key}-alarm", "CW-NET-15", **{WATCHES_TAG: watch.watches}),
                opts=self._child,
            )
        return alarms

    def _findings_to_topic(self) -> None:
        """GuardDuty findings of medium severity and above reach the same people as the alarms."""
        n = self._name
        rule = aws.cloudwatch.EventRule(
            f"{n}-guardduty-findings",
            description="cityward CW-NET-14: GuardDuty findings, severity 4 and above",
            event_pattern=json.dumps({"source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"],
                                      "detail": {"severity": [{"numeric": [">=", 4]}]}}),
            tags=self._tags("guardduty-findings", "CW-NET-14"),
            opts=self._child,
        )
        aws.cloudwatch.EventTarget(f"{n}-guardduty-findings-to-alerts", rule=rule.name, arn=self.topic.arn,
                                   opts=self._child)

    def _query_logging(self, vpc_id: pulumi.Input[str], kms_key: aws.kms.Key,
                       retention_days: int) -> aws.cloudwatch.LogGroup:
        n, p, region, name = self._name, self._partition, self._region, f"/cityward/{self._name}/dns-queries"
        group = aws.cloudwatch.LogGroup(
            f"{n}-dns-query-logs",
            name=name,
            retention_in_days=retention_days,
            kms_key_id=kms_key.arn,
            tags=self._tags("dns-query-logs", "CW-NET-15"),
            opts=self._child,
        )
        # Resolver delivers through CloudWatch Logs' log delivery service, which may write to the
        # group only when a resource policy lets it, for this account's deliveries. From names, so
        # the pack reads it on a first preview.
        delivery = aws.cloudwatch.LogResourcePolicy(
            f"{n}-dns-query-logs-delivery",
            policy_name=f"{n}-dns-query-logs-delivery",
            policy_document=pulumi.Output.all(self._account, log_group_arn(p, region, self._account, name)).apply(
                lambda args: policy_json([{
                    "Sid": "ResolverQueryLogsDelivery", "Effect": "Allow",
                    "Principal": {"Service": DELIVERY_SERVICE},
                    "Action": list(DELIVERY_ACTIONS),
                    "Resource": f"{args[1]}:*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": args[0]},
                                  "ArnLike": {"aws:SourceArn": f"arn:{p}:logs:{region}:{args[0]}:*"}},
                }])),
            opts=self._child,
        )
        config = aws.route53.ResolverQueryLogConfig(
            f"{n}-dns-query-logging",
            name=f"{n}-dns-queries",
            destination_arn=group.arn,
            tags=self._tags("dns-query-logging", "CW-NET-15"),
            opts=self._opts(delivery),
        )
        aws.route53.ResolverQueryLogConfigAssociation(
            f"{n}-dns-query-logging-vpc",
            resolver_query_log_config_id=config.id,
            resource_id=vpc_id,
            opts=self._child,
        )
        return group
