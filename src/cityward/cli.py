"""The `cityward` command: one subcommand per job, each in its own module."""

from __future__ import annotations

import argparse
import sys

from cityward import __version__
from cityward.errors import CitywardError


def build_parser() -> argparse.ArgumentParser:
    from cityward import audit_cmd, bench_cmd, check_cmd, controls_cmd, lab_cmd
    from cityward.cloud import cli as cloud_cli

    parser = argparse.ArgumentParser(
        prog="cityward",
        description="Harden, segment and audit smart-city OT infrastructure "
        "(Ansible roles, Pulumi stacks, testinfra audits).",
    )
    parser.add_argument("--version", action="version", version=f"cityward {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (check_cmd, controls_cmd, lab_cmd, audit_cmd, cloud_cli, bench_cmd):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CitywardError as exc:
        print(f"cityward: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cityward: interrupted", file=sys.stderr)
        return 130
