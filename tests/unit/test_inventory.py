"""Device and city metadata (cityward.device, cityward.city_files, cityward.governance,
cityward.inventory): the example city, the lab's records, a corpus of malformed metadata (each
refused with a line naming host and field), and the verdict of every metadata control at its
boundaries."""

from __future__ import annotations

import copy
import ipaddress
import os
import subprocess
import textwrap
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityward.city_files import inventory_dirs, load_city
from cityward.device import WEEKDAYS
from cityward.errors import CitywardError
from cityward.governance import assess
from cityward.inventory import inventory_env, validate_inventory
from cityward.log_settings import span_days
from cityward.zones import load_zones

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "example-city"
LAB = ROOT / "inventories" / "lab"
ZONES = load_zones(ROOT / "policies" / "zones.yml")
TODAY = date(2026, 11, 24)  # the example city's records are dated against this day
GOV_IDS = ("CW-GOV-01", "CW-GOV-02", "CW-GOV-03", "CW-GOV-04", "CW-GOV-05", "CW-GOV-08", "CW-GOV-09",
           "CW-GOV-11", "CW-RES-01")


def ansible_inventory(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **inventory_env()}
    return subprocess.run(["ansible-inventory", *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120, check=False)


# --- the example city -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example():
    return validate_inventory(EXAMPLE, today=TODAY)


@pytest.mark.control("CW-GOV-01")
def test_example_city_graph_parses_cleanly():
    result = ansible_inventory("-i", str(EXAMPLE), "--graph")
    assert result.returncode == 0, result.stderr
    assert "[WARNING]" not in result.stderr, result.stderr
    for group in ("@zone_field:", "@ot_servers:", "@mqtt_gateways:", "@field_gateways:", "@traffic:", "@water:",
                  "@lighting:", "@cctv:", "@environment:"):
        assert group in result.stdout


@pytest.mark.control("CW-GOV-01")
def test_example_city_metadata_is_valid(example):
    assert example.ok, "\n".join(map(str, example.problems))
    assert len(example.hosts) >= 30
    zones = ZONES
    assert {h.zone for h in example.hosts.values()} >= {"management", "siem", "dmz", "ot-operations", "field"}
    for host in example.hosts.values():
        assert host.device is not None and host.verdicts["CW-GOV-01"].status == "passed"
    roles = {h.device.role for h in example.hosts.values()}
    assert {"scada-server", "historian", "mqtt-broker", "siem", "management", "traffic-controller",
            "plc-gateway", "camera-nvr"} <= roles
    criticalities = {h.device.criticality for h in example.hosts.values()}
    assert criticalities == {"critical", "high", "medium", "low"}
    # every address lies in its zone's CIDR (documentation addresses only: nothing is contacted)
    listing = yaml.safe_load((EXAMPLE / "hosts.yml").read_text())
    for group, body in listing["all"]["children"].items():
        if group.startswith("zone_"):
            for name, hostvars in body["hosts"].items():
                address = ipaddress.ip_address(hostvars["ansible_host"])
                assert address in zones.cidr_of(example.hosts[name].zone), name


def test_example_city_verdicts_are_the_documented_findings(example):
    failed = sorted((name, cid) for name, host in example.hosts.items()
                    for cid, verdict in host.verdicts.items() if verdict.status == "failed")
    # README.md lists exactly these two deliberate findings.
    assert failed == [("noise-gw-01", "CW-GOV-08"), ("sl-gw-district-c", "CW-GOV-02")]
    for host in example.hosts.values():
        assert set(host.verdicts) == set(GOV_IDS)
        if host.device.criticality in ("critical", "high"):
            assert host.verdicts["CW-GOV-05"].status == "passed"
            assert host.verdicts["CW-RES-01"].status == "passed"
        else:
            assert host.verdicts["CW-GOV-05"].status == "not_applicable"
    readme = (EXAMPLE / "README.md").read_text()
    assert "sl-gw-district-c" in readme and "noise-gw-01" in readme


def test_example_city_limit(example):
    report = validate_inventory(EXAMPLE, limit="traffic_controllers", today=TODAY)
    assert sorted(report.hosts) == ["tl-ctrl-014", "tl-ctrl-015", "tl-ctrl-022"]
    assert report.ok


# --- the lab and the Molecule platforms ------------------------------------------------------------


@pytest.mark.control("CW-GOV-04")
def test_lab_city_records_load():
    city = yaml.safe_load((LAB / "group_vars" / "all" / "city.yml").read_text())["cityward_city"]
    files = load_city(city, [LAB])
    assert files.problems == []
    assert files.contacts.reviewed <= TODAY and files.vendors.sla("LAB-SLA-DEBIAN-LTS")


@pytest.mark.control("CW-GOV-05")
def test_molecule_platform_metadata_passes_every_control():
    hostvars = yaml.safe_load((ROOT / "molecule" / "default" / "host_vars" / "cw-default-bookworm.yml").read_text())
    hostvars |= yaml.safe_load((LAB / "group_vars" / "all" / "city.yml").read_text())
    host = assess("cw-default-bookworm", hostvars, LAB, all_hosts=["cw-default-bookworm", "cw-default-trixie"],
                       today=TODAY, zones=ZONES)
    assert host.problems == []
    assert {cid: v.status for cid, v in host.verdicts.items()} == dict.fromkeys(GOV_IDS, "passed")


def test_molecule_inventory_links_resolve(tmp_path):
    """Molecule's own inventory links the lab's group_vars: relative paths resolve through the link."""
    (tmp_path / "group_vars").symlink_to(LAB / "group_vars")
    dirs = inventory_dirs(tmp_path / "ansible_inventory.yml")
    assert dirs == [tmp_path, LAB]


def test_unreadable_inventories_are_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(CitywardError, match="inventory not found"):
        validate_inventory(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "hosts.yml").write_text("all:\n  hosts:\n    a: [\n")
    # ansible-inventory does not say which file is broken: cityward finds and names it.
    with pytest.raises(CitywardError, match=r"broken/hosts.yml: line \d+, column \d+: invalid YAML"):
        validate_inventory(broken)
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    with pytest.raises(CitywardError, match="vault"):
        validate_inventory(LAB)


# --- malformed metadata: every problem names the host and the field ------------------------------

BASE = textwrap.dedent("""\
    cityward_zone: field
    cityward_device:
      vendor: Moxa
      model: UC-8220-T-LX
      firmware: MIL 3.2
      owner: Traffic Operations Centre
      role: field-gateway
      criticality: medium
      support_end_of_life: 2030-12-31
      vendor_sla: SLA-X-1
      maintenance_window: {days: [Tue], start: "01:00", duration_minutes: 90}
    """)

# (host, YAML text replaced in BASE (old -> new), field named in the problem, words of the message)
CORPUS = [
    ("tl-ctrl-014", ("support_end_of_life: 2030-12-31", "support_end_of_life: soon"),
     "cityward_device.support_end_of_life", "invalid date 'soon'"),
    ("bad-day", ("support_end_of_life: 2030-12-31", "support_end_of_life: '2030-02-30'"),
     "cityward_device.support_end_of_life", "invalid date '2030-02-30'"),
    ("with-time", ("support_end_of_life: 2030-12-31", "support_end_of_life: 2030-12-31 10:00:00"),
     "cityward_device.support_end_of_life", "invalid date"),
    ("eol-number", ("support_end_of_life: 2030-12-31", "support_end_of_life: 20301231"),
     "cityward_device.support_end_of_life", "invalid date 20301231"),
    ("no-vendor", ("  vendor: Moxa\n", ""), "cityward_device.vendor", "required field missing"),
    ("float-firmware", ("firmware: MIL 3.2", "firmware: 3.2"), "cityward_device.firmware", "quote it in YAML"),
    ("urgent", ("criticality: medium", "criticality: urgent"), "cityward_device.criticality", "'critical'"),
    ("tuesday", ("days: [Tue]", "days: [Tuesday]"), "cityward_device.maintenance_window.days[0]", "'Mon'"),
    ("twice", ("days: [Tue]", "days: [Tue, Tue]"), "cityward_device.maintenance_window", "must not repeat"),
    ("sexagesimal", ('start: "01:00"', "start: 12:30"), "cityward_device.maintenance_window.start",
     "quote it in YAML"),
    ("late", ('start: "01:00"', 'start: "24:10"'), "cityward_device.maintenance_window.start", "invalid time"),
    ("short", ("duration_minutes: 90", "duration_minutes: 5"), "cityward_device.maintenance_window.duration_minutes",
     "greater than or equal to 15"),
    ("long", ("duration_minutes: 90", "duration_minutes: 1000"), "cityward_device.maintenance_window.duration_minutes",
     "less than or equal to 720"),
    ("critical-no-runbook", ("criticality: medium", "criticality: critical"), "cityward_device.runbook",
     "required when criticality is critical"),
    ("runbook-date", ("criticality: medium", "criticality: high\n  runbook: {path: r.md, last_exercised: last week}"),
     "cityward_device.runbook.last_exercised", "invalid date 'last week'"),
    ("typo", ("support_end_of_life:", "suport_end_of_life:"), "cityward_device.suport_end_of_life", "unknown key"),
    ("zone-unknown", ("cityward_zone: field", "cityward_zone: scada-lan"), "cityward_zone", "unknown zone 'scada-lan'"),
    ("zone-missing", ("cityward_zone: field\n", ""), "cityward_zone", "required field missing"),
    ("not-a-mapping", ("cityward_device:\n", "cityward_device: Siemens S7\nunused:\n"), "cityward_device",
     "expected a mapping"),
    ("ghost-peer", ("vendor_sla: SLA-X-1", "vendor_sla: SLA-X-1\n  redundancy: ghost-01"), "cityward_device.redundancy",
     "unknown host 'ghost-01'"),
    ("self-peer", ("vendor_sla: SLA-X-1", "vendor_sla: SLA-X-1\n  redundancy: self-peer"),
     "cityward_device.redundancy", "its own redundancy partner"),
    ("no-degraded", ("vendor_sla: SLA-X-1", "vendor_sla: SLA-X-1\n  redundancy: none"), "cityward_device.degraded_mode",
     "required when redundancy is 'none'"),
    ("templated", ("owner: Traffic Operations Centre", "owner: '{{ city_owner }}'"), "cityward_device.owner",
     "cannot be checked"),
    ("empty-sla", ("vendor_sla: SLA-X-1", "vendor_sla: ''"), "cityward_device.vendor_sla", "at least 1 character"),
    ("retention-words", ("vendor_sla: SLA-X-1", "vendor_sla: SLA-X-1\n  risk_review: {date: 2026-01-01, reference: R, "
                                                "data_retention_days: 1 year}"),
     "cityward_device.risk_review.data_retention_days", "valid integer"),
]


@pytest.fixture(scope="module")
def corpus_report(tmp_path_factory):
    inventory = tmp_path_factory.mktemp("malformed")
    (inventory / "host_vars").mkdir()
    hosts = {name: None for name, *_ in CORPUS}
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    for name, (old, new), *_ in CORPUS:
        assert old in BASE, old
        (inventory / "host_vars" / f"{name}.yml").write_text(BASE.replace(old, new, 1))
    return validate_inventory(inventory, today=TODAY, zones=ZONES)


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 15 and len({name for name, *_ in CORPUS}) == len(CORPUS)


@pytest.mark.control("CW-GOV-01")
@pytest.mark.parametrize(("host", "change", "field", "words"), CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_metadata_names_host_and_field(corpus_report, host, change, field, words):
    prefix = f"{corpus_report.inventory}: host {host}, field {field}: "
    lines = [p for p in map(str, corpus_report.problems) if p.startswith(prefix)]
    assert lines, f"no problem for {host}, field {field} in:\n" + "\n".join(map(str, corpus_report.problems))
    assert any(words in line for line in lines), lines
    assert corpus_report.hosts[host].verdicts["CW-GOV-01"].status == "failed"
    assert all("Traceback" not in str(p) for p in corpus_report.problems)


def test_example_message_format(corpus_report):
    assert (f"{corpus_report.inventory}: host tl-ctrl-014, field cityward_device.support_end_of_life: "
            "invalid date 'soon' (expected YYYY-MM-DD)") in map(str, corpus_report.problems)


# --- city records -------------------------------------------------------------------------------

CONTACTS = {
    "reviewed": "2026-10-01",
    "contacts": [{"name": "CSIRT", "role": "csirt", "email": "csirt@city.example"},
                 {"name": "Duty", "role": "ot", "phone": "+1 202 555 0100"}],
    "escalation": [{"after_minutes": 0, "contact": "Duty"}, {"after_minutes": 30, "contact": "CSIRT"}],
}
VENDORS = {"vendors": [
    {"name": "Moxa", "security_requirements": ["IEC 62443-4-2"],
     "slas": [{"reference": "SLA-X-1", "incident_notification_hours": 24, "vulnerability_disclosure": "PSIRT"},
              {"reference": "SLA-OLD", "incident_notification_hours": 24, "vulnerability_disclosure": "PSIRT",
               "valid_until": "2025-01-01"}]},
    {"name": "Bare Vendor", "slas": [{"reference": "SLA-B", "incident_notification_hours": 48,
                                      "vulnerability_disclosure": "notice"}]},
]}


def city_dir(tmp_path: Path, contacts=None, vendors=None) -> Path:
    records = tmp_path / "records"
    (records / "runbooks").mkdir(parents=True, exist_ok=True)
    (records / "incident-contacts.yml").write_text(yaml.safe_dump(contacts if contacts is not None else CONTACTS))
    (records / "vendors.yml").write_text(yaml.safe_dump(vendors if vendors is not None else VENDORS))
    (records / "runbooks" / "gw.md").write_text("# Manual override\n1. Switch to local mode.\n")
    return tmp_path


CITY = {"name": "Test City", "incident_contacts_file": "records/incident-contacts.yml",
        "vendor_requirements_file": "records/vendors.yml"}


def device(**changes) -> dict:
    base = {"vendor": "Moxa", "model": "UC-8220", "firmware": "MIL 3.2", "owner": "TOC", "role": "field-gateway",
            "criticality": "high", "support_end_of_life": "2030-12-31", "vendor_sla": "SLA-X-1",
            "maintenance_window": {"days": ["Tue"], "start": "01:00", "duration_minutes": 90},
            "runbook": {"path": "records/runbooks/gw.md", "last_exercised": "2026-10-01"},
            "training_last_completed": "2026-06-01",
            "risk_review": {"date": "2026-01-10", "reference": "RR-1", "data_retention_days": 365},
            "redundancy": "gw-02"}
    for key, value in changes.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def verdicts(tmp_path, dev=None, city=CITY, today=TODAY, extra=None, **files):
    folder = city_dir(tmp_path, **files)
    hostvars = {"cityward_zone": "field", "cityward_device": dev if dev is not None else device(),
                "cityward_city": city, **(extra or {})}
    host = assess("gw-01", hostvars, folder, all_hosts=["gw-01", "gw-02"], today=today, zones=ZONES)
    return {cid: (v.status, v.reason) for cid, v in host.verdicts.items()}


def test_a_complete_record_passes_everything(tmp_path):
    assert {cid: s for cid, (s, _) in verdicts(tmp_path).items()} == dict.fromkeys(GOV_IDS, "passed")


@pytest.mark.control("CW-GOV-02")
@pytest.mark.parametrize(("eol", "plan", "status", "words"), [
    (TODAY - timedelta(days=1), "CR-1", "failed", "ended"),
    (TODAY, None, "failed", "in 0 days"),
    (TODAY + timedelta(days=180), None, "failed", "no replacement_plan"),
    (TODAY + timedelta(days=180), "CR-9: replace in Q1", "passed", ""),
    (TODAY + timedelta(days=181), None, "passed", ""),
])
def test_end_of_life(tmp_path, eol, plan, status, words):
    got = verdicts(tmp_path, device(support_end_of_life=eol.isoformat(), replacement_plan=plan))["CW-GOV-02"]
    assert got[0] == status and words in got[1]


@pytest.mark.control("CW-GOV-03")
@pytest.mark.parametrize(("sla", "city", "status", "words"), [
    ("SLA-B", CITY, "passed", ""),  # an SLA is found under any vendor or service provider
    ("SLA-NOPE", CITY, "failed", "not in"),
    ("SLA-OLD", CITY, "failed", "expired on 2025-01-01"),
    ("SLA-X-1", {k: v for k, v in CITY.items() if k != "vendor_requirements_file"}, "failed", "is not set"),
])
def test_vendor_sla_resolves_to_security_terms(tmp_path, sla, city, status, words):
    got = verdicts(tmp_path, device(vendor_sla=sla), city=city)["CW-GOV-03"]
    assert got[0] == status and words in got[1]


@pytest.mark.control("CW-GOV-04")
@pytest.mark.parametrize(("contacts", "status", "words"), [
    ({**CONTACTS, "reviewed": "2025-11-24"}, "passed", ""),  # exactly 12 months
    ({**CONTACTS, "reviewed": "2025-11-23"}, "failed", "more than 12 months"),
    ({**CONTACTS, "reviewed": "2026-12-01"}, "failed", "in the future"),
    ({**CONTACTS, "contacts": [{"name": "Duty", "role": "ot", "phone": "1"}]}, "failed", "role 'csirt'"),
    ({**CONTACTS, "contacts": [{"name": "CSIRT", "role": "csirt"}, {"name": "Duty", "role": "ot", "phone": "1"}]},
     "failed", "phone or an email"),
    ({**CONTACTS, "escalation": [{"after_minutes": 0, "contact": "Nobody"}]}, "failed", "unknown contact(s): Nobody"),
    ({**CONTACTS, "escalation": []}, "failed", "field escalation"),
    ({k: v for k, v in CONTACTS.items() if k != "reviewed"}, "failed", "field reviewed: required field missing"),
])
def test_incident_contacts(tmp_path, contacts, status, words):
    got = verdicts(tmp_path, contacts=contacts)["CW-GOV-04"]
    assert got[0] == status and words in got[1], got


@pytest.mark.control("CW-GOV-04")
def test_missing_city_records(tmp_path):
    got = verdicts(tmp_path, city={**CITY, "incident_contacts_file": "records/nope.yml"})
    assert got["CW-GOV-04"][0] == "failed" and "nope.yml: file not found" in got["CW-GOV-04"][1]
    got = verdicts(tmp_path, city=None)
    assert got["CW-GOV-04"] == ("failed", "field cityward_city: required field missing (set it in group_vars/all)")


@pytest.mark.control("CW-GOV-05")
@pytest.mark.parametrize(("changes", "status", "words"), [
    ({"runbook": {"path": "records/runbooks/gw.md", "last_exercised": "2025-11-24"}}, "passed", ""),
    ({"runbook": {"path": "records/runbooks/gw.md", "last_exercised": "2025-11-23"}}, "failed", "more than 12 months"),
    ({"runbook": {"path": "records/runbooks/nope.md", "last_exercised": "2026-10-01"}}, "failed", "not found"),
    ({"runbook": None}, "failed", "no valid cityward_device.runbook"),
    ({"runbook": None, "criticality": "medium"}, "not_applicable", "not applicable: criticality medium"),
])
def test_manual_override_runbook(tmp_path, changes, status, words):
    got = verdicts(tmp_path, device(**changes))["CW-GOV-05"]
    assert got[0] == status and words in got[1], got


@pytest.mark.control("CW-GOV-05")
def test_empty_runbook_fails(tmp_path):
    city_dir(tmp_path)
    (tmp_path / "records" / "runbooks" / "empty.md").write_text("")
    dev = device(runbook={"path": "records/runbooks/empty.md", "last_exercised": "2026-10-01"})
    assert verdicts(tmp_path, dev)["CW-GOV-05"][1].endswith("is empty")


@pytest.mark.control("CW-GOV-08")
@pytest.mark.parametrize(("trained", "status"), [("2026-01-01", "passed"), ("2025-06-01", "failed"), (None, "failed")])
def test_owner_training(tmp_path, trained, status):
    assert verdicts(tmp_path, device(training_last_completed=trained))["CW-GOV-08"][0] == status


@pytest.mark.control("CW-GOV-09")
@pytest.mark.parametrize(("review", "extra", "status", "words"), [
    ({"date": "2026-01-10", "reference": "RR-1", "data_retention_days": 365}, {}, "passed", ""),  # default 90 days
    ({"date": "2026-01-10", "reference": "RR-1", "data_retention_days": 60}, {}, "failed", "role's default '90day'"),
    ({"date": "2026-01-10", "reference": "RR-1", "data_retention_days": 365}, {"cityward_log_retention": "1year"},
     "passed", ""),
    ({"date": "2026-01-10", "reference": "RR-1", "data_retention_days": 365}, {"cityward_log_retention": "13month"},
     "failed", "longer than the 365 days set by RR-1"),
    ({"date": "2026-01-10", "reference": "RR-1", "data_retention_days": 30},
     {"cityward_log_retention": "1y", "logging_journal_max_retention": "30day"}, "passed", ""),
    ({"date": "2026-01-10", "reference": "RR-1"}, {}, "failed", "sets no data_retention_days"),
    (None, {}, "failed", "no valid cityward_device.risk_review"),
    ({"date": "2027-01-10", "reference": "RR-1", "data_retention_days": 365}, {}, "failed", "in the future"),
])
def test_risk_review_and_log_retention(tmp_path, review, extra, status, words):
    got = verdicts(tmp_path, device(risk_review=review), extra=extra)["CW-GOV-09"]
    assert got[0] == status and words in got[1], got


def test_systemd_time_spans():
    assert span_days("90day") == 90 and span_days("2 weeks") == 14 and span_days("12h") == 0.5
    assert span_days("1y 6month") == pytest.approx(365.25 + 6 * 30.44)
    assert span_days("forever") is None and span_days("") is None and span_days(None) is None


@pytest.mark.control("CW-GOV-11")
@pytest.mark.parametrize(("vendor", "status", "words"), [
    ("Moxa", "passed", ""), ("moxa", "passed", ""), ("Bare Vendor", "failed", "no security_requirements"),
    ("Unknown Corp", "failed", "has no record"),
])
def test_vendor_security_requirements(tmp_path, vendor, status, words):
    got = verdicts(tmp_path, device(vendor=vendor))["CW-GOV-11"]
    assert got[0] == status and words in got[1]


@pytest.mark.control("CW-RES-01")
@pytest.mark.parametrize(("changes", "status", "words"), [
    ({"redundancy": "gw-02"}, "passed", ""),
    ({"redundancy": "none", "degraded_mode": "Runs its last plan locally."}, "passed", ""),
    ({"redundancy": None}, "failed", "no cityward_device.redundancy"),
    ({"redundancy": "none"}, "failed", "degraded_mode"),
    ({"redundancy": "gw-99"}, "failed", "unknown host 'gw-99'"),
    ({"redundancy": None, "criticality": "low", "runbook": None}, "not_applicable", "criticality low"),
])
def test_redundancy_or_degraded_mode(tmp_path, changes, status, words):
    got = verdicts(tmp_path, device(**changes))["CW-RES-01"]
    assert got[0] == status and words in got[1], got


def test_encrypted_or_templated_metadata_is_not_guessed(tmp_path):
    vaulted = {"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256\n3361"}
    host = assess("h", {"cityward_zone": "field", "cityward_device": vaulted}, tmp_path, today=TODAY, zones=ZONES)
    assert list(map(str, host.problems)) == ["field cityward_device: vault-encrypted metadata cannot be checked: "
                             "write the value itself"]
    got = verdicts(tmp_path, device(support_end_of_life="{{ eol }}"))
    assert got["CW-GOV-01"][0] == "failed" and "templated value" in got["CW-GOV-01"][1]
    assert got["CW-GOV-02"] == ("failed", "cannot assess: cityward_device.support_end_of_life missing or invalid "
                                          "(see CW-GOV-01)")


def test_one_bad_field_spoils_only_its_own_checks(tmp_path):
    got = verdicts(tmp_path, device(support_end_of_life="soon"))
    assert got["CW-GOV-01"][0] == "failed" and got["CW-GOV-02"][0] == "failed"
    assert "see CW-GOV-01" in got["CW-GOV-02"][1]
    assert {cid for cid, (s, _) in got.items() if s == "failed"} == {"CW-GOV-01", "CW-GOV-02"}


def test_a_host_of_an_inventory_without_zones_policy_fails_gov_01_saying_why(tmp_path):
    """The audit of such an inventory (a Molecule scenario's) runs; the zone cannot be judged."""
    host = assess("h", {"cityward_zone": "field", "cityward_device": device(redundancy=None)}, tmp_path,
                       all_hosts=["h"], today=TODAY)
    assert list(map(str, host.problems)) == [
        f"field cityward_zone: cannot be checked: {tmp_path}: host h: no zones policy: set "
        "cityward_zones_file (the path of the zones policy YAML, absolute or relative to the "
        "inventory folder) or cityward_zones (the policy itself) in the inventory"]
    assert host.verdicts["CW-GOV-01"].status == "failed"


# --- properties -----------------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30).filter(
    lambda s: s.strip() and "{{" not in s and "{%" not in s)
_day = st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)).map(date.isoformat)
_devices = st.fixed_dictionaries({
    "vendor": _text, "model": _text, "firmware": _text, "owner": _text,
    "role": st.from_regex(r"[a-z][a-z-]{1,30}", fullmatch=True),
    "criticality": st.sampled_from(["medium", "low"]),
    "support_end_of_life": _day, "vendor_sla": _text,
    "maintenance_window": st.fixed_dictionaries({
        "days": st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True),
        "start": st.times().map(lambda t: t.strftime("%H:%M")),
        "duration_minutes": st.integers(15, 720)}),
}, optional={"training_last_completed": _day, "replacement_plan": _text})
_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10)
_junk = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                           max_size=3), max_leaves=8)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dev=_devices)
def test_any_well_formed_device_is_valid(tmp_path, dev):
    host = assess("h", {"cityward_zone": "field", "cityward_device": dev}, tmp_path, all_hosts=["h"], today=TODAY,
                       zones=ZONES)
    assert host.problems == [] and host.device is not None


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dev=_devices, field=st.sampled_from(["vendor", "criticality", "support_end_of_life", "vendor_sla",
                                            "maintenance_window", "runbook", "risk_review", "redundancy"]),
       junk=_junk)
def test_junk_in_a_field_is_reported_on_that_field_never_raised(tmp_path, dev, field, junk):
    dev = copy.deepcopy(dev)
    dev[field] = junk
    host = assess("h", {"cityward_zone": "field", "cityward_device": dev}, tmp_path, all_hosts=["h"], today=TODAY,
                       zones=ZONES)
    for line in map(str, host.problems):
        assert line.startswith("field cityward_device"), line
    if host.problems:  # the field itself, or a rule it takes part in (runbook when critical, degraded mode)
        named = (f"cityward_device.{field}", "cityward_device.runbook", "cityward_device.degraded_mode")
        assert any(name in line for line in map(str, host.problems) for name in named), host.problems
    assert set(host.verdicts) == set(GOV_IDS)


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=_junk)
def test_junk_instead_of_a_device_never_raises(tmp_path, junk):
    host = assess("h", {"cityward_zone": "field", "cityward_device": junk}, tmp_path, today=TODAY, zones=ZONES)
    assert host.verdicts["CW-GOV-01"].status == "failed"
    assert all(line.startswith("field cityward_device") for line in map(str, host.problems))


def test_the_logging_roles_own_siem_setting_wins_even_when_empty():
    from cityward.log_settings import forwarding_siem

    assert forwarding_siem({"cityward_siem_host": "10.40.48.10"}) == "10.40.48.10"
    assert forwarding_siem({"cityward_siem_host": "10.40.48.10", "logging_siem_host": "cw-log-siem"}) == "cw-log-siem"
    assert forwarding_siem({"cityward_siem_host": "10.40.48.10", "logging_siem_host": ""}) == ""
    assert forwarding_siem({}) == ""
