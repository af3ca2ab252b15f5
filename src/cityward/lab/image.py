"""Build systemd-capable Debian images offline (debootstrap) and import them into Podman.

An image carries the hash of the recipe that built it in a label; a build is skipped when the
image in Podman already has the current recipe's hash. An image of another architecture (arm64,
the field gateways') is built with debootstrap's foreign first stage and its second stage run
under qemu-user (cityward.lab.emulation), and runs in Podman the same way.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cityward.errors import CitywardError
from cityward.lab.emulation import ARCHES, ensure_emulation, native_arch
from cityward.lab.podman import podman
from cityward.lab.tools import ensure_commands, run_step
from cityward.paths import cache_dir

RELEASES = ("bookworm", "trixie")
LABEL = "io.cityward.recipe"
MIRROR = "http://deb.debian.org/debian"

# What Ansible and the lab need in every host before any role runs: systemd as PID 1,
# python3 (+ python3-apt for the apt module), sshd and sudo.
BASE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "python3", "python3-apt", "openssh-server",
    "sudo", "iproute2", "procps", "ca-certificates",
)

# Runs inside the chroot after debootstrap. Host keys are removed so that every container
# makes its own at first boot; apt lists are dropped so roles always see a fresh index.
SETUP_SCRIPT = """\
set -eu
rm -f /etc/ssh/ssh_host_*
cat > /etc/systemd/system/cityward-ssh-hostkeys.service <<'UNIT'
[Unit]
Description=Generate SSH host keys on first boot (cityward lab image)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/cityward-ssh-hostkeys.service \
  /etc/systemd/system/multi-user.target.wants/cityward-ssh-hostkeys.service
echo "deb {mirror}-security {release}-security main" >> /etc/apt/sources.list
: > /etc/machine-id
apt-get clean
rm -rf /var/lib/apt/lists/*
# An empty index must look stale, or `apt: cache_valid_time` would trust it and find nothing.
touch -d @0 /var/lib/apt/lists
"""

# Added to the setup of an image of another architecture, which the lab runs under qemu-user:
# qemu-user cannot set up systemd's service credentials (the units fail at step CREDENTIALS,
# "Invalid argument", among them systemd-sysctl and systemd-tmpfiles-setup), so the units that
# load one stop asking. The lab never passes credentials; a real device never runs this image.
EMULATION_SETUP = """\
for unit in $(grep -l '^LoadCredential=' /lib/systemd/system/*.service); do
  dropin=/etc/systemd/system/$(basename "$unit").d
  mkdir -p "$dropin"
  printf '[Service]\\nLoadCredential=\\n' > "$dropin/cityward-emulation.conf"
done
"""


@dataclass(frozen=True)
class Recipe:
    release: str
    packages: tuple[str, ...] = BASE_PACKAGES
    mirror: str = MIRROR
    variant: str = "minbase"
    setup: str = field(default=SETUP_SCRIPT, repr=False)
    arch: str = "amd64"

    def identity(self) -> dict:
        """What the digest hashes. The architecture joins it only when it is not amd64: the amd64
        images (and the VM and EE images built on them) keep the hash they had before arm64 came."""
        fields = asdict(self)
        if self.arch == "amd64":
            del fields["arch"]
        return fields

    @property
    def digest(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def image(self) -> str:
        return image_name(self.release, self.arch)

    @property
    def foreign(self) -> bool:
        return self.arch != native_arch()


def image_name(release: str, arch: str = "amd64") -> str:
    return f"localhost/cityward-debian:{release}" + ("" if arch == "amd64" else f"-{arch}")


def recipe_for(release: str, arch: str = "amd64") -> Recipe:
    if release not in RELEASES:
        raise CitywardError(f"unknown release {release!r}: choose one of {', '.join(RELEASES)}")
    if arch not in ARCHES:
        raise CitywardError(f"unknown architecture {arch!r}: choose one of {', '.join(ARCHES)}")
    if arch == "amd64":
        return Recipe(release=release)
    return Recipe(release=release, setup=SETUP_SCRIPT + EMULATION_SETUP, arch=arch)


def current_digest(image: str) -> str | None:
    result = podman("image", "inspect", "--format", f'{{{{ index .Labels "{LABEL}" }}}}', image, check=False)
    if result.returncode != 0:
        return None
    return result.stdout.decode().strip() or None


def _step(msg: str) -> None:
    print(f"cityward lab image: {msg}", file=sys.stderr, flush=True)


def debootstrap_rootfs(recipe: Recipe, root: Path, say=_step) -> None:
    """debootstrap the recipe's release and packages into `root`, then run its setup script in a chroot.
    The container image and the VM image (cityward.lab.vm_image) are both made this way."""
    ensure_commands("debootstrap")
    packages = cache_dir() / "debootstrap" / (recipe.release if recipe.arch == "amd64" else
                                              f"{recipe.release}-{recipe.arch}")
    packages.mkdir(parents=True, exist_ok=True)
    foreign = ["--foreign", f"--arch={recipe.arch}"] if recipe.foreign else []
    say(f"debootstrap {recipe.release} {recipe.arch} into {root} (a minute or more)")
    run_step(
        ["debootstrap", *foreign, f"--variant={recipe.variant}", f"--include={','.join(recipe.packages)}",
         f"--cache-dir={packages}", recipe.release, str(root), recipe.mirror],
        f"debootstrap {recipe.release} {recipe.arch}",
    )
    if foreign:
        say(f"debootstrap's second stage under qemu-user ({recipe.arch} in emulation: several minutes)")
        run_step(["chroot", str(root), "/debootstrap/debootstrap", "--second-stage"],
                 f"debootstrap {recipe.release} {recipe.arch}, second stage")
    say("configuring the root filesystem")
    script = recipe.setup.format(mirror=recipe.mirror, release=recipe.release)
    run_step(["chroot", str(root), "/bin/sh", "-c", script], "image setup in chroot")


def build_image(release: str = "bookworm", force: bool = False, arch: str = "amd64") -> tuple[str, bool]:
    """Build the image for `release` and `arch` unless it is up to date; return (image, built)."""
    recipe = recipe_for(release, arch)
    # Even when the image is up to date: it only runs where the architecture's programs run.
    if recipe.foreign:
        ensure_emulation(arch)
    if not force and current_digest(recipe.image) == recipe.digest:
        _step(f"{recipe.image} is up to date (recipe {recipe.digest}), nothing to do")
        return recipe.image, False
    ensure_commands("debootstrap", "podman", "runc")
    root = Path(tempfile.mkdtemp(prefix=f"cityward-{release}-{arch}-", dir="/var/tmp"))
    try:
        debootstrap_rootfs(recipe, root)
        _step(f"importing into podman as {recipe.image}")
        tar = subprocess.run(["tar", "-C", str(root), "-c", "."], capture_output=True, check=True).stdout
        podman(
            "import", f"--arch={arch}", "--change", 'CMD ["/lib/systemd/systemd"]',
            "--change", f"LABEL {LABEL}={recipe.digest}", "-", recipe.image, input_bytes=tar,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    _step(f"built {recipe.image} (recipe {recipe.digest})")
    return recipe.image, True
