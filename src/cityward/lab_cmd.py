"""`cityward lab`: the local container lab."""

from __future__ import annotations

from cityward.lab.image import RELEASES, build_image


def _image(args) -> int:
    releases = RELEASES if args.release == "all" else (args.release,)
    for release in releases:
        image, built = build_image(release, force=args.force)
        print(f"{image}\t{'built' if built else 'up to date'}")
    return 0


def register(sub) -> None:
    lab = sub.add_parser("lab", help="build and run the local smart-city lab in Podman")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    image = lab_sub.add_parser(
        "image", help="build the offline Debian lab image (skipped when the recipe is unchanged)"
    )
    image.add_argument("--release", choices=(*RELEASES, "all"), default="bookworm",
                       help="Debian release to build (default: bookworm)")
    image.add_argument("--force", action="store_true", help="rebuild even when the image is up to date")
    image.set_defaults(func=_image)
