"""`cityward lab`: the local lab (images, the lab city's containers, and the VM tier)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path

from cityward.lab import containers, vm
from cityward.lab.ee import build_ee
from cityward.lab.emulation import ARCHES
from cityward.lab.image import RELEASES, build_image
from cityward.lab.vm_image import build_vm_image


def _inventory(args) -> Path:
    return Path(args.inventory)


def _image(args) -> int:
    releases = RELEASES if args.release == "all" else (args.release,)
    for release in releases:
        image, built = build_image(release, force=args.force, arch=args.arch)
        print(f"{image}\t{'built' if built else 'up to date'}")
    return 0


def _ee(args) -> int:
    started = time.monotonic()
    result = build_ee(force=args.force, wheel=Path(args.wheel) if args.wheel else None)
    if args.format == "json":
        print(json.dumps({**result, "seconds": round(time.monotonic() - started, 1)}, indent=2))
    else:
        print(f"{result['image']}\t{'built' if result['built'] else 'up to date'}")
    return 0


def _print_rows(rows: list[dict], fmt: str, columns: list[tuple[str, int, Callable[[dict], object]]]) -> None:
    """JSON, or a table of (header, width, value of a row) columns."""
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return
    print(" ".join(f"{header:<{width}}" for header, width, _ in columns).rstrip())
    for row in rows:
        print(" ".join(f"{str(value(row)):<{width}}" for _, width, value in columns).rstrip())


def _print_status(rows: list[dict], fmt: str) -> None:
    _print_rows(rows, fmt, [("HOST", 14, itemgetter("host")), ("ZONE", 14, itemgetter("zone")),
                            ("ADDRESS", 13, itemgetter("ip")), ("SSH", 16, itemgetter("ssh")),
                            ("STATE", 0, itemgetter("state"))])


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


def _vm_build(args) -> int:
    image, built = build_vm_image(args.release, force=args.force)
    print(f"{image.folder}\t{'built' if built else 'up to date'}")
    return 0


def _print_vms(rows: list[dict], fmt: str) -> None:
    _print_rows(rows, fmt, [
        ("VM", 20, itemgetter("name")), ("STATE", 8, itemgetter("state")),
        ("SSH", 16, lambda r: f"{r['address']}:{r['port']}" if "port" in r else "-"),
        ("USER", 20, lambda r: r.get("user", "-")), ("IMAGE", 0, lambda r: r.get("image", "-")),
    ])


def _vm_up(args) -> int:
    spec = vm.VmSpec(name=args.name, port=args.port, user=args.user, memory_mb=args.memory, cpus=args.cpus,
                     release=args.release)
    _print_vms([vm.up(spec, timeout=args.timeout)], args.format)
    return 0


def _vm_down(args) -> int:
    vm.down(args.name)
    return 0


def _vm_status(args) -> int:
    rows = vm.status(args.name)
    _print_vms(rows, args.format)
    return 0 if rows and all(r["state"] == "running" for r in rows) else 1


def _register_vm(lab_sub) -> None:
    parser = lab_sub.add_parser(
        "vm", help="the VM tier: a Debian VM in QEMU (software emulation) for what containers cannot show",
        description="Build an offline Debian VM image (cached outside the checkout, keyed by its recipe) and boot "
        "it with QEMU from a fresh overlay, sshd on 127.0.0.1 only, for an automation login with a fresh key.")
    vm_sub = parser.add_subparsers(dest="vm_command", metavar="ACTION", required=True)
    build = vm_sub.add_parser("build", help="build the VM image (skipped when the cache has the current recipe)")
    build.add_argument("--release", choices=RELEASES, default="bookworm", help="Debian release (default: bookworm)")
    build.add_argument("--force", action="store_true", help="rebuild even when the cache has it")
    build.set_defaults(func=_vm_build)
    defaults = vm.VmSpec()
    up = vm_sub.add_parser("up", help="boot a VM from a fresh overlay and wait for its SSH login (builds the image)")
    up.add_argument("--release", choices=RELEASES, default=defaults.release, help="Debian release of the image")
    up.add_argument("--port", type=int, default=defaults.port, help="SSH port on 127.0.0.1 (default: any free one)")
    up.add_argument("--user", default=defaults.user, help=f"automation login (default: {defaults.user})")
    up.add_argument("--memory", type=int, default=defaults.memory_mb, help="MiB of memory (default: %(default)s)")
    up.add_argument("--cpus", type=int, default=defaults.cpus, help="virtual CPUs (default: %(default)s)")
    up.add_argument("--timeout", type=float, default=300, help="seconds to wait for SSH (default: %(default)s)")
    up.set_defaults(func=_vm_up)
    down = vm_sub.add_parser("down", help="stop the VM and delete its overlay, key and console log")
    down.set_defaults(func=_vm_down)
    status = vm_sub.add_parser("status", help="show the VMs (exit 1 unless all are running)")
    status.set_defaults(func=_vm_status)
    for action, name_default in ((up, defaults.name), (down, defaults.name), (status, None)):
        action.add_argument("--name", default=name_default, help="VM name" + (
            f" (default: {name_default})" if name_default else " (default: every VM)"))
    for action in (up, status):
        action.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def register(sub) -> None:
    lab = sub.add_parser("lab", help="build and run the local smart-city lab in Podman",
                         description="The lab city: six Podman containers in the zones of policies/zones.yml.")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    image = lab_sub.add_parser(
        "image", help="build the offline Debian lab image (skipped when the recipe is unchanged)"
    )
    image.add_argument("--release", choices=(*RELEASES, "all"), default="bookworm",
                       help="Debian release to build (default: bookworm)")
    image.add_argument("--arch", choices=tuple(ARCHES), default="amd64",
                       help="architecture (default: amd64; arm64, the field gateways', is built and run under "
                       "qemu-user here: binfmt_misc is set up by the command, as root)")
    image.add_argument("--force", action="store_true", help="rebuild even when the image is up to date")
    image.set_defaults(func=_image)
    ee = lab_sub.add_parser(
        "ee", help="build an execution environment for AWX/ansible-runner on the offline Debian image",
        description="Build localhost/cityward-ee:<version> with Podman on the lab's Debian image, offline: the "
        "cityward wheel (built from this checkout), ansible-core, ansible-runner and the requirements of "
        "awx/execution-environment.yml, in ansible-builder's layout. Skipped while the image carries the "
        "current recipe's hash. With a registry, build awx/execution-environment.yml with ansible-builder instead.")
    ee.add_argument("--wheel", help="a cityward wheel to put in instead of building one from the checkout")
    ee.add_argument("--force", action="store_true", help="rebuild even when the image is up to date")
    ee.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    ee.set_defaults(func=_ee)
    for name, func, text in (
        ("up", _up, "create or start the lab containers (idempotent; builds images when missing)"),
        ("down", _down, "remove the lab containers and their network"),
        ("status", _status, "show the lab containers (exit 1 unless all are running)"),
    ):
        action = lab_sub.add_parser(name, help=text)
        action.add_argument("-i", "--inventory", default="inventories/lab",
                            help="lab inventory (default: %(default)s, from a cityward checkout)")
        action.add_argument("--format", choices=("table", "json"), default="table", help="output format")
        action.set_defaults(func=func)
    _register_vm(lab_sub)
