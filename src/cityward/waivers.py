"""A city's waivers: controls it knowingly leaves unmet on some hosts, each with a reason, an
approver and an expiry (records/waivers.yml of the inventory folder; docs/waivers.md).

`cityward check` and `cityward audit` read the file through `read_waivers` before any host is
contacted. A bad entry (an unknown control, host or group, no reason or approver, a date that is
not one or more than MAX_DAYS ahead, two entries covering the same control on the same host) is
a Problem naming the file, the entry and the field, one line each. A past expiry is not bad
input: the check warns, and the audit counts the control failed where the waiver covers it.
Each entry's groups are resolved to the inventory's hosts here, once, so the audit's aggregate
judges a control on a host without knowing the inventory.
"""

from __future__ import annotations

import datetime
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from ansible_collections.cityward.hardening.plugins.plugin_utils.text import breaking_character
from pydantic import AfterValidator, BeforeValidator, Field, TypeAdapter, ValidationError

from cityward.city_files import inventory_dirs
from cityward.device import IsoDate
from cityward.errors import CitywardError
from cityward.hostvars import records_problem
from cityward.inventory import list_inventory
from cityward.problem_lines import problem_of
from cityward.problems import Problem
from cityward.record_problems import field_messages, show_value
from cityward.strict_model import StrictModel
from cityward.yamlfile import load_yaml

# In records/: Ansible reads every other file of an inventory folder as an inventory source.
WAIVERS_FILE = "records/waivers.yml"
# A waiver is reviewed at least once a year (a leap year's 366 days allowed).
MAX_DAYS = 366

_CONTROL = re.compile(r"^CW-[A-Z]+-\d{2}$")
# Ansible host names and group names (hostvars.HOSTNAME_CHARS, plus a group's leading '_').
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,252}$")


def _text(shortest: int, what: str):
    """Free text, printed in one-line problems and in every report: one line, no control
    characters, at least `shortest` characters once stripped."""
    def check(value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if breaking_character(value):
                raise ValueError("must be one line of text, without control characters")
            if len(value) < shortest:
                raise ValueError(f"{'blank' if not value else 'too short'}: give {what} "
                                 f"(at least {shortest} characters)")
        return value
    return BeforeValidator(check)


def _printable(text: str) -> str:
    """`text` as one line: a character that could break it shown escaped (a problem quotes input)."""
    return "".join(repr(char)[1:-1] if breaking_character(char) else char for char in text)


def _control(value: str) -> str:
    if not _CONTROL.match(value):
        raise ValueError("not a control ID (expected CW-<AREA>-NN, e.g. CW-SSH-01)")
    return value


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("not a host or group name")
    return value


Reason = Annotated[str, _text(10, "the reason in a sentence"), Field(max_length=500)]
Person = Annotated[str, _text(3, "the name or role of who approved it"), Field(max_length=200)]
Ticket = Annotated[str, _text(1, "a ticket reference, or leave the key out"), Field(max_length=100)]
ControlId = Annotated[str, AfterValidator(_control)]
HostNames = Annotated[list[Annotated[str, AfterValidator(_name)]], Field(min_length=1)]
# A date, never a time or "next year" (the device records' date type).
Expiry = IsoDate
# The fields the rules beyond the schema judge: each on its own, so that an entry with a bad
# reason still has its host names and expiry judged (one check shows everything to fix).
_JUDGED = {"control": TypeAdapter(ControlId), "hosts": TypeAdapter(HostNames), "expires": TypeAdapter(Expiry)}


class Waiver(StrictModel):
    """One entry of the file, as written."""

    control: ControlId
    hosts: HostNames
    reason: Reason
    approver: Person
    expires: Expiry
    ticket: Ticket | None = None


@dataclass(frozen=True)
class CoveredWaiver:
    """An entry that passed every rule, with the inventory hosts its names cover."""

    entry: str  # "waiver #2 (CW-SSH-05)": how problems and reports name it
    control: str
    names: tuple[str, ...]  # hosts and groups, as written
    hosts: tuple[str, ...]  # the inventory hosts they cover, sorted
    reason: str
    approver: str
    expires: datetime.date
    ticket: str | None = None

    def expired(self, today: datetime.date | None = None) -> bool:
        """Past its expiry day (the day itself is still covered)."""
        return self.expires < (today or datetime.date.today())

    def describe(self) -> str:
        """One line for the check output and the console summary."""
        ticket = f", ticket {self.ticket}" if self.ticket else ""
        return (f"{self.control} on {', '.join(self.hosts)}: {self.reason} "
                f"(approved by {self.approver}, expires {self.expires.isoformat()}{ticket})")

    def as_data(self) -> dict:
        """JSON-ready, as the audit's run carries it (cityward.audit.model.AuditRun.waivers)."""
        return {"entry": self.entry, "control": self.control, "names": list(self.names), "hosts": list(self.hosts),
                "reason": self.reason, "approver": self.approver, "expires": self.expires.isoformat(),
                "ticket": self.ticket}


@dataclass
class WaiverFile:
    path: Path
    found: bool = False  # no file: no waivers
    waivers: list[CoveredWaiver] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # bad input: refuse the run
    warnings: list[Problem] = field(default_factory=list)  # expired waivers: the audit fails them

    @property
    def ok(self) -> bool:
        return not self.problems


def waivers_path(inventory: str | Path, inventory_dir: str | Path | None = None) -> Path:
    """The waiver file of an inventory: in its own folder (`inventory_dir` when the inventory was
    generated elsewhere), never in a folder its group_vars link points into (a Molecule scenario
    borrows the lab's variables, not its hosts)."""
    return inventory_dirs(inventory_dir or inventory)[0] / WAIVERS_FILE


def inventory_members(listing: Mapping) -> tuple[set[str], dict[str, set[str]]]:
    """(every host, {group: its hosts, through child groups}) of `ansible-inventory --list`."""
    hosts = set(listing.get("_meta", {}).get("hostvars", {}))
    groups = {name: body for name, body in listing.items() if name != "_meta" and isinstance(body, Mapping)}

    def members(group: str, seen: frozenset) -> set[str]:
        body = groups.get(group, {})
        found = set(body.get("hosts", []))
        for child in body.get("children", []):
            if child not in seen:
                found |= members(child, seen | {child})
        return found

    covered = {name: members(name, frozenset({name})) for name in groups}
    for found in covered.values():
        hosts |= found
    return hosts, covered


def _entry_name(index: int, raw: Any) -> str:
    control = raw.get("control") if isinstance(raw, Mapping) else None
    shown = f" ({control})" if isinstance(control, str) and re.fullmatch(r"[A-Za-z0-9-]{1,20}", control) else ""
    return f"waiver #{index + 1}{shown}"


def _unknown_control(control: str, known: set[str]) -> str:
    close = difflib.get_close_matches(control, sorted(known), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"unknown control '{control}': not in the control catalog{hint}"


@dataclass
class _Entry:
    name: str  # "waiver #2 (CW-SSH-05)"
    waiver: Waiver | None  # when it fits the schema
    parts: dict[str, Any]  # control, hosts, expires: those that fit it, validated
    problems: list[Problem]


def _schema(path: Path, data: Any) -> tuple[list[_Entry], list[Problem]]:
    """The entries in file order, each with a problem for every field that does not fit the
    schema; and the problems of the file as a whole."""
    file = str(path)
    if not isinstance(data, Mapping) or not isinstance(data.get("waivers"), list):
        return [], [Problem("expected a mapping with a 'waivers' list at the top (`waivers: []` for none)",
                            file=file, field="waivers")]
    top = [Problem("unknown key (the file holds one list, 'waivers')", file=file, field=_printable(str(key)))
           for key in data if key != "waivers"]
    entries: list[_Entry] = []
    for index, raw in enumerate(data["waivers"]):
        name = _entry_name(index, raw)
        if not isinstance(raw, Mapping):
            message = f"expected a mapping of control, hosts, reason, approver, expires (got {show_value(raw)})"
            entries.append(_Entry(name, None, {}, [Problem(_printable(message), file=file, host=name,
                                                           field="(entry)")]))
            continue
        try:
            waiver = Waiver.model_validate(dict(raw))
            entries.append(_Entry(name, waiver, {k: getattr(waiver, k) for k in _JUDGED}, []))
        except ValidationError as exc:
            failed = {err["loc"][0] for err in exc.errors() if err.get("loc")}
            parts = {key: adapter.validate_python(raw[key]) for key, adapter in _JUDGED.items()
                     if key in raw and key not in failed}
            entries.append(_Entry(name, None, parts, [Problem(_printable(msg), file=file, host=name, field=where)
                                                      for where, msg in field_messages(exc)]))
    return entries, top


def _judge(entry: _Entry, file: str, known: set[str] | None, listing: Mapping | None, members, today,
           seen: list[tuple[str, str, set[str]]]) -> set[str]:
    """The rules beyond the schema, on the parts of `entry` that fit it (problems added to the
    entry); the inventory hosts its names cover. `seen`: (entry, control, hosts) of the entries
    before it, valid or not (a duplicate shows before the other entry's fix)."""
    all_hosts, groups = members
    control, names, expires = (entry.parts.get(key) for key in ("control", "hosts", "expires"))

    def problem(message: str, where: str) -> None:
        entry.problems.append(Problem(message, file=file, host=entry.name, field=where))

    if control is not None and known is not None and control not in known:
        problem(_unknown_control(control, known), "control")
    hosts: set[str] = set()
    for index, name in enumerate(names or ()):
        if name in names[:index]:
            problem(f"'{name}' is listed twice", f"hosts[{index}]")
        elif listing is None:
            hosts.add(name)
        elif name in all_hosts or name in groups:
            hosts |= ({name} & all_hosts) | groups.get(name, set())
        else:
            problem(f"no host or group '{name}' in the inventory", f"hosts[{index}]")
    if expires is not None and (ahead := (expires - today).days) > MAX_DAYS:
        problem(f"{expires.isoformat()} is {ahead} days ahead, more than {MAX_DAYS}: a waiver is reviewed at least "
                "once a year", "expires")
    for earlier, other, covers in seen:
        if other == control and (both := hosts & covers):
            problem(f"duplicate of {earlier}: both cover {control} on {', '.join(sorted(both))}", "hosts")
            break
    if control is not None:
        seen.append((entry.name, control, hosts))
    return hosts


def load_waivers(path: Path, *, listing: Mapping | None, control_ids: Iterable[str] | None = None,
                 today: datetime.date | None = None) -> WaiverFile:
    """Read and judge the waiver file at `path` against the inventory's `listing` (the whole
    inventory, as `ansible-inventory --list` gives it; None for a slice of it, whose other hosts
    cannot be told from unknown ones) and the catalog's `control_ids` (None: not checked). Never
    raises for bad input; a missing file is no waivers. Problems come in file order."""
    path = Path(path)
    result = WaiverFile(path)
    if not path.exists() and not path.is_symlink():
        return result
    result.found = True
    file, today = str(path), today or datetime.date.today()
    try:
        data = load_yaml(path)
    except CitywardError as exc:
        result.problems += [problem_of(line, file) for line in str(exc).split("\n") if line.strip()]
        return result
    entries, result.problems = _schema(path, data)
    known = set(control_ids) if control_ids is not None else None
    members = inventory_members(listing) if listing is not None else (set(), {})
    covered: list[CoveredWaiver] = []
    seen: list[tuple[str, str, set[str]]] = []
    for entry in entries:
        hosts = _judge(entry, file, known, listing, members, today, seen)
        result.problems += entry.problems
        waiver = entry.waiver
        if waiver is None or entry.problems:
            continue
        found = CoveredWaiver(entry.name, waiver.control, tuple(waiver.hosts), tuple(sorted(hosts)), waiver.reason,
                              waiver.approver, waiver.expires, waiver.ticket)
        covered.append(found)
        if found.expired(today):
            result.warnings.append(Problem(
                f"expired on {waiver.expires.isoformat()}: the audit counts {waiver.control} as failed on "
                f"{', '.join(found.hosts) or 'no host'} until it is renewed or removed", file=file, host=entry.name,
                field="expires"))
    if not result.problems:
        result.waivers = covered
    return result


def waived_per_host(waivers: Iterable[CoveredWaiver], groups: Mapping[str, Iterable[str]] | None = None,
                    today: datetime.date | None = None) -> dict[str, list[CoveredWaiver]]:
    """The waivers in force `today` on each host: {host: its waivers, by control}, hosts sorted.
    With `groups` (Ansible's `groups`: each group with every host under it, child groups
    included), each name a waiver gives is expanded through it, a name that is no group being a
    host (a sliced read keeps names as written); without it, the hosts the file's read resolved.
    An expired waiver covers nothing here: the roles apply its control again."""
    today = today or datetime.date.today()
    per_host: dict[str, list[CoveredWaiver]] = {}
    for waiver in waivers:
        if waiver.expired(today):
            continue
        if groups is None:
            hosts = set(waiver.hosts)
        else:
            hosts = {host for name in waiver.names for host in groups.get(name, [name])}
        for host in hosts:
            per_host.setdefault(host, []).append(waiver)
    return {host: sorted(per_host[host], key=lambda w: w.control) for host in sorted(per_host)}


def read_waivers(inventory: str | Path, *, inventory_dir: str | Path | None = None, listing: Mapping | None = None,
                 control_ids: Iterable[str] | None = None, today: datetime.date | None = None,
                 sliced: bool = False) -> WaiverFile:
    """The waiver file of an inventory, judged. `listing` is the whole inventory when the caller
    already has it; else it is listed here, only when there is a file (a limit does not narrow
    what a waiver may name). `sliced`: the inventory is one slice of the city's hosts."""
    path = waivers_path(inventory, inventory_dir)
    if not path.exists() and not path.is_symlink():
        return WaiverFile(path)
    if escape := records_problem([path.parent.parent], WAIVERS_FILE):
        return WaiverFile(path, found=True, problems=[Problem(escape, file=str(path))])
    if listing is None and not sliced:
        listing = list_inventory(inventory)
    return load_waivers(path, listing=None if sliced else listing, control_ids=control_ids, today=today)
