"""A zones policy's exceptions (knowingly waived rules) are never silent: `cityward check` lists each
one in force, beside an otherwise clean result, and the audit's evidence carries them (issue 23)."""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cityward.audit.aggregate import aggregate
from cityward.audit.model import AuditRun
from cityward.audit.render_html import render
from cityward.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "example-city"
SOON = datetime.date.today() + datetime.timedelta(days=60)
MODBUS_FROM_IT = {"from": "enterprise", "to": "field", "protocol": "tcp", "port": 502, "service": "modbus-tcp",
                  "purpose": "Legacy traffic controller read from the office"}
WAIVER = {"rule": "ot-protocol", "conduit": "enterprise->field:tcp/502",
          "reason": "Legacy traffic controller polled by the office until its 2027 replacement",
          "approved_by": "City CISO", "expires": SOON.isoformat()}
pytestmark = pytest.mark.control("CW-RES-04")


@pytest.fixture
def city(tmp_path):
    shutil.copytree(EXAMPLE, tmp_path / "city")
    policy = yaml.safe_load((ROOT / "policies" / "zones.yml").read_text())
    policy["conduits"].append(MODBUS_FROM_IT)
    (tmp_path / "zones.yml").write_text(yaml.safe_dump(policy, sort_keys=False))
    return tmp_path


def _check(city: Path, *args: str):
    return subprocess.run([sys.executable, "-m", "cityward", "check", "-i", str(city / "city"),
                           "--zones", str(city / "zones.yml"), *args],
                          capture_output=True, text=True, cwd=ROOT, check=False, timeout=120)


def test_an_unwaived_it_to_ot_conduit_is_bad_input(city):
    result = _check(city, "--format", "json")
    doc = json.loads(result.stdout)
    assert result.returncode == 2 and doc["ok"] is False
    assert any("enterprise->field" in p["text"] and "ot-protocol" in p["text"] for p in doc["problems"])


def test_a_waived_conduit_passes_and_its_exception_is_listed(city):
    policy = yaml.safe_load((city / "zones.yml").read_text())
    policy["exceptions"] = [WAIVER]
    (city / "zones.yml").write_text(yaml.safe_dump(policy, sort_keys=False))
    doc = json.loads(_check(city, "--format", "json").stdout)
    assert doc["ok"] is True, doc["problems"]
    [line] = doc["exceptions"]
    assert line.startswith("exception to ot-protocol for enterprise->field:tcp/502: Legacy traffic controller")
    assert f"expires {SOON.isoformat()}" in line and "City CISO" in line
    text = _check(city)
    assert text.returncode == 0 and "note: zones policy exception to ot-protocol" in text.stderr


def test_the_audit_evidence_lists_the_exceptions():
    line = "exception to ot-protocol for enterprise->field:tcp/502: Legacy (approved by City CISO, expires 2027-01-01)"
    run = AuditRun(inventory="city", started="2026-12-06T08:00:00+00:00", finished="2026-12-06T08:01:00+00:00",
                   hosts=[], cityward_version="0", policy_exceptions=[line])
    catalog = load_catalog()
    result = aggregate(run, catalog)
    assert result.facts["policy_exceptions"] == [line]
    page = render(result)
    assert "Exceptions the zones policy keeps" in page and "enterprise-&gt;field:tcp/502" in page
    quiet = AuditRun(inventory="city", started=run.started, finished=run.finished, hosts=[], cityward_version="0")
    assert "every rule of the zones policy holds" in render(aggregate(quiet, catalog))
