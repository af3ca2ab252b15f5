"""Run Podman with cityward's own containers.conf, installing it when it is missing."""

from __future__ import annotations

import os
import subprocess
from importlib import resources
from pathlib import Path

from cityward.errors import CitywardError
from cityward.lab.tools import ensure_commands


def containers_conf() -> Path:
    """Path of the containers.conf shipped with cityward."""
    return Path(str(resources.files("cityward") / "data" / "containers.conf"))


def podman_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every Podman call (ours, Molecule's, Ansible's) runs with."""
    env = dict(os.environ if base is None else base)
    env.setdefault("CONTAINERS_CONF", str(containers_conf()))
    return env


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
