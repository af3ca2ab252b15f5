"""`cityward check`: validate catalog, zones policy, inventory and waivers before anything runs (CW-RES-04)."""

from __future__ import annotations

import argparse
import json
import sys

from cityward.check import CheckResult, run_check
from cityward.errors import CitywardError
from cityward.problem_lines import problem_of

EXIT_CODES = ("exit codes: 0 everything is valid; 2 bad input (any problem, each printed as one line naming "
              "file, host or entry, and field; with --format json the same as objects); 2 also for a usage error")
BAD_INPUT = 2


def _slices(value: str) -> int:
    if not value.strip().isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of slices, 1 or more (got {value!r})")
    return int(value)


def _run(args) -> int:
    try:
        result = run_check(args.inventory, zones_path=args.zones, limit=args.limit,
                           inventory_dir=args.inventory_dir, job_slices=args.job_slices)
    except CitywardError as exc:  # run_check reports bad input itself; this keeps --format json JSON
        result = CheckResult([str(i) for i in args.inventory],
                             problems=[problem_of(line) for line in str(exc).split("\n") if line.strip()])
    if args.format == "json":
        print(json.dumps(result.as_data(), indent=2))
        return 0 if result.ok else BAD_INPUT
    for problem in result.problems:
        print(f"error: {problem}", file=sys.stderr)
    for exception in result.exceptions:
        print(f"note: zones policy {exception}", file=sys.stderr)
    for waiver in result.waivers:
        print(f"note: waiver {waiver}", file=sys.stderr)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if result.ok:
        print(f"ok: {len(result.hosts)} hosts in {', '.join(result.inventories)}; zones policy "
              f"({result.zones} zones, {result.conduits} conduits); catalog ({result.controls} controls)")
        return 0
    print(f"cityward check: {len(result.problems)} problem(s); fix them before any playbook runs", file=sys.stderr)
    return BAD_INPUT


def register(sub) -> None:
    parser = sub.add_parser(
        "check", help="validate inventory, zones policy and control catalog (nothing is changed)",
        description="Validate what a run reads, before it touches a host: every host's device "
        "metadata and zone, the zones policy and the control catalog. Each problem names the file, the "
        "host or entry, and the field. playbooks/site.yml runs the same check first.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("-i", "--inventory", action="append", required=True,
                        help="Ansible inventory (file or folder); repeat for several")
    parser.add_argument("--limit", help="host pattern, as ansible --limit")
    parser.add_argument("--zones", help="zones policy file (default: the one the inventory gives its hosts, "
                        "cityward_zones or cityward_zones_file)")
    parser.add_argument("--inventory-dir", metavar="DIR",
                        help="the city's inventory folder, when the inventory given is generated elsewhere (the one "
                        "AWX hands a job, a slice): relative paths (records, zones policy) resolve there")
    parser.add_argument("--job-slices", metavar="N", type=_slices, default=1,
                        help="the inventory is one of N slices of a sliced job (cityward_job_slices): a redundancy "
                        "partner outside it is not an error (default 1: the whole city)")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    parser.set_defaults(func=_run)
