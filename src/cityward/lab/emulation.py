"""Run another architecture's binaries on this machine: qemu-user-static registered in binfmt_misc.

The lab builds and runs arm64 images (the field gateways' architecture) on an amd64 machine. The
kernel hands every arm64 program to qemu-user through binfmt_misc; the registration must carry
the F flag (the kernel opens the interpreter once, at registration), so that a chroot or a
container runs arm64 programs without a copy of qemu inside it.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from cityward.errors import CitywardError
from cityward.lab.tools import ensure_commands

BINFMT = Path("/proc/sys/fs/binfmt_misc")
# Debian's architecture name -> the kernel's machine name (also qemu-user's: qemu-aarch64).
ARCHES = {"amd64": "x86_64", "arm64": "aarch64"}


def native_arch() -> str:
    """This machine's architecture in Debian's words (amd64, arm64)."""
    machine = platform.machine()
    for arch, kernel_name in ARCHES.items():
        if machine == kernel_name:
            return arch
    raise CitywardError(f"unsupported machine architecture {machine!r}: the lab knows {', '.join(ARCHES)}")


def _entry(arch: str) -> Path:
    return BINFMT / f"qemu-{ARCHES[arch]}"


def _flags(entry: Path) -> tuple[bool, str]:
    """(enabled, flags) of a binfmt_misc entry."""
    lines = entry.read_text().splitlines()
    flags = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("flags:")), "")
    return (lines[:1] == ["enabled"]), flags


def _mount_binfmt() -> None:
    if (BINFMT / "register").exists():
        return
    how = f"mount -t binfmt_misc binfmt_misc {BINFMT}"
    if os.geteuid() != 0:
        raise CitywardError(f"binfmt_misc is not mounted at {BINFMT} and mounting it needs root: run `{how}` as root, "
                            "then build again")
    result = subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0 or not (BINFMT / "register").exists():
        why = (result.stderr or result.stdout).strip() or "no error given"
        raise CitywardError(
            f"cannot mount binfmt_misc at {BINFMT} ({why}): this kernel or container cannot run other "
            "architectures' programs. On the machine itself (not inside a container): `modprobe binfmt_misc` "
            f"and `{how}`; or build the image on a machine of that architecture"
        )


def ensure_emulation(arch: str) -> str:
    """Make `arch`'s programs runnable here; return how ('native' or the binfmt entry), or fail clearly."""
    if arch not in ARCHES:
        raise CitywardError(f"unknown architecture {arch!r}: choose one of {', '.join(ARCHES)}")
    if arch == native_arch():
        return "native"
    _mount_binfmt()
    qemu = f"qemu-{ARCHES[arch]}-static"
    ensure_commands(qemu, "update-binfmts")
    entry = _entry(arch)
    if not entry.exists() or not _flags(entry)[0]:
        # binfmt-support registers Debian's qemu-user-static entries (with the F flag).
        result = subprocess.run(["update-binfmts", "--enable", entry.name], capture_output=True, text=True,
                                check=False)
        if result.returncode != 0 or not entry.exists():
            why = (result.stderr or result.stdout).strip() or "no error given"
            raise CitywardError(f"could not register {entry.name} in binfmt_misc ({why}): run "
                                f"`update-binfmts --enable {entry.name}` as root and build again")
    enabled, flags = _flags(entry)
    if not enabled:
        raise CitywardError(f"{entry} is disabled: run `update-binfmts --enable {entry.name}` as root")
    if "F" not in flags:
        raise CitywardError(
            f"{entry} is registered without the F flag (flags: {flags or 'none'}), so containers would need qemu "
            f"inside them: remove it (`echo -1 > {entry}`) and register Debian's entry again "
            f"(`update-binfmts --enable {entry.name}`, from qemu-user-static)"
        )
    return str(entry)

