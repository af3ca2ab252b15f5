"""The control catalog: policies/controls.yml, checked against sources.yml and references.yml.

Every control has one ID (CW-<AREA>-NN) that names it everywhere: role task tags and names,
test markers, Pulumi policy rules and report rows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from cityward.errors import CitywardError
from cityward.resources import policies_dir
from cityward.strict_model import StrictModel
from cityward.yamlfile import describe_pydantic_errors, load_yaml

CONTROL_ID = re.compile(r"CW-[A-Z]+-\d{2}")


class SourceItem(StrictModel):
    id: str = Field(pattern=r"^(FE-(PD|SC|OR)|TM)-\d{2}$")
    title: str = Field(min_length=3)
    area: str | None = None
    summary: str | None = None


class Source(StrictModel):
    id: str
    title: str
    items: list[SourceItem] = Field(min_length=1)


class Enforcement(StrictModel):
    kind: Literal["role", "playbook", "stack", "policy", "metadata", "evidence"]
    ref: str = Field(min_length=1)


_NUMBER_LIMIT = re.compile(r"^[a-z][a-z0-9_]*_(max|min)$")
_PATTERN_LIMIT = re.compile(r"^[a-z][a-z0-9_]*_patterns$")


def _check_limit(name: str, value: Any) -> None:
    """ValueError naming the limit when it is not what its name says: a finite number for
    *_max and *_min, a non-empty list of regular expressions for *_patterns."""
    if _NUMBER_LIMIT.match(name):
        # bool is an int to Python, never a bound to an auditor.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"limits.{name}: expected a number, found {value!r}")
    elif _PATTERN_LIMIT.match(name):
        if not isinstance(value, list) or not value or not all(isinstance(item, str) and item for item in value):
            raise ValueError(f"limits.{name}: expected a list of regular expressions, found {value!r}")
        for item in value:
            try:
                re.compile(item)
            except re.error as exc:
                raise ValueError(f"limits.{name}: {item!r} is not a regular expression ({exc})") from None
    else:
        raise ValueError(f"limits.{name}: a limit is named <setting>_max or <setting>_min (a number) "
                         "or <what>_patterns (a list of regular expressions)")


class Control(StrictModel):
    id: str = Field(pattern=r"^CW-[A-Z]+-\d{2}$")
    title: str = Field(min_length=5, max_length=120)
    sources: list[str] = Field(min_length=1)
    iec62443: list[str] = Field(default_factory=list)
    cisa_cpg: list[str] = Field(default_factory=list)
    enforced_by: list[Enforcement] = Field(min_length=1)
    verification: str = Field(min_length=5)
    container: Literal["live", "config", "none"]
    container_reason: str | None = None
    rule_ids: list[str] = Field(default_factory=list)
    mandatory: bool = True
    status: Literal["planned", "implemented"]
    # Fixed bounds the checks hold the applied settings to (name_max / name_min: a number;
    # name_patterns: regular expressions of forbidden values). Role settings never go here.
    limits: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _reason_when_not_live(self):
        if self.container != "live" and not self.container_reason:
            raise ValueError("container_reason is required when container is 'config' or 'none'")
        return self

    @field_validator("limits")
    @classmethod
    def _limits_are_numbers_or_patterns(cls, limits: dict[str, Any]) -> dict[str, Any]:
        for name, value in limits.items():
            _check_limit(name, value)
        return limits

    def limit(self, name: str) -> int | float:
        """The number limit `name` (e.g. maxauthtries_max); CitywardError when the control has none."""
        if not _NUMBER_LIMIT.match(name) or name not in self.limits:
            raise CitywardError(f"controls.yml: control {self.id} has no limit {name!r}")
        return self.limits[name]

    def patterns(self, name: str) -> list[str]:
        """The list of regular expressions `name` (e.g. forbidden_algorithm_patterns)."""
        if not _PATTERN_LIMIT.match(name) or name not in self.limits:
            raise CitywardError(f"controls.yml: control {self.id} has no limit {name!r}")
        return list(self.limits[name])


@dataclass(frozen=True)
class Catalog:
    controls: tuple[Control, ...]
    sources: tuple[Source, ...]
    iec62443: dict[str, str]
    cisa_cpg: dict[str, str]

    @property
    def ids(self) -> set[str]:
        return {c.id for c in self.controls}

    @property
    def source_items(self) -> list[SourceItem]:
        return [item for source in self.sources for item in source.items]

    def get(self, control_id: str) -> Control:
        for control in self.controls:
            if control.id == control_id:
                return control
        raise KeyError(control_id)

    def coverage(self) -> list[dict]:
        """Per source item: the controls implementing it and how many are implemented."""
        rows = []
        for source in self.sources:
            for item in source.items:
                controls = [c for c in self.controls if item.id in c.sources]
                rows.append({
                    "source": source.id,
                    "item": item.id,
                    "title": item.title,
                    "controls": [c.id for c in controls],
                    "implemented": sum(c.status == "implemented" for c in controls),
                    "total": len(controls),
                })
        return rows


def _load_list(path: Path, key: str, model, label) -> list:
    data = load_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise CitywardError(f"{path}: expected a mapping with a '{key}' list at the top")
    entries, errors = [], []
    for index, raw in enumerate(data[key]):
        try:
            entries.append(model.model_validate(raw))
        except ValidationError as exc:
            name = label(index, raw)
            lines = describe_pydantic_errors(exc, lambda loc, n=name: (n, _field(loc)))
            errors += [f"{path}: {line}" for line in lines]
    if errors:
        raise CitywardError("\n".join(errors))
    return entries


def _labeller(kind: str):
    """Name an entry by its id when it has one, else by its position."""
    def label(index: int, raw) -> str:
        ident = raw.get("id") if isinstance(raw, dict) else None
        return f"{kind} {ident or f'#{index + 1}'}"
    return label


def _field(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(entry)"


def _references(refs, path: Path, section: str, key: str) -> dict[str, str]:
    """references.yml's `section.key`: a mapping of reference ID to its title."""
    body = refs.get(section) if isinstance(refs, dict) else None
    found = body.get(key) if isinstance(body, dict) else None
    if not isinstance(found, dict) or not found:
        raise CitywardError(f"{path}: field '{section}.{key}': expected a mapping of reference ID to title")
    bad = [k for k, v in found.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise CitywardError(f"{path}: field '{section}.{key}.{bad[0]}': expected a reference ID with a text title")
    return dict(found)


def load_catalog(policies: Path | None = None) -> Catalog:
    """Load and cross-check the catalog in `policies` (default: the installed collection's);
    raise CitywardError naming control and field."""
    policies = policies or policies_dir()
    refs_path = policies / "references.yml"
    refs = load_yaml(refs_path)
    iec = _references(refs, refs_path, "iec62443_3_3", "requirements")
    cpg = _references(refs, refs_path, "cisa_cpg", "goals")
    sources = _load_list(policies / "sources.yml", "sources", Source, _labeller("source"))
    controls_path = policies / "controls.yml"
    controls = _load_list(controls_path, "controls", Control, _labeller("control"))
    item_ids = {item.id for source in sources for item in source.items}
    errors, seen = [], set()
    for control in controls:
        where = f"{controls_path}: control {control.id}"
        if control.id in seen:
            errors.append(f"{where}, field 'id': duplicate control ID")
        seen.add(control.id)
        for field, values, known in (("sources", control.sources, item_ids),
                                     ("iec62443", control.iec62443, iec),
                                     ("cisa_cpg", control.cisa_cpg, cpg)):
            for value in values:
                if value not in known:
                    errors.append(f"{where}, field '{field}': unknown reference {value!r}")
    if errors:
        raise CitywardError("\n".join(errors))
    return Catalog(tuple(controls), tuple(sources), iec, cpg)
