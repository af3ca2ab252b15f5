"""Run Podman with cityward's own containers.conf, installing it when it is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

from cityward.errors import CitywardError

# Debian package that provides each command the lab needs.
_PACKAGES = {"podman": ["podman", "runc"], "runc": ["runc"], "debootstrap": ["debootstrap"]}


def containers_conf() -> Path:
    """Path of the containers.conf shipped with cityward."""
    return Path(str(resources.files("cityward") / "data" / "containers.conf"))


def podman_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every Podman call (ours, Molecule's, Ansible's) runs with."""
    env = dict(os.environ if base is None else base)
    env.setdefault("CONTAINERS_CONF", str(containers_conf()))
    return env


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


def podman(*args: str, check: bool = True, capture: bool = True, input_bytes: bytes | None = None):
    """Run one podman command with cityward's settings; raise CitywardError on failure."""
    ensure_commands("podman", "runc")
    result = subprocess.run(
        ["podman", *args], env=podman_env(), capture_output=capture, input=input_bytes, check=False
    )
    if check and result.returncode != 0:
        err = (result.stderr or b"").decode(errors="replace").strip()
        raise CitywardError(f"podman {args[0]} failed: {err or f'exit {result.returncode}'}")
    return result
