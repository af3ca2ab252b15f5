"""YAML files as plain data: the strict loader is the collection's (plugins/plugin_utils/yamlfile.py),
shared with the zones filter; this adds the pydantic error formatting the command's schemas use."""

from __future__ import annotations

from ansible_collections.cityward.hardening.plugins.plugin_utils.yamlfile import (
    ALIAS_BUDGET,
    MAX_BYTES,
    MAX_DEPTH,
    check_regular_file,
    check_yaml_file,
    load_yaml,
)

__all__ = ["ALIAS_BUDGET", "MAX_BYTES", "MAX_DEPTH", "check_regular_file", "check_yaml_file",
           "describe_pydantic_errors", "load_yaml"]


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
