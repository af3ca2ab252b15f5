"""The account's detective controls (CW-NET-14, CW-NET-15): GuardDuty, Security Hub and AWS Config
are on, every change class is alarmed to a subscribed, encrypted topic, the trail's bucket and DNS
queries are logged.

All are stack rules over the stack's Graph: each joins resources (a detector and its features, an
alarm and its metric filter and topic, a trail and its bucket), by a value when it is known and by
the engine's property dependencies when it is not; a rule that still cannot decide reports so
(fails closed). What the account must watch comes from cityward.cloud.detection_catalog, the same
catalog the Detection component declares from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import ReportViolation, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

from cityward.cloud.detection_catalog import (
    CONFIG_RULES,
    DELIVERY_ACTIONS,
    DELIVERY_SERVICE,
    GUARDDUTY_FEATURES,
    GUARDDUTY_FREQUENCY,
    STANDARDS,
    WATCHES,
    Watch,
    covers,
    standard_of,
)
from cityward.cloud.graph import UNKNOWN, Graph, has, items, peek
from cityward.cloud.rules.policy_documents import (
    action_matches,
    condition_values,
    covers_log_group,
    policy_document,
    policy_statements,
)
from cityward.cloud.rules.registry import RuleSet
from cityward.cloud.types import (
    ALARM,
    BUCKET_LOGGING,
    BUCKETS,
    CONFIG_RULE,
    DELIVERY_CHANNEL,
    DETECTOR,
    DETECTOR_FEATURE,
    HUB,
    HUB_STANDARD,
    LOG_GROUP,
    LOG_RESOURCE_POLICY,
    METRIC_FILTER,
    QUERY_LOG_ASSOCIATION,
    QUERY_LOG_CONFIG,
    RECORDER,
    RECORDER_STATUS,
    SUBSCRIPTION,
    TOPIC,
    TRAIL,
    VPC,
)
from cityward.cloud.values import cannot_decide, is_false, is_true

RULES = RuleSet()


def _rule(name: str, *, control: str, description: str, checkov: tuple[str, ...] = (),
          security_hub: tuple[str, ...] = (), cis: tuple[str, ...] = ()) -> Callable:
    """Declare the decorated `check(graph, say)` a stack rule: `say(message, resource)` reports
    "<control>: message" once per message and resource (a join several checks share is reported
    once); an unknown value that escapes the check is reported as undecidable."""

    def register(check: Callable[[Graph, Callable[..., None]], None]) -> Callable:
        def validate(args: StackValidationArgs, report: ReportViolation) -> None:
            said: set[tuple[str, str | None]] = set()

            def say(message: str, resource: Any = None) -> None:
                urn = getattr(resource, "urn", None)
                if (message, urn) not in said:
                    said.add((message, urn))
                    report(f"{control}: {message}", urn)

            try:
                check(Graph(args.resources), say)
            except UnknownValueError as exc:
                report(cannot_decide(exc.message, control))

        RULES.stack(name, control=control, description=description, checkov=checkov,
                    security_hub=security_hub, cis=cis)(validate)
        return check

    return register


# --- reading the stack -----------------------------------------------------------------------


# props that name a resource: a reference to it is one of these values
_NAMES = ("id", "arn", "name", "bucket")


def _names(resource: Any) -> tuple[set[str], bool]:
    """The known values that name `resource`, and whether it is not created yet (no known id:
    some of its names, such as its ARN, are still unknown or not reported)."""
    known = set()
    for key in _NAMES:
        value = peek(resource.props, key)
        if isinstance(value, str) and value:  # peek gives UNKNOWN, not a str, for an unknown
            known.add(value)
    resource_id = peek(resource.props, "id")
    return known, not (isinstance(resource_id, str) and resource_id)


def _target(graph: Graph, resource: Any, key: str, value: Any, *types: str) -> Any:
    """The resource of `types` that `value` (resource.props[key], or one item of it) names.

    Known value: the resource it names (a log group ARN may end in ':*'); if none does, the one
    it was computed from when that resource's names are not known yet (first preview). Unknown
    value: the one resource it was computed from, else UNKNOWN. None: the value names nothing here."""
    if value is None:
        return None
    if value is not UNKNOWN:
        wanted = str(value).removesuffix(":*")
        for candidate in graph.of(*types):
            if wanted in _names(candidate)[0]:
                return candidate
        source = graph.dependency(resource, key, *types)
        return source if source is not UNKNOWN and _names(source)[1] else None
    return graph.dependency(resource, key, *types)


def _ref(graph: Graph, resource: Any, key: str, *types: str) -> Any:
    return _target(graph, resource, key, peek(resource.props, key), *types)


def _obj(props: Any, key: str) -> Any:
    """A nested object prop: the mapping, {} when absent, UNKNOWN when not known yet."""
    value = peek(props, key)
    return {} if value is None else value


# --- CW-NET-14 -------------------------------------------------------------------------------


@_rule("cw-net-14-guardduty-enabled", control="CW-NET-14", checkov=("CKV2_AWS_3",), security_hub=("GuardDuty.1",),
       description="CW-NET-14 (FSBP GuardDuty.1; Checkov CKV2_AWS_3): a GuardDuty detector is enabled, publishes "
                   f"findings every 15 minutes and has {', '.join(GUARDDUTY_FEATURES)} on.")
def _guardduty(graph: Graph, say: Callable[..., None]) -> None:
    detectors = graph.of(DETECTOR)
    if not detectors:
        say("the stack declares no GuardDuty detector")
    for detector in detectors:
        enable = peek(detector.props, "enable")
        if enable is UNKNOWN:
            say(cannot_decide(f"whether GuardDuty detector {detector.name} is enabled"), detector)
        elif is_false(enable):
            say(f"GuardDuty detector {detector.name} is disabled (enable false)", detector)
        frequency = peek(detector.props, "findingPublishingFrequency")
        if frequency != GUARDDUTY_FREQUENCY:
            say(f"GuardDuty detector {detector.name} publishes findings every {frequency or 'SIX_HOURS (default)'}, "
                f"not {GUARDDUTY_FREQUENCY}", detector)
        enabled: set[str] = set()
        for feature in graph.of(DETECTOR_FEATURE):
            owner = _ref(graph, feature, "detectorId", DETECTOR)
            if owner is UNKNOWN:
                say(cannot_decide(f"which detector GuardDuty feature {feature.name} belongs to"), feature)
            elif owner is detector and str(peek(feature.props, "status", "")).upper() == "ENABLED":
                enabled.add(str(peek(feature.props, "name")))
        missing = [f for f in GUARDDUTY_FEATURES if f not in enabled]
        if missing:
            say(f"GuardDuty detector {detector.name} lacks enabled feature(s) {', '.join(missing)}", detector)


@_rule("cw-net-14-security-hub-standards", control="CW-NET-14", security_hub=("SecurityHub.1",),
       cis=("v3.0.0:4.16",),
       description="CW-NET-14 (Security Hub SecurityHub.1; CIS AWS Foundations 4.16 in v3.0.0): Security Hub is "
                   "enabled and subscribed to AWS Foundational Security Best Practices and CIS AWS Foundations "
                   "Benchmark (v1.4.0+).")
def _security_hub(graph: Graph, say: Callable[..., None]) -> None:
    if not graph.of(HUB):
        say("the stack does not enable Security Hub (aws.securityhub.Account)")
    subscribed: set[str] = set()
    for subscription in graph.of(HUB_STANDARD):
        arn = peek(subscription.props, "standardsArn")
        if arn is UNKNOWN:
            say(cannot_decide(f"which standard {subscription.name} subscribes to"), subscription)
            continue
        found = standard_of(str(arn or ""))
        for label, path, oldest in STANDARDS:
            if found and found[0] == path and found[1] >= oldest:
                subscribed.add(label)
    for label, _path, oldest in STANDARDS:
        if label not in subscribed:
            say(f"Security Hub is not subscribed to {label} (v{'.'.join(map(str, oldest))} or later)")


@_rule("cw-net-14-config-recorder-all-resources", control="CW-NET-14", checkov=("CKV2_AWS_45",),
       security_hub=("Config.1",), cis=("v1.4.0:3.5", "v3.0.0:3.3"),
       description="CW-NET-14 (FSBP Config.1; CIS AWS Foundations 3.5 in v1.4.0, 3.3 in v3.0.0; Checkov "
                   "CKV2_AWS_45): an AWS Config recorder records all supported resources including global ones, is "
                   "started, and delivers to S3.")
def _config_recorder(graph: Graph, say: Callable[..., None]) -> None:
    recorders = graph.of(RECORDER)
    if not recorders:
        say("the stack declares no AWS Config recorder")
    for recorder in recorders:
        group = _obj(recorder.props, "recordingGroup")
        if group is UNKNOWN:
            say(cannot_decide(f"what Config recorder {recorder.name} records"), recorder)
            continue
        if is_false(peek(group, "allSupported")) or items(peek(group, "resourceTypes")):
            say(f"Config recorder {recorder.name} does not record all supported resource types "
                "(recordingGroup.allSupported)", recorder)
        if not is_true(peek(group, "includeGlobalResourceTypes")):
            say(f"Config recorder {recorder.name} does not record global resource types such as IAM "
                "(recordingGroup.includeGlobalResourceTypes)", recorder)
        statuses = [s for s in graph.of(RECORDER_STATUS) if _ref(graph, s, "name", RECORDER) in (recorder, UNKNOWN)]
        if not statuses:
            say(f"Config recorder {recorder.name} is never started (no RecorderStatus names it)", recorder)
        for status in statuses:
            if _ref(graph, status, "name", RECORDER) is UNKNOWN:
                say(cannot_decide(f"which recorder {status.name} starts"), status)
            elif not is_true(peek(status.props, "isEnabled")):
                say(f"Config recorder {recorder.name} is stopped ({status.name}: isEnabled false)", status)
    if not any(has(c.props, "s3BucketName") for c in graph.of(DELIVERY_CHANNEL)):
        say("the stack declares no AWS Config delivery channel to an S3 bucket")


@_rule("cw-net-14-config-managed-rules", control="CW-NET-14",
       description="CW-NET-14 (FSBP Config.1 companion; cityward): the AWS Config managed rules that watch cityward "
                   f"controls are declared: {', '.join(CONFIG_RULES)}.")
def _config_rules(graph: Graph, say: Callable[..., None]) -> None:
    declared: set[str] = set()
    for rule in graph.of(CONFIG_RULE):
        source = _obj(rule.props, "source")
        if source is UNKNOWN:
            say(cannot_decide(f"which rule Config rule {rule.name} runs"), rule)
            continue
        if str(peek(source, "owner", "")).upper() == "AWS":
            declared.add(str(peek(source, "sourceIdentifier", "")))
    for identifier, control in CONFIG_RULES.items():
        if identifier not in declared:
            say(f"AWS Config managed rule {identifier} (watches {control}) is not declared")


# --- CW-NET-15 -------------------------------------------------------------------------------


def _trail_log_groups(graph: Graph, say: Callable[..., None]) -> list[Any]:
    groups = []
    for trail in graph.of(TRAIL):
        group = _ref(graph, trail, "cloudWatchLogsGroupArn", LOG_GROUP)
        if group is UNKNOWN:
            say(cannot_decide(f"which log group trail {trail.name} delivers to"), trail)
        elif group is not None:
            groups.append(group)
    return groups


def _alarm_topics(graph: Graph, alarm: Any) -> list[Any]:
    """The SNS topics of this stack among the alarm's actions (UNKNOWN where undecidable)."""
    return [_target(graph, alarm, "alarmActions", action, TOPIC) for action in items(peek(alarm.props, "alarmActions"))]


def _watched(graph: Graph, watch: Watch, groups: list[Any], say: Callable[..., None]) -> str | None:
    """Why `watch` is not alarmed on (None when it is)."""
    filters = []
    for candidate in graph.of(METRIC_FILTER):
        pattern = peek(candidate.props, "pattern")
        if pattern is UNKNOWN:
            say(cannot_decide(f"what metric filter {candidate.name} matches"), candidate)
        elif isinstance(pattern, str) and covers(pattern, watch):
            group = _ref(graph, candidate, "logGroupName", LOG_GROUP)
            if group is UNKNOWN:
                say(cannot_decide(f"which log group metric filter {candidate.name} reads"), candidate)
            elif group is not None and group in groups:
                filters.append(candidate)
    if not filters:
        return "no metric filter on the trail's log group matches it"
    metrics = {(peek(_obj(f.props, "metricTransformation"), "name"),
                peek(_obj(f.props, "metricTransformation"), "namespace")) for f in filters}
    alarms = [a for a in graph.of(ALARM)
              if (peek(a.props, "metricName"), peek(a.props, "namespace")) in metrics]
    if not alarms:
        return f"metric filter {filters[0].name} has no alarm"
    for alarm in alarms:
        threshold = peek(alarm.props, "threshold")
        topics = _alarm_topics(graph, alarm)
        if UNKNOWN in topics:
            say(cannot_decide(f"which SNS topic alarm {alarm.name} notifies"), alarm)
        elif (not is_false(peek(alarm.props, "actionsEnabled")) and isinstance(threshold, int | float)
              and threshold <= 1 and any(t is not None for t in topics)):
            return None
    return f"alarm {alarms[0].name} does not notify an SNS topic of this stack at threshold 1"


@_rule("cw-net-15-change-alarms", control="CW-NET-15", security_hub=tuple(w.security_hub for w in WATCHES),
       cis=tuple(f"v1.4.0:{w.cis}" for w in WATCHES),
       description="CW-NET-15 (CIS AWS Foundations 4.2, 4.3, 4.5, 4.10-4.14 in v1.4.0; Security Hub CloudWatch.1, "
                   "CloudWatch.3, CloudWatch.5, CloudWatch.10, CloudWatch.11, CloudWatch.12, CloudWatch.13, "
                   "CloudWatch.14): a metric filter on the trail's log group and an alarm to an SNS topic for changes "
                   "to security groups, NACLs, gateways, route tables, the VPC and the trail, root use and console "
                   "sign-in without MFA.")
def _change_alarms(graph: Graph, say: Callable[..., None]) -> None:
    groups = _trail_log_groups(graph, say)
    if not groups:
        say("no trail delivers to a log group of this stack, so no change can be alarmed on")
        return
    for watch in WATCHES:
        why = _watched(graph, watch, groups, say)
        if why:
            say(f"no alarm on {watch.title} ({watch.reference}; reveals drift of {watch.watches}): {why}")


@_rule("cw-net-15-alert-topic-encrypted-subscribed", control="CW-NET-15", checkov=("CKV_AWS_26",),
       security_hub=("SNS.1",),
       description="CW-NET-15 (Checkov CKV_AWS_26; FSBP SNS.1 (retired) for encryption): the SNS topics alarms "
                   "notify are encrypted with KMS and have at least one subscriber (the city's incident contacts, "
                   "CW-GOV-04).")
def _alert_topics(graph: Graph, say: Callable[..., None]) -> None:
    topics: dict[str, Any] = {}
    for alarm in graph.of(ALARM):
        topics.update({t.urn: t for t in _alarm_topics(graph, alarm) if t not in (None, UNKNOWN)})
    for topic in topics.values():
        if not has(topic.props, "kmsMasterKeyId"):
            say(f"SNS topic {topic.name}, which alarms notify, is not encrypted with KMS (kmsMasterKeyId)", topic)
        subscribers = [s for s in graph.of(SUBSCRIPTION) if _ref(graph, s, "topic", TOPIC) in (topic, UNKNOWN)]
        if any(_ref(graph, s, "topic", TOPIC) is UNKNOWN for s in subscribers):
            say(cannot_decide(f"which topic the subscriptions of {topic.name} belong to"), topic)
        elif not subscribers:
            say(f"SNS topic {topic.name}, which alarms notify, has no subscriber: the alarms reach nobody", topic)


def _logged(graph: Graph, bucket: Any) -> bool | None:
    """The bucket has server access logging (True), has not (False), or cannot tell yet (None)."""
    if has(bucket.props, "logging") or has(bucket.props, "loggings"):
        return True
    undecided_ = False
    for logging in graph.of(*BUCKET_LOGGING):
        target = _ref(graph, logging, "bucket", *BUCKETS)
        if target is bucket and has(logging.props, "targetBucket"):
            return True
        undecided_ = undecided_ or target is UNKNOWN
    return None if undecided_ else False


@_rule("cw-net-15-trail-bucket-access-logging", control="CW-NET-15", security_hub=("CloudTrail.7",),
       cis=("v1.4.0:3.6", "v3.0.0:3.4"),
       description="CW-NET-15 (CIS AWS Foundations 3.6 in v1.4.0, 3.4 in v3.0.0; FSBP CloudTrail.7; Checkov "
                   "CKV_AWS_18): the bucket a trail writes to has S3 server access logging.")
def _trail_bucket_logging(graph: Graph, say: Callable[..., None]) -> None:
    for trail in graph.of(TRAIL):
        bucket = _ref(graph, trail, "s3BucketName", *BUCKETS)
        if bucket is UNKNOWN:
            say(cannot_decide(f"which bucket trail {trail.name} writes to"), trail)
        elif bucket is None:
            say(f"trail {trail.name} writes to a bucket outside this stack; its access logging cannot be checked",
                trail)
        else:
            logged = _logged(graph, bucket)
            if logged is None:
                say(cannot_decide(f"which bucket the access-logging settings of {bucket.name} apply to"), bucket)
            elif not logged:
                say(f"trail bucket {bucket.name} has no server access logging (S3 BucketLogging)", bucket)


def _destination_group(graph: Graph, config: Any) -> Any:
    """The name of the log group a query-log config delivers to; None for another destination (S3,
    Firehose); UNKNOWN when it cannot be known yet."""
    group = _ref(graph, config, "destinationArn", LOG_GROUP)
    if group is UNKNOWN:
        return UNKNOWN
    if group is not None:
        return peek(group.props, "name")
    arn = peek(config.props, "destinationArn")
    return str(arn).partition(":log-group:")[2].removesuffix(":*") or None


def _delivery_allowed(graph: Graph, group: str) -> Any:
    """A CloudWatch Logs resource policy lets the log delivery service write to `group` for this
    account's deliveries (aws:SourceAccount): True, False, or UNKNOWN."""
    undecided_ = False
    for policy in graph.of(LOG_RESOURCE_POLICY):
        document = policy_document(policy.props, "policyDocument")
        if document is UNKNOWN:
            undecided_ = True
            continue
        for statement in policy_statements(document or {}):
            principal = statement.get("Principal")
            services = [str(s) for s in items(principal.get("Service"))] if isinstance(principal, Mapping) else []
            actions = [str(a) for a in items(statement.get("Action"))]
            accounts = [a for a in condition_values(statement, "StringEquals", "aws:SourceAccount") if "*" not in a]
            if (statement.get("Effect") == "Allow" and DELIVERY_SERVICE in services and accounts
                    and all(any(action_matches(a, wanted) for a in actions) for wanted in DELIVERY_ACTIONS)
                    and any(covers_log_group(str(r), group) for r in items(statement.get("Resource")))):
                return True
    return UNKNOWN if undecided_ else False


@_rule("cw-net-15-resolver-query-logging", control="CW-NET-15",
       description="CW-NET-15 (cityward; AWS Security Reference Architecture: DNS query logs): every VPC has "
                   "Route 53 Resolver query logging associated with it, and a CloudWatch Logs resource policy lets "
                   f"{DELIVERY_SERVICE} write to the query-log group for this account (aws:SourceAccount).")
def _query_logging(graph: Graph, say: Callable[..., None]) -> None:
    for vpc in graph.of(VPC):
        logged = False
        for association in graph.of(QUERY_LOG_ASSOCIATION):
            target = _ref(graph, association, "resourceId", VPC)
            config = _ref(graph, association, "resolverQueryLogConfigId", QUERY_LOG_CONFIG)
            if UNKNOWN in (target, config):
                say(cannot_decide(f"which VPC and query-log config {association.name} joins"), association)
            elif target is vpc and config is not None and has(config.props, "destinationArn"):
                logged = True
                group = _destination_group(graph, config)
                allowed = group is None or _delivery_allowed(graph, group)
                if group is UNKNOWN or allowed is UNKNOWN:
                    say(cannot_decide(f"whether the log delivery service may write query logs of "
                                      f"{config.name}"), config)
                elif not allowed:
                    say(f"query-log config {config.name} delivers to log group {group}, but no CloudWatch Logs "
                        f"resource policy lets {DELIVERY_SERVICE} write to it (logs:CreateLogStream, "
                        "logs:PutLogEvents, Condition StringEquals aws:SourceAccount): no query is logged", config)
        if not logged:
            say(f"VPC {vpc.name} has no Route 53 Resolver query logging (ResolverQueryLogConfigAssociation)", vpc)

