"""The catalog and the pack name the same external checks, read from data on both sides: for every
control, policies/controls.yml's `rule_ids` are exactly the references (Checkov, Security Hub)
its pack rules declare (cityward.cloud.rules.RULES); every rule's control is a catalog control
enforced by the policy pack; every implemented control that names rule_ids has a rule. The
descriptions stay people's text, but name every reference their rule declares, and the CIS AWS
Foundations recommendations a description names ("CIS AWS Foundations 3.5 in v1.4.0, 3.3 in
v3.0.0") are exactly its rule's `cis` data ("v1.4.0:3.5", "v3.0.0:3.3")."""

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


# "CIS AWS Foundations 4.2, 4.10-4.14 in v1.4.0, 3.3 in v3.0.0": groups of recommendations (or
# ranges of them), each group followed by the benchmark version it numbers them in.
_CIS_CLAUSE = re.compile(r"CIS AWS Foundations (?=\d)([^;)]*)")
_CIS_NUMBER = r"\d+(?:\.\d+)+"
_CIS_GROUP = re.compile(rf"((?:{_CIS_NUMBER}(?:-{_CIS_NUMBER})?, )*{_CIS_NUMBER}(?:-{_CIS_NUMBER})?) in "
                        r"(v\d+\.\d+\.\d+)")
# Any CIS mention that names a number before the clause ends: each must be a clause read above.
_CIS_MENTION = re.compile(r"\bCIS\b[^;():]*?(?<![\w.])\d+\.\d+")
_CIS_ENTRY = re.compile(r"v\d+\.\d+\.\d+:\d+(?:\.\d+)+")


def _expand(recommendation: str) -> list[str]:
    """A range, "4.10-4.14", is 4.10, 4.11, 4.12, 4.13, 4.14; one recommendation, "3.5", is itself."""
    if "-" not in recommendation:
        return [recommendation]
    first, last = recommendation.split("-")
    prefix, _, low = first.rpartition(".")
    last_prefix, _, high = last.rpartition(".")
    assert prefix == last_prefix and int(low) < int(high), f"unreadable CIS range {recommendation}"
    return [f"{prefix}.{n}" for n in range(int(low), int(high) + 1)]


def _cis_named(description: str) -> list[str]:
    """The CIS recommendations the description names, as "<version>:<recommendation>"."""
    named: list[str] = []
    for clause in _CIS_CLAUSE.findall(description):
        groups = list(_CIS_GROUP.finditer(clause))
        assert ", ".join(g.group(0) for g in groups) == clause.strip(), f"unreadable CIS reference: {clause!r}"
        for group in groups:
            version = group.group(2)
            named += [f"{version}:{n}" for item in group.group(1).split(", ") for n in _expand(item)]
    assert len(_CIS_MENTION.findall(description)) == len(_CIS_CLAUSE.findall(description)), (
        f"a CIS recommendation is named in a phrasing this test cannot read: {description!r}")
    return named


def test_cis_data_is_what_the_description_names():
    for rule in RULES:
        named = _cis_named(rule.description)
        assert len(named) == len(set(named)), f"{rule.name}: its description names a CIS recommendation twice"
        assert len(rule.cis) == len(set(rule.cis)), f"{rule.name}: a CIS recommendation is declared twice"
        assert set(rule.cis) == set(named), (
            f"{rule.name}: named in its description but not in cis: {sorted(set(named) - set(rule.cis))}; "
            f"in cis but not named in its description: {sorted(set(rule.cis) - set(named))}")
    assert any(rule.cis for rule in RULES)


def test_cis_entries_are_version_and_recommendation():
    for rule in RULES:
        malformed = [c for c in rule.cis if not _CIS_ENTRY.fullmatch(c)]
        assert malformed == [], f"{rule.name}: CIS entries not written \"v1.4.0:3.5\": {malformed}"
        assert not set(rule.cis) & set(rule.references), f"{rule.name}: CIS numbers are not catalog rule_ids"


def test_a_malformed_cis_entry_is_refused():
    with pytest.raises(ValueError, match="v1.4.0:3.5"):
        Rule(name="cw-net-14-x", control="CW-NET-14", description="CW-NET-14", validate=print, stack=True,
             cis=("3.5 in v1.4.0",))


def test_the_cis_reading():
    assert _cis_named("CW-NET-15 (CIS AWS Foundations 3.6 in v1.4.0, 3.4 in v3.0.0; FSBP CloudTrail.7)") == [
        "v1.4.0:3.6", "v3.0.0:3.4"]
    assert _cis_named("X (CIS AWS Foundations 4.2, 4.10-4.12 in v1.4.0; Security Hub CloudWatch.3)") == [
        "v1.4.0:4.2", "v1.4.0:4.10", "v1.4.0:4.11", "v1.4.0:4.12"]
    assert _cis_named("subscribed to CIS AWS Foundations Benchmark (v1.4.0+).") == []
    assert _cis_named("X (no Checkov / FSBP / CIS AWS equivalent)") == []
    with pytest.raises(AssertionError, match="cannot read"):
        _cis_named("X (CIS 4.16; Security Hub SecurityHub.1)")
    with pytest.raises(AssertionError, match="unreadable"):
        _cis_named("X (CIS AWS Foundations 4.16 of v3.0.0)")
