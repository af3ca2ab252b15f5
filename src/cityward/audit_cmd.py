"""`cityward audit`: verify every control on the hosts of an inventory and write the evidence.

The command only wires the audit's pipeline (cityward.audit): it reads its input (the inventory,
then the city's waivers, cityward.waivers: bad ones stop it before any host is contacted),
decides the environment of the checks, then collect -> aggregate (once) -> render and write ->
exit code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cityward.errors import CitywardError

EXIT_CODES = ("exit codes: 0 every mandatory control passed on every host; 1 a mandatory control failed or a host "
              "was unreachable (metadata problems are reported and fail their controls; a control a waiver in "
              "force covers is waived, not failed, and one whose waiver expired is failed); 2 bad input: the "
              "inventory cannot be read (missing, unparsable, a refused file) or its waiver file "
              "(records/waivers.yml) has a bad entry, nothing was contacted and no report written; 2 also for a "
              "usage error")


def _formats(text: str) -> set[str]:
    from cityward.audit.write import FORMATS

    chosen = {f.strip() for f in text.split(",") if f.strip()}
    unknown = chosen - set(FORMATS)
    if unknown or not chosen:
        raise CitywardError(f"--format: unknown {', '.join(sorted(unknown)) or 'empty list'}; "
                            f"choose from {','.join(FORMATS)}")
    return chosen


def _run(args) -> int:
    # imported here: the audit pulls in the checks (and pytest); every other command starts faster
    from cityward.audit import render_text
    from cityward.audit.aggregate import aggregate
    from cityward.audit.collect import resolve_inventory, run_audit
    from cityward.audit.scanners.findings import load_mapping
    from cityward.audit.write import write_reports
    from cityward.catalog import load_catalog
    from cityward.inventory import validate_inventory
    from cityward.resources import podman_env
    from cityward.waivers import read_waivers

    formats = _formats(args.format)
    inventory = Path(args.inventory)
    if not inventory.exists():
        raise CitywardError(f"{inventory}: no such inventory")
    catalog = load_catalog()
    # Scanners on unless --no-scanners (args made by hand, as in tests, may leave the flag out).
    scan = getattr(args, "scanners", True)
    if scan:  # a bad mapping of scanner findings: exit 2 before any host is contacted
        load_mapping(control_ids=catalog.ids)
    city = Path(args.inventory_dir) if args.inventory_dir else None
    if city is not None and not city.is_dir():
        raise CitywardError(f"{city}: inventory folder not found (given as the city's inventory folder)")
    # Unreadable or hostile: exit 2 (cli) before any host is contacted.
    resolved = resolve_inventory(inventory, args.limit)
    # Bad waivers: exit 2 before any host is contacted and before the output folder is made. A
    # waiver may name any host of the inventory, whatever the limit.
    waivers = read_waivers(inventory, inventory_dir=city, listing=None if args.limit else resolved,
                           control_ids=catalog.ids)
    if waivers.problems:
        for problem in waivers.problems:
            print(f"cityward audit: error: {problem}", file=sys.stderr)
        print(f"cityward audit: {len(waivers.problems)} problem(s) in the waiver file: no host was contacted, "
              "no report written", file=sys.stderr)
        return 2
    for warning in waivers.warnings:
        print(f"cityward audit: warning: {warning}", file=sys.stderr)
    exceptions: list[str] = []
    try:
        report = validate_inventory(inventory, limit=args.limit, inventory_dir=city)
        problems = report.problems
        if report.zones is not None:
            exceptions = report.zones.exceptions_in_force()
    except CitywardError as exc:  # e.g. no zones policy: the checks still run, and say what it costs
        problems = str(exc).split("\n")
    for problem in problems:
        print(f"cityward audit: metadata: {problem}", file=sys.stderr)
    run = run_audit(inventory, Path(args.out), limit=args.limit, workers=args.workers, inventory_dir=city,
                    resolved=resolved, env=podman_env(), scan=scan)
    run.policy_exceptions = exceptions
    run.waivers = [waiver.as_data() for waiver in waivers.waivers]
    result = aggregate(run, catalog)
    paths = write_reports(result, formats, Path(args.out))
    print(render_text.render(result))
    for path in paths:
        print(f"report: {path}")
    unreachable = [h.name for h in run.hosts if not h.reachable]
    return 1 if result.mandatory_failures or unreachable else 0


def register(sub) -> None:
    parser = sub.add_parser(
        "audit", help="verify every control on an inventory's hosts and write the evidence",
        description="Run the control checks (cityward.checks) against each host (over the inventory's own "
        "connection, hosts in parallel), collect an SBOM per host, run ssh-audit against its sshd and Lynis on it "
        "(copied for the run and removed after), and report every control and every "
        "item of both checklists as pass, fail, skipped, not applicable or waived (the city's waivers: "
        "records/waivers.yml of the inventory folder, checked before any host is contacted).",
        epilog=EXIT_CODES,
    )
    parser.add_argument("-i", "--inventory", required=True, help="Ansible inventory (file or folder)")
    parser.add_argument("--limit", help="host pattern, as ansible --limit")
    parser.add_argument("--inventory-dir", metavar="DIR",
                        help="the city's inventory folder, where relative paths of the inventory (records, zones "
                        "policy) resolve, when the inventory was generated elsewhere (AWX hands every job one)")
    parser.add_argument("--format", default="html,json,junit,sarif",
                        help="comma-separated report formats: html,json,junit,sarif (default: all)")
    parser.add_argument("--out", default="reports/audit", help="output folder (default: reports/audit)")
    parser.add_argument("--workers", type=int, default=None, help="hosts audited at once (default: up to 8)")
    parser.add_argument("--no-scanners", dest="scanners", action="store_false",
                        help="skip the independent scanners (ssh-audit from here, Lynis on each host; about a "
                        "minute per host): CW-GOV-07 is then reported skipped, never passed")
    parser.set_defaults(func=_run)
