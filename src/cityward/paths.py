"""Where the project's files are: the repo root holds pyproject.toml, policies/, roles/ ..."""

from __future__ import annotations

import os
from pathlib import Path

from cityward.errors import CitywardError


def project_root() -> Path:
    """The cityward checkout: $CITYWARD_HOME, else the checkout this package runs from, else the cwd."""
    candidates = []
    if os.environ.get("CITYWARD_HOME"):
        candidates.append(Path(os.environ["CITYWARD_HOME"]))
    candidates.append(Path(__file__).resolve().parents[2])
    candidates.append(Path.cwd())
    for path in candidates:
        if (path / "pyproject.toml").is_file() and (path / "policies").is_dir():
            return path
    raise CitywardError("cannot find the cityward project folder: run from the checkout or set CITYWARD_HOME")


def cache_dir() -> Path:
    """cityward's cache outside any checkout, shared by every clone on this machine:
    $XDG_CACHE_HOME/cityward, else ~/.cache/cityward."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cityward"
