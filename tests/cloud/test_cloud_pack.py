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
