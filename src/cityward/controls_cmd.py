"""`cityward controls`: the coverage matrix of both source documents by the control catalog."""

from __future__ import annotations

import json
from pathlib import Path

from cityward.catalog import load_catalog
from cityward.errors import CitywardError
from cityward.trace import collect, problems


def _table(catalog) -> str:
    rows = catalog.coverage()
    lines = [f"{'ITEM':<9} {'IMPL':>5}  {'TITLE':<58} CONTROLS"]
    for row in rows:
        done = f"{row['implemented']}/{row['total']}"
        lines.append(f"{row['item']:<9} {done:>5}  {row['title'][:58]:<58} {' '.join(row['controls'])}")
    implemented = sum(c.status == "implemented" for c in catalog.controls)
    covered = sum(1 for r in rows if r["total"])
    lines.append("")
    lines.append(f"{len(catalog.controls)} controls, {implemented} implemented; "
                 f"{covered}/{len(rows)} source items covered by at least one control")
    return "\n".join(lines)


def _run(args) -> int:
    catalog = load_catalog()
    gaps = []
    if args.trace:
        # The gate reads the source tree (roles, the package's rules, the tests), not an installed copy.
        tree = Path(args.tree)
        if not (tree / "galaxy.yml").is_file() or not (tree / "src" / "cityward").is_dir():
            raise CitywardError(f"{tree}: --trace reads a cityward source tree (galaxy.yml, roles/, src/, tests/); "
                                "pass --tree DIR")
        gaps = problems(load_catalog(tree / "policies"), collect(tree))
    if args.format == "json":
        doc = {
            "coverage": catalog.coverage(),
            "controls": [c.model_dump(mode="json") for c in catalog.controls],
        }
        if args.trace:
            doc["trace_problems"] = gaps
        print(json.dumps(doc, indent=2))
    else:
        print(_table(catalog))
        for gap in gaps:
            print(f"trace: {gap}")
    return 1 if gaps else 0


def register(sub) -> None:
    parser = sub.add_parser(
        "controls", help="show how the control catalog covers both source checklists",
        description="Print the coverage matrix: per source item (Five Eyes guide, Trend Micro "
        "checklist), the controls that implement it and how many are implemented.",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    parser.add_argument("--trace", action="store_true",
                        help="also check that implemented controls have enforcing tasks and tests (exit 1 if not)")
    parser.add_argument("--tree", default=".", help="the source tree --trace reads (default: the current folder)")
    parser.set_defaults(func=_run)
