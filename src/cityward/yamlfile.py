"""Read a YAML file into plain data, with errors that name the file and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cityward.errors import CitywardError


def load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CitywardError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CitywardError(f"{path}:{where}: invalid YAML: {problem}") from None


def describe_pydantic_errors(exc, label_for) -> list[str]:
    """Turn a pydantic ValidationError into lines 'ENTRY, field F: message'.

    label_for(loc) names the entry (e.g. 'control CW-SSH-01') for an error location tuple.
    """
    lines = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        entry, field = label_for(loc)
        lines.append(f"{entry}, field '{field}': {err.get('msg', 'invalid')}")
    return lines
