"""Change records (CW-GOV-10): every run of an apply playbook (site.yml, patch.yml,
rotate_secrets.yml) leaves a record of what it ran from, who ran it, the dry run that preceded it
and, at its end, which hosts it changed. docs/change-records.md is the operator's side.

    open     the gate (plugins/action/change_gate.py, in playbooks/check.yml, before any host is
             touched): `open_change` judges the run (the inventory committed with no uncommitted
             change; a successful --check --diff run of the same inputs within the window; else an
             override that gives a reason) and writes <records>/<id>.json, status "started"
    close    the callback cityward.hardening.change_record, at the run's end: `close_change` adds
             the end, each host's counts, the hosts changed and the result
    audit    cityward.checks.test_changes: `judge_host` reads the newest apply that named the host

"The same inputs" is a fingerprint of the playbook, the inventory folder's content (committed or
not: a dry run of an edit still matches its apply once the edit is committed), the limit, the tags
and the extra vars. A record holds no secret: extra vars are kept as a digest only.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import secrets
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cityward.city_files import inventory_dirs
from cityward.errors import CitywardError

RECORDS_DIR_DEFAULT = Path("records") / "changes"  # in the city's inventory folder
MAX_AGE_HOURS_DEFAULT = 24
OVERRIDE_ENV = "CITYWARD_CHANGE_OVERRIDE"
_SHOWN_PATHS = 5  # uncommitted paths a refusal names before "and N more"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_stamp(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


# --- inputs ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Inputs:
    """What an ansible-playbook run was asked to do, as the gate sees it."""

    playbook: str
    folder: Path  # the city's inventory folder
    limit: str | None = None
    tags: Sequence[str] = ("all",)
    skip_tags: Sequence[str] = ()
    extra_vars: Sequence[str] = ()  # as given on the command line: key=value, JSON, or @file
    check: bool = False
    diff: bool = False


def inventory_folder(inventory: str | Path) -> Path:
    """The inventory's folder, where its change records are kept: the inventory itself, or the
    folder of an inventory file (as its other relative paths resolve, cityward.city_files)."""
    return inventory_dirs(inventory)[0].resolve()


def records_dir(folder: Path, configured: str | None = None) -> Path:
    """Where the records of the inventory in `folder` are kept: `configured`
    (cityward_change_records_dir; relative to the folder), else records/changes in it."""
    return folder / (configured or RECORDS_DIR_DEFAULT)


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess:
    command = ["git", "-C", str(folder), *args]
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    except FileNotFoundError:  # no git on this controller (an execution environment without it)
        return subprocess.CompletedProcess(command, 127, "", "git is not installed")


@dataclass(frozen=True)
class GitState:
    tracked: bool  # the folder is inside a git work tree
    commit: str | None  # HEAD, None before the first commit
    uncommitted: tuple[str, ...] = ()  # paths with changes not committed (records excluded)


def _excluded(folder: Path, records: Path) -> list[str]:
    """git pathspecs that leave the records out, when they are kept inside the folder."""
    try:
        inside = records.resolve().relative_to(folder.resolve())
    except ValueError:
        return []
    return [f":(exclude){inside.as_posix()}"]


def git_state(folder: Path, records: Path) -> GitState:
    if _git(folder, "rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
        return GitState(tracked=False, commit=None)
    head = _git(folder, "rev-parse", "--verify", "-q", "HEAD")
    status = _git(folder, "status", "--porcelain", "--no-renames", "--untracked-files=all", "-z", "--", ".",
                  *_excluded(folder, records))
    if status.returncode != 0:
        raise CitywardError(f"{folder}: git status failed: {status.stderr.strip()}")
    paths = tuple(entry[3:] for entry in status.stdout.split("\0") if len(entry) > 3)
    commit = head.stdout.strip() if head.returncode == 0 else ""
    return GitState(tracked=True, commit=commit or None, uncommitted=paths)


def _files(folder: Path, records: Path, tracked: bool) -> Iterable[Path]:
    """The inventory's files: git's (committed or not, ignored ones left out) in a work tree, else
    every file; a folder symlinked in (Molecule links the lab's group_vars) is read through."""
    skip = records.resolve()
    if tracked:
        listed = _git(folder, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", ".",
                      *_excluded(folder, records))
        roots = [folder / name for name in listed.stdout.split("\0") if name]
    else:
        roots = [folder]
    for root in roots:
        if not root.is_dir():
            yield root
            continue
        for base, dirs, names in os.walk(root, followlinks=True):
            dirs[:] = sorted(d for d in dirs if d != ".git" and (Path(base) / d).resolve() != skip)
            yield from (Path(base) / name for name in sorted(names))


def inventory_digest(folder: Path, records: Path, state: GitState) -> str:
    """sha256 of the inventory's files (paths and contents), the records left out."""
    digest = hashlib.sha256()
    for path in sorted(set(_files(folder, records, state.tracked))):
        if not path.is_file():  # deleted but not committed, or not a regular file (a FIFO is never opened)
            digest.update(f"not a file {path.relative_to(folder)}\n".encode())
            continue
        digest.update(f"{path.relative_to(folder)}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _extra_vars_digest(extra_vars: Sequence[str], base: Path) -> str:
    """A digest of the extra vars (@file: the file's content): they may carry secrets."""
    digest = hashlib.sha256()
    for item in extra_vars:
        digest.update(item.encode())
        if item.startswith("@"):
            path = Path(item[1:])
            path = path if path.is_absolute() else base / path
            digest.update(path.read_bytes() if path.is_file() else b"missing")
    return digest.hexdigest()


def fingerprint(inputs: Inputs, inventory: str, cwd: Path | None = None) -> str:
    same = {"playbook": inputs.playbook, "inventory": inventory, "limit": inputs.limit or "",
            "tags": sorted(inputs.tags), "skip_tags": sorted(inputs.skip_tags),
            "extra_vars": _extra_vars_digest(inputs.extra_vars, cwd or Path.cwd())}
    return hashlib.sha256(json.dumps(same, sort_keys=True).encode()).hexdigest()


# --- records -----------------------------------------------------------------------------------

def read_records(folder: Path) -> tuple[list[dict], list[str]]:
    """(the records in `folder`, oldest first; the files that are not a readable record)."""
    records, unreadable = [], []
    if not folder.is_dir():
        return records, unreadable
    for path in sorted(folder.glob("CH-*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            _parse_stamp(record["started"])
        except (OSError, ValueError, KeyError, TypeError):
            unreadable.append(path.name)
            continue
        records.append(record)
    records.sort(key=lambda record: record["started"])
    return records, unreadable


def _write(path: Path, record: Mapping) -> None:
    """Whole or not at all: a run killed here leaves the previous file (or none)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def override_problem(reason: str | None) -> str | None:
    """Why `reason` is no reason (None when it is one)."""
    text = (reason or "").strip()
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        return f"{OVERRIDE_ENV}: the reason holds a control character (a new line, a tab): write it on one line"
    if len(text) < 10 or not re.search(r"[A-Za-z].*\s.*[A-Za-z]", text):
        return (f"{OVERRIDE_ENV}: an override needs its reason, a few words saying why this run may skip the rule "
                f"(at least 10 characters), not {text[:40]!r}")
    if len(text) > 500:
        return f"{OVERRIDE_ENV}: the reason is {len(text)} characters long; say it in 500 or fewer"
    return None


def _hours(value) -> float | None:
    """A positive number of hours from the inventory (a number, or a string of one); else None."""
    if isinstance(value, bool):
        return None
    try:
        hours = float(value)
    except (TypeError, ValueError):
        return None
    return hours if 0 < hours < float("inf") else None


@dataclass
class Gate:
    """The gate's verdict on one run, and the record it opened."""

    problems: list[str] = field(default_factory=list)  # why the run is refused (empty: it may go on)
    record: dict = field(default_factory=dict)
    path: Path | None = None


def _dry_run_miss(records: list[dict], playbook: str, fingerprint_: str, now: datetime.datetime,
                  max_age: datetime.timedelta) -> tuple[dict | None, str]:
    """(the newest successful dry run of these inputs within `max_age`, else None and why not)."""
    tried = [r for r in records if r.get("kind") == "dry-run" and r.get("playbook") == playbook]
    for record in reversed(tried):
        if record.get("fingerprint") != fingerprint_ or not record.get("diff"):
            continue
        age = now - _parse_stamp(record["started"])
        if record.get("result") == "succeeded" and age <= max_age:
            return record, ""
    if not tried:
        return None, f"no --check --diff run of {playbook} is recorded"
    newest = tried[-1]
    if newest.get("fingerprint") != fingerprint_:
        why = "of other inputs (the inventory's content, the limit, the tags or the extra vars differ)"
    elif not newest.get("diff"):
        why = "without --diff"
    elif newest.get("result") != "succeeded":
        why = f"which {'did not finish' if not newest.get('finished') else 'failed on a host'}"
    else:
        why = f"started {newest['started']}, older than {max_age.total_seconds() / 3600:g} h"
    return None, f"the newest dry run of {playbook}, {newest['id']}, was {why}"


def open_change(inputs: Inputs, *, records_folder: Path, hosts: Sequence[str], max_age_hours: float | str,
                override: str | None, operator: str, cityward_version: str,
                now: datetime.datetime | None = None) -> Gate:
    """Judge the run and, unless it is refused, write its record (status "started")."""
    now = now or _now()
    folder = inputs.folder
    if override and (problem := override_problem(override)):
        return Gate(problems=[problem])
    hours = _hours(max_age_hours)
    if hours is None:
        return Gate(problems=[f"cityward_change_dry_run_max_age_hours: a number of hours above 0, "
                              f"not {max_age_hours!r}"])
    try:
        state = git_state(folder, records_folder)
        fingerprint_ = fingerprint(inputs, inventory_digest(folder, records_folder, state))
    except (CitywardError, OSError) as exc:
        return Gate(problems=[f"{folder}: the inventory's files cannot be read for the change record: {exc}"])
    previous, unreadable = read_records(records_folder)
    rules: list[str] = []
    dry_run = None
    if not inputs.check:
        if not state.tracked:
            rules.append(f"{folder}: the inventory is not in version control (git)")
        elif state.commit is None:
            rules.append(f"{folder}: the inventory has no commit yet")
        elif state.uncommitted:
            shown = ", ".join(state.uncommitted[:_SHOWN_PATHS])
            more = len(state.uncommitted) - _SHOWN_PATHS
            rules.append(f"{folder}: the inventory has uncommitted changes ({shown}"
                         f"{f' and {more} more' if more > 0 else ''})")
        dry_run, why = _dry_run_miss(previous, inputs.playbook, fingerprint_, now, datetime.timedelta(hours=hours))
        if dry_run is None:
            rules.append(f"{folder}: no successful --check --diff run of these inputs in the last {hours:g} h ({why})")
    if rules and not override:
        how = (f"commit the inventory, run the playbook with --check --diff and then again without, or set "
               f"{OVERRIDE_ENV} to the reason this run may go ahead without it")
        return Gate(problems=[*rules, f"the change was refused before any host was touched: {how}"])
    ident = f"CH-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    record = {
        "id": ident, "kind": "dry-run" if inputs.check else "apply", "diff": inputs.diff,
        "playbook": inputs.playbook, "status": "started", "started": _stamp(now), "finished": None,
        "operator": operator, "cityward_version": cityward_version,
        "inventory": {"folder": str(folder), "in_git": state.tracked, "commit": state.commit,
                      "uncommitted": list(state.uncommitted)},
        "limit": inputs.limit, "tags": list(inputs.tags), "skip_tags": list(inputs.skip_tags),
        "extra_vars": len(inputs.extra_vars), "fingerprint": fingerprint_, "hosts_targeted": sorted(hosts),
        "dry_run": None if dry_run is None else {
            "id": dry_run["id"], "started": dry_run["started"], "finished": dry_run.get("finished"),
            "hosts_changed": dry_run.get("hosts_changed", [])},
        "override": {"reason": override.strip(), "overrode": rules} if rules else None,
        "unreadable_records": unreadable,
        "hosts": {}, "hosts_changed": [], "result": None,
    }
    try:
        records_folder.mkdir(parents=True, exist_ok=True)
        path = records_folder / f"{ident}.json"
        _write(path, record)
    except OSError as exc:
        return Gate(problems=[f"{records_folder}: the change record cannot be written ({exc.strerror}): "
                              "set cityward_change_records_dir to a folder this controller can write"])
    return Gate(record=record, path=path)


def close_change(path: Path, hosts: Mapping[str, Mapping[str, int]], now: datetime.datetime | None = None) -> dict:
    """Add the run's end to its record: each host's counts, the hosts changed, the result."""
    record = json.loads(path.read_text(encoding="utf-8"))
    counts = {host: {key: int(value) for key, value in stats.items()} for host, stats in sorted(hosts.items())}
    failed = sorted(h for h, c in counts.items() if c.get("failures", 0) or c.get("unreachable", 0))
    record.update(status="finished", finished=_stamp(now or _now()), hosts=counts,
                  hosts_changed=sorted(h for h, c in counts.items() if c.get("changed", 0)),
                  hosts_failed=failed, result="failed" if failed else "succeeded")
    _write(path, record)
    return record


def summary_line(record: Mapping) -> str:
    """One line for the hosts' journals (and so the SIEM): what ran, from what, by whom, after what."""
    inventory = record["inventory"]
    source = (f"commit {inventory['commit'][:12]}{'' if not inventory['uncommitted'] else ' with uncommitted changes'}"
              if inventory["commit"] else "an inventory outside git")
    after = (f"after dry run {record['dry_run']['id']}" if record.get("dry_run") else "without a matching dry run")
    line = (f"cityward change {record['id']}: {record['kind']} of {record['playbook']} from {source}, "
            f"by {record['operator']}, cityward {record['cityward_version']}, {after}")
    if record.get("override"):
        line += f"; override: {record['override']['reason']}"
    return line


def end_line(record: Mapping) -> str:
    """One line for the controller's syslog at the run's end: the result and the hosts changed."""
    failed = record.get("hosts_failed") or []
    return (f"cityward change {record['id']}: {record['kind']} of {record['playbook']} {record['result']} at "
            f"{record['finished']}, hosts changed: {', '.join(record['hosts_changed']) or 'none'}"
            + (f", failed: {', '.join(failed)}" if failed else ""))


# --- audit -------------------------------------------------------------------------------------

def judge_host(host: str, records: list[dict], unreadable: Sequence[str], folder: Path) -> str | None:
    """Why CW-GOV-10 fails on `host` (None: it passes), from the newest apply that named it."""
    if unreadable:
        return f"{folder}: change records that cannot be read: {', '.join(unreadable)}"
    applies = [r for r in records if r.get("kind") == "apply" and host in r.get("hosts_targeted", [])]
    if not applies:
        return (f"no change record in {folder} names this host: it was not last changed by site.yml, "
                "patch.yml or rotate_secrets.yml through their change gate")
    last = applies[-1]
    who = f"change {last['id']} ({last.get('playbook')}, started {last['started']} by {last.get('operator')})"
    if last.get("status") != "finished":
        return (f"{who} has no end: the run was stopped before its end, or the callback "
                "cityward.hardening.change_record is not enabled (ansible.cfg callbacks_enabled)")
    counts = last.get("hosts", {}).get(host)
    if counts is None:
        return f"{who} names this host but never reached it"
    if counts.get("failures", 0) or counts.get("unreachable", 0):
        failed, unreachable = counts.get("failures", 0), counts.get("unreachable", 0)
        return f"{who} failed on this host ({failed} failed, {unreachable} unreachable)"
    if not last.get("override"):
        if not last.get("inventory", {}).get("commit") or last["inventory"].get("uncommitted"):
            return f"{who} ran from an inventory that was not committed, and names no override"
        if not last.get("dry_run"):
            return f"{who} names no --check --diff run before it, and no override"
    return None
