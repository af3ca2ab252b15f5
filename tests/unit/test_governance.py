"""The governance rule registry (cityward.governance): every registered control is in the catalog,
the audit's checks (src/cityward/checks/test_metadata.py) have one case per rule, and each rule
names what it reads. The verdicts themselves are tested in test_inventory.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from cityward.catalog import load_catalog
from cityward.checks import test_metadata as metadata_checks
from cityward.device import City, Device
from cityward.governance import RULES, assess
from cityward.governance.registry import rule

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ROOT / "src" / "cityward" / "checks" / "test_metadata.py"


def test_every_rule_is_a_control_of_the_catalog():
    assert RULES, "no governance rule registered"
    assert set(RULES) <= load_catalog().ids, sorted(set(RULES) - load_catalog().ids)
    for control, registered in RULES.items():
        assert registered.control == control and callable(registered.judge)


def _check_cases() -> list:
    marks = [m for m in metadata_checks.test_governance_rule.pytestmark if m.name == "parametrize"]
    assert len(marks) == 1
    return list(marks[0].args[1])


def test_the_audit_checks_one_case_per_rule():
    """A rule without its check case (or a case without a rule) fails here."""
    cases = _check_cases()
    controls = [case.values[0] for case in cases]
    assert sorted(controls) == sorted(RULES), "test_metadata.py's cases and cityward.governance.RULES differ"
    for case in cases:
        control = case.values[0]
        # the audit maps the result to the control by this marker, at run time
        assert [m.args for m in case.marks if m.name == "control"] == [(control,)], case
        assert case.id == control


def test_the_check_markers_are_literal():
    """The traceability gate reads the markers from the source, so each must be a literal
    pytest.mark.control("ID") call."""
    found = []
    for node in ast.walk(ast.parse(CHECKS.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "control":
            assert len(node.args) == 1 and isinstance(node.args[0], ast.Constant), ast.unparse(node)
            found.append(node.args[0].value)
    assert sorted(found) == sorted(RULES)


def test_each_rule_names_what_it_reads():
    for control, registered in RULES.items():
        assert registered.reads and isinstance(registered.reads, tuple), control
        for name in registered.reads:
            record, _, field = name.partition(".")
            assert re.fullmatch(r"(cityward|logging)_[a-z0-9_]+", record), (control, name)
            if record == "cityward_device" and field:
                assert field in Device.model_fields, (control, name)
            elif record == "cityward_city" and field:
                assert field in City.model_fields, (control, name)
            else:
                assert not field, (control, name)


def test_assess_gives_one_verdict_per_rule_in_control_order(tmp_path):
    host = assess("h", {"cityward_zone": "field"}, tmp_path)
    assert list(host.verdicts) == sorted(RULES)
    assert all(verdict.control == control for control, verdict in host.verdicts.items())
    assert host.verdicts["CW-GOV-01"].status == "failed"


def test_a_control_has_one_rule():
    with pytest.raises(ValueError, match="has a rule already"):
        rule("CW-GOV-01", reads=("cityward_device",))(lambda host: None)
    with pytest.raises(ValueError, match="not a control ID"):
        rule("GOV-1", reads=("cityward_device",))
    assert RULES["CW-GOV-01"].judge.__name__ == "metadata_complete_and_zone_known"
