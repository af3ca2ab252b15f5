"""`cityward check`: validate catalog, zones policy and inventory before anything runs (CW-RES-04)."""

from __future__ import annotations

import json
import sys

from cityward.check import run_check


def _run(args) -> int:
    result = run_check(args.inventory, zones_path=args.zones, limit=args.limit)
    if args.format == "json":
        print(json.dumps(result.as_data(), indent=2))
        return 0 if result.ok else 1
    for problem in result.problems:
        print(f"error: {problem}", file=sys.stderr)
    if result.ok:
        print(f"ok: {len(result.hosts)} hosts in {', '.join(result.inventories)}; zones policy "
              f"({result.zones} zones, {result.conduits} conduits); catalog ({result.controls} controls)")
        return 0
    print(f"cityward check: {len(result.problems)} problem(s); fix them before any playbook runs", file=sys.stderr)
    return 1


def register(sub) -> None:
    parser = sub.add_parser(
        "check", help="validate inventory, zones policy and control catalog (nothing is changed)",
        description="Validate what a run reads, before it touches a host: every host's device "
        "metadata and zone, the zones policy and the control catalog. Each problem names the file, the "
        "host or entry, and the field. playbooks/site.yml runs the same check first. Exit 1 on any problem.",
    )
    parser.add_argument("-i", "--inventory", action="append", required=True,
                        help="Ansible inventory (file or folder); repeat for several")
    parser.add_argument("--limit", help="host pattern, as ansible --limit")
    parser.add_argument("--zones", help="zones policy file (default: the one the inventory gives its hosts, "
                        "cityward_zones or cityward_zones_file)")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    parser.set_defaults(func=_run)
