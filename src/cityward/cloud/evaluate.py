"""Evaluate a CrossGuard policy list over planned resources, in-process.

Mirrors what the Pulumi engine does during `pulumi preview --policy-pack`: resource policies see
each resource's inputs; stack policies see all resources with their outputs and the resources each
property depends on. Props are handed over as the engine does: JSON-shaped (numbers are floats)
behind `pulumi_policy.proxy.unknown_checking_proxy`, so a rule reading a value that is unknown on a
first preview raises `UnknownValueError` here as it would there. The engine would then skip the
rule with an advisory note; this evaluation fails closed instead: the policy reports that it
cannot decide, at its own enforcement level. Any other exception a rule raises is an error.
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
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from cityward.cloud.graph import StackResources
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


def resource_args(resource_type: str, props: Mapping[str, Any], urn: str, name: str) -> ResourceValidationArgs:
    """What a resource policy is handed for one resource: its type and (input) props."""
    return ResourceValidationArgs(resource_type, props, urn, name, _options(), None)


def stack_resource(resource_type: str, props: Mapping[str, Any], urn: str, name: str) -> PolicyResource:
    """One resource as a stack policy sees it: (output) props; its dependencies are added after."""
    return PolicyResource(resource_type, props, urn, name, _options(), None, None, [], {})


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


def engine_props(value: Any) -> Any:
    """`value` shaped as the engine's JSON: dicts, lists, and every number a float."""
    if isinstance(value, Mapping):
        return {str(key): engine_props(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [engine_props(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def policy_props(props: Mapping[str, Any]) -> Mapping[str, Any]:
    """Props as a rule receives them: raising UnknownValueError where a value is unknown."""
    return unknown_checking_proxy(engine_props(props))


def stack_resources(resources: Sequence[PlannedResource]) -> list[PolicyResource]:
    """The stack as a stack policy sees it: outputs, and dependencies joined to the resources.

    A StackResources: every rule's Graph over it shares one index (by type, URN, id and ARN)."""
    found = StackResources(stack_resource(r.type, policy_props(r.outputs), r.urn, r.name) for r in resources)
    by_urn = {p.urn: p for p in found}
    for planned, resource in zip(resources, found, strict=True):
        seen: set[str] = set()
        for prop, urns in planned.dependencies.items():
            resource.property_dependencies[prop] = [by_urn[u] for u in urns if u in by_urn]
            for urn in urns:
                if urn in by_urn and urn not in seen:
                    seen.add(urn)
                    resource.dependencies.append(by_urn[urn])
    return found


def evaluate(resources: Sequence[PlannedResource], policies: Iterable[Policy],
             default_level: EnforcementLevel = EnforcementLevel.MANDATORY) -> list[Violation]:
    # built once and shared by every policy: rules only read them
    stack = stack_resources(resources)
    inputs = [policy_props(r.inputs) for r in resources]
    by_urn = {r.urn: r for r in resources}
    violations: list[Violation] = []
    for policy in policies:
        level = policy.enforcement_level or default_level
        if level != EnforcementLevel.DISABLED:
            violations.extend(_evaluate_one(policy, level, resources, inputs, stack, by_urn))
    return violations


def _evaluate_one(policy: Policy, level: EnforcementLevel, resources: Sequence[PlannedResource],
                  inputs: list[Mapping[str, Any]], stack_resources: list[PolicyResource],
                  by_urn: Mapping[str, PlannedResource]) -> list[Violation]:
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
        for r, props in zip(resources, inputs, strict=True):
            _guarded(policy, r.name, policy.validate, resource_args(r.type, props, r.urn, r.name), reporter(r))
    elif isinstance(policy, StackValidationPolicy):
        _guarded(policy, "the stack", policy.validate, StackValidationArgs(stack_resources), reporter(None))
    return found


def _guarded(policy: Policy, target: str, validate: Callable[..., object], args: object,
             report: Callable[..., None]) -> None:
    """Run one validation. A rule that meets an unknown value cannot decide: that is a violation
    (fail closed); any other crash is an error line."""
    try:
        _run(validate(args, report))
    except UnknownValueError as exc:
        report(f"cannot decide at preview: {exc.message}")
    except Exception as exc:
        raise CitywardError(f"policy {policy.name} failed on {target}: {type(exc).__name__}: {exc}") from None
