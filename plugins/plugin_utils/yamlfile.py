"""Read a YAML file into plain data, with errors that name the file and the line.

A key given twice in one mapping is an error: PyYAML would silently keep the last value, and in
a policy or an inventory that hides a mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from ansible_collections.cityward.hardening.plugins.plugin_utils.errors import CitywardError


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys."""


def _construct_unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def load_yaml(path: Path, what: str = "") -> Any:
    """The file's data; `what` names the kind of file in the error when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CitywardError(f"{path}: cannot read {what + ' ' if what else ''}({exc.strerror})") from None
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CitywardError(f"{path}:{where}: invalid YAML: {problem}") from None
