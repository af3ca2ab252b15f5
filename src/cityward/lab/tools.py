"""The lab's system tools: install missing ones from Debian's packages, run a step or fail clearly."""

from __future__ import annotations

import os
import shutil
import subprocess

from cityward.errors import CitywardError

# Debian package that provides each command the lab needs.
_PACKAGES = {
    "podman": ["podman", "runc"],
    "runc": ["runc"],
    "debootstrap": ["debootstrap"],
    # Other architectures' programs, run through binfmt_misc (cityward.lab.emulation).
    "qemu-aarch64-static": ["qemu-user-static", "binfmt-support"],
    "qemu-x86_64-static": ["qemu-user-static", "binfmt-support"],
    "update-binfmts": ["binfmt-support"],
    "qemu-system-x86_64": ["qemu-system-x86"],
    "qemu-img": ["qemu-utils"],
    "mkfs.ext4": ["e2fsprogs"],
    "ssh": ["openssh-client"],
    "ssh-keygen": ["openssh-client"],
}


def ensure_commands(*commands: str) -> None:
    """Install missing lab tools from Debian's packages, or fail with one clear line."""
    missing = [c for c in commands if shutil.which(c) is None]
    if not missing:
        return
    packages = sorted({p for c in missing for p in _PACKAGES.get(c, [c])})
    hint = f"install them with: apt-get install -y {' '.join(packages)}"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise CitywardError(
            f"{', '.join(missing)} not found and cannot be installed here (needs root and apt-get); {hint}"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    result = subprocess.run(
        ["apt-get", "install", "-y", "-q", *packages], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        # The package lists may be missing on a fresh machine: refresh once, then retry.
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        result = subprocess.run(
            ["apt-get", "install", "-y", "-q", *packages], env=env, capture_output=True, text=True, check=False
        )
    still = [c for c in missing if shutil.which(c) is None]
    if result.returncode != 0 or still:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise CitywardError(f"could not install {', '.join(packages)} ({last[0]}); {hint}")


def run_step(cmd: list[str], what: str) -> str:
    """Run one build step; on failure raise CitywardError with the last lines of its output."""
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
        raise CitywardError(f"{what} failed (exit {result.returncode}):\n{tail}")
    return result.stdout
