"""Where cityward keeps what it makes outside any checkout."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """cityward's cache outside any checkout, shared by every clone on this machine:
    $XDG_CACHE_HOME/cityward, else ~/.cache/cityward."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cityward"
