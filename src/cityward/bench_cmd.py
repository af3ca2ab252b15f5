"""`cityward bench`: measure hardening, re-run, fleet, audit and cloud plan times on the lab."""

from __future__ import annotations

from pathlib import Path

from cityward import bench
from cityward.errors import CitywardError


def _run(args) -> int:
    lab = Path(args.inventory).resolve()
    if not (lab / "hosts.yml").is_file():
        raise CitywardError(f"{lab}: no lab inventory here; run from a cityward checkout or pass --inventory")
    runner = bench.Bench(Path(args.work), lab, args.connection)
    results = runner.run(args.fleet)
    markdown = Path(args.out)
    bench.save(results, markdown, markdown.with_suffix(".json"), args.connection)
    print(markdown.read_text(encoding="utf-8"))
    return 0


def register(sub) -> None:
    parser = sub.add_parser(
        "bench", help="measure hardening, idempotent re-run, fleet, audit, cloud plan and check times",
        description="Start fresh bench containers on the lab network, time playbooks/site.yml (first run, "
        "second run, a fleet), cityward audit (one host with and without its scanners) and cityward cloud plan, "
        "and write docs/benchmarks.md and "
        "docs/benchmarks.json. Takes tens of minutes; prints progress on stderr.")
    parser.add_argument("--fleet", type=int, default=20,
                        help="containers in the fleet measure (default: 20; 0 or 1 skips it)")
    parser.add_argument("--connection", choices=sorted(bench.CONNECTIONS), default="ssh",
                        help="how Ansible reaches the bench hosts: ssh (default; pipelining, as the automation "
                        "account, the way a city's hosts are reached) or podman (podman exec)")
    parser.add_argument("-i", "--inventory", default="inventories/lab",
                        help="the lab inventory whose network, image, group_vars and zones the bench hosts share "
                        "(default: %(default)s)")
    parser.add_argument("--work", default=".cache/bench",
                        help="folder for the bench's logs and keys (default: %(default)s)")
    parser.add_argument("--out", default="docs/benchmarks.md",
                        help="markdown file to write (default: %(default)s; JSON next to it)")
    parser.set_defaults(func=_run)
