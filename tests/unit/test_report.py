"""The audit reports: aggregation rules, and the four formats (HTML, JSON, JUnit XML, SARIF)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from cityward.audit.aggregate import STATUSES, aggregate, cell_status, roll_up
from cityward.audit.model import AuditRun, CheckResult, HostResult
from cityward.audit.write import write_reports
from cityward.catalog import load_catalog
from cityward.errors import CitywardError


def check(host, name, controls, outcome="passed", reason="", duration=0.5):
    return CheckResult(host=host, nodeid=f"tests/controls/test_x.py::{name}[ansible://{host}]", name=name,
                       control_ids=list(controls), outcome=outcome, reason=reason, duration=duration)


def build_run() -> AuditRun:
    """Four hosts in three zones: failures (one advisory), n/a kernel checks, skips, one unreachable host."""
    scada = HostResult("scada-01", "ot-operations", True, "", {"vendor": "Siemens", "criticality": "critical"}, [
        check("scada-01", "test_key_only", ["CW-SSH-01"]),
        check("scada-01", "test_ssh_audit_clean", ["CW-SSH-02"], "failed", "ssh-audit: weak kex <curve25519> & more"),
        check("scada-01", "test_sysctl_live", ["CW-KRN-01"], "not_applicable",
              "not applicable in a container: sysctl is the host kernel's"),
        check("scada-01", "test_metadata_complete", ["CW-GOV-01"]),
        check("scada-01", "test_training", ["CW-GOV-08"], "failed", "no training record for owner 'SCADA team'"),
        check("scada-01", "test_sbom", ["CW-GOV-06"]),
        check("scada-01", "test_sbom_count", ["CW-GOV-06"], "error", "fixture error: \x1b[31mboom\x1b[0m"),
    ])
    gateway = HostResult("gw-north-01", "field", True, "", {"vendor": "Moxa", "criticality": "high"}, [
        check("gw-north-01", "test_key_only", ["CW-SSH-01"]),
        check("gw-north-01", "test_ssh_audit_clean", ["CW-SSH-02"]),
        check("gw-north-01", "test_sysctl_live", ["CW-KRN-01"], "not_applicable", "not applicable in a container: x"),
        check("gw-north-01", "test_sysctl_file", ["CW-KRN-01"], "passed"),
        check("gw-north-01", "test_metadata_complete", ["CW-GOV-01"], "failed",
              "field cityward_device.vendor_sla: required"),
        check("gw-north-01", "test_mqtt_tls", ["CW-MQTT-01"], "skipped", "mosquitto not installed"),
    ], architecture="arm64")
    mgmt = HostResult("mgmt-01", "management", True, "", {}, [
        check("mgmt-01", "test_key_only", ["CW-SSH-01"]),
        check("mgmt-01", "test_ssh_audit_clean", ["CW-SSH-02"]),
        check("mgmt-01", "test_sysctl_live", ["CW-KRN-01"], "not_applicable", "not applicable in a container: x"),
        check("mgmt-01", "test_unmarked", []),
    ])
    siem = HostResult("siem-01", "ot-operations", False, "unreachable: ssh: connect to host timed out", {}, [])
    return AuditRun(inventory="inventories/lab", started="2026-11-24T08:00:00+00:00",
                    finished="2026-11-24T08:03:10+00:00", hosts=[gateway, mgmt, scada, siem],
                    cityward_version="0.1.0")


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def data(catalog):
    return aggregate(build_run(), catalog).facts


@pytest.fixture(scope="module")
def written(tmp_path_factory, catalog):
    out = tmp_path_factory.mktemp("report")
    paths = write_reports(aggregate(build_run(), catalog), {"html", "json", "junit", "sarif"}, out)
    return {p.name: p for p in paths}


# --- aggregation ----------------------------------------------------------------------------------


def test_cell_rules():
    assert cell_status([]) == ("not_assessed", "no check of this control ran on the host")
    assert cell_status([check("h", "a", ["X"]), check("h", "b", ["X"], "failed", "why")]) == ("failed", "b: why")
    assert cell_status([check("h", "a", ["X"], "error", "boom")])[0] == "failed"
    assert cell_status([check("h", "a", ["X"], "not_applicable", "n/a: c"), check("h", "b", ["X"])]) == ("passed", "")
    assert cell_status([check("h", "a", ["X"], "not_applicable", "na1")]) == ("not_applicable", "na1")
    assert cell_status([check("h", "a", ["X"], "not_applicable", "na"), check("h", "b", ["X"], "skipped", "sk")]) == (
        "skipped", "sk")
    assert roll_up(["passed", "failed"]) == "failed"
    assert roll_up(["passed", "unreachable", "not_assessed"]) == "passed"
    assert roll_up(["not_assessed", "unreachable"]) == "unreachable"
    assert roll_up([]) == "not_assessed"


def test_per_control_per_host(data, catalog):
    ssh2 = data["controls"]["CW-SSH-02"]
    assert ssh2["hosts"]["scada-01"]["status"] == "failed"
    assert "weak kex" in ssh2["hosts"]["scada-01"]["reason"]
    assert ssh2["hosts"]["gw-north-01"]["status"] == "passed"
    assert ssh2["hosts"]["siem-01"] == {"status": "unreachable",
                                        "reason": "unreachable: ssh: connect to host timed out"}
    assert ssh2["status"] == "failed"
    krn = data["controls"]["CW-KRN-01"]
    assert krn["hosts"]["scada-01"]["status"] == "not_applicable"
    assert krn["hosts"]["gw-north-01"]["status"] == "passed"  # config check passed, live one n/a
    assert krn["status"] == "passed"
    assert data["controls"]["CW-GOV-06"]["hosts"]["scada-01"]["status"] == "failed"  # an error fails
    assert data["controls"]["CW-MQTT-01"]["hosts"]["gw-north-01"]["status"] == "skipped"
    assert data["controls"]["CW-MQTT-01"]["hosts"]["mgmt-01"]["status"] == "not_assessed"
    # An implemented control no host checked was still missed on the unreachable host; a planned one was not.
    checked = {cid for host in build_run().hosts for check in host.checks for cid in check.control_ids}
    implemented = next(c.id for c in catalog.controls if c.status == "implemented" and c.id not in checked)
    assert data["controls"][implemented]["hosts"]["siem-01"]["status"] == "unreachable"
    assert data["controls"][implemented]["status"] == "unreachable"
    planned = [c.id for c in catalog.controls if c.status == "planned" and c.id not in checked]
    for cid in planned:
        assert data["controls"][cid]["hosts"]["siem-01"]["status"] == "not_assessed"
        assert data["controls"][cid]["status"] == "not_assessed"


def test_mandatory_failures_exclude_advisory_controls(data, catalog):
    failed = {row["control"]: row["hosts"] for row in data["mandatory_failures"]}
    assert failed == {"CW-SSH-02": ["scada-01"], "CW-GOV-01": ["gw-north-01"], "CW-GOV-06": ["scada-01"]}
    assert data["controls"]["CW-GOV-08"]["status"] == "failed" and not catalog.get("CW-GOV-08").mandatory
    assert data["summary"]["mandatory_failures"] == 3
    assert data["summary"]["verdict"] == "fail"


def test_numbers_are_consistent(data, catalog):
    summary = data["summary"]
    n_controls = len(catalog.controls)
    assert summary["hosts"] == 4 and summary["reachable"] == 3 and summary["unreachable"] == 1
    assert sum(summary["cells"].values()) == 4 * n_controls
    in_scope = {c.id for c in catalog.controls if c.status == "implemented"}
    in_scope |= {cid for host in build_run().hosts for check in host.checks for cid in check.control_ids}
    assert summary["cells"]["unreachable"] == len(in_scope)
    # zones and hosts add up to the summary
    for status in STATUSES:
        assert sum(z["counts"][status] for z in data["zones"].values()) == summary["cells"][status]
        assert sum(h["counts"][status] for h in data["hosts"].values()) == summary["cells"][status]
        assert sum(c["counts"][status] for c in data["controls"].values()) == summary["cells"][status]
    assert data["zones"]["ot-operations"]["hosts"] == ["scada-01", "siem-01"]
    assert summary["checks"] == {"passed": 9, "failed": 3, "error": 1, "skipped": 1, "not_applicable": 3}
    assert summary["cells"]["failed"] == 4  # SSH-02, GOV-08, GOV-06 on scada; GOV-01 on the gateway


def test_source_items_roll_up_from_their_controls(data, catalog):
    items = {item["id"]: item for source in data["sources"] for item in source["items"]}
    assert len(items) == len(catalog.source_items)
    assert {s["id"] for s in data["sources"]} == {s.id for s in catalog.sources}
    tm07 = items["TM-07"]  # secure public channels: SSH-02 failed on scada-01
    assert "CW-SSH-02" in tm07["controls"] and tm07["status"] == "failed"
    for item in items.values():
        statuses = [data["controls"][c]["status"] for c in item["controls"]]
        assert item["status"] == roll_up(statuses)
        assert sum(item["counts"].values()) == 4 * len(item["controls"])


# --- formats --------------------------------------------------------------------------------------


def test_unknown_format_refused(tmp_path, catalog):
    with pytest.raises(CitywardError, match="unknown report format"):
        write_reports(aggregate(build_run(), catalog), {"pdf"}, tmp_path)


def test_writes_the_requested_files(written):
    assert set(written) == {"report.html", "report.json", "report.junit.xml", "report.sarif"}


def test_json_round_trips_the_run(written, data):
    doc = json.loads(written["report.json"].read_text())
    assert doc["format"] == "cityward-audit-report/1"
    assert doc["run"]["hosts"][2]["checks"][1]["reason"].startswith("ssh-audit")
    assert doc["aggregate"]["summary"] == data["summary"]
    # Each host's architecture, read from its SBOM ("" where the audit had none: unreachable).
    assert [(h["name"], h["architecture"]) for h in doc["run"]["hosts"]][:1] == [("gw-north-01", "arm64")]
    assert doc["run"]["hosts"][3]["architecture"] == ""


def test_sarif_shape(written, catalog):
    sarif = json.loads(written["report.sarif"].read_text())
    assert sarif["version"] == "2.1.0"
    assert sarif["$schema"].endswith("sarif-2.1.0.json")
    run = sarif["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "cityward"
    rules = {rule["id"]: rule for rule in driver["rules"]}
    assert set(rules) == catalog.ids
    ssh2 = rules["CW-SSH-02"]
    assert ssh2["properties"]["iec62443"] == list(catalog.get("CW-SSH-02").iec62443)
    assert ssh2["properties"]["cisa_cpg"] == list(catalog.get("CW-SSH-02").cisa_cpg)
    assert ssh2["helpUri"].startswith("file://") and ssh2["helpUri"].endswith("report.html#CW-SSH-02")
    results = {(r["ruleId"], r["locations"][0]["logicalLocations"][0]["name"]): r for r in run["results"]}
    assert set(results) == {("CW-SSH-02", "scada-01"), ("CW-GOV-08", "scada-01"), ("CW-GOV-06", "scada-01"),
                            ("CW-GOV-01", "gw-north-01")}
    assert results[("CW-SSH-02", "scada-01")]["level"] == "error"
    assert results[("CW-GOV-08", "scada-01")]["level"] == "warning"  # not mandatory
    for result in run["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["message"]["text"]
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert invocation["startTimeUtc"] == "2026-11-24T08:00:00Z"
    assert "siem-01" in invocation["toolExecutionNotifications"][0]["message"]["text"]


def test_junit_parses_and_counts(written, data):
    root = ET.parse(written["report.junit.xml"]).getroot()  # noqa: S314 - our own output
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"scada-01", "gw-north-01", "mgmt-01", "siem-01"}
    for suite in suites.values():
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases)
        assert int(suite.get("failures")) == len([c for c in cases if c.find("failure") is not None])
        assert int(suite.get("skipped")) == len([c for c in cases if c.find("skipped") is not None])
        assert int(suite.get("errors")) == len([c for c in cases if c.find("error") is not None])
    scada = {c.get("name").split()[0]: c for c in suites["scada-01"].findall("testcase")}
    assert set(scada) == {"CW-SSH-01", "CW-SSH-02", "CW-KRN-01", "CW-GOV-01", "CW-GOV-08", "CW-GOV-06"}
    assert "weak kex <curve25519>" in scada["CW-SSH-02"].find("failure").get("message")
    assert scada["CW-SSH-02"].find("failure").get("type") == "mandatory"
    assert scada["CW-GOV-08"].find("failure").get("type") == "advisory"
    assert "\x1b" not in scada["CW-GOV-06"].find("failure").text
    assert scada["CW-KRN-01"].find("skipped").get("message").startswith("not applicable in a container")
    assert suites["siem-01"].find("testcase/error") is not None
    assert int(root.get("failures")) == data["summary"]["cells"]["failed"]


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.ids, self.tags = [], set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.refs += [(tag, k, v) for k, v in attrs.items() if k in ("src", "href", "xlink:href", "action") and v]
        if "id" in attrs:
            self.ids.add(attrs["id"])


def test_html_is_self_contained(written):
    text = written["report.html"].read_text()
    parser = _Links()
    parser.feed(text)
    external = [r for r in parser.refs if not r[2].startswith("#")]
    assert not external, external
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert "@import" not in text and "url(" not in text
    assert {"style", "svg"} <= set(parser.tags) and "script" not in parser.tags and "link" not in parser.tags
    for ref in (r[2] for r in parser.refs):
        assert ref[1:] in parser.ids, f"dangling anchor {ref}"


def test_html_shows_the_numbers_and_every_item(written, data, catalog):
    text = written["report.html"].read_text()
    cells = data["summary"]["cells"]
    for ident, number in (("sum-hosts", 4), ("sum-reachable", 3), ("sum-passed", cells["passed"]),
                          ("sum-failed", cells["failed"]), ("sum-not-applicable", cells["not_applicable"]),
                          ("sum-skipped", cells["skipped"]), ("sum-unreachable", 1), ("sum-mandatory-failures", 3)):
        assert f'id="{ident}">{number}<' in text, ident
    for item in catalog.source_items:
        assert f'id="item-{item.id}"' in text
    for control in catalog.controls:
        assert f'<tr id="{control.id}"' in text
    assert "SR 3.1" in text and "2.K" in text  # CW-SSH-02's references
    assert "weak kex &lt;curve25519&gt; &amp; more" in text  # escaped, not raw
    assert 'id="chart-zones"' in text and 'id="chart-sources"' in text
    assert "FAIL: 3 mandatory control(s) failed; 1 host(s) unreachable" in text
    # The host's architecture beside its zone.
    assert re.search(r'id="host-gw-north-01".*?zone field · arm64 · ', text, re.S)


def test_html_passes_when_all_is_well(tmp_path, catalog):
    run = AuditRun("inventories/lab", "2026-11-24T08:00:00+00:00", "2026-11-24T08:01:00+00:00",
                   [HostResult("mgmt-01", "management", True, "", {}, [check("mgmt-01", "t", ["CW-SSH-01"])])],
                   "0.1.0")
    (path,) = write_reports(aggregate(run, catalog), {"html"}, tmp_path)
    assert 'class="verdict pass"' in path.read_text()
