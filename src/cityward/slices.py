"""Run a playbook as N slices, the way AWX job slicing does (docs/awx-slicing.md).

AWX runs a job template whose job_slice_count is N as N jobs, at most one per host, in parallel
(on different nodes, sharing nothing). Each is handed an inventory generated from AWX's copy of
the inventory (imported with `ansible-inventory --list --export`): the hosts sorted by name, slice
k (1 to N) holding the k-th host and every N-th after it; every group stays, with its variables
and its children, but holds only the slice's hosts; only the slice's hosts have host variables.
AWX does not tell the play that it is a slice.

`build_slices()` makes those inventories from such a listing (pure); `run_slices()` runs a
playbook over them with ansible-runner, every slice at once, each in a private folder (0700, like
AWX's: the inventory holds the city's variables, those of a fully encrypted vault file
decrypted) that is removed afterwards, and returns each slice's status, exit code and per-host
counts. Each slice gets the extra variables of the slicing contract, as cityward's AWX job
templates set them (awx/configure.yml): cityward_job_slices, the slice count, and
cityward_inventory_dir, the inventory's folder (where its relative paths resolve).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cityward.errors import CitywardError
from cityward.inventory import list_inventory
from cityward.zones import inventory_base

# What AWX's inventory import folds into the inventory itself rather than a group.
ROOT_GROUPS = ("all", "ungrouped")
# ansible-runner's names for the PLAY RECAP counts, and the recap's.
RECAP = {"ok": "ok", "changed": "changed", "dark": "unreachable", "failures": "failed", "skipped": "skipped",
         "rescued": "rescued", "ignored": "ignored"}


def slice_hosts(hosts: Iterable[str], count: int) -> list[list[str]]:
    """The hosts of each slice: sorted by name, slice k holding hosts k-1, k-1+N, k-1+2N, ...
    A count above the number of hosts gives one slice per host, as AWX does."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise CitywardError(f"slice count must be a whole number, 1 or more (got {count!r})")
    ordered = sorted(set(hosts))
    if not ordered:
        raise CitywardError("no hosts to slice")
    count = min(count, len(ordered))
    return [ordered[start::count] for start in range(count)]


def _hosts_of(listing: Mapping) -> set[str]:
    named = set(listing.get("_meta", {}).get("hostvars", {}))
    for group, body in listing.items():
        if group != "_meta" and isinstance(body, Mapping):
            named.update(body.get("hosts", []))
    return named


def build_slices(listing: Mapping[str, Any], count: int) -> list[dict[str, Any]]:
    """The inventories of a job run as `count` slices, from `ansible-inventory --list --export`
    data, each in the same script format (groups, `_meta.hostvars`)."""
    meta = listing.get("_meta", {})
    hostvars = meta.get("hostvars", {})
    root_vars = {name: value for group in ROOT_GROUPS for name, value in listing.get(group, {}).get("vars", {}).items()}
    groups = {name: body for name, body in listing.items() if name != "_meta" and name not in ROOT_GROUPS}
    slices = []
    for members in slice_hosts(_hosts_of(listing), count):
        chosen = set(members)
        data: dict[str, Any] = {}
        grouped: set[str] = set()
        for name, body in groups.items():
            info: dict[str, Any] = {}
            inside = [host for host in body.get("hosts", []) if host in chosen]
            if inside:
                info["hosts"] = inside
                grouped.update(inside)
            if body.get("children"):
                info["children"] = list(body["children"])
            if body.get("vars"):
                info["vars"] = body["vars"]
            if info:
                data[name] = info
        root: dict[str, Any] = {"hosts": [host for host in members if host not in grouped]}
        if root_vars:
            root["vars"] = root_vars
        if groups:
            root["children"] = list(groups)
        # The profile stays: it tells Ansible how to read vault-encrypted and unsafe values.
        data["all"] = root
        data["_meta"] = {**{k: v for k, v in meta.items() if k != "hostvars"},
                         "hostvars": {host: hostvars.get(host, {}) for host in members}}
        slices.append(data)
    return slices


def write_inventory(data: Mapping[str, Any], folder: Path) -> Path:
    """`data` as an executable inventory script in `folder` (made 0700), as AWX hands a job its
    inventory: Ansible's script plugin reads vault-encrypted values back as such, a file would not."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / "hosts"
    text = f"#!{sys.executable}\nimport sys\nsys.stdout.write({json.dumps(data)!r})\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700)
    with os.fdopen(descriptor, "w", encoding="utf-8") as script:
        script.write(text)
    return path


@dataclass
class SliceRun:
    """One slice's run: ansible-runner's status and exit code, and the PLAY RECAP per host."""

    number: int  # 1 to count
    count: int
    hosts: list[str]
    status: str  # ansible-runner's: successful, failed, timeout, canceled, error
    rc: int | None
    stats: dict[str, dict[str, int]] = field(default_factory=dict)  # host -> ok, changed, unreachable, failed, ...
    output: str = ""  # what ansible-playbook printed

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0

    @property
    def changed(self) -> int:
        return sum(counts["changed"] for counts in self.stats.values())


def host_stats(stats: Mapping[str, Mapping[str, int]] | None) -> dict[str, dict[str, int]]:
    """ansible-runner's `Runner.stats` (count -> host -> n) per host, with the PLAY RECAP's names."""
    if not stats:
        return {}
    hosts = {host for counts in stats.values() for host in counts}
    return {host: {name: int(stats.get(key, {}).get(host, 0)) for key, name in RECAP.items()} for host in sorted(hosts)}


def _runner():
    try:
        import ansible_runner
    except ImportError:
        raise CitywardError("ansible-runner is not installed next to cityward: pip install 'ansible-runner>=2.4,<3'") \
            from None
    return ansible_runner


def run_slices(playbook: str | Path, inventory: str | Path, count: int, *, project_dir: str | Path | None = None,
               extravars: Mapping[str, Any] | None = None, envvars: Mapping[str, str] | None = None,
               check: bool = False, diff: bool = False, limit: str | None = None, forks: int | None = None,
               timeout: int | None = None) -> list[SliceRun]:
    """Run `playbook` (a path, or a collection playbook's FQCN) over `inventory` as `count` slices
    at once, as AWX would, with ansible-runner from `project_dir` (default: here), the folder
    ansible-playbook runs in (AWX: the project checkout; its ansible.cfg applies). The inventory is
    read with this process's environment (ANSIBLE_VAULT_PASSWORD_FILE, as AWX's inventory sync has
    its own), the runs get it plus `envvars`. A bad inventory or count is a CitywardError; a failed
    run is a SliceRun that is not `ok`."""
    runner = _runner()
    listing = list_inventory(inventory, export=True)
    inventories = build_slices(listing, count)
    contract = {"cityward_job_slices": len(inventories),
                "cityward_inventory_dir": str(inventory_base(inventory).resolve())}
    cmdline = " ".join(flag for flag, wanted in (("--check", check), ("--diff", diff)) if wanted)
    work = Path(tempfile.mkdtemp(prefix="cityward-slices-"))
    started = []
    try:
        for number, data in enumerate(inventories, start=1):
            private = work / f"slice-{number}"
            hosts = write_inventory(data, private / "inventory")
            thread, run = runner.run_async(
                private_data_dir=str(private), project_dir=str(project_dir or Path.cwd()), playbook=str(playbook),
                inventory=str(hosts), extravars={**(extravars or {}), **contract},
                envvars={"ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", **(envvars or {})},
                cmdline=cmdline or None, limit=limit, forks=forks, timeout=timeout, ident=f"slice-{number}",
                quiet=True, suppress_env_files=True)
            started.append((number, data, thread, run))
        results = []
        for number, data, thread, run in started:
            thread.join()
            with run.stdout as stdout:
                output = stdout.read()
            results.append(SliceRun(number, len(inventories), list(data["_meta"]["hostvars"]), run.status, run.rc,
                                    host_stats(run.stats), output))
        return results
    except runner.AnsibleRunnerException as exc:
        raise CitywardError(f"ansible-runner could not run {playbook}: {exc}") from None
    finally:
        for _, _, thread, _ in started:  # none may still be reading its folder
            thread.join()
        shutil.rmtree(work, ignore_errors=True)
