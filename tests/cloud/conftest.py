"""Fixtures for the cloud tests: the stack program run under Pulumi mocks, and the policy pack.

Every run resets Pulumi's process-global mock settings (cityward.cloud.mocks.run_program), so
tests do not depend on each other's order.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from cityward.cloud import rules as cloud_rules
from cityward.cloud.evaluate import Violation, evaluate
from cityward.cloud.mocks import PlannedResource
from cityward.cloud.plan import load_stack, run_stack

ROOT = Path(__file__).resolve().parents[2]


class Planned:
    """The resources of one mocked run, with lookups by type, name and id."""

    def __init__(self, resources: list[PlannedResource]):
        self.resources = resources

    def of(self, kind: str) -> list[PlannedResource]:
        """Resources whose type token ends with ':<kind>' (e.g. 'Subnet', 'SecurityGroupIngressRule')."""
        return [r for r in self.resources if r.type.rsplit(":", 1)[-1] == kind]

    def one(self, kind: str) -> PlannedResource:
        found = self.of(kind)
        assert len(found) == 1, f"expected one {kind}, found {[r.name for r in found]}"
        return found[0]

    def named(self, name: str) -> PlannedResource:
        return next(r for r in self.resources if r.name == name)

    def by_id(self, resource_id: str) -> PlannedResource:
        return next(r for r in self.resources if r.id == resource_id)

    def tagged(self, kind: str, tag: str, value: str) -> list[PlannedResource]:
        return [r for r in self.of(kind) if (r.outputs.get("tags") or {}).get(tag) == value]


@pytest.fixture(scope="session")
def rules():
    return cloud_rules


@pytest.fixture(scope="session")
def stack_inputs():
    return load_stack("example")


@pytest.fixture(scope="session", autouse=True)
def planned(stack_inputs) -> Planned:
    """The example stack, run once first: tests only read it."""
    with warnings.catch_warnings():
        # pulumi_aws warns about its own deprecated aliases when its modules load; not ours to fix
        warnings.simplefilter("ignore", DeprecationWarning)
        return Planned(run_stack(stack_inputs).resources)


@pytest.fixture(scope="session")
def planned_preview(stack_inputs, planned) -> Planned:
    """The example stack as a first `pulumi preview` sees it: ids and computed outputs unknown."""
    return Planned(run_stack(stack_inputs, first_preview=True).resources)


@pytest.fixture
def run_variant(stack_inputs) -> Callable[..., Planned]:
    """Run the example stack, optionally with other zones and extra resources declared after it,
    optionally as a first preview sees it."""

    def run(zones=None, extend=None, first_preview: bool = False) -> Planned:
        inputs = stack_inputs if zones is None else type(stack_inputs)(
            stack_inputs.network, stack_inputs.config, zones, stack_inputs.config_file)
        return Planned(run_stack(inputs, extend=extend, first_preview=first_preview).resources)

    return run


@pytest.fixture
def check(rules) -> Callable[[list[PlannedResource]], list[Violation]]:
    return lambda resources: evaluate(resources, rules.POLICIES, rules.ENFORCEMENT_LEVEL)


@pytest.fixture
def checkout(tmp_path, monkeypatch) -> Path:
    """A copy of the example Pulumi project and its zones policy, as the current folder, for tests
    that edit its files (the plan reads ./stacks/segmented_network when no --project is given)."""
    for rel in ("policies/zones.yml", "stacks/segmented_network/Pulumi.yaml",
                "stacks/segmented_network/Pulumi.example.yaml",
                "inventories/example-city/records/incident-contacts.yml"):
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, target)
    monkeypatch.chdir(tmp_path)
    return tmp_path
