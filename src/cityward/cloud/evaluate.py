"""Evaluate a CrossGuard policy list over planned resources, in-process.

Mirrors what the Pulumi engine does during `pulumi preview --policy-pack`: resource policies see
each resource's inputs; stack policies see all resources with their outputs, read-only as the
engine hands them over. The plan runs the program with preview=False, so every value is known: no
rule is ever "not applicable" for want of a value, and any exception a rule raises is reported.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from cityward.cloud.mocks import PlannedResource
from cityward.errors import CitywardError


@dataclass(frozen=True)
class Violation:
    policy: str
    description: str
    level: str  # mandatory | advisory | remediate
    message: str
    resource_type: str | None = None
    resource_name: str | None = None
    urn: str | None = None

    @property
    def mandatory(self) -> bool:
        return self.level in (EnforcementLevel.MANDATORY.value, EnforcementLevel.REMEDIATE.value)


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False, ignore_changes=[], delete_before_replace=None, aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[],
    )


def _run(result) -> None:
    if inspect.isawaitable(result):
        asyncio.run(_await(result))


async def _await(result) -> None:
    await result


def read_only(value: Any) -> Any:
    """Props as the engine hands them to a rule: mappings and sequences a rule cannot change."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: read_only(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(read_only(item) for item in value)
    return value


def evaluate(resources: Sequence[PlannedResource], policies: Iterable[Policy],
             default_level: EnforcementLevel = EnforcementLevel.MANDATORY) -> list[Violation]:
    stack_resources = [
        PolicyResource(r.type, read_only(r.outputs), r.urn, r.name, _options(), None, None, [], {})
        for r in resources
    ]
    violations: list[Violation] = []
    for policy in policies:
        level = policy.enforcement_level or default_level
        if level != EnforcementLevel.DISABLED:
            violations.extend(_evaluate_one(policy, level, resources, stack_resources))
    return violations


def _evaluate_one(policy: Policy, level: EnforcementLevel, resources: Sequence[PlannedResource],
                  stack_resources: list[PolicyResource]) -> list[Violation]:
    by_urn = {r.urn: r for r in resources}
    found: list[Violation] = []

    def reporter(resource: PlannedResource | None) -> Callable[..., None]:
        def report(message: str, urn: str | None = None) -> None:
            target = resource or by_urn.get(urn or "")
            found.append(Violation(
                policy=policy.name, description=policy.description, level=level.value, message=message,
                resource_type=target.type if target else None, resource_name=target.name if target else None,
                urn=target.urn if target else urn,
            ))

        return report

    if isinstance(policy, ResourceValidationPolicy):
        for r in resources:
            args = ResourceValidationArgs(r.type, read_only(r.inputs), r.urn, r.name, _options(), None)
            _guarded(policy, r.name, policy.validate, args, reporter(r))
    elif isinstance(policy, StackValidationPolicy):
        _guarded(policy, "the stack", policy.validate, StackValidationArgs(stack_resources), reporter(None))
    return found


def _guarded(policy: Policy, target: str, validate: Callable[..., object], *args: object) -> None:
    """Run one validation; a crashing rule is an error line."""
    try:
        _run(validate(*args))
    except Exception as exc:
        raise CitywardError(f"policy {policy.name} failed on {target}: {type(exc).__name__}: {exc}") from None
