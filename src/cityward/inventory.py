"""Reading an inventory through ansible-inventory, and validating every host of it.

`list_inventory()` gives `ansible-inventory --list` as data (the same view the playbooks and the
audit get), after screening the inventory's files and with ansible's warnings made errors.
`validate_inventory()` checks each host's metadata (the governance rules of cityward.governance,
the city's files of cityward.city_files), its other variables (cityward.hostvars) and its update
mirrors (cityward.mirrors), and reports every problem as one line naming the file, the host or
city, and the field: `cityward check` and the first play of site.yml show these.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from ansible_collections.cityward.hardening.plugins.plugin_utils.unwrap import plain

from cityward.city_files import CityFiles, inventory_dirs, load_city
from cityward.errors import CitywardError
from cityward.governance import HostMetadata, assess
from cityward.hostvars import host_variable_problems
from cityward.mirrors import mirror_problems
from cityward.problem_lines import problem_of
from cityward.problems import Problem
from cityward.yamlfile import check_regular_file, check_yaml_file, load_yaml
from cityward.zones import ZonesPolicy, policy_for_hosts


@dataclass
class InventoryReport:
    inventory: str
    hosts: dict[str, HostMetadata]
    cities: list[CityFiles]
    problems: list[Problem]  # the file (the inventory, or a finer one), the host or city, the field
    zones: ZonesPolicy | None = None  # the policy the hosts were checked against

    @property
    def ok(self) -> bool:
        return not self.problems


def _ansible_inventory() -> str:
    found = shutil.which("ansible-inventory") or str(Path(sys.executable).parent / "ansible-inventory")
    if not Path(found).exists():
        raise CitywardError("ansible-inventory not found: install cityward's virtualenv (scripts/bootstrap.sh)")
    return found


def _ansible_error(stderr: str) -> str:
    """ansible's own reason, short: its [ERROR] lines, the first underlying cause it warned about
    (e.g. the YAML problem) and where (file:line:column)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line.removeprefix("[ERROR]:").strip() for line in lines if line.startswith("[ERROR]")]
    causes = [lines[i + 1] for i, line in enumerate(lines[:-1]) if line == "<<< caused by >>>"]
    origins = [line.removeprefix("Origin:").strip() for line in lines if re.match(r"Origin: \S+:\d+", line)]
    parts = errors[:2]
    if causes and not any(causes[0] in part for part in parts):
        parts.append(causes[0])
    if origins:
        parts.append(f"({origins[0]})")
    return " ".join(parts or lines[-3:])[:800] or "ansible-inventory failed without a message"


RECORDS_DIR = "records"


def inventory_env() -> dict[str, str]:
    """Environment for ansible-inventory: a source it cannot parse is an error (by default only a
    warning, and the hosts silently vanish), the city's records/ folder (incident contacts,
    vendor requirements, runbooks) is not an inventory source, and the facts an earlier run
    cached are not inventory either (ansible-inventory would merge them into the host variables,
    the roles' applied records with them: those are the audit's to read from the host)."""
    patterns = [p for p in os.environ.get("ANSIBLE_INVENTORY_IGNORE_REGEX", "").split(",") if p.strip()]
    return {
        "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true",
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
        "ANSIBLE_INVENTORY_IGNORE_REGEX": ",".join([*patterns, f"^{RECORDS_DIR}$"]),
        # A key given twice is an error, as in cityward's own loader (Ansible only warns by default).
        "ANSIBLE_DUPLICATE_YAML_DICT_KEY": "error",
        # A fact cache of this process only (empty): never the one site.yml filled (ansible.cfg).
        "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.memory",
    }


VARS_SUFFIXES = ("", ".yml", ".yaml", ".json")  # the files Ansible reads in group_vars/host_vars


def inventory_files(inventory: Path) -> list[tuple[Path, bool]]:
    """(path, is YAML) for the files ansible-inventory reads for `inventory`: the inventory file,
    or every file of the inventory folder but records/, and group_vars/ and host_vars/ next to it.
    Nothing outside the inventory folder is walked (a linked group_vars/ folder is walked itself,
    as Ansible reads it; links inside it are not followed)."""
    base = inventory if inventory.is_dir() else inventory.parent
    found = [] if inventory.is_dir() else [(inventory, inventory.suffix in VARS_SUFFIXES[1:])]
    tops = [base] if inventory.is_dir() else []
    tops += [base / name for name in ("group_vars", "host_vars") if (base / name).is_dir()]
    for top in tops:
        for folder, dirs, names in os.walk(top):
            if Path(folder) == base:  # its vars folders are tops of their own; records/ is not inventory
                dirs[:] = [d for d in dirs if d not in (RECORDS_DIR, "group_vars", "host_vars")]
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            in_vars = top != base
            for name in sorted(names):
                path = Path(folder, name)
                found.append((path, path.suffix in (VARS_SUFFIXES if in_vars else VARS_SUFFIXES[1:])))
    return found


def screen_inventory(inventory: Path) -> None:
    """Before ansible-inventory reads an inventory: refuse its files that are not regular files
    (a FIFO would hold ansible-inventory until its timeout), too large, not UTF-8, too deep or an
    alias bomb, each as one line naming the file."""
    problems = []
    for path, is_yaml in inventory_files(inventory):
        try:
            check_yaml_file(path) if is_yaml else check_regular_file(path)
        except CitywardError as exc:
            problems.append(str(exc))
    if problems:
        raise CitywardError("\n".join(problems))


def _broken_yaml(inventory: Path) -> str:
    """The first YAML file of the inventory (its hosts files, group_vars and host_vars; never
    records/) that does not parse, as 'file: line L, column C: invalid YAML: why'."""
    for path, is_yaml in inventory_files(inventory):
        try:
            if is_yaml:
                load_yaml(path)
        except CitywardError as exc:
            if "constructor for the tag '!" not in str(exc):  # Ansible's own tags (!vault) are fine
                return str(exc)
    return ""


def _warnings(stderr: str) -> list[str]:
    """ansible-inventory's [WARNING] lines, each with the file it names (its Origin line)."""
    lines = [line.strip() for line in stderr.splitlines()]
    found = []
    for index, line in enumerate(lines):
        if line.startswith("[WARNING]"):
            origin = next((m for later in lines[index + 1:index + 4]
                           if (m := re.match(r"Origin: (\S+?):(\d+)", later))), None)
            text = line.removeprefix("[WARNING]:").strip()
            found.append(f"{origin[1]}: line {origin[2]}: ansible-inventory warning: {text}" if origin
                         else f"ansible-inventory warning: {text}")
    return found


def list_inventory(inventory: str | Path, limit: str | None = None, *, export: bool = False) -> dict:
    """`ansible-inventory -i INVENTORY --list` as data; a broken inventory is a CitywardError with
    ansible's own message. The vault password comes from ANSIBLE_VAULT_PASSWORD_FILE, if set.
    `export`: variables stay on the groups that set them (`--export`, what AWX imports) instead
    of being merged into each host's."""
    path = Path(inventory)
    if not path.exists():
        raise CitywardError(f"{inventory}: inventory not found")
    screen_inventory(path)
    cmd = [_ansible_inventory(), "-i", str(path), "--list"] + (["--limit", limit] if limit else []) \
        + (["--export"] if export else [])
    env = {**os.environ, **inventory_env()}
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        raise CitywardError(f"{inventory}: ansible-inventory did not answer within 300 s") from None
    if result.returncode != 0:
        reason = _ansible_error(result.stderr)
        if "YAML parsing failed" in reason and (culprit := _broken_yaml(path)):
            raise CitywardError(culprit)  # ansible does not say which file: name it
        if "vault" in reason.lower() and not os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE"):
            reason += " (set ANSIBLE_VAULT_PASSWORD_FILE to the inventory's vault password file)"
        raise CitywardError(f"{inventory}: ansible-inventory failed: {reason}")
    if warned := _warnings(result.stderr):  # ambiguity is not accepted in silence
        raise CitywardError("\n".join(w if w[0] != "a" else f"{inventory}: {w}" for w in warned))
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        raise CitywardError(f"{inventory}: ansible-inventory gave no JSON: {result.stdout[:200]!r}") from None


def validate_inventory(inventory_path: str | Path, limit: str | None = None, *,
                       zones: ZonesPolicy | None = None, today: date | None = None,
                       inventory_dir: str | Path | None = None, sliced: bool = False) -> InventoryReport:
    """Validate the metadata of every host (of `limit`, when given) of an inventory.

    Never raises for bad metadata: each problem is one line of the report naming host (or city)
    and field. Raises CitywardError only when the inventory itself cannot be read.

    An inventory generated away from the city's folder (the one AWX hands a job, a slice of
    cityward.slices) names that folder in `inventory_dir`: relative paths resolve there. `sliced`:
    the inventory holds one slice of the city's hosts, so a redundancy partner outside it is not
    an error (it is another slice's host; the unsliced check and the audit verify it).
    """
    label = str(inventory_path)
    base = inventory_dir or inventory_path
    full = list_inventory(inventory_path)
    everyone = None if sliced else set(full.get("_meta", {}).get("hostvars", {}))
    listed = list_inventory(inventory_path, limit) if limit else full
    hostvars = listed.get("_meta", {}).get("hostvars", {})
    if not hostvars:
        raise CitywardError(f"{label}: no hosts match {limit!r}" if limit else f"{label}: no hosts")
    group_names = _group_names(listed)
    zones = zones or policy_for_hosts(full.get("_meta", {}).get("hostvars", {}), base)
    dirs = inventory_dirs(base)
    cities: dict[str, CityFiles] = {}
    problems: list[Problem] = []
    hosts: dict[str, HostMetadata] = {}
    for name in sorted(hostvars):
        variables = dict(hostvars[name])
        variables.setdefault("group_names", group_names.get(name, []))
        key = json.dumps(plain(variables.get("cityward_city")), sort_keys=True, default=str)
        if key not in cities:
            cities[key] = load_city(variables.get("cityward_city"), dirs)
            if cities[key].city is not None:
                problems += [_placed(p, label) for p in cities[key].problems]
        city = cities[key]
        if city.city is None:
            problems += [_placed(p, label, name) for p in city.problems]
        host = assess(name, variables, base, all_hosts=everyone, zones=zones, today=today, city_files=city)
        problems += [_placed(p, label, name) for p in host.problems]
        hosts[name] = host
    problems += host_variable_problems(label, hostvars, zones, groups=group_names, dirs=dirs, today=today,
                                       inventory=None if sliced else full.get("_meta", {}).get("hostvars", {}))
    problems += mirror_problems(label, hostvars, full.get("_meta", {}).get("hostvars", {}), zones, sliced=sliced)
    return InventoryReport(label, hosts, [c for c in cities.values() if c.city], problems, zones)


def _placed(problem: Problem | str, file: str, host: str | None = None) -> Problem:
    """The problem with the file (the inventory when it names no finer one) and the host filled in."""
    if isinstance(problem, str):
        problem = problem_of(problem)
    return replace(problem, file=problem.file or file, host=problem.host or host)


def _group_names(listing: dict) -> dict[str, list[str]]:
    """host -> the groups it belongs to (directly or through child groups), 'all' excepted."""
    def members(group: str, seen: frozenset = frozenset()) -> set[str]:
        body = listing.get(group, {})
        hosts = set(body.get("hosts", []))
        for child in body.get("children", []):
            if child not in seen:
                hosts |= members(child, seen | {group})
        return hosts

    names: dict[str, list[str]] = {}
    for group in sorted(g for g in listing if g not in ("_meta", "all")):
        for host in members(group):
            names.setdefault(host, []).append(group)
    return names
