"""The offline plan: run the segmented network program (cityward.cloud.network) with a Pulumi
project's stack config under mocks, then the policy pack's rules over it.

Two modes: a plan of an existing stack (every value known), or `first_preview`, the way a first
`pulumi preview` of a new stack sees it (ids, ARNs and computed outputs unknown)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from cityward.cloud import network, pack, project
from cityward.cloud.evaluate import Violation, evaluate
from cityward.cloud.mocks import PlannedResource, collector_paused, run_program
from cityward.zones import ZonesPolicy, load_zones


@dataclass
class Plan:
    stack: str
    config_file: Path
    resources: list[PlannedResource]
    violations: list[Violation]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    first_preview: bool = False

    @property
    def mode(self) -> str:
        return "first-preview" if self.first_preview else "known"

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.mandatory]


@dataclass
class StackInputs:
    """Everything the program needs, read and validated before it runs."""

    network: ModuleType
    config: Any  # network.NetworkConfig
    zones: ZonesPolicy
    config_file: Path


def load_stack(stack: str = "example", project_folder: str | Path | None = None) -> StackInputs:
    directory = project.project_dir(project_folder)
    values, region, config_file = project.read_stack_config(directory, stack, network.PROJECT)
    config = network.NetworkConfig.from_values(values, region=region, source=str(config_file), base_dir=directory)
    return StackInputs(network, config, load_zones(config.zones_file), config_file)


def run_stack(inputs: StackInputs, extend: Callable[[Any], None] | None = None, stack: str = "example",
              first_preview: bool = False):
    """Register the stack's resources under mocks; `extend(net)` may add more (tests' broken variants).

    `first_preview`: as a first `pulumi preview` sees them, every id and computed output unknown."""

    def program() -> None:
        net = inputs.network.build(inputs.zones, inputs.config)
        if extend is not None:
            extend(net)

    return run_program(program, project=inputs.network.PROJECT, stack=stack, region=inputs.config.region,
                       source=inputs.network.__name__, first_preview=first_preview)


def plan(stack: str = "example", project_folder: str | Path | None = None, first_preview: bool = False) -> Plan:
    started = time.perf_counter()
    with collector_paused():
        inputs = load_stack(stack, project_folder)
        run = run_stack(inputs, stack=stack, first_preview=first_preview)
        violations = evaluate(run.resources, pack.policies(inputs.zones), pack.ENFORCEMENT_LEVEL)
    # the mock monitor answers on a thread pool, so registration order varies: sorted, plans diff
    resources = sorted(run.resources, key=lambda r: r.urn)
    return Plan(stack, inputs.config_file, resources, violations, run.warnings, time.perf_counter() - started,
                first_preview)
