"""The mock runner: runs are isolated from each other, and failures are one-line errors."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from cityward.cloud.mocks import run_program
from cityward.errors import CitywardError


def _vpc_only():
    aws.ec2.Vpc("v", cidr_block="10.0.0.0/16", tags={"Name": "v"})


def test_outputs_are_known_and_apply_runs():
    def program():
        vpc = aws.ec2.Vpc("v", cidr_block="10.0.0.0/16")
        aws.ec2.Subnet("s", vpc_id=vpc.id, cidr_block=vpc.cidr_block.apply(lambda c: c.replace("/16", "/24")))

    run = run_program(program, project="p", stack="s", region="eu-west-1")
    vpc, subnet = run.resources
    assert vpc.id.startswith("vpc-") and vpc.outputs["defaultNetworkAclId"].startswith("acl-")
    assert subnet.inputs == {"vpcId": vpc.id, "cidrBlock": "10.0.0.0/24"}
    assert subnet.urn.endswith("aws:ec2/subnet:Subnet::s")


def test_a_failed_run_does_not_leak_into_the_next():
    def unanswerable():
        aws.get_availability_zones_output().names.apply(lambda names: _vpc_only())

    with pytest.raises(CitywardError, match="cannot answer the data source aws:index/getAvailabilityZones"):
        run_program(unanswerable, project="p", stack="s", region="eu-west-1")
    with pytest.raises(CitywardError, match=r"^network.py: failed under the offline plan \(ValueError: boom\)$"):
        run_program(lambda: (_ for _ in ()).throw(ValueError("boom")), project="p", stack="s",
                    region="eu-west-1", source="network.py")
    assert [r.name for r in run_program(_vpc_only, project="p", stack="s", region="eu-west-1").resources] == ["v"]


def test_engine_warnings_are_collected_not_printed(capsys):
    run = run_program(lambda: pulumi.warn("careful"), project="p", stack="s", region="eu-west-1")
    assert run.warnings == ["careful"]
    assert "careful" not in capsys.readouterr().err
