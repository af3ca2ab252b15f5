"""Waivers (issue 18, deliverable 3): a city's records/waivers.yml is judged before any host is
contacted (an unknown control, host or group, no reason or approver, a date that is not one or
more than a year ahead, a duplicate: one line each naming file, entry and field), and a waived
control is reported as "waived", never "passed", with its reason and approver in every format;
a waiver past its expiry counts as failed."""

from __future__ import annotations

import json
import os
import types
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import pytest
import yaml
from example_city import copy_example_city
from test_report import build_run

from cityward import audit_cmd
from cityward.audit import collect, render_html, render_json, render_junit, render_sarif, render_text
from cityward.audit.aggregate import STATUSES, Status, aggregate, roll_up
from cityward.catalog import load_catalog
from cityward.check import run_check
from cityward.waivers import MAX_DAYS, WAIVERS_FILE, load_waivers, read_waivers, waivers_path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "example-city"
LAB = ROOT / "inventories" / "lab"
TODAY = date(2026, 11, 24)  # the day build_run's audit started
pytestmark = pytest.mark.control("CW-RES-04")

# An inventory as `ansible-inventory --list` gives it: two groups, one nested in the other.
LISTING = {
    "_meta": {"hostvars": {"scada-01": {}, "gw-north-01": {}, "gw-south-01": {}, "mgmt-01": {}}},
    "all": {"children": ["ungrouped", "field", "ot_servers", "management"]},
    "field": {"children": ["mqtt_gateways"]},
    "mqtt_gateways": {"hosts": ["gw-north-01", "gw-south-01"]},
    "ot_servers": {"hosts": ["scada-01"]},
    "management": {"hosts": ["mgmt-01"]},
}
GOOD = {"control": "CW-SSH-02", "hosts": ["scada-01"], "reason": "The vendor's sshd is fixed until its 5.1 update.",
        "approver": "Chief Information Security Officer", "expires": date(2027, 1, 31)}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def write(folder: Path, entries, raw: str | None = None) -> Path:
    path = folder / WAIVERS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(raw if raw is not None else yaml.safe_dump({"waivers": entries}, sort_keys=False))
    return path


def judge(tmp_path, entries, catalog, raw=None, listing=LISTING, today=TODAY):
    return load_waivers(write(tmp_path, entries, raw), listing=listing, control_ids=catalog.ids, today=today)


def lines(found) -> list[str]:
    return [str(p) for p in found.problems]


# --- the file: every rule, one line each naming file, entry and field -------------------------------


def test_a_good_file_resolves_groups_to_the_inventory_hosts(tmp_path, catalog):
    found = judge(tmp_path, [GOOD, {**GOOD, "control": "CW-KRN-05", "hosts": ["field", "mgmt-01"], "ticket": "R-1"}],
                  catalog)
    assert found.ok and found.found and not found.warnings
    assert [(w.entry, w.hosts) for w in found.waivers] == [
        ("waiver #1 (CW-SSH-02)", ("scada-01",)),
        ("waiver #2 (CW-KRN-05)", ("gw-north-01", "gw-south-01", "mgmt-01"))]
    assert found.waivers[1].as_data()["names"] == ["field", "mgmt-01"]
    assert "(approved by Chief Information Security Officer, expires 2027-01-31, ticket R-1)" in \
        found.waivers[1].describe()


def test_no_file_is_no_waivers(tmp_path, catalog):
    found = load_waivers(tmp_path / WAIVERS_FILE, listing=LISTING, control_ids=catalog.ids, today=TODAY)
    assert found.ok and not found.found and not found.waivers


BAD = [
    ("typo'd control", {"control": "CW-SHH-02"}, "waiver #2 (CW-SHH-02), field control: unknown control 'CW-SHH-02'"),
    ("not a control ID", {"control": "ssh-02"}, "field control: not a control ID"),
    ("unknown host", {"hosts": ["scada-01", "scada-99"]},
     "field hosts[1]: no host or group 'scada-99' in the inventory"),
    ("host listed twice", {"hosts": ["scada-01", "scada-01"]}, "field hosts[1]: 'scada-01' is listed twice"),
    ("no hosts", {"hosts": []}, "field hosts: List should have at least 1 item"),
    ("hosts not a list", {"hosts": "scada-01"}, "field hosts: Input should be a valid list"),
    ("no reason", {"reason": None}, "field reason:"),
    ("blank reason", {"reason": "   "}, "field reason: blank: give the reason in a sentence"),
    ("a word for a reason", {"reason": "vendor"}, "field reason: too short: give the reason in a sentence"),
    ("control character", {"approver": "CISO\x1b[2K"}, "field approver: must be one line"),
    ("reason on two lines", {"reason": "line one is here\nline two"}, "field reason: must be one line"),
    ("no approver", {"approver": None}, "field approver:"),
    ("date in words", {"expires": "next year"}, "field expires: invalid date 'next year' (expected YYYY-MM-DD)"),
    ("date and time", {"expires": "2027-01-31T10:00:00"}, "field expires: invalid date '2027-01-31T10:00:00'"),
    ("not a real date", {"expires": "2027-02-30"}, "field expires: invalid date '2027-02-30'"),
    ("more than a year ahead", {"expires": date(2027, 11, 26)}, f"field expires: 2027-11-26 is 367 days ahead, "
                                                                f"more than {MAX_DAYS}"),
    ("unknown key", {"approved_by": "CISO"}, "field approved_by: unknown key"),
]


@pytest.mark.parametrize(("case", "change", "expected"), BAD, ids=[c for c, _, _ in BAD])
def test_each_bad_entry_is_refused_naming_file_entry_and_field(tmp_path, catalog, case, change, expected):
    entry = {**GOOD, **change}
    entry = {k: v for k, v in entry.items() if v is not None}
    found = judge(tmp_path, [GOOD | {"control": "CW-SSH-01"}, entry], catalog)
    assert not found.ok and not found.waivers, case
    file = str(tmp_path / WAIVERS_FILE)
    assert all(line.startswith(f"{file}: waiver #2") and "\n" not in line for line in lines(found)), lines(found)
    assert any(expected in line for line in lines(found)), lines(found)


def test_a_missing_field_is_named(tmp_path, catalog):
    found = judge(tmp_path, [{k: v for k, v in GOOD.items() if k != "approver"}], catalog)
    assert lines(found) == [f"{tmp_path / WAIVERS_FILE}: waiver #1 (CW-SSH-02), field approver: required field missing"]


def test_a_typo_gets_a_suggestion(tmp_path, catalog):
    found = judge(tmp_path, [{**GOOD, "control": "CW-SHH-02"}], catalog)
    assert "did you mean CW-SSH-02?" in lines(found)[0]


def test_the_rest_of_an_entry_is_judged_beside_its_schema_problems(tmp_path, catalog):
    entries = [{**GOOD, "hosts": ["scada-01"], "reason": "short"},
               {**GOOD, "hosts": ["ot_servers", "nowhere"], "expires": date(2028, 1, 1), "approver": None}]
    found = judge(tmp_path, entries, catalog)
    assert [line.split(": ", 1)[1] for line in lines(found)] == [
        "waiver #1 (CW-SSH-02), field reason: too short: give the reason in a sentence (at least 10 characters) "
        "(got 'short')",
        "waiver #2 (CW-SSH-02), field approver: Input should be a valid string (got None)",
        "waiver #2 (CW-SSH-02), field hosts[1]: no host or group 'nowhere' in the inventory",
        "waiver #2 (CW-SSH-02), field expires: 2028-01-01 is 403 days ahead, more than 366: a waiver is reviewed at "
        "least once a year",
        "waiver #2 (CW-SSH-02), field hosts: duplicate of waiver #1 (CW-SSH-02): both cover CW-SSH-02 on scada-01"]


def test_a_duplicate_is_refused_also_through_a_group(tmp_path, catalog):
    entries = [{**GOOD, "control": "CW-KRN-05", "hosts": ["gw-north-01"]},
               {**GOOD, "control": "CW-KRN-05", "hosts": ["mqtt_gateways"]},
               {**GOOD, "control": "CW-KRN-04", "hosts": ["mqtt_gateways"]}]
    found = judge(tmp_path, entries, catalog)
    assert lines(found) == [f"{tmp_path / WAIVERS_FILE}: waiver #2 (CW-KRN-05), field hosts: duplicate of "
                            "waiver #1 (CW-KRN-05): both cover CW-KRN-05 on gw-north-01"]


def test_the_limit_of_a_year_is_366_days(tmp_path, catalog):
    assert judge(tmp_path, [{**GOOD, "expires": date(2027, 11, 25)}], catalog).ok  # 366 days ahead


def test_an_expired_waiver_is_a_warning_not_bad_input(tmp_path, catalog):
    found = judge(tmp_path, [{**GOOD, "expires": date(2026, 11, 23)}, {**GOOD, "control": "CW-SSH-01",
                                                                         "expires": TODAY}], catalog)
    assert found.ok and len(found.waivers) == 2
    assert [str(w) for w in found.warnings] == [
        f"{tmp_path / WAIVERS_FILE}: waiver #1 (CW-SSH-02), field expires: expired on 2026-11-23: the audit counts "
        "CW-SSH-02 as failed on scada-01 until it is renewed or removed"]
    assert found.waivers[0].expired(TODAY) and not found.waivers[1].expired(TODAY)  # the day itself is covered


@pytest.mark.parametrize(("raw", "expected"), [
    ("", "field waivers: expected a mapping with a 'waivers' list"),
    ("- control: CW-SSH-02\n", "field waivers: expected a mapping with a 'waivers' list"),
    ("waivers: []\nnotes: x\n", "field notes: unknown key"),
    ("waivers: [CW-SSH-02]\n", "waiver #1, field (entry): expected a mapping"),
    ("waivers:\n  - control: CW-SSH-02\n    control: CW-SSH-01\n", "line 3"),  # a key given twice
    ("waivers:\n  - expires: 2027-02-30\n", "line 2"),  # YAML's own date, impossible
    ("waivers: [\n", "invalid YAML"),
])
def test_a_broken_file_is_one_line_naming_it(tmp_path, catalog, raw, expected):
    found = judge(tmp_path, None, catalog, raw=raw)
    assert not found.ok
    assert all(line.startswith(str(tmp_path / WAIVERS_FILE)) and "\n" not in line for line in lines(found))
    assert any(expected in line for line in lines(found)), lines(found)


def test_a_fifo_is_refused_not_waited_for(tmp_path, catalog):
    (tmp_path / "records").mkdir()
    os.mkfifo(tmp_path / WAIVERS_FILE)
    found = load_waivers(tmp_path / WAIVERS_FILE, listing=LISTING, control_ids=catalog.ids, today=TODAY)
    assert lines(found) == [f"{tmp_path / WAIVERS_FILE}: refused: a FIFO, not a regular file"]


def test_a_slice_cannot_tell_other_hosts_from_unknown_ones(tmp_path, catalog):
    found = load_waivers(write(tmp_path, [{**GOOD, "hosts": ["elsewhere-01"]}]), listing=None,
                         control_ids=catalog.ids, today=TODAY)
    assert found.ok and found.waivers[0].hosts == ("elsewhere-01",)


def test_the_file_is_the_inventorys_own_not_a_linked_folders(tmp_path):
    """A Molecule scenario links the lab's group_vars: it borrows its variables, not its hosts."""
    lab = tmp_path / "lab"
    write(lab, [GOOD])
    (lab / "group_vars").mkdir()
    scenario = tmp_path / "scenario"
    scenario.mkdir()
    (scenario / "hosts.yml").write_text("all: {}\n")
    (scenario / "group_vars").symlink_to(lab / "group_vars")
    assert waivers_path(scenario / "hosts.yml") == scenario / WAIVERS_FILE
    assert waivers_path(scenario, lab) == lab / WAIVERS_FILE  # --inventory-dir: the city's folder
    assert not read_waivers(scenario / "hosts.yml").found


def test_a_link_out_of_records_is_refused(tmp_path, catalog):
    (tmp_path / "records").mkdir()
    outside = write(tmp_path / "elsewhere", [GOOD])
    (tmp_path / WAIVERS_FILE).symlink_to(outside)
    found = read_waivers(tmp_path, listing=LISTING, control_ids=catalog.ids, today=TODAY)
    assert not found.ok and "leaves the records/ folder" in lines(found)[0]


# --- the repository's own files ---------------------------------------------------------------------


def test_the_example_city_and_the_lab_files_hold(catalog, monkeypatch):
    example = read_waivers(EXAMPLE, control_ids=catalog.ids, today=TODAY)
    assert example.ok and example.found and not example.warnings
    assert [(w.control, w.hosts) for w in example.waivers] == [("CW-KRN-05", ("tl-ctrl-014", "tl-ctrl-015"))]
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(LAB / "vault-password.txt"))
    lab = read_waivers(LAB, control_ids=catalog.ids, today=TODAY)
    assert lab.ok and lab.found and lab.waivers == []


# --- cityward check ---------------------------------------------------------------------------------


@pytest.fixture
def city(tmp_path):
    return copy_example_city(tmp_path)


def test_check_refuses_bad_waivers_one_line_each(city):
    write(city, [{**GOOD, "control": "CW-SHH-02", "hosts": ["historian-01"]},
                 {**GOOD, "hosts": ["historian-99"], "expires": "next year"},
                 {**GOOD, "hosts": ["ot_servers"]}, {**GOOD, "hosts": ["historian-01"]}])
    result = run_check([city], today=TODAY)
    file = str(city / WAIVERS_FILE)
    assert [str(p) for p in result.problems] == [
        f"{file}: waiver #1 (CW-SHH-02), field control: unknown control 'CW-SHH-02': not in the control catalog; "
        "did you mean CW-SSH-02?",
        f"{file}: waiver #2 (CW-SSH-02), field expires: invalid date 'next year' (expected YYYY-MM-DD)",
        f"{file}: waiver #2 (CW-SSH-02), field hosts[0]: no host or group 'historian-99' in the inventory",
        f"{file}: waiver #4 (CW-SSH-02), field hosts: duplicate of waiver #3 (CW-SSH-02): both cover CW-SSH-02 on "
        "historian-01"]
    problem = result.as_data()["problems"][0]
    assert (problem["file"], problem["host"], problem["field"]) == (file, "waiver #1 (CW-SHH-02)", "control")


def test_check_names_an_unknown_host_whatever_the_limit(city):
    write(city, [{**GOOD, "hosts": ["atms-01", "atms-09"]}])
    result = run_check([city], today=TODAY, limit="historian-01")
    assert [str(p) for p in result.problems] == [
        f"{city / WAIVERS_FILE}: waiver #1 (CW-SSH-02), field hosts[1]: no host or group 'atms-09' in the inventory"]


def test_check_warns_of_an_expired_waiver_and_notes_the_others(city, capsys):
    write(city, [{**GOOD, "hosts": ["historian-01"], "expires": date(2026, 10, 31)},
                 {**GOOD, "control": "CW-KRN-05", "hosts": ["traffic_controllers"]}])
    result = run_check([city], today=TODAY)
    assert result.ok, result.problems
    assert [str(w) for w in result.warnings] == [
        f"{city / WAIVERS_FILE}: waiver #1 (CW-SSH-02), field expires: expired on 2026-10-31: the audit counts "
        "CW-SSH-02 as failed on historian-01 until it is renewed or removed"]
    assert result.waivers == ["CW-KRN-05 on tl-ctrl-014, tl-ctrl-015, tl-ctrl-022: The vendor's sshd is fixed until "
                              "its 5.1 update. (approved by Chief Information Security Officer, expires 2027-01-31)"]
    assert result.as_data()["warnings"][0]["field"] == "expires"


# --- the audit: aggregate ---------------------------------------------------------------------------

WAIVERS = [
    {"entry": "waiver #1 (CW-SSH-02)", "control": "CW-SSH-02", "names": ["scada-01", "siem-01"],
     "hosts": ["scada-01", "siem-01"], "reason": "Vendor sshd fixed in SCADA 5.1, due in January.",
     "approver": "CISO Jane Roe", "expires": "2027-01-31", "ticket": "RISK-7"},
    {"entry": "waiver #2 (CW-SSH-01)", "control": "CW-SSH-01", "names": ["field"], "hosts": ["gw-north-01"],
     "reason": "Gateway keys rotate under change CHG-88 first.", "approver": "OT Security duty officer",
     "expires": "2026-11-24", "ticket": None},
    {"entry": "waiver #3 (CW-GOV-06)", "control": "CW-GOV-06", "names": ["scada-01", "gw-9"],
     "hosts": ["gw-9", "scada-01"], "reason": "SBOM tooling not approved for SCADA yet.",
     "approver": "CISO Jane Roe", "expires": "2026-11-23", "ticket": None},
]


def waived_run():
    run = build_run()
    run.waivers = [dict(w) for w in WAIVERS]
    return run


@pytest.fixture(scope="module")
def result(catalog):
    return aggregate(waived_run(), catalog)


def test_a_waived_failure_is_waived_with_reason_approver_and_what_was_found(result):
    cell = result.facts["controls"]["CW-SSH-02"]["hosts"]["scada-01"]
    assert cell["status"] == Status.WAIVED
    assert cell["found"] == {"status": "failed",
                             "reason": "test_ssh_audit_clean: ssh-audit: weak kex <curve25519> & more"}
    assert cell["waiver"] == {"entry": "waiver #1 (CW-SSH-02)", "reason": WAIVERS[0]["reason"],
                              "approver": "CISO Jane Roe", "expires": "2027-01-31", "ticket": "RISK-7",
                              "expired": False}
    assert WAIVERS[0]["reason"] in cell["reason"] and "approved by CISO Jane Roe" in cell["reason"]


def test_a_waived_pass_is_never_passed(result):
    cell = result.facts["controls"]["CW-SSH-01"]["hosts"]["gw-north-01"]  # expires on the audit's day: in force
    assert cell["status"] == Status.WAIVED and cell["found"]["status"] == "passed"
    assert result.facts["controls"]["CW-SSH-01"]["status"] == Status.WAIVED  # passed on the others


def test_an_expired_waiver_fails_the_control_saying_so(result):
    cell = result.facts["controls"]["CW-GOV-06"]["hosts"]["scada-01"]
    assert cell["status"] == Status.FAILED and cell["waiver"]["expired"]
    assert cell["reason"].startswith("waiver expired on 2026-11-23 (SBOM tooling not approved for SCADA yet.; "
                                     "approved by CISO Jane Roe")


def test_an_expired_waiver_fails_also_what_passed(catalog):
    run = build_run()
    run.waivers = [{**WAIVERS[1], "expires": "2026-11-01"}]
    cell = aggregate(run, catalog).facts["controls"]["CW-SSH-01"]["hosts"]["gw-north-01"]
    assert cell["status"] == Status.FAILED and "the checks found passed" in cell["reason"]


def test_an_unreachable_host_stays_unreachable(result):
    assert result.facts["controls"]["CW-SSH-02"]["hosts"]["siem-01"]["status"] == Status.UNREACHABLE


def test_waived_mandatory_controls_do_not_fail_the_audit_expired_ones_do(catalog, result):
    plain = aggregate(build_run(), catalog).facts
    assert {f["control"] for f in plain["mandatory_failures"]} == {"CW-SSH-02", "CW-GOV-06", "CW-GOV-01"}
    assert {f["control"] for f in result.mandatory_failures} == {"CW-GOV-06", "CW-GOV-01"}
    summary = result.facts["summary"]
    assert summary["waivers"] == {"in_force": 2, "expired": 1}
    assert summary["cells"]["waived"] == 2
    for status in STATUSES:  # the counts still add up
        assert sum(h["counts"][status] for h in result.facts["hosts"].values()) == summary["cells"][status]
    assert sum(summary["cells"].values()) == sum(plain["summary"]["cells"].values())


def test_waived_outranks_passed_and_failed_outranks_waived():
    assert roll_up([Status.PASSED, Status.WAIVED]) == Status.WAIVED
    assert roll_up([Status.WAIVED, Status.FAILED]) == Status.FAILED


def test_the_report_lists_each_waiver_with_the_hosts_audited(result):
    listed = {w["control"]: w for w in result.facts["waivers"]}
    assert listed["CW-GOV-06"]["audited_hosts"] == ["scada-01"] and listed["CW-GOV-06"]["expired"]
    assert not listed["CW-SSH-02"]["expired"]


# --- the audit: every format shows it -----------------------------------------------------------------


def test_text_shows_waived_and_expired(result):
    text = render_text.render(result)
    assert ("WAIVED CW-SSH-02 on scada-01: Vendor sshd fixed in SCADA 5.1, due in January. (approved by "
            "CISO Jane Roe, expires 2027-01-31, ticket RISK-7)") in text
    assert "EXPIRED WAIVER CW-GOV-06 on scada-01: expired on 2026-11-23, counted as failed" in text
    assert "FAIL CW-GOV-06 " in text and "FAIL CW-SSH-02 " not in text


def test_json_carries_the_waivers_as_given_and_as_judged(result):
    doc = json.loads(render_json.render(result))
    assert doc["run"]["waivers"] == WAIVERS
    cell = doc["aggregate"]["controls"]["CW-SSH-02"]["hosts"]["scada-01"]
    assert cell["status"] == "waived" and cell["waiver"]["approver"] == "CISO Jane Roe"


def test_junit_shows_a_waiver_as_skipped_with_its_reason_and_approver(result):
    root = ET.fromstring(render_junit.render(result))  # noqa: S314 - our own output
    cases = {c.get("name").split()[0]: c for c in root.find("testsuite[@name='scada-01']").findall("testcase")}
    skipped = cases["CW-SSH-02"].find("skipped")
    assert skipped.get("type") == "waived" and skipped.get("message").startswith("waived: Vendor sshd")
    assert "approved by CISO Jane Roe" in skipped.get("message")
    properties = {p.get("name"): p.get("value") for p in cases["CW-SSH-02"].find("properties")}
    assert properties["waiver.approver"] == "CISO Jane Roe" and properties["waiver.found"] == "failed"
    assert "waiver expired on 2026-11-23" in cases["CW-GOV-06"].find("failure").get("message")


def test_sarif_suppresses_a_waived_result_and_rejects_an_expired_waiver(result):
    results = json.loads(render_sarif.render(result))["runs"][0]["results"]
    by = {(r["ruleId"], r["properties"]["host"]): r for r in results}
    waived = by[("CW-SSH-02", "scada-01")]
    assert waived["kind"] == "fail" and waived["suppressions"] == [{
        "kind": "external", "status": "accepted", "justification": WAIVERS[0]["reason"],
        "properties": {"approver": "CISO Jane Roe", "expires": "2027-01-31", "ticket": "RISK-7",
                       "entry": "waiver #1 (CW-SSH-02)"}}]
    passed = by[("CW-SSH-01", "gw-north-01")]
    assert (passed["kind"], passed["level"]) == ("pass", "none") and passed["suppressions"][0]["status"] == "accepted"
    assert by[("CW-GOV-06", "scada-01")]["suppressions"][0]["status"] == "rejected"
    assert ("CW-SSH-01", "mgmt-01") not in by  # a plain pass is no result


def test_html_shows_waived_with_reason_approver_and_the_waivers_table(result):
    text = render_html.render(result)
    assert 'id="sum-waived">2<' in text
    assert '<span class="st st-waived">waived</span>' in text
    assert "Vendor sshd fixed in SCADA 5.1, due in January. (approved by CISO Jane Roe" in text
    table = text.split('id="waiver-table"', 1)[1].split("</table>", 1)[0]
    assert "CISO Jane Roe" in table and "RISK-7" in table and "expired on 2026-11-23" in table
    # gw-9 of CW-GOV-06 (not in the run), siem-01 of CW-SSH-02 (unreachable)
    assert "(+1 host not audited: out of this run or unreachable)" in table
    assert table.count("not audited") == 2


# --- the audit command: bad waivers stop it before any host ---------------------------------------------


def _audit_args(tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all: {}\n")
    return types.SimpleNamespace(format="json,html", inventory=str(inventory), inventory_dir=None, limit=None,
                                 out=str(tmp_path / "out"), workers=None)


def test_audit_refuses_bad_waivers_before_any_host(tmp_path, monkeypatch, capsys):
    args = _audit_args(tmp_path)
    write(tmp_path, [{**GOOD, "control": "CW-SHH-02", "hosts": ["a"]}, {**GOOD, "hosts": ["b"]}])
    contacted = []
    monkeypatch.setattr(collect, "resolve_inventory", lambda inventory, limit: {"_meta": {"hostvars": {"a": {}}}})
    monkeypatch.setattr(collect, "run_audit", lambda *a, **k: contacted.append(a))
    monkeypatch.setattr("cityward.inventory.validate_inventory", lambda *a, **k: contacted.append(a))
    assert audit_cmd._run(args) == 2
    assert not contacted and not (tmp_path / "out").exists()
    err = capsys.readouterr().err.splitlines()
    file = tmp_path / WAIVERS_FILE
    assert err == [
        f"cityward audit: error: {file}: waiver #1 (CW-SHH-02), field control: unknown control 'CW-SHH-02': not in "
        "the control catalog; did you mean CW-SSH-02?",
        f"cityward audit: error: {file}: waiver #2 (CW-SSH-02), field hosts[0]: no host or group 'b' in the inventory",
        "cityward audit: 2 problem(s) in the waiver file: no host was contacted, no report written"]


def test_audit_hands_the_waivers_to_the_aggregate(tmp_path, monkeypatch, capsys):
    args = _audit_args(tmp_path)
    write(tmp_path, [{**GOOD, "hosts": ["scada-01"]}, {**GOOD, "control": "CW-GOV-06", "hosts": ["scada-01"],
                                                        "expires": date(2026, 1, 1)}])
    monkeypatch.setattr(collect, "resolve_inventory", lambda inventory, limit: LISTING)
    monkeypatch.setattr(collect, "run_audit", lambda *a, **k: build_run())
    monkeypatch.setattr("cityward.inventory.validate_inventory",
                        lambda *a, **k: types.SimpleNamespace(problems=[], zones=None))
    assert audit_cmd._run(args) == 1  # the expired waiver fails CW-GOV-06; siem-01 unreachable
    out, err = capsys.readouterr()
    assert "cityward audit: warning: " in err and "expired on 2026-01-01" in err
    assert "WAIVED CW-SSH-02 on scada-01" in out and "EXPIRED WAIVER CW-GOV-06 on scada-01" in out
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [w["control"] for w in doc["run"]["waivers"]] == ["CW-SSH-02", "CW-GOV-06"]
    assert doc["aggregate"]["controls"]["CW-SSH-02"]["hosts"]["scada-01"]["status"] == "waived"
