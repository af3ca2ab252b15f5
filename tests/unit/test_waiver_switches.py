"""A waived control's tasks are skipped on that host, and the run says so (issue 18, deliverable 3).

Without hosts: the roles' tasks are read as YAML (a block's and an include's `when` holding for
every task under it) and held to the set of controls a waiver can switch off
(plugins/lookup/waived_controls.py, SWITCHABLE), and to the table of docs/waivers.md; the per-host
function of cityward.waivers and the lookup the check play calls are run on files of their own."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleLookupError
from ansible_collections.cityward.hardening.plugins.lookup.waived_controls import SWITCHABLE, waived_controls

from cityward.catalog import load_catalog
from cityward.waivers import WAIVERS_FILE, CoveredWaiver, load_waivers, waived_per_host

ROOT = Path(__file__).resolve().parents[2]
ROLES = ROOT / "roles"
CONTROL = re.compile(r"^CW-[A-Z]+-\d{2}$")
# The one form of the switch: undefined (a play without the check play) is "nothing waived".
SWITCH = re.compile(r"^'(CW-[A-Z]+-\d{2})' not in cityward_waived_controls \| default\(\[\]\)$")
TODAY = date(2026, 11, 24)
pytestmark = pytest.mark.control("CW-RES-04")


# --- the roles' tasks, as Ansible would run them -----------------------------------------------


def _whens(node: dict) -> list[str]:
    when = node.get("when", [])
    return [str(w) for w in (when if isinstance(when, list) else [when])]


def _walk(tasks, role: Path, path: str, inherited: list[str], found: list[dict]) -> None:
    for node in tasks or []:
        if not isinstance(node, dict):
            continue
        whens = inherited + _whens(node)
        if "block" in node:
            for key in ("block", "rescue", "always"):
                _walk(node.get(key), role, path, whens, found)
            continue
        tags = node.get("tags", [])
        found.append({"where": f"{path}: {node.get('name')}", "node": node, "whens": whens,
                      "ids": {t for t in ([tags] if isinstance(tags, str) else tags) if CONTROL.match(str(t))}})
        include = node.get("ansible.builtin.include_tasks") or node.get("ansible.builtin.import_tasks")
        if include is not None:
            file = include["file"] if isinstance(include, dict) else include
            _walk(yaml.safe_load((role / "tasks" / file).read_text()), role, f"{path} > {file}", whens, found)


def role_tasks(roles: Path = ROLES) -> list[dict]:
    """Every task of every role's entry files (tasks/*.yml that no other includes), with the
    conditions that hold for it and its control tags."""
    found: list[dict] = []
    for role in sorted(p for p in roles.iterdir() if (p / "tasks").is_dir()):
        files = sorted((role / "tasks").glob("*.yml"))
        included = {m for f in files for m in re.findall(r"(?:include|import)_tasks:\s*\n\s*file:\s*(\S+)",
                                                         f.read_text())}
        for file in files:
            if file.name not in included:
                _walk(yaml.safe_load(file.read_text()), role, f"roles/{role.name}/tasks/{file.name}", [], found)
    return found


def switches(task: dict) -> list[str]:
    return [m.group(1) for w in task["whens"] if (m := SWITCH.match(w))]


def own(task: dict) -> bool:
    """A task of one switchable control alone."""
    return len(task["ids"]) == 1 and task["ids"] <= SWITCHABLE


def unswitched(tasks: list[dict]) -> list[str]:
    """Tasks of a switchable control alone that its waiver would not switch off."""
    return [t["where"] for t in tasks if own(t) and switches(t) != sorted(t["ids"])]


def wrongly_switched(tasks: list[dict]) -> list[str]:
    """Tasks a waiver would switch off though shared with another control or of one never switched off."""
    return [t["where"] for t in tasks if switches(t) and not (own(t) and switches(t) == sorted(t["ids"]))]


@pytest.fixture(scope="module")
def tasks():
    return role_tasks()


def test_every_task_of_its_own_of_a_switchable_control_is_switched_off_by_its_waiver(tasks):
    assert {i for t in tasks if own(t) for i in t["ids"]} == SWITCHABLE  # each one has tasks of its own
    assert unswitched(tasks) == []


def test_no_other_task_carries_a_switch(tasks):
    # A shared task (the record, a directory pass, a file of two controls) and every task of a
    # control guarding access or lockout safety are applied whatever a waiver says.
    assert wrongly_switched(tasks) == []
    unsafe = {t["where"] for t in tasks if t["ids"] & {"CW-ACC-07", "CW-ACC-08", "CW-FW-04"} or
              any(i.startswith(("CW-RES-", "CW-SSH-", "CW-MFA-")) for i in t["ids"])}
    assert unsafe and not {t["where"] for t in tasks if switches(t)} & unsafe


def test_the_usbguard_tasks_are_skipped_through_their_include(tasks):
    usbguard = [t for t in tasks if "usbguard.yml" in t["where"]]
    assert usbguard and all(switches(t) == ["CW-KRN-05"] for t in usbguard)
    assert all("kernel_field_device" in t["whens"] for t in usbguard)  # the role's own condition kept


def test_the_gate_finds_a_missing_and_a_misplaced_switch(tmp_path):
    tasks = tmp_path / "demo" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text(yaml.safe_dump([
        {"name": "CW-BASE-01 | Purge", "ansible.builtin.debug": {}, "tags": ["CW-BASE-01"]},
        {"name": "CW-BASE-03 | Mask", "when": "'CW-BASE-03' not in cityward_waived_controls | default([])",
         "block": [{"name": "CW-BASE-03 | List", "ansible.builtin.debug": {}, "tags": ["CW-BASE-03"]}]},
        {"name": "CW-KRN-03 | Two controls", "ansible.builtin.debug": {}, "tags": ["CW-KRN-03", "CW-KRN-05"],
         "when": "'CW-KRN-05' not in cityward_waived_controls | default([])"},
        {"name": "CW-SSH-01 | Access", "ansible.builtin.debug": {}, "tags": ["CW-SSH-01"],
         "when": "'CW-SSH-01' not in cityward_waived_controls | default([])"},
    ]))
    found = role_tasks(tmp_path)
    assert unswitched(found) == ["roles/demo/tasks/main.yml: CW-BASE-01 | Purge"]
    assert wrongly_switched(found) == ["roles/demo/tasks/main.yml: CW-KRN-03 | Two controls",
                                       "roles/demo/tasks/main.yml: CW-SSH-01 | Access"]


def test_a_switch_is_spelled_so_that_nothing_waived_is_the_default():
    # A misspelt switch would never match SWITCH, and the two tests above would then fail; this
    # one shows the form on a task, as the roles write it.
    task = yaml.safe_load("- when: \"'CW-KRN-05' not in cityward_waived_controls | default([])\"")[0]
    assert switches({"whens": _whens(task)}) == ["CW-KRN-05"]
    assert switches({"whens": ["'CW-KRN-05' not in cityward_waived_controls"]}) == []


def test_the_catalog_knows_every_switchable_control():
    catalog = load_catalog()
    assert all(catalog.get(control).status == "implemented" for control in SWITCHABLE)


# --- docs/waivers.md says the same --------------------------------------------------------------


def test_the_docs_table_lists_every_role_control_and_switches_off_exactly_these(tasks):
    text = (ROOT / "docs" / "waivers.md").read_text()
    section = text.split("## What a waiver switches off", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and CONTROL.match(cells[0]):
            rows[cells[0]] = cells[1]
    assert {c for c, switch in rows.items() if switch == "yes"} == SWITCHABLE
    assert set(rows.values()) == {"yes", "no"}
    assert {i for t in tasks for i in t["ids"]} - set(rows) == set()  # every control a role task carries


# --- the check play hands the list to the roles --------------------------------------------------


def test_the_check_play_reads_the_waivers_and_preflight_hands_them_to_each_host():
    check = yaml.safe_load((ROOT / "playbooks" / "check.yml").read_text())[0]["tasks"]
    read = [t for t in check if "ansible.builtin.set_fact" in t and "_cityward_waived" in t["ansible.builtin.set_fact"]]
    assert len(read) == 1 and "cityward.hardening.waived_controls" in read[0]["ansible.builtin.set_fact"][
        "_cityward_waived"]
    assert "always" in read[0]["tags"]  # also under --tags CW-KRN-05
    preflight = yaml.safe_load((ROLES / "preflight" / "tasks" / "main.yml").read_text())
    hand = [t for t in preflight if "cityward_waived_controls" in t.get("ansible.builtin.set_fact", {})]
    assert len(hand) == 1 and "always" in hand[0]["tags"]
    assert "hostvars['localhost']['_cityward_waived'][inventory_hostname] | default([])" in \
        hand[0]["ansible.builtin.set_fact"]["cityward_waived_controls"]


# --- the waivers in force per host ----------------------------------------------------------------


def waiver(control: str, names: tuple[str, ...], expires: date, hosts: tuple[str, ...] | None = None):
    return CoveredWaiver(f"waiver ({control})", control, names, hosts if hosts is not None else names,
                         "The vendor image lacks it until 3.4.", "CISO", expires, None)


GROUPS = {"all": ["gw-1", "gw-2", "scada-01"], "field": ["gw-1", "gw-2"], "mqtt_gateways": ["gw-1", "gw-2"],
          "ot_servers": ["scada-01"]}


def test_per_host_expands_groups_and_sorts_by_control():
    found = waived_per_host([waiver("CW-KRN-05", ("field",), date(2027, 1, 1)),
                             waiver("CW-BASE-04", ("gw-1", "ot_servers"), date(2027, 1, 1))], GROUPS, TODAY)
    assert {host: [w.control for w in ws] for host, ws in found.items()} == {
        "gw-1": ["CW-BASE-04", "CW-KRN-05"], "gw-2": ["CW-KRN-05"], "scada-01": ["CW-BASE-04"]}
    assert list(found) == sorted(found)


def test_per_host_leaves_out_an_expired_waiver_but_not_one_expiring_today():
    lapsed = waiver("CW-BASE-04", ("gw-1",), date(2026, 11, 23))
    found = waived_per_host([waiver("CW-KRN-05", ("gw-1",), TODAY), lapsed], GROUPS, TODAY)
    assert {host: [w.control for w in ws] for host, ws in found.items()} == {"gw-1": ["CW-KRN-05"]}


def test_per_host_without_groups_takes_the_hosts_the_read_resolved():
    found = waived_per_host([waiver("CW-KRN-05", ("field",), date(2027, 1, 1), hosts=("gw-1", "gw-2"))], today=TODAY)
    assert list(found) == ["gw-1", "gw-2"]


def test_per_host_from_a_file_read_against_the_inventory(tmp_path):
    path = tmp_path / WAIVERS_FILE
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({"waivers": [
        {"control": "CW-KRN-05", "hosts": ["mqtt_gateways"], "reason": "The vendor image lacks USBGuard.",
         "approver": "CISO", "expires": date(2027, 6, 30)}]}))
    listing = {"_meta": {"hostvars": {"gw-1": {}, "gw-2": {}}}, "all": {"children": ["field"]},
               "field": {"children": ["mqtt_gateways"]}, "mqtt_gateways": {"hosts": ["gw-1", "gw-2"]}}
    read = load_waivers(path, listing=listing, today=TODAY)
    assert read.ok
    assert list(waived_per_host(read.waivers, today=TODAY)) == ["gw-1", "gw-2"]


# --- the lookup of the check play ----------------------------------------------------------------


def city(tmp_path: Path, entries: list[dict] | None = None, raw: str | None = None) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    gw-1:\n    scada-01:\n")
    path = tmp_path / WAIVERS_FILE
    path.parent.mkdir(exist_ok=True)
    path.write_text(raw if raw is not None else yaml.safe_dump({"waivers": entries}, sort_keys=False))
    return tmp_path


ENTRY = {"reason": "The vendor image lacks it until 3.4.", "approver": "CISO", "ticket": "RISK-7"}


def in_a_year() -> str:
    return date.fromordinal(date.today().toordinal() + 300).isoformat()


def test_the_lookup_says_what_is_switched_off_and_what_is_still_applied(tmp_path):
    folder = city(tmp_path, [{"control": "CW-KRN-05", "hosts": ["field"], **ENTRY, "expires": in_a_year()},
                             {"control": "CW-SSH-05", "hosts": ["gw-1"], **ENTRY, "expires": in_a_year()},
                             {"control": "CW-BASE-04", "hosts": ["scada-01"], **ENTRY, "expires": "2020-01-01"}])
    found = waived_controls([str(folder / "hosts.yml"), str(folder)], {"field": ["gw-1"], "all": ["gw-1", "scada-01"]})
    assert list(found) == ["gw-1"]  # scada-01's waiver expired; the same file given twice is read once
    krn, ssh = found["gw-1"]
    assert (krn["control"], krn["switched_off"], ssh["control"], ssh["switched_off"]) == \
        ("CW-KRN-05", True, "CW-SSH-05", False)
    assert krn["text"].startswith("gw-1: CW-KRN-05 switched off, its tasks skipped: waived, The vendor image")
    assert "(approved by CISO, expires " in krn["text"] and krn["text"].endswith(", ticket RISK-7)")
    assert ssh["text"].startswith("gw-1: CW-SSH-05 still applied") and "the audit reports it waived" in ssh["text"]


def test_the_lookup_reads_the_citys_folder_when_the_inventory_was_generated_elsewhere(tmp_path):
    folder = city(tmp_path / "city", [{"control": "CW-BASE-01", "hosts": ["gw-1"], **ENTRY, "expires": in_a_year()}])
    generated = tmp_path / "awx.yml"
    generated.write_text("all:\n  hosts:\n    gw-1:\n")
    assert waived_controls([str(generated)], {"all": ["gw-1"]}) == {}
    assert [e["control"] for e in waived_controls([str(generated)], {"all": ["gw-1"]}, str(folder))["gw-1"]] == \
        ["CW-BASE-01"]


def test_no_file_is_nothing_waived(tmp_path):
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    gw-1:\n")
    assert waived_controls([str(tmp_path / "hosts.yml")], {"all": ["gw-1"]}) == {}


def test_a_bad_file_stops_the_lookup_with_one_line_naming_file_entry_and_field(tmp_path):
    folder = city(tmp_path, [{"control": "CW-KRN-05", "hosts": ["gw-1"], **ENTRY, "expires": "next year"}])
    with pytest.raises(AnsibleLookupError) as raised:
        waived_controls([str(folder / "hosts.yml")], {"all": ["gw-1"]})
    message = str(raised.value)
    assert "\n" not in message and "Traceback" not in message
    assert f"{folder / WAIVERS_FILE}: waiver #1 (CW-KRN-05), field expires: invalid date" in message
