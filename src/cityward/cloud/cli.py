"""`cityward cloud plan`: the segmented network planned offline and checked by the policy pack."""

from __future__ import annotations

import argparse
import os
import sys


def register(sub) -> None:
    parser = sub.add_parser(
        "cloud",
        help="plan the segmented cloud network offline",
        description="Cloud network (stacks/segmented_network) and its policy pack (policies/pulumi).",
    )
    commands = parser.add_subparsers(dest="cloud_command", metavar="COMMAND", required=True)
    plan = commands.add_parser(
        "plan",
        help="run the stack under Pulumi mocks and evaluate the policy pack",
        description="Run stacks/segmented_network in-process under Pulumi mocks (no CLI, no cloud "
        "credentials), print the planned resources and evaluate policies/pulumi over them. Exits 1 "
        "on any mandatory policy violation.",
    )
    plan.add_argument("--stack", default="example", metavar="NAME",
                      help="stack config Pulumi.<NAME>.yaml (default: example)")
    plan.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    plan.set_defaults(func=run_plan)


def run_plan(args: argparse.Namespace) -> int:
    # imported here so other cityward commands do not pay for loading Pulumi
    from cityward.cloud.plan import plan
    from cityward.cloud.render import render_json, render_table

    result = plan(args.stack)
    try:
        print(render_json(result) if args.format == "json" else render_table(result))
    except BrokenPipeError:  # `cityward cloud plan | head`: the reader left, nothing to report
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python flushes stdout again at exit
    return 1 if result.mandatory else 0
