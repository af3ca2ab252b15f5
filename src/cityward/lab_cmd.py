"""`cityward lab`: the local container lab (images, and the lab city's containers)."""

from __future__ import annotations

import json
from pathlib import Path

from cityward.lab import containers
from cityward.lab.image import RELEASES, build_image
from cityward.paths import project_root


def _inventory(args) -> Path:
    return Path(args.inventory) if args.inventory else project_root() / "inventories" / "lab"


def _image(args) -> int:
    releases = RELEASES if args.release == "all" else (args.release,)
    for release in releases:
        image, built = build_image(release, force=args.force)
        print(f"{image}\t{'built' if built else 'up to date'}")
    return 0


def _print_status(rows: list[dict], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return
    print(f"{'HOST':<14} {'ZONE':<14} {'ADDRESS':<13} {'SSH':<16} STATE")
    for row in rows:
        print(f"{row['host']:<14} {row['zone']:<14} {row['ip']:<13} {row['ssh']:<16} {row['state']}")


def _up(args) -> int:
    containers.up(_inventory(args))
    _print_status(containers.status(_inventory(args)), args.format)
    return 0


def _down(args) -> int:
    containers.down(_inventory(args))
    return 0


def _status(args) -> int:
    rows = containers.status(_inventory(args))
    _print_status(rows, args.format)
    return 0 if all(r["state"] == "running" for r in rows) else 1


def register(sub) -> None:
    lab = sub.add_parser("lab", help="build and run the local smart-city lab in Podman",
                         description="The lab city: six Podman containers in the zones of policies/zones.yml.")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    image = lab_sub.add_parser(
        "image", help="build the offline Debian lab image (skipped when the recipe is unchanged)"
    )
    image.add_argument("--release", choices=(*RELEASES, "all"), default="bookworm",
                       help="Debian release to build (default: bookworm)")
    image.add_argument("--force", action="store_true", help="rebuild even when the image is up to date")
    image.set_defaults(func=_image)
    for name, func, text in (
        ("up", _up, "create or start the lab containers (idempotent; builds images when missing)"),
        ("down", _down, "remove the lab containers and their network"),
        ("status", _status, "show the lab containers (exit 1 unless all are running)"),
    ):
        action = lab_sub.add_parser(name, help=text)
        action.add_argument("-i", "--inventory", help="lab inventory (default: inventories/lab)")
        action.add_argument("--format", choices=("table", "json"), default="table", help="output format")
        action.set_defaults(func=func)
