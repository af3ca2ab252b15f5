"""Read a planned stack the way a rule must on a first `pulumi preview`: values may be unknown.

On a first preview nothing exists yet, so every id, ARN and computed output is unknown, and the
policy SDK hands rules proxies that raise `UnknownValueError` when such a value is read. A
mandatory rule that lets that escape is skipped by the engine (an advisory note), and a forbidden
resource could be created before anything refuses it. The rules therefore read props through
`peek`, which answers `UNKNOWN` instead of raising, and follow references with `Graph.ref`, which
joins by id when the id is known and otherwise by the engine's property dependencies (which
resource a property was computed from: known at preview). A rule that still cannot decide reports
a violation: it fails closed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence, Sized
from typing import Any

from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)


class _Unknown:
    """A value the engine does not know yet (first preview)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unknown until created>"

    def __bool__(self) -> bool:  # an unknown value is never taken for a set flag
        return False


UNKNOWN: Any = _Unknown()
SENTINELS = frozenset((UNKNOWN_STRING_VALUE, UNKNOWN_NUMBER_VALUE, UNKNOWN_BOOLEAN_VALUE, UNKNOWN_ARRAY_VALUE,
                       UNKNOWN_OBJECT_VALUE, UNKNOWN_ASSET_VALUE, UNKNOWN_ARCHIVE_VALUE))


def is_unknown(value: Any) -> bool:
    return value is UNKNOWN or (isinstance(value, str) and value in SENTINELS)


def peek(props: Any, key: str, default: Any = None) -> Any:
    """props[key], `default` when absent, UNKNOWN when the engine does not know it yet."""
    if not isinstance(props, Mapping):
        return default
    try:
        # `in`, not `in list(props)`: O(1); a proxy answers it by reading the value, so an unknown
        # one raises here as below
        if key not in props:
            return default
        value = props[key]
    except UnknownValueError:
        return UNKNOWN
    return UNKNOWN if is_unknown(value) else value


def has(props: Any, key: str) -> bool:
    """The property is set (known or not): an unknown ARN still says *that* a key is used."""
    value = peek(props, key)
    if value is UNKNOWN:
        return True
    # len, not `== []`: the engine's list proxies never compare equal to a list
    return value is not None and not (isinstance(value, Sized) and len(value) == 0)


def items(value: Any) -> list:
    """A list property as a list (the engine hands over read-only sequences); [] if absent.

    An unknown list is a list of one UNKNOWN, so a rule iterating it meets the unknown."""
    if value is None:
        return []
    if is_unknown(value):
        return [UNKNOWN]
    if isinstance(value, Sequence) and not isinstance(value, str):
        out = []
        for index in range(len(value)):
            try:
                item = value[index]
            except UnknownValueError:
                item = UNKNOWN
            out.append(UNKNOWN if is_unknown(item) else item)
        return out
    return [value]


class StackResources(list):
    """The stack's resources as an evaluation hands them to every stack policy (a list), with the
    lookups a Graph needs built once and shared by every rule's Graph over it. Read-only."""

    @functools.cached_property
    def index(self) -> _Index:
        return _Index(self)


class _Index:
    """Resources by type, by URN, and by the known ids and ARNs naming them, in stack order."""

    def __init__(self, resources: Sequence[Any]) -> None:
        self.by_type: dict[str, list] = {}
        self.by_urn = {r.urn: r for r in resources}
        self.by_name: dict[Any, list] = {}
        for r in resources:
            self.by_type.setdefault(r.resource_type, []).append(r)
            for name in _keys(peek(r.props, "id"), peek(r.props, "arn")):
                self.by_name.setdefault(name, []).append(r)

    def named(self, value: Any) -> list:
        """Resources whose known id or ARN is `value` (a list or object names none)."""
        try:
            return self.by_name.get(value, [])
        except TypeError:
            return []


def _keys(*values: Any) -> list:
    """The known, hashable ones of `values`, each once."""
    keys: list = []
    for value in values:
        if value is None or value is UNKNOWN:
            continue
        try:
            hash(value)
        except TypeError:
            continue
        if value not in keys:
            keys.append(value)
    return keys


class Graph:
    """The stack's resources with lookups that work before any of them exists."""

    def __init__(self, resources: Iterable[Any]) -> None:
        self.resources = list(resources)
        # one index per evaluation (StackResources), else one per Graph; either way no lookup scans
        self._index = resources.index if isinstance(resources, StackResources) else _Index(self.resources)
        self._by_urn = self._index.by_urn

    def of(self, *types: str) -> list:
        if len(types) == 1:
            return list(self._index.by_type.get(types[0], ()))
        return [r for r in self.resources if r.resource_type in types]

    def ref(self, resource: Any, key: str, *types: str) -> Any:
        """The resource of `types` that resource.props[key] names.

        Known value: the resource whose `id` (or `arn`) it is, else None (outside this stack).
        Unknown value: the one resource of `types` the property depends on, else UNKNOWN.
        Absent: None."""
        value = peek(resource.props, key)
        if value is None:
            return None
        if value is not UNKNOWN:
            return self.named(value, *types)
        return self.dependency(resource, key, *types)

    def named(self, value: Any, *types: str) -> Any:
        """The resource of `types` whose known id or ARN is `value`, else None."""
        return next((c for c in self._index.named(value) if c.resource_type in types), None)

    def dependencies(self, resource: Any, key: str, *types: str) -> list:
        """The resources (of `types`, or of any type) that property `key` was computed from, each once."""
        deps = getattr(resource, "property_dependencies", None) or {}
        return list({d.urn: d for d in deps.get(key, []) if not types or d.resource_type in types}.values())

    def dependency(self, resource: Any, key: str, *types: str) -> Any:
        """The one resource of `types` that property `key` was computed from, else UNKNOWN."""
        found = self.dependencies(resource, key, *types)
        return found[0] if len(found) == 1 else UNKNOWN

    def names(self, resource: Any, key: str, target: Any, *attrs: str) -> Any:
        """Whether resource.props[key] names `target`: True when it is one of target's known `attrs`
        (default id, name, ARN) or, unknown, was computed from target; False when absent or another;
        UNKNOWN (falsy) when an unknown value was not computed from one resource of target's type."""
        value = peek(resource.props, key)
        if value is None:
            return False
        if value is UNKNOWN:
            source = self.dependency(resource, key, target.resource_type)
            return UNKNOWN if source is UNKNOWN else source is target
        return value in {peek(target.props, a) for a in attrs or ("id", "name", "arn")} - {None, UNKNOWN}

    def referencing(self, target: Any, key: str, *types: str) -> list:
        """Resources of `types` whose `key` names `target` (by id, or by dependency at preview)."""
        return [r for r in self.of(*types) if self.ref(r, key, target.resource_type) is target]

    def by_urn(self, urn: str) -> Any:
        return self._by_urn.get(urn)
