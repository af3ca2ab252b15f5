"""`cityward check` and the first play of site.yml (CW-RES-04): every malformed input of a corpus,
and generated ones, is refused with one line naming the file, the host or entry, and the field,
before any host is touched."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cityward.check import run_check
from cityward.governance import assess
from cityward.zones import load_zones

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "example-city"
ZONES = load_zones(ROOT / "policies" / "zones.yml")
TODAY = date(2026, 11, 24)
pytestmark = pytest.mark.control("CW-RES-04")


@pytest.fixture
def world(tmp_path):
    """A writable copy of the example city, the zones policy and the catalog."""
    shutil.copytree(EXAMPLE, tmp_path / "city")
    (tmp_path / "project").mkdir()
    shutil.copytree(ROOT / "policies", tmp_path / "project" / "policies")
    # The copied city names the copied policy, relative to its own folder, as the example does.
    edit(tmp_path / "city" / "group_vars" / "all" / "city.yml",
         lambda data: data.update(cityward_zones_file="../project/policies/zones.yml"))
    return tmp_path


def edit(path: Path, change) -> None:
    """Apply `change` to the file's YAML data (or replace the text when `change` is a str)."""
    if isinstance(change, str):
        path.write_text(change)
        return
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def device(**fields):
    def change(data):
        for key, value in fields.items():
            if value is DELETE:
                data["cityward_device"].pop(key)
            else:
                data["cityward_device"][key] = value
    return "city/host_vars/historian-01.yml", change


def window(**fields):
    def change(data):
        data["cityward_device"]["maintenance_window"].update(fields)
    return "city/host_vars/historian-01.yml", change


def host_var(name, value):
    return "city/host_vars/historian-01.yml", lambda data: data.update({name: value})


def first_control(**fields):
    return "project/policies/controls.yml", lambda data: data["controls"][0].update(fields)


def zones(change):
    return "project/policies/zones.yml", change


DELETE = object()
HISTORIAN = ("historian-01", "host_vars") and "host historian-01"

# (case, (file, change), every fragment one problem line must hold)
CORPUS = [
    ("eol-not-a-date", device(support_end_of_life="someday"), [HISTORIAN, "support_end_of_life"]),
    ("eol-impossible-date", device(support_end_of_life="2031-02-30"), [HISTORIAN, "support_end_of_life"]),
    ("criticality-unknown", device(criticality="extreme"), [HISTORIAN, "criticality"]),
    ("window-unknown-day", window(days=["Funday"]), [HISTORIAN, "maintenance_window.days"]),
    ("window-repeated-day", window(days=["Sun", "Sun"]), [HISTORIAN, "maintenance_window"]),
    ("window-bad-clock", window(start="25:00"), [HISTORIAN, "maintenance_window.start"]),
    ("window-negative-duration", window(duration_minutes=-5), [HISTORIAN, "maintenance_window.duration_minutes"]),
    ("window-duration-as-text", window(duration_minutes="2h"), [HISTORIAN, "maintenance_window.duration_minutes"]),
    ("window-missing", device(maintenance_window=DELETE), [HISTORIAN, "maintenance_window"]),
    ("vendor-missing", device(vendor=DELETE), [HISTORIAN, "vendor"]),
    ("vendor-not-text", device(vendor=42), [HISTORIAN, "vendor"]),
    ("owner-empty", device(owner=""), [HISTORIAN, "owner"]),
    ("unknown-field", device(colour="red"), [HISTORIAN, "colour"]),
    ("device-is-text", host_var("cityward_device", "a Dell server"), [HISTORIAN, "cityward_device"]),
    ("device-is-list", host_var("cityward_device", ["Dell"]), [HISTORIAN, "cityward_device"]),
    ("device-missing", host_var("cityward_device", None), [HISTORIAN, "cityward_device"]),
    ("runbook-missing-on-high", device(runbook=DELETE), [HISTORIAN, "runbook"]),
    ("runbook-date-text", device(runbook={"path": "records/runbooks/historian.md", "last_exercised": "yesterday"}),
     [HISTORIAN, "runbook.last_exercised"]),
    ("retention-not-a-number", device(risk_review={"date": "2026-02-10", "reference": "RR-1",
                                                   "data_retention_days": "forever"}),
     [HISTORIAN, "risk_review.data_retention_days"]),
    ("training-month-13", device(training_last_completed="2026-13-01"), [HISTORIAN, "training_last_completed"]),
    ("redundancy-self", device(redundancy="historian-01"), [HISTORIAN, "redundancy"]),
    ("redundancy-unknown-host", device(redundancy="ghost-99"), [HISTORIAN, "redundancy", "ghost-99"]),
    ("no-peer-no-degraded-mode", device(degraded_mode=DELETE), [HISTORIAN, "degraded_mode"]),
    ("zone-unknown", host_var("cityward_zone", "moon"), [HISTORIAN, "cityward_zone", "moon"]),
    ("zone-not-text", host_var("cityward_zone", ["field"]), [HISTORIAN, "cityward_zone"]),
    ("inventory-broken-yaml", ("city/hosts.yml", "all:\n  children: [unclosed\n"), ["hosts.yml"]),
    ("host-vars-broken-yaml", ("city/host_vars/historian-01.yml", "cityward_device: {vendor: Dell\n"),
     ["historian-01.yml"]),
    ("contacts-review-not-a-date",
     ("city/records/incident-contacts.yml", lambda d: d.update(reviewed="last year")),
     ["incident-contacts.yml", "reviewed"]),
    ("contacts-no-csirt",
     ("city/records/incident-contacts.yml", lambda d: [c.update(role="duty") for c in d["contacts"]]),
     ["incident-contacts.yml", "csirt"]),
    ("vendor-sla-without-reference",
     ("city/records/vendor-requirements.yml", lambda d: d["vendors"][0]["slas"][0].pop("reference")),
     ["vendor-requirements.yml", "reference"]),
    ("contacts-file-missing",
     ("city/group_vars/all/city.yml", lambda d: d["cityward_city"].update(incident_contacts_file="records/nope.yml")),
     ["nope.yml"]),
    ("zone-cidr-33", zones(lambda d: d["zones"]["field"].update(cidr="10.40.80.0/33")), ["zones.yml", "field", "cidr"]),
    ("conduit-unknown-zone", zones(lambda d: d["conduits"][0].update(to="moon")), ["zones.yml", "moon"]),
    ("conduit-port-70000", zones(lambda d: d["conduits"][0].update(port=70000)), ["zones.yml", "port"]),
    ("zones-not-a-mapping", zones("- just\n- a list\n"), ["zones.yml", "mapping"]),
    ("zones-duplicate-key", zones("version: 1\nversion: 2\n"), ["zones.yml", "version"]),
    ("control-id-malformed", first_control(id="CW-ssh-1"), ["controls.yml", "control CW-ssh-1", "id"]),
    ("control-unknown-iec", first_control(iec62443=["SR 9.9"]), ["controls.yml", "iec62443", "SR 9.9"]),
    ("control-duplicate-id", ("project/policies/controls.yml",
                              lambda d: d["controls"][1].update(id=d["controls"][0]["id"])),
     ["controls.yml", "duplicate control ID"]),
    ("controls-broken-yaml", ("project/policies/controls.yml", "controls:\n  - id: [CW\n"), ["controls.yml", "line"]),
]


def check(world: Path, inventory: Path | None = None):
    return run_check([inventory or world / "city"], policies=world / "project" / "policies", today=TODAY)


def test_the_unchanged_world_passes(world):
    result = check(world)
    assert result.ok, result.problems
    assert len(result.hosts) >= 30 and result.zones and result.controls


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 30
    assert len({case for case, _, _ in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize(("case", "mutation", "fragments"), CORPUS, ids=[c for c, _, _ in CORPUS])
def test_each_malformed_input_is_refused_naming_where(world, case, mutation, fragments):
    relative, change = mutation
    edit(world / relative, change)
    result = check(world)
    assert not result.ok, f"{case}: accepted"
    assert any(all(f in line for f in fragments) for line in map(str, result.problems)), (
        f"{case}: no problem line names {fragments}: {result.problems}")
    assert not any("Traceback" in line for line in map(str, result.problems))


def test_a_missing_inventory_is_one_clear_problem(world):
    result = check(world, world / "nowhere")
    assert [str(p) for p in result.problems] == [f"{world / 'nowhere'}: inventory not found"]


# --- generated metadata: never a crash, always a named field --------------------------------------

FIELDS = ("vendor", "model", "firmware", "owner", "role", "criticality", "support_end_of_life",
          "replacement_plan", "vendor_sla", "maintenance_window", "runbook", "training_last_completed",
          "risk_review", "redundancy", "degraded_mode", "surprise")
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=20), st.dates().map(str), st.dates())
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=len(FIELDS)),
       zone=st.one_of(st.none(), st.sampled_from(["field", "moon"]), VALUES))
def test_generated_device_records_give_named_fields_or_pass(record, zone):
    hostvars = {"cityward_device": record, "cityward_zone": zone}
    host = assess("gen-01", hostvars, EXAMPLE, all_hosts=["gen-01"], today=TODAY, zones=ZONES)
    for problem in map(str, host.problems):
        assert problem.startswith(("field cityward_device", "field cityward_zone")), problem
    assert host.problems or host.device is not None


@settings(max_examples=100, deadline=None)
@given(data=VALUES)
def test_generated_zones_documents_are_refused_with_the_file(tmp_path_factory, data):
    from cityward.errors import CitywardError
    from cityward.zones import parse_zones
    try:
        parse_zones(data, "gen-zones.yml")
    except CitywardError as exc:
        assert str(exc).startswith("gen-zones.yml: ")


# --- the same check, from the command line and as site.yml's first play ----------------------------

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "cityward", "check", *args],
                          capture_output=True, text=True, cwd=ROOT, check=False)


def test_cli_names_the_problem_and_fails(world):
    edit(*[world / device(criticality="extreme")[0], device(criticality="extreme")[1]])
    result = _cli("-i", str(world / "city"))
    assert result.returncode == 2
    assert "host historian-01, field cityward_device.criticality" in result.stderr
    assert "Traceback" not in result.stderr
    doc = json.loads(_cli("-i", str(world / "city"), "--format", "json").stdout)
    assert doc["ok"] is False and any(
        p["text"].startswith(f"{world / 'city'}: host historian-01, field cityward_device.criticality")
        and (p["host"], p["field"]) == ("historian-01", "cityward_device.criticality") for p in doc["problems"])


def test_cli_passes_a_good_inventory():
    result = _cli("-i", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: ")


def test_site_yml_stops_in_its_first_play_before_any_host(world):
    """The example city's hosts do not exist: had the play gone on, each would show in the recap."""
    edit(*[world / device(support_end_of_life="someday")[0], device(support_end_of_life="someday")[1]])
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(world / "city"), "playbooks/site.yml"],
        capture_output=True, text=True, cwd=ROOT, check=False, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "host historian-01, field cityward_device.support_end_of_life" in out
    assert "nothing was changed on any host" in out
    recap = out.split("PLAY RECAP", 1)[1]
    assert re.findall(r"(?m)^(\S+)\s+: ok=", recap) == ["localhost"]
