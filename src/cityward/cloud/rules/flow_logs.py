"""VPC flow logs (CW-NET-05): every VPC has one capturing ALL traffic into a log group this stack
manages (whose encryption and retention the log-group rules then judge)."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, StackValidationArgs

from cityward.cloud.graph import UNKNOWN, Graph, has, peek
from cityward.cloud.rules.registry import RuleSet
from cityward.cloud.types import FLOW_LOG, LOG_GROUP, VPC
from cityward.cloud.values import cannot_decide

RULES = RuleSet()


@RULES.stack("cw-net-05-vpc-flow-logs", control="CW-NET-05", checkov=("CKV2_AWS_11",), security_hub=("EC2.6",),
             description="CW-NET-05 (Checkov CKV2_AWS_11; FSBP EC2.6): every VPC has a flow log of ALL traffic into "
                         "a log group this stack manages.")
def _vpc_flow_logs(args: StackValidationArgs, report: ReportViolation) -> None:
    graph = Graph(args.resources)
    logs = [(f, graph.ref(f, "vpcId", VPC)) for f in graph.of(FLOW_LOG)]
    for vpc in graph.of(VPC):
        mine = [f for f, target in logs if target is vpc]
        complete = [f for f in mine if str(f.props.get("trafficType")).upper() == "ALL"]
        if not complete and any(target is UNKNOWN for _, target in logs):
            report(cannot_decide(f"which VPC each flow log watches (VPC {vpc.name})", "CW-NET-05"), vpc.urn)
        elif not complete:
            report(f"CW-NET-05: VPC {vpc.name} has no flow log capturing ALL traffic", vpc.urn)
        for flow in complete:
            if peek(flow.props, "logDestinationType", "cloud-watch-logs") != "cloud-watch-logs":
                continue
            # a log group the stack manages: its ARN (known), or computed from it (preview)
            group = graph.ref(flow, "logDestination", LOG_GROUP)
            if group is UNKNOWN:
                report(cannot_decide(f"which log group flow log {flow.name} writes to", "CW-NET-05"), flow.urn)
            elif group is None:
                report(f"CW-NET-05: flow log {flow.name} writes to a log group this stack does not manage "
                       "(its encryption and retention cannot be checked)", flow.urn)


@RULES.resource("cw-net-05-flow-log-traffic-all", control="CW-NET-05", types=(FLOW_LOG,),
                checkov=("CKV2_AWS_11",), security_hub=("EC2.6",),
                description="CW-NET-05 (Checkov CKV2_AWS_11; FSBP EC2.6): flow logs capture ALL traffic (accepted and "
                            "rejected) and name a destination.")
def _flow_log_all(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if str(args.props.get("trafficType", "")).upper() != "ALL":
        report(f"CW-NET-05: flow log traffic type is {args.props.get('trafficType')!r}; capture ALL "
               "(accepted and rejected)")
    if not has(args.props, "logDestination") and not has(args.props, "logGroupName"):
        report("CW-NET-05: flow log has no destination")
