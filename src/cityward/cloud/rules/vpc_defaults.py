"""The VPC's default security group and default network ACL (CW-NET-04): adopted by the stack and
left without rules, so nothing can fall back on them."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, StackValidationArgs

from cityward.cloud.graph import UNKNOWN, Graph, peek
from cityward.cloud.rules.registry import RuleSet
from cityward.cloud.types import DEFAULT_NACL, DEFAULT_SG, VPC
from cityward.cloud.values import cannot_decide, listify

RULES = RuleSet()


@RULES.resource("cw-net-04-default-sg-no-rules", control="CW-NET-04", types=(DEFAULT_SG,),
                checkov=("CKV2_AWS_12",), security_hub=("EC2.2",),
                description="CW-NET-04 (Checkov CKV2_AWS_12; FSBP EC2.2): the VPC's default security group has no "
                            "ingress or egress rules.")
def _default_has_no_rules(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for direction in ("ingress", "egress"):
        if listify(args.props.get(direction)):
            report(f"CW-NET-04: the default {'security group' if args.resource_type == DEFAULT_SG else 'network ACL'} "
                   f"carries {direction} rules; leave it empty so nothing can fall back on it")


RULES.resource("cw-net-04-default-nacl-no-rules", control="CW-NET-04", types=(DEFAULT_NACL,),
               description="CW-NET-04 (Checkov CKV2_AWS_12 companion; FSBP EC2.2 companion): the VPC's default "
                           "network ACL has no rules, so a subnet that loses its zone NACL is cut off rather than "
                           "opened.")(_default_has_no_rules)


@RULES.stack("cw-net-04-defaults-adopted", control="CW-NET-04", checkov=("CKV2_AWS_12",), security_hub=("EC2.2",),
             description="CW-NET-04 (Checkov CKV2_AWS_12; FSBP EC2.2): every VPC adopts its default security group "
                         "and default network ACL (DefaultSecurityGroup/DefaultNetworkAcl) so their allow rules are "
                         "removed.")
def _defaults_adopted(args: StackValidationArgs, report: ReportViolation) -> None:
    graph = Graph(args.resources)
    sgs, acls = graph.of(DEFAULT_SG), graph.of(DEFAULT_NACL)
    for vpc in graph.of(VPC):
        adopted = [
            ("security group (DefaultSecurityGroup)", "its allow rules",
             [graph.ref(r, "vpcId", VPC) for r in sgs], any(graph.ref(r, "vpcId", VPC) is vpc for r in sgs)),
            ("network ACL (DefaultNetworkAcl)", "its allow-all rules",
             [UNKNOWN for r in acls if peek(r.props, "defaultNetworkAclId") is UNKNOWN
              and graph.dependency(r, "defaultNetworkAclId", VPC) is UNKNOWN],
             any(graph.names(r, "defaultNetworkAclId", vpc, "defaultNetworkAclId") for r in acls)),
        ]
        for what, rules, refs, found in adopted:
            if found:
                continue
            if UNKNOWN in refs:
                report(cannot_decide(f"whether VPC {vpc.name} adopts its default {what}", "CW-NET-04"), vpc.urn)
            else:
                report(f"CW-NET-04: VPC {vpc.name} does not adopt its default {what} to strip {rules}", vpc.urn)
