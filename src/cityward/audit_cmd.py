"""`cityward audit`: verify every control on the hosts of an inventory and write the evidence."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from cityward.errors import CitywardError

FORMATS = ("html", "json", "junit", "sarif")
EXIT_CODES = ("exit codes: 0 every mandatory control passed on every host; 1 a mandatory control failed or a host "
              "was unreachable (metadata problems are reported and fail their controls); 2 bad input: the "
              "inventory cannot be read (missing, unparsable, a refused file), nothing was contacted; 2 also for "
              "a usage error")


def _formats(text: str) -> set[str]:
    chosen = {f.strip() for f in text.split(",") if f.strip()}
    unknown = chosen - set(FORMATS)
    if unknown or not chosen:
        raise CitywardError(f"--format: unknown {', '.join(sorted(unknown)) or 'empty list'}; "
                            f"choose from {','.join(FORMATS)}")
    return chosen


def summary_table(run) -> str:
    """Check outcomes per zone, the table printed after an audit."""
    rows: dict[str, Counter] = {}
    for host in run.hosts:
        zone = host.zone or "(no zone)"
        counter = rows.setdefault(zone, Counter())
        counter["hosts"] += 1
        if not host.reachable:
            counter["unreachable"] += 1
        counter.update(check.outcome for check in host.checks)
    cols = ("hosts", "passed", "failed", "error", "not_applicable", "skipped", "unreachable")
    lines = [f"{'ZONE':<15}" + "".join(f"{c.replace('_', ' ').upper():>16}" for c in cols)]
    total = Counter()
    for zone, counter in sorted(rows.items()):
        total.update(counter)
        lines.append(f"{zone:<15}" + "".join(f"{counter[c]:>16}" for c in cols))
    lines.append(f"{'TOTAL':<15}" + "".join(f"{total[c]:>16}" for c in cols))
    return "\n".join(lines)


def _run(args) -> int:
    # imported here: the audit pulls in the checks (and pytest); every other command starts faster
    from cityward.audit.report import aggregate, write_reports
    from cityward.audit.runner import resolve_inventory, run_audit
    from cityward.catalog import load_catalog
    from cityward.inventory import validate_inventory

    formats = _formats(args.format)
    inventory = Path(args.inventory)
    if not inventory.exists():
        raise CitywardError(f"{inventory}: no such inventory")
    catalog = load_catalog()
    city = Path(args.inventory_dir) if args.inventory_dir else None
    if city is not None and not city.is_dir():
        raise CitywardError(f"{city}: inventory folder not found (given as the city's inventory folder)")
    # Unreadable or hostile: exit 2 (cli) before any host is contacted.
    resolved = resolve_inventory(inventory, args.limit)
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
                    resolved=resolved)
    run.policy_exceptions = exceptions
    paths = write_reports(run, catalog, formats, Path(args.out))
    print(summary_table(run))
    for host in run.hosts:
        if not host.reachable or host.error:
            print(f"{host.name}: {host.error}")
    facts = aggregate(run, catalog)
    failures = facts.get("mandatory_failures", [])
    for failure in failures:
        print(f"FAIL {failure['control']} {failure['title']} on {', '.join(failure['hosts'])}")
    for line in run.policy_exceptions:
        print(f"policy exception: {line}")
    for path in paths:
        print(f"report: {path}")
    unreachable = [h.name for h in run.hosts if not h.reachable]
    return 1 if failures or unreachable else 0


def register(sub) -> None:
    parser = sub.add_parser(
        "audit", help="verify every control on an inventory's hosts and write the evidence",
        description="Run the control checks (cityward.checks) against each host (over the inventory's own "
        "connection, hosts in parallel), collect an SBOM per host, and report every control and every "
        "item of both checklists as pass, fail, skipped or not applicable.",
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
    parser.set_defaults(func=_run)
