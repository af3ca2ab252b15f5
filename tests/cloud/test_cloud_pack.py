"""The pack as a whole: every rule is mandatory, named after its control, and some test expects it
to fire (a rule no test ever sees refuse anything could be a check that cannot fail)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pulumi_policy import EnforcementLevel

from cityward.catalog import load_catalog
from cityward.cloud import pack

HERE = Path(__file__).resolve().parent


def _expected_in_tests() -> set[str]:
    """String literals of the cloud tests: where a test names the policy it expects to fire."""
    found: set[str] = set()
    for path in HERE.glob("test_*.py"):
        if path.name == Path(__file__).name:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


@pytest.mark.control("CW-NET-13")
def test_every_rule_is_mandatory_named_for_a_catalog_control_and_expected_by_a_test(stack_inputs):
    policies = pack.policies(stack_inputs.zones)
    names = [p.name for p in policies]
    assert len(names) == len(set(names)), "two rules share a name"
    catalog = {c.id for c in load_catalog().controls}
    expected = _expected_in_tests()
    for policy in policies:
        assert (policy.enforcement_level or pack.ENFORCEMENT_LEVEL) == EnforcementLevel.MANDATORY, policy.name
        match = re.match(r"cw-net-(\d\d)-", policy.name)
        assert match, policy.name
        control = f"CW-NET-{match.group(1)}"
        assert control in catalog and policy.description.startswith(control), policy.name
        assert policy.name in expected, f"no test expects {policy.name} to refuse anything"


# --- the registry ----------------------------------------------------------------------------


@pytest.mark.control("CW-NET-13", "CW-NET-16")
def test_the_pack_is_the_registry_in_order(stack_inputs):
    from cityward.cloud.rules import POLICIES, RULES, Scope

    names = [rule.name for rule in RULES]
    assert [p.name for p in pack.policies(stack_inputs.zones)] == [n for r, n in zip(RULES, names, strict=True)
                                                                  if r.scope is not Scope.NO_ZONES]
    assert [p.name for p in pack.policies(None)] == [n for r, n in zip(RULES, names, strict=True)
                                                     if r.scope is not Scope.ZONES]
    assert [p.name for p in POLICIES] == [r.name for r in RULES if r.scope is Scope.ANY]
    # a policy every pack shares is one object; a zone rule is built anew for each zones policy
    assert pack.policies(None)[0] is POLICIES[0]


@pytest.mark.control("CW-NET-13", "CW-NET-16")
def test_a_zone_rule_given_no_zones_policy_refuses_every_plan(planned):
    from cityward.cloud.evaluate import evaluate
    from cityward.cloud.rules import RULES, Scope

    zoned = [rule for rule in RULES if rule.scope is Scope.ZONES]
    found = evaluate(planned.resources, [rule.policy for rule in zoned])
    assert [v.policy for v in found] == [rule.name for rule in zoned]
    assert all(v.mandatory and v.message.startswith(f"{v.policy[:9].upper()}: rule {v.policy} is built for a "
                                                    "zones policy") for v in found)


def test_a_rule_is_named_for_its_control_and_a_resource_rule_for_its_types():
    from cityward.cloud.rules import Rule

    with pytest.raises(ValueError, match="must start with its control"):
        Rule(name="cw-net-03-x", control="CW-NET-04", description="CW-NET-04", validate=print, stack=True)
    with pytest.raises(ValueError, match="name the resource types"):
        Rule(name="cw-net-03-x", control="CW-NET-03", description="CW-NET-03", validate=print, stack=False)
