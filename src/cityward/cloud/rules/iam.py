"""IAM roles people assume (CW-NET-11): an operator role exists, and every role that IAM principals
can assume requires MFA in its trust policy."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs

from cityward.cloud.rules.registry import RuleSet
from cityward.cloud.types import IAM_ROLE
from cityward.cloud.values import is_true, listify

RULES = RuleSet()


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _human_trust_statements(policy: Any) -> list[Mapping[str, Any]]:
    """Allow statements that let IAM principals (people, accounts) assume the role."""
    doc = _json(policy) or {}
    found = []
    for statement in listify(doc.get("Statement")):
        actions = [str(a) for a in listify(statement.get("Action"))]
        principal = statement.get("Principal")
        aws_principal = principal == "*" or (isinstance(principal, Mapping) and "AWS" in principal)
        if statement.get("Effect") == "Allow" and aws_principal and any(
                a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            found.append(statement)
    return found


def _requires_mfa(statement: Mapping[str, Any]) -> bool:
    # Bool, not BoolIfExists: the key is absent for long-term keys, and IfExists would let them in.
    value = (statement.get("Condition") or {}).get("Bool", {}).get("aws:MultiFactorAuthPresent")
    return any(is_true(v) for v in listify(value))


@RULES.resource("cw-net-11-human-roles-require-mfa", control="CW-NET-11", types=(IAM_ROLE,),
                security_hub=("IAM.5", "IAM.19"),
                description="CW-NET-11 (FSBP IAM.5, IAM.19 for roles): a role that IAM principals can assume requires "
                            "aws:MultiFactorAuthPresent true in its trust policy.")
def _role_requires_mfa(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for statement in _human_trust_statements(args.props.get("assumeRolePolicy")):
        if not _requires_mfa(statement):
            report(f"CW-NET-11: role {args.name} can be assumed by {statement.get('Principal')} without MFA "
                   "(Condition Bool aws:MultiFactorAuthPresent true)")


def _operator_role_present(props: Mapping[str, Any]) -> bool:
    statements = _human_trust_statements(props.get("assumeRolePolicy"))
    return bool(statements) and all(_requires_mfa(s) for s in statements)


RULES.declared("cw-net-11-operator-role-declared", control="CW-NET-11", resource_type=IAM_ROLE,
               label="operator role assumable by IAM principals with MFA", ok=_operator_role_present,
               security_hub=("IAM.5", "IAM.19"),
               description="CW-NET-11 (FSBP IAM.5, IAM.19): the stack declares an operator role whose trust policy "
                           "requires MFA.")
