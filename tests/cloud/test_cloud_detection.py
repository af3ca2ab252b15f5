"""Detective controls (CW-NET-14, CW-NET-15): the Detection component on the example stack passes
the pack in both plan modes, and each rule of cityward.cloud.rules.detection catches the mutation
it exists for. Mutations edit the planned resource list, so the stack runs once per mode."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pulumi_aws as aws
import pytest

from cityward.cloud import rules, types
from cityward.cloud.contacts import alert_emails
from cityward.cloud.detection import TYPE, Detection
from cityward.cloud.detection_catalog import WATCHES, covers
from cityward.cloud.evaluate import evaluate
from cityward.cloud.mocks import PlannedResource, run_program
from cityward.cloud.plan import run_stack
from cityward.errors import CitywardError

ROOT = Path(__file__).resolve().parents[2]
CONTACTS = ROOT / "inventories/example-city/records/incident-contacts.yml"
PACK = rules.POLICIES  # every rule but the zone and site rules
TRAIL_LOGGING = "cw-net-15-trail-bucket-access-logging"
MODES = ("known", "first-preview")


def _detection(net) -> None:
    Detection(
        "cityward", region="eu-west-1", partition="aws", account="123456789012",
        # the name network.py gives the trail's log group: a known value, as on a real preview
        trail_log_group_name="/cityward/cityward/cloudtrail",
        kms_key=net.keys["logs"], vpc_id=net.vpc.id, log_retention_days=365, alert_emails=alert_emails(CONTACTS),
    )


@pytest.fixture(scope="module")
def stacks(request, stack_inputs, planned) -> dict[str, list[PlannedResource]]:
    """The example stack with Detection, once per plan mode: the session's plans once network.build
    declares Detection itself, else one run per mode that adds it."""
    if any(r.type == TYPE for r in planned.resources):
        return {"known": planned.resources, "first-preview": request.getfixturevalue("planned_preview").resources}
    return {mode: run_stack(stack_inputs, extend=_detection, first_preview=mode == "first-preview").resources
            for mode in MODES}


@pytest.fixture(scope="module")
def baseline(stacks) -> dict[str, dict[str, list[str]]]:
    return {mode: check(resources) for mode, resources in stacks.items()}


def check(resources: list[PlannedResource]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for v in evaluate(resources, PACK, rules.ENFORCEMENT_LEVEL):
        assert v.mandatory, v
        found.setdefault(v.policy, []).append(v.message)
    return found


# --- the unmutated stack ------------------------------------------------------------------------


@pytest.mark.control("CW-NET-14", "CW-NET-15")
@pytest.mark.parametrize("mode", MODES)
def test_stack_with_detection_passes_the_pack(baseline, mode):
    found = dict(baseline[mode])
    found.pop(TRAIL_LOGGING, None)  # declared by the trail code: test_trail_bucket_has_access_logging
    assert found == {}


@pytest.mark.control("CW-NET-15")
@pytest.mark.parametrize("mode", MODES)
def test_trail_bucket_has_access_logging(baseline, mode):
    assert TRAIL_LOGGING not in baseline[mode]


@pytest.mark.control("CW-NET-14")
def test_config_rules_are_tagged_with_the_control_they_watch(stacks):
    tagged = {r.outputs["source"]["sourceIdentifier"]: r.outputs["tags"]["cityward:watches"]
              for r in stacks["known"] if r.type == types.CONFIG_RULE}
    assert tagged["EC2_IMDSV2_CHECK"] == "CW-NET-08"
    assert tagged["VPC_FLOW_LOGS_ENABLED"] == "CW-NET-05"
    assert len(tagged) == 10


@pytest.mark.control("CW-NET-15")
def test_alarms_reach_the_citys_incident_contacts(stacks):
    endpoints = sorted(r.outputs["endpoint"] for r in stacks["known"] if r.type == types.SUBSCRIPTION)
    assert endpoints == sorted(alert_emails(CONTACTS))
    alarms = [r.outputs for r in stacks["known"] if r.type == types.ALARM]
    assert len(alarms) == len(WATCHES)
    assert {(a["threshold"], a["period"], a["evaluationPeriods"]) for a in alarms} == {(1, 300, 1)}


# --- mutations ----------------------------------------------------------------------------------

Mutation = Callable[[list[PlannedResource]], list[PlannedResource]]


def drop(*names: str) -> Mutation:
    return lambda resources: [r for r in resources if r.name not in names]


def drop_type(token: str) -> Mutation:
    return lambda resources: [r for r in resources if r.type != token]


def edit(name: str, **props) -> Mutation:
    """Set props (None removes one) in the resource's inputs and outputs alike."""

    def change(values: dict) -> dict:
        out = {**values, **props}
        return {k: v for k, v in out.items() if v is not None}

    def mutate(resources):
        found = [r for r in resources if r.name == name]
        assert found, name
        return [dataclasses.replace(r, inputs=change(r.inputs), outputs=change(r.outputs)) if r.name == name else r
                for r in resources]

    return mutate


def forget_dependencies(name: str) -> Mutation:
    return lambda resources: [dataclasses.replace(r, dependencies={}) if r.name == name else r for r in resources]


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


SESSIONS_ARN = "arn:aws:logs:eu-west-1:123456789012:log-group:/cityward/cityward/sessions"
STREAM_SESSIONS = {"Effect": "Allow", "Resource": [SESSIONS_ARN, f"{SESSIONS_ARN}:*"],
                   "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups",
                              "logs:DescribeLogStreams"]}
SESSION_KEY = {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
               "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/cityward-logs"}}}
QUERY_LOGS_ARN = "arn:aws:logs:eu-west-1:123456789012:log-group:/cityward/cityward/dns-queries"
DELIVER_QUERY_LOGS = {"Effect": "Allow", "Principal": {"Service": "delivery.logs.amazonaws.com"},
                      "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": f"{QUERY_LOGS_ARN}:*"}
INSTANCE_ROLE = "cw-net-15-instance-role-writes-session-logs"
QUERY_LOGGING = "cw-net-15-resolver-query-logging"

MUTATIONS = {
    # id: (mutation, rule that must fire, text its message must contain)
    "instance-role-session-policy-removed": (
        drop("cityward-instance-sessions"), INSTANCE_ROLE,
        "role cityward-instance-role of instance profile cityward-instance-profile is not allowed "
        "logs:CreateLogStream, logs:PutLogEvents"),
    "instance-role-writes-another-group": (
        edit("cityward-instance-sessions", policy=policy(
            {**STREAM_SESSIONS, "Resource": SESSIONS_ARN.replace("sessions", "other") + ":*"}, SESSION_KEY)),
        INSTANCE_ROLE, "on log group /cityward/cityward/sessions"),
    "instance-role-cannot-describe-groups": (
        edit("cityward-instance-sessions", policy=policy(
            {**STREAM_SESSIONS, "Action": ["logs:CreateLogStream", "logs:PutLogEvents"]}, SESSION_KEY)),
        INSTANCE_ROLE, "not allowed logs:DescribeLogGroups, logs:DescribeLogStreams on"),
    "instance-role-without-session-key": (
        edit("cityward-instance-sessions", policy=policy(STREAM_SESSIONS)), INSTANCE_ROLE,
        "not allowed kms:Decrypt, kms:GenerateDataKey on log group"),
    "instance-role-key-of-another-alias": (
        edit("cityward-instance-sessions", policy=policy(STREAM_SESSIONS, {
            **SESSION_KEY, "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/other"}}})),
        INSTANCE_ROLE, "kms:Decrypt, kms:GenerateDataKey"),
    "query-log-delivery-policy-removed": (
        drop("cityward-dns-query-logs-delivery"), QUERY_LOGGING,
        "no CloudWatch Logs resource policy lets delivery.logs.amazonaws.com write to it"),
    "query-log-delivery-any-account": (
        edit("cityward-dns-query-logs-delivery", policyDocument=policy(DELIVER_QUERY_LOGS)), QUERY_LOGGING,
        "delivers to log group /cityward/cityward/dns-queries, but no CloudWatch Logs resource policy"),
    "query-log-delivery-to-another-group": (
        edit("cityward-dns-query-logs-delivery", policyDocument=policy({
            **DELIVER_QUERY_LOGS, "Resource": QUERY_LOGS_ARN.replace("dns-queries", "other") + ":*",
            "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}})), QUERY_LOGGING,
        "no CloudWatch Logs resource policy"),
    "detector-removed": (drop("cityward-guardduty"), "cw-net-14-guardduty-enabled", "no GuardDuty detector"),
    "detector-disabled": (edit("cityward-guardduty", enable=False), "cw-net-14-guardduty-enabled",
                          "cityward-guardduty is disabled"),
    "malware-protection-off": (edit("cityward-guardduty-ebs-malware-protection", status="DISABLED"),
                               "cw-net-14-guardduty-enabled", "EBS_MALWARE_PROTECTION"),
    "security-hub-removed": (drop("cityward-security-hub"), "cw-net-14-security-hub-standards",
                             "does not enable Security Hub"),
    "cis-standard-missing": (drop("cityward-standard-cis-aws-foundations-benchmark"),
                             "cw-net-14-security-hub-standards", "CIS AWS Foundations Benchmark"),
    "cis-standard-v1.2.0": (edit("cityward-standard-cis-aws-foundations-benchmark",
                                 standardsArn="arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0"),
                            "cw-net-14-security-hub-standards", "CIS AWS Foundations Benchmark"),
    "fsbp-standard-missing": (drop("cityward-standard-aws-foundational-security-best-practices"),
                              "cw-net-14-security-hub-standards", "AWS Foundational Security Best Practices"),
    "recorder-not-all-resources": (edit("cityward-config-recorder", recordingGroup={
        "allSupported": False, "resourceTypes": ["AWS::EC2::Instance"]}),
        "cw-net-14-config-recorder-all-resources", "cityward-config-recorder does not record all supported"),
    "recorder-no-global": (edit("cityward-config-recorder", recordingGroup={"allSupported": True}),
                           "cw-net-14-config-recorder-all-resources", "global resource types"),
    "recorder-stopped": (edit("cityward-config-recorder-status", isEnabled=False),
                         "cw-net-14-config-recorder-all-resources", "cityward-config-recorder is stopped"),
    "delivery-channel-removed": (drop("cityward-config-delivery-channel"), "cw-net-14-config-recorder-all-resources",
                                 "no AWS Config delivery channel"),
    "imds-config-rule-removed": (drop("cityward-config-ec2-imdsv2-check"), "cw-net-14-config-managed-rules",
                                 "EC2_IMDSV2_CHECK (watches CW-NET-08)"),
    "root-alarm-removed": (drop("cityward-root-usage-alarm"), "cw-net-15-change-alarms",
                           "root account usage"),
    "route-filter-removed": (drop("cityward-route-table-changes"), "cw-net-15-change-alarms", "route table changes"),
    "trail-filter-misses-stoplogging": (
        edit("cityward-cloudtrail-changes", pattern="{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || "
             "($.eventName = DeleteTrail) || ($.eventName = StartLogging) || ($.eventName = PutEventSelectors) }"),
        "cw-net-15-change-alarms", "CloudTrail configuration changes"),
    "sg-filter-on-flow-logs": (edit("cityward-security-group-changes", logGroupName="/cityward/cityward/vpc-flow-logs"),
                               "cw-net-15-change-alarms", "security group changes"),
    "nacl-alarm-without-actions": (edit("cityward-nacl-changes-alarm", alarmActions=[]), "cw-net-15-change-alarms",
                                   "alarm cityward-nacl-changes-alarm does not notify"),
    "topic-unencrypted": (edit("cityward-security-alerts", kmsMasterKeyId=None),
                          "cw-net-15-alert-topic-encrypted-subscribed",
                          "cityward-security-alerts, which alarms notify, is not encrypted"),
    "topic-without-subscribers": (drop_type(types.SUBSCRIPTION), "cw-net-15-alert-topic-encrypted-subscribed",
                                  "has no subscriber"),
    "dns-query-logging-unassociated": (drop("cityward-dns-query-logging-vpc"), "cw-net-15-resolver-query-logging",
                                       "VPC cityward-vpc has no Route 53 Resolver query logging"),
}


@pytest.mark.control("CW-NET-14", "CW-NET-15")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(MUTATIONS))
def test_each_mutation_is_caught_by_its_rule(stacks, baseline, mode, case):
    mutate, rule, text = MUTATIONS[case]
    before = baseline[mode]
    after = check(mutate(stacks[mode]))
    new = {policy: [m for m in messages if m not in before.get(policy, [])] for policy, messages in after.items()}
    assert {policy for policy, messages in new.items() if messages} == {rule}
    assert any(text in m for m in new[rule]), new[rule]


@pytest.mark.control("CW-NET-15")
def test_an_alarm_whose_topic_cannot_be_known_at_preview_fails_closed(stacks):
    # the alarm's action is unknown at preview; without its dependency nothing says which topic it is
    found = check(forget_dependencies("cityward-vpc-changes-alarm")(stacks["first-preview"]))
    assert [m for m in found["cw-net-15-change-alarms"] if "cannot decide at preview" in m] == [
        "CW-NET-15: cannot decide at preview: which SNS topic alarm cityward-vpc-changes-alarm notifies"]


@pytest.mark.control("CW-NET-15")
def test_a_session_policy_whose_role_cannot_be_known_at_preview_fails_closed(stacks):
    # the policy's role is the role's id, unknown at preview; without its dependency nothing says whose
    found = check(forget_dependencies("cityward-instance-sessions")(stacks["first-preview"]))
    assert found[INSTANCE_ROLE] == [
        "CW-NET-15: cannot decide at preview: the policies of role cityward-instance-role (instance profile "
        "cityward-instance-profile)"]


@pytest.mark.control("CW-NET-15")
def test_the_instance_role_and_the_delivery_policy_name_the_groups_by_name(stacks):
    # known on a first preview: built from names, so the pack judges them before anything exists
    preview = {r.name: r for r in stacks["first-preview"]}
    sessions = json.loads(preview["cityward-instance-sessions"].outputs["policy"])
    assert sessions["Statement"][0]["Resource"] == [SESSIONS_ARN, f"{SESSIONS_ARN}:*"]
    assert sessions["Statement"][1]["Condition"] == SESSION_KEY["Condition"]
    delivery = json.loads(preview["cityward-dns-query-logs-delivery"].outputs["policyDocument"])["Statement"][0]
    assert delivery["Resource"] == f"{QUERY_LOGS_ARN}:*"
    assert delivery["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}


@pytest.mark.control("CW-NET-15")
@pytest.mark.parametrize("mode", MODES)
def test_trail_bucket_logging_rule_needs_a_bucket_logging_resource(stacks, mode):
    unlogged = [r for r in stacks[mode] if r.type not in types.BUCKET_LOGGING]
    assert check(unlogged)[TRAIL_LOGGING] == [
        "CW-NET-15: trail bucket cityward-trail-bucket has no server access logging (S3 BucketLogging)"]
    bucket = next(r for r in unlogged if r.name == "cityward-trail-bucket")
    props = {"bucket": bucket.outputs["bucket"], "targetBucket": "cityward-access-logs", "targetPrefix": "trail/"}
    logging = PlannedResource("aws:s3/bucketLogging:BucketLogging", "cityward-trail-bucket-logging",
                              bucket.urn + "-logging", "", props, props, {"bucket": [bucket.urn]})
    assert TRAIL_LOGGING not in check([*unlogged, logging])


# --- the component and its inputs -------------------------------------------------------------


@pytest.mark.control("CW-NET-15")
def test_detection_without_alert_addresses_is_one_error_line():
    def program():
        Detection("cityward", region="eu-west-1", partition="aws", account="123456789012",
                  trail_log_group_name="/cityward/cityward/cloudtrail", kms_key=aws.kms.Key("logs"),
                  vpc_id="vpc-0123456789abcdef0", log_retention_days=365, alert_emails=[])

    with pytest.raises(CitywardError, match=r"^detection 'cityward': no alert e-mail address.*'contacts'\)$"):
        run_program(program, project="cityward-test", stack="test", region="eu-west-1")


@pytest.mark.control("CW-NET-15")
@pytest.mark.parametrize("watch", WATCHES, ids=[w.key for w in WATCHES])
def test_each_filter_pattern_covers_its_own_class_only(watch):
    assert covers(watch.pattern, watch)
    others = [w.key for w in WATCHES if w is not watch and covers(watch.pattern, w)]
    assert others == []
    assert len(watch.pattern) <= 1024  # CloudWatch Logs' limit on a filter pattern


@pytest.mark.control("CW-NET-15")
def test_a_negated_event_name_does_not_count_as_covered():
    watch = next(w for w in WATCHES if w.key == "console-signin-without-mfa")
    assert not covers(watch.pattern.replace("$.eventName = ConsoleLogin", "$.eventName != ConsoleLogin"), watch)


# --- contacts.alert_emails --------------------------------------------------------------------


@pytest.mark.control("CW-NET-15")
def test_alert_emails_come_from_the_incident_contacts_record():
    assert alert_emails(CONTACTS) == ["csirt@example-city.example", "cctv-unit@example-city.example",
                                      "ciso@example-city.example", "dpo@example-city.example",
                                      "report@national-cert.example"]


def _record(tmp_path, contacts: str):
    path = tmp_path / "incident-contacts.yml"
    path.write_text("reviewed: 2026-01-31\ncontacts:\n" + contacts
                    + "escalation:\n  - {after_minutes: 0, contact: CSIRT}\n")
    return path


@pytest.mark.control("CW-NET-15")
def test_alert_emails_are_unique_in_record_order(tmp_path):
    path = _record(tmp_path, "  - {name: CSIRT, role: csirt, email: Team@city.example}\n"
                             "  - {name: Duty, role: ot, email: duty@city.example}\n"
                             "  - {name: Team again, role: other, email: team@city.example}\n")
    assert alert_emails(path) == ["Team@city.example", "duty@city.example"]


@pytest.mark.control("CW-NET-15")
def test_a_record_without_any_email_is_refused(tmp_path):
    path = _record(tmp_path, "  - {name: CSIRT, role: csirt, phone: '+1 202 555 0110'}\n")
    with pytest.raises(CitywardError) as err:
        alert_emails(path)
    assert str(err.value).startswith(f"{path}: field 'contacts': no contact has an e-mail address")
    assert "\n" not in str(err.value)


@pytest.mark.control("CW-NET-15")
def test_a_missing_record_is_one_line(tmp_path):
    with pytest.raises(CitywardError, match=r"^\S+missing\.yml: incident-contacts record not found$"):
        alert_emails(tmp_path / "missing.yml")


@pytest.mark.control("CW-NET-15")
def test_an_invalid_record_names_the_field(tmp_path):
    path = _record(tmp_path, "  - {name: CSIRT, role: csirt, email: not-an-address}\n")
    with pytest.raises(CitywardError, match=r"field 'contacts\.0\.email'"):
        alert_emails(path)
