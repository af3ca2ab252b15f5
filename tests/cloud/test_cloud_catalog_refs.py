"""The catalog and the pack name the same things: every external reference (Checkov, FSBP / Security
Hub, CIS) that policies/controls.yml lists for a CW-NET control appears in the description of a
pack rule of that control, and every control a pack rule names is a catalog control enforced by the
policy pack. No stack run: the pack is built for the example zones policy and read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cityward.cloud import pack
from cityward.zones import load_zones

ROOT = Path(__file__).resolve().parents[2]
CATALOG = {c["id"]: c for c in yaml.safe_load((ROOT / "policies/controls.yml").read_text())["controls"]}
NET = sorted(cid for cid in CATALOG if cid.startswith("CW-NET-"))
RULES = pack.policies(load_zones(ROOT / "policies/zones.yml"))
pytestmark = pytest.mark.control(*NET)


def _control(rule_name: str) -> str:
    return rule_name[:9].upper()


def _names(description: str, rule_id: str) -> bool:
    """The id stands in the text as itself: CloudWatch.1 is not CloudWatch.10, EC2.2 not EC2.21."""
    return re.search(rf"(?<![\w.]){re.escape(rule_id)}(?![\w]|\.\d)", description) is not None


@pytest.mark.parametrize("control", NET)
def test_every_catalog_rule_id_is_named_by_a_rule_of_its_control(control):
    descriptions = [r.description for r in RULES if _control(r.name) == control]
    assert descriptions, f"{control}: no pack rule"
    missing = [rid for rid in CATALOG[control].get("rule_ids") or []
               if not any(_names(d, rid) for d in descriptions)]
    assert missing == [], f"{control}: no rule description names {missing}"


def test_every_control_a_rule_names_is_a_policy_enforced_catalog_control():
    for rule in RULES:
        control = _control(rule.name)
        assert re.fullmatch(r"CW-NET-\d\d", control), rule.name
        assert rule.description.startswith(control), f"{rule.name}: description does not start with {control}"
        assert control in CATALOG, f"{rule.name}: {control} is not in policies/controls.yml"
        kinds = {e["kind"] for e in CATALOG[control].get("enforced_by") or []}
        assert "policy" in kinds, f"{rule.name}: {control} is not enforced_by kind policy in the catalog"


def test_the_id_match_is_exact():
    assert _names("Security Hub CloudWatch.1, CloudWatch.3", "CloudWatch.1")
    assert not _names("Security Hub CloudWatch.10", "CloudWatch.1")
    assert not _names("FSBP EC2.21", "EC2.2")
    assert not _names("Checkov CKV_AWS_53-56", "CKV_AWS_54")
    assert _names("FSBP EC2.2.", "EC2.2")
