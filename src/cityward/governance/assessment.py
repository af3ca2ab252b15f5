"""One host's governance assessment: its context gathered once, then every registered rule, in
control-ID order, each giving its control's verdict."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from cityward.city_files import CityFiles
from cityward.device import Device
from cityward.governance.context import gather
from cityward.governance.registry import RULES, Verdict
from cityward.problems import Problem
from cityward.zones import ZonesPolicy


@dataclass
class HostMetadata:
    """One host: its metadata as given and as validated, its problems and its verdicts."""

    name: str
    zone: str | None
    device: Device | None
    raw: dict
    groups: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # by field, without file or host (CW-GOV-01)
    verdicts: dict[str, Verdict] = field(default_factory=dict)


def assess(name: str, hostvars: Mapping, inventory: str | Path, *, all_hosts: Iterable[str] | None = None,
           zones: ZonesPolicy | None = None, today: date | None = None,
           city_files: CityFiles | None = None) -> HostMetadata:
    """Validate one host's metadata and give the verdict of every governance control.

    `hostvars` are the host's variables as `ansible-inventory --list` (or testinfra's
    `host.ansible.get_variables()`) gives them; `all_hosts` the inventory's host names (for
    redundancy partners); relative paths resolve against `inventory` (see
    cityward.city_files.inventory_dirs). `zones`: the zones policy, else the one the host's
    variables name; `city_files`: the city's files when already loaded (once per city), else read
    from the host's cityward_city; `today`: the day the dates are judged against.
    """
    host = gather(name, hostvars, inventory, all_hosts=all_hosts, zones=zones, today=today, city_files=city_files)
    return HostMetadata(
        name=name, zone=host.zone if isinstance(host.zone, str) else None, device=host.device, raw=host.record,
        groups=list(hostvars.get("group_names") or []), problems=list(host.problems),
        verdicts={control: RULES[control].verdict(host) for control in sorted(RULES)})
