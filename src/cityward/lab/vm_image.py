"""Build the lab VM's disk image offline: the container image's debootstrap recipe plus Debian's
kernel, as an ext4 disk with the kernel and initrd beside it (QEMU boots them directly).

The result is cached outside any checkout, under cache_dir()/vm/<recipe hash>/, so every clone
on a machine shares it and a changed recipe builds a new one. Runs never write to it: each boot
gets its own copy-on-write overlay (cityward.lab.vm).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cityward.errors import CitywardError
from cityward.lab.image import BASE_PACKAGES, RELEASES, SETUP_SCRIPT, Recipe, debootstrap_rootfs
from cityward.lab.tools import ensure_commands, run_step
from cityward.paths import cache_dir

# What a VM needs beyond the container image: a kernel (with its initrd), udev and kmod; then what
# site.yml installs on an OT server, so that its first run under software emulation does not spend
# minutes in dpkg (the container scenarios prove those installs on Debian 12 and 13). A package
# missing here is simply installed by its role.
VM_PACKAGES = (
    "linux-image-amd64", "initramfs-tools", "udev", "kmod",
    "libpam-pwquality", "libpam-google-authenticator", "aide", "rsyslog", "rsyslog-gnutls", "auditd", "chrony",
    "unattended-upgrades", "nftables",
)

# Appended to the container image's setup script (same str.format fields: no other braces).
# QEMU's user-mode network always gives the guest 10.0.2.15, the gateway 10.0.2.2 and DNS on
# 10.0.2.3: a static address, so no DHCP client listens on the network. The automation login
# comes from QEMU's fw_cfg at the first boot of each fresh overlay (a user name and a public key,
# never a private key): see cityward.lab.vm.
VM_SETUP = """\
echo 'cityward-vm' > /etc/hostname
echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' > /etc/fstab
cat > /etc/systemd/network/10-cityward-vm.network <<'NET'
[Match]
Name=en* eth*

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
DNS=10.0.2.3
NET
echo 'nameserver 10.0.2.3' > /etc/resolv.conf
systemctl enable systemd-networkd.service >/dev/null 2>&1
cat > /usr/local/sbin/cityward-vm-access <<'SCRIPT'
#!/bin/sh
# The automation login QEMU passes in fw_cfg (cityward lab vm up): its user name and public key.
set -eu
cfg=/sys/firmware/qemu_fw_cfg/by_name/opt/io.cityward
modprobe qemu_fw_cfg
user=$(cat "$cfg/user/raw")
case "$user" in ''|*[!a-z0-9_-]*) echo "cityward-vm-access: refusing user name '$user'" >&2; exit 1;; esac
id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
home=$(getent passwd "$user" | cut -d: -f6)
install -d -m 0700 -o "$user" -g "$user" "$home/.ssh"
install -m 0600 -o "$user" -g "$user" "$cfg/authorized_keys/raw" "$home/.ssh/authorized_keys"
# The same grant the accounts role gives the documented automation account (CW-ACC-05).
echo "$user ALL=(ALL:ALL) NOPASSWD: ALL" > /etc/sudoers.d/50-cityward-vm-automation
chmod 0440 /etc/sudoers.d/50-cityward-vm-automation
grep -qw "$(hostname)" /etc/hosts || echo "127.0.1.1 $(hostname)" >> /etc/hosts
mkdir -p /var/lib/cityward && touch /var/lib/cityward/vm-access
SCRIPT
chmod 0755 /usr/local/sbin/cityward-vm-access
cat > /etc/systemd/system/cityward-vm-access.service <<'UNIT'
[Unit]
Description=Automation login from QEMU fw_cfg (cityward lab vm), once per fresh disk
Before=ssh.service
ConditionPathExists=!/var/lib/cityward/vm-access

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/cityward-vm-access

[Install]
WantedBy=multi-user.target
UNIT
systemctl enable cityward-vm-access.service >/dev/null 2>&1
"""

FILES = ("vmlinuz", "initrd.img", "disk.raw")


@dataclass(frozen=True)
class VmRecipe:
    release: str = "bookworm"
    disk_size: str = "4G"
    rootfs: Recipe = field(init=False)

    def __post_init__(self) -> None:
        rootfs = Recipe(release=self.release, packages=BASE_PACKAGES + VM_PACKAGES, setup=SETUP_SCRIPT + VM_SETUP)
        object.__setattr__(self, "rootfs", rootfs)

    @property
    def digest(self) -> str:
        blob = json.dumps({**asdict(self), "rootfs": self.rootfs.identity()}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def in_folder(name: str) -> property:
    """A property: the file `name` in the object's `folder`."""
    return property(lambda self: self.folder / name)


@dataclass(frozen=True)
class VmImage:
    """A built image in the cache: kernel, initrd and a raw ext4 disk, never written after the build."""

    folder: Path
    kernel = in_folder("vmlinuz")
    initrd = in_folder("initrd.img")
    disk = in_folder("disk.raw")

    @property
    def digest(self) -> str:
        return self.folder.name

    def complete(self) -> bool:
        return all((self.folder / name).is_file() for name in FILES)


def image_for(recipe: VmRecipe) -> VmImage:
    return VmImage(cache_dir() / "vm" / recipe.digest)


def _say(msg: str) -> None:
    print(f"cityward lab vm: {msg}", file=sys.stderr, flush=True)


def _boot_file(root: Path, prefix: str) -> Path:
    found = sorted((root / "boot").glob(f"{prefix}-*"))
    if not found:
        raise CitywardError(f"the VM root filesystem has no /boot/{prefix}-*: did linux-image-amd64 install?")
    return found[-1]


def build_vm_image(release: str = "bookworm", force: bool = False) -> tuple[VmImage, bool]:
    """Build the VM image for `release` unless the cache has it; return (image, built)."""
    if release not in RELEASES:
        raise CitywardError(f"unknown release {release!r}: choose one of {', '.join(RELEASES)}")
    recipe = VmRecipe(release=release)
    image = image_for(recipe)
    if image.complete() and not force:
        _say(f"image {image.digest} is cached in {image.folder}, nothing to do")
        return image, False
    ensure_commands("debootstrap", "mkfs.ext4")
    image.folder.parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=f"cityward-vm-{release}-", dir="/var/tmp"))
    # Built next to its final place, then renamed: an interrupted build never looks complete.
    partial = Path(tempfile.mkdtemp(prefix=f"{image.digest}.partial-", dir=image.folder.parent))
    try:
        debootstrap_rootfs(recipe.rootfs, root, say=_say)
        shutil.copyfile(_boot_file(root, "vmlinuz"), partial / "vmlinuz")
        shutil.copyfile(_boot_file(root, "initrd.img"), partial / "initrd.img")
        _say(f"writing the {recipe.disk_size} ext4 disk (sparse)")
        run_step(["mkfs.ext4", "-q", "-L", "cityward-root", "-d", str(root), str(partial / "disk.raw"),
                  recipe.disk_size], "mkfs.ext4 of the VM disk")
        (partial / "recipe.json").write_text(json.dumps(asdict(recipe), indent=2, sort_keys=True) + "\n")
        if image.folder.exists():
            shutil.rmtree(image.folder)
        os.rename(partial, image.folder)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(partial, ignore_errors=True)
    _say(f"built image {image.digest} in {image.folder}")
    return image, True
