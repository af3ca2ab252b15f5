"""`cityward cloud plan`: prints the planned resources, evaluates the pack, exits non-zero on any
mandatory violation, and reports bad input as one line (never a traceback)."""

from __future__ import annotations

import json
import time

import pytest

from cityward.cli import main


def plan_json(capsys, *extra) -> tuple[int, dict]:
    code = main(["cloud", "plan", "--format", "json", *extra])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.control("CW-NET-01", "CW-NET-05")
def test_plan_json_lists_resources_and_passes(capsys):
    started = time.perf_counter()
    code, doc = plan_json(capsys)
    assert time.perf_counter() - started < 5
    assert code == 0
    assert doc["stack"] == "example" and doc["violations"] == []
    assert doc["summary"]["resources"] == len(doc["resources"]) > 200
    assert doc["summary"]["mandatoryViolations"] == 0
    types = {r["type"] for r in doc["resources"]}
    assert {"aws:ec2/vpc:Vpc", "aws:ec2/flowLog:FlowLog", "aws:cloudtrail/trail:Trail",
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"} <= types
    flow = next(r for r in doc["resources"] if r["type"] == "aws:ec2/flowLog:FlowLog")
    assert flow["properties"]["trafficType"] == "ALL"
    assert flow["properties"]["vpcId"] == "cityward-vpc"  # ids shown as the resource they point to


def test_plan_table_is_the_default(capsys):
    assert main(["cloud", "plan"]) == 0
    out = capsys.readouterr().out
    assert "TYPE" in out and "KEY PROPERTIES" in out
    assert "ec2:Subnet" in out and "cityward-field-eu-west-1a" in out
    assert "0 mandatory and 0 advisory policy violations" in out


@pytest.mark.control("CW-NET-05")
def test_mandatory_violation_exits_1(checkout, capsys):
    config = checkout / "stacks/segmented_network/Pulumi.short.yaml"
    text = (checkout / "stacks/segmented_network/Pulumi.example.yaml").read_text()
    config.write_text(text.replace("logRetentionDays: 365", "logRetentionDays: 30"))
    code, doc = plan_json(capsys, "--stack", "short")
    assert code == 1
    assert {v["policy"] for v in doc["violations"]} == {"cw-net-05-log-group-retention-365"}
    assert doc["summary"]["mandatoryViolations"] == 4  # flow-log, trail, session and DNS-query log groups

    assert main(["cloud", "plan", "--stack", "short"]) == 1
    assert "[mandatory] cw-net-05-log-group-retention-365" in capsys.readouterr().out


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cityward: error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_unknown_stack_is_one_line(capsys):
    line = one_line_error(capsys, ["cloud", "plan", "--stack", "nope"])
    assert "Pulumi.nope.yaml: no such stack config (stacks here: example" in line


@pytest.mark.control("CW-FW-01")
def test_bad_zones_file_is_one_line_naming_file_entry_field(checkout, capsys):
    zones = checkout / "policies/zones.yml"
    zones.write_text(zones.read_text().replace("port: 502,", "port: 70000,"))
    line = one_line_error(capsys, ["cloud", "plan", "--project", str(checkout / "stacks/segmented_network")])
    assert f"{zones}: conduit #0 (ot-operations->field:70000), field 'port'" in line


def test_bad_stack_config_is_one_line_naming_file_and_field(checkout, capsys):
    config = checkout / "stacks/segmented_network/Pulumi.example.yaml"
    config.write_text(config.read_text().replace("vpcCidr: 10.40.0.0/16", "vpcCidr: 10.40.0.0/99"))
    line = one_line_error(capsys, ["cloud", "plan", "--project", str(config.parent)])
    assert f"{config}: config 'cityward-segmented-network:vpcCidr'" in line


def test_broken_yaml_in_stack_config_is_one_line(checkout, capsys):
    config = checkout / "stacks/segmented_network/Pulumi.example.yaml"
    config.write_text(config.read_text() + "  oops: [\n")
    line = one_line_error(capsys, ["cloud", "plan"])  # the project in ./stacks/segmented_network
    assert line.startswith("cityward: error: stacks/segmented_network/Pulumi.example.yaml: line ")
    assert "invalid YAML" in line


def test_a_folder_without_a_pulumi_project_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(capsys, ["cloud", "plan"])
    assert "no Pulumi.yaml; pass --project DIR" in line
    line = one_line_error(capsys, ["cloud", "plan", "--project", str(tmp_path / "nowhere")])
    assert line == f"cityward: error: {tmp_path / 'nowhere'}: no Pulumi.yaml; pass --project DIR, the folder of the " \
                   "stack's Pulumi project"


def test_a_stack_config_without_zones_file_names_the_key(checkout, capsys):
    config = checkout / "stacks/segmented_network/Pulumi.example.yaml"
    config.write_text("\n".join(line for line in config.read_text().splitlines() if "zonesFile" not in line))
    line = one_line_error(capsys, ["cloud", "plan"])
    assert "Pulumi.example.yaml: config 'cityward-segmented-network:zonesFile': required" in line


@pytest.mark.control("CW-NET-13")
def test_first_preview_plan_decides_and_records_its_mode(capsys):
    code, doc = plan_json(capsys, "--first-preview")
    assert doc["mode"] == "first-preview"
    assert not [v for v in doc["violations"] if "cannot decide" in v["message"]]
    assert code == 0 and doc["summary"]["mandatoryViolations"] == 0
    flow = next(r for r in doc["resources"] if r["type"] == "aws:ec2/flowLog:FlowLog")
    assert flow["properties"]["vpcId"] == "cityward-vpc"  # the resource an unknown id will come from
    assert main(["cloud", "plan", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "known"
