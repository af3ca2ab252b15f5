"""Run Podman with cityward's own containers.conf, installing it when it is missing."""

from __future__ import annotations

import subprocess

from cityward.errors import CitywardError
from cityward.lab.tools import ensure_commands
from cityward.resources import podman_env


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
