"""The catalog schema: a broken entry is reported with its control ID and field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from cityward.catalog import load_catalog
from cityward.cli import main
from cityward.errors import CitywardError


@pytest.fixture
def policies_copy(tmp_path):
    shutil.copytree(Path(__file__).resolve().parents[2] / "policies", tmp_path / "policies",
                    ignore=shutil.ignore_patterns("pulumi", "*.py"))
    return tmp_path


def _break(root, control_id, **changes):
    path = root / "policies" / "controls.yml"
    data = yaml.safe_load(path.read_text())
    entry = next(c for c in data["controls"] if c["id"] == control_id)
    for key, value in changes.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_shipped_catalog_loads():
    catalog = load_catalog()
    assert len(catalog.ids) == len(catalog.controls)
    assert {"CW-SSH-01", "CW-NET-02", "CW-GOV-04"} <= catalog.ids


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"iec62443": ["SR 9.9"]}, "iec62443", "unknown reference 'SR 9.9'"),
    ({"cisa_cpg": ["9.Z"]}, "cisa_cpg", "unknown reference '9.Z'"),
    ({"sources": ["TM-99"]}, "sources", "unknown reference 'TM-99'"),
    ({"sources": []}, "sources", "at least 1"),
    ({"status": "done"}, "status", "'planned' or 'implemented'"),
    ({"container": "config", "container_reason": None}, "(entry)", "container_reason is required"),
    ({"title": None}, "title", "Field required"),
    ({"colour": "red"}, "colour", "Extra inputs"),
    ({"enforced_by": [{"kind": "magic", "ref": "x"}]}, "enforced_by.0.kind", "Input should be"),
])
def test_bad_control_names_control_and_field(policies_copy, changes, field, words):
    _break(policies_copy, "CW-SSH-03", **changes)
    with pytest.raises(CitywardError) as err:
        load_catalog(policies_copy / "policies")
    message = str(err.value)
    assert "controls.yml" in message and "CW-SSH-03" in message
    assert f"field '{field}'" in message and words in message


def test_duplicate_id_is_rejected(policies_copy):
    path = policies_copy / "policies" / "controls.yml"
    data = yaml.safe_load(path.read_text())
    data["controls"].append(dict(data["controls"][0]))
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(CitywardError, match=r"control CW-SSH-01, field 'id': duplicate"):
        load_catalog(policies_copy / "policies")


def test_yaml_syntax_error_names_file_and_line(policies_copy):
    path = policies_copy / "policies" / "controls.yml"
    path.write_text("controls:\n  - id: [unclosed\n")
    with pytest.raises(CitywardError, match=r"controls.yml: line \d+, column \d+: invalid YAML"):
        load_catalog(policies_copy / "policies")


def test_controls_command_prints_coverage(capsys):
    assert main(["controls"]) == 0
    out = capsys.readouterr().out
    assert "TM-08" in out and "FE-PD-02" in out
    assert "source items covered by at least one control" in out


def test_controls_command_json_is_machine_readable(capsys):
    assert main(["controls", "--format", "json", "--trace"]) == 0
    doc = json.loads(capsys.readouterr().out)
    items = {row["item"]: row for row in doc["coverage"]}
    assert items["TM-07"]["total"] >= 1
    implemented = {c["id"] for c in doc["controls"] if c["status"] == "implemented"}
    assert implemented >= {"CW-SSH-01", "CW-SSH-02"}
    assert doc["trace_problems"] == []


def test_cli_reports_a_broken_catalog_without_traceback(policies_copy, monkeypatch, capsys):
    _break(policies_copy, "CW-SSH-03", status="done")
    monkeypatch.setattr("cityward.catalog.policies_dir", lambda: policies_copy / "policies")
    assert main(["controls"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cityward: error:") and "CW-SSH-03" in err and "Traceback" not in err
