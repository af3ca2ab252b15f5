"""The catalog and the pack name the same external checks, read from data on both sides: for every
control, policies/controls.yml's `rule_ids` are exactly the references (Checkov, Security Hub)
its pack rules declare (cityward.cloud.rules.RULES); every rule's control is a catalog control
enforced by the policy pack; every implemented control that names rule_ids has a rule. The
descriptions stay people's text, but name every reference their rule declares."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from cityward.catalog import load_catalog
from cityward.cloud.rules import RULES, Rule

CATALOG = {c.id: c for c in load_catalog().controls}
NET = sorted(cid for cid in CATALOG if cid.startswith("CW-NET-"))
pytestmark = pytest.mark.control(*NET)


def _references(rules: list[Rule]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for rule in rules:
        found[rule.control].update(rule.references)
    return found


def _names(description: str, rule_id: str) -> bool:
    """The id stands in the text as itself: CloudWatch.1 is not CloudWatch.10, EC2.2 not EC2.21."""
    return re.search(rf"(?<![\w.]){re.escape(rule_id)}(?![\w]|\.\d)", description) is not None


@pytest.mark.parametrize("control", sorted(CATALOG))
def test_catalog_rule_ids_are_the_references_of_the_controls_rules(control):
    declared = _references(RULES).get(control, set())
    listed = set(CATALOG[control].rule_ids)
    assert listed == declared, (
        f"{control}: in policies/controls.yml rule_ids but declared by no rule of the pack: "
        f"{sorted(listed - declared)}; declared by a rule but not in rule_ids: {sorted(declared - listed)}")


def test_every_rule_enforces_a_policy_enforced_catalog_control():
    for rule in RULES:
        assert rule.control in CATALOG, f"{rule.name}: {rule.control} is not in policies/controls.yml"
        kinds = {e.kind for e in CATALOG[rule.control].enforced_by}
        assert "policy" in kinds, f"{rule.name}: {rule.control} is not enforced_by kind policy in the catalog"
        assert rule.name.startswith(rule.control.lower() + "-") and rule.description.startswith(rule.control)
        assert rule.policy.name == rule.name


def test_every_implemented_control_with_rule_ids_has_a_rule():
    controls = {rule.control for rule in RULES}
    missing = [c.id for c in CATALOG.values() if c.status == "implemented" and c.rule_ids and c.id not in controls]
    assert missing == []


def test_references_are_unique_and_named_in_the_description():
    for rule in RULES:
        assert len(rule.references) == len(set(rule.references)), rule.name
        unnamed = [r for r in rule.references if not _names(rule.description, r)]
        assert unnamed == [], f"{rule.name}: its description does not name {unnamed}"


def test_a_disagreement_is_reported():
    rule = next(r for r in RULES if r.references)
    other = next(r for r in RULES if r.control != rule.control)
    moved = Rule(name=f"{other.control.lower()}-moved", control=other.control, description="",
                 validate=rule.validate, stack=rule.stack, types=rule.types, checkov=rule.checkov,
                 security_hub=rule.security_hub)
    found = _references([r for r in RULES if r is not rule] + [moved])
    assert set(rule.references) <= found[other.control]
    assert set(CATALOG[rule.control].rule_ids) != found[rule.control]


def test_the_id_match_is_exact():
    assert _names("Security Hub CloudWatch.1, CloudWatch.3", "CloudWatch.1")
    assert not _names("Security Hub CloudWatch.10", "CloudWatch.1")
    assert not _names("FSBP EC2.21", "EC2.2")
    assert not _names("Checkov CKV_AWS_53-56", "CKV_AWS_54")
    assert _names("FSBP EC2.2.", "EC2.2")
