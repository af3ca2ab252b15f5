"""The mock runner: runs are isolated from each other, and failures are one-line errors."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

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


def _vpc_and_subnet():
    vpc = aws.ec2.Vpc("v", cidr_block="10.0.0.0/16")
    aws.ec2.Subnet("s", vpc_id=vpc.id, cidr_block="10.0.1.0/24", tags={"vpc": vpc.arn})


def test_first_preview_leaves_ids_and_computed_outputs_unknown():
    run = run_program(_vpc_and_subnet, project="p", stack="s", region="eu-west-1", first_preview=True)
    vpc, subnet = run.resources
    assert vpc.id == "" and "defaultNetworkAclId" not in vpc.outputs and "arn" not in vpc.outputs
    # unknowns are the engine's sentinel, nested ones too; known inputs stay known
    assert subnet.inputs == {"vpcId": UNKNOWN_STRING_VALUE, "cidrBlock": "10.0.1.0/24",
                             "tags": {"vpc": UNKNOWN_STRING_VALUE}}
    assert subnet.outputs == subnet.inputs


def test_property_dependencies_are_recorded_in_both_modes():
    for first_preview in (False, True):
        vpc, subnet = run_program(_vpc_and_subnet, project="p", stack="s", region="eu-west-1",
                                  first_preview=first_preview).resources
        assert subnet.dependencies == {"vpcId": [vpc.urn], "tags": [vpc.urn]}
        assert vpc.dependencies == {}


def test_the_collector_is_paused_during_a_run_and_restored_after():
    import gc

    seen: list[bool] = []
    run_program(lambda: seen.append(gc.isenabled()), project="p", stack="s", region="eu-west-1")
    assert seen == [False] and gc.isenabled()
    with pytest.raises(CitywardError):
        run_program(lambda: 1 / 0, project="p", stack="s", region="eu-west-1")
    assert gc.isenabled()


@pytest.mark.parametrize("preview", [False, True])
def test_graphs_of_one_evaluation_share_an_index_and_answer_as_a_plain_list(planned, planned_preview, preview):
    from cityward.cloud.evaluate import stack_resources
    from cityward.cloud.graph import Graph

    stack = stack_resources((planned_preview if preview else planned).resources)
    shared, plain = Graph(stack), Graph(list(stack))
    assert shared._index is Graph(stack)._index and plain._index is not shared._index
    routes = "aws:ec2/routeTableAssociation:RouteTableAssociation"
    tables = ("aws:ec2/routeTable:RouteTable", "aws:ec2/defaultRouteTable:DefaultRouteTable")
    for graph in (shared, plain):
        assert [r.urn for r in graph.of(routes)] == [r.urn for r in stack if r.resource_type == routes]
    for assoc in shared.of(routes):
        found = shared.ref(assoc, "routeTableId", *tables)
        assert found is plain.ref(assoc, "routeTableId", *tables)
        assert found is not None  # every association names a table of this stack, known or not
        assert assoc in shared.referencing(found, "routeTableId", routes)
