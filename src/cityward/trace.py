"""Where each control ID is enforced and tested, read from structure, never from free text.

Enforcement: the control tags of Ansible tasks and handlers (parsed YAML), and the three
registries in code: the policy pack's rules (cityward.cloud.rules.RULES), the governance rules
(cityward.governance.RULES) and the audit's evidence collectors (cityward.audit.collect.EVIDENCE).
Tests: `pytest.mark.control("CW-...")` calls (parsed Python). A comment, a docstring or a message
that names an ID counts for nothing. The traceability gate (tests/unit/test_traceability.py) and
`cityward controls --trace` read it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cityward.catalog import CONTROL_ID

# Where tests marked with control IDs live: the checks the audit ships, and the repo's tests.
TEST_TREES = ("src/cityward/checks", "tests")
ANSIBLE_YAML = ("roles/*/tasks/*.yml", "roles/*/handlers/*.yml", "playbooks/*.yml")


@dataclass
class Trace:
    enforced: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    tested: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # A task tagged with a control must say so in its name too ("CW-SSH-01 | ...").
    misnamed: list[str] = field(default_factory=list)


def _walk_tasks(node, path: str, trace: Trace) -> None:
    if isinstance(node, list):
        for item in node:
            _walk_tasks(item, path, trace)
        return
    if not isinstance(node, dict):
        return
    tags = node.get("tags", [])
    tags = [tags] if isinstance(tags, str) else tags or []
    ids = [t for t in tags if isinstance(t, str) and CONTROL_ID.fullmatch(t)]
    name = str(node.get("name", ""))
    for control_id in ids:
        trace.enforced[control_id].add(f"{path}: {name or '(unnamed)'}")
    is_task = not any(k in node for k in ("block", "tasks", "roles", "hosts"))
    if ids and is_task and not any(name.startswith(i) or f" {i} " in name for i in ids):
        trace.misnamed.append(f"{path}: task {name!r} is tagged {', '.join(ids)} but its name does not name it")
    for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
        _walk_tasks(node.get(key), path, trace)


def _marker_ids(tree: ast.AST):
    """Yield the string arguments of every `pytest.mark.control(...)` / `mark.control(...)` call."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "control" and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == "mark"):
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    yield arg.value, node.lineno


def registered() -> list[tuple[str, str]]:
    """(control ID, where) for every rule and evidence collector the code registers."""
    # imported here: the pack pulls in pulumi_policy, which `cityward controls` without --trace never needs
    from cityward.audit.collect import EVIDENCE
    from cityward.cloud.rules import RULES as PACK_RULES
    from cityward.governance import RULES as GOVERNANCE_RULES

    found = [(rule.control, f"policy rule {rule.policy.name}") for rule in PACK_RULES]
    found += [(rule.control, f"governance rule {rule.judge.__module__}.{rule.judge.__name__}")
              for rule in GOVERNANCE_RULES.values()]
    found += [(control, f"audit evidence {collector.__module__}.{collector.__name__}")
              for control, collector in EVIDENCE.items()]
    return found


def collect(root: Path, registries: list[tuple[str, str]] | None = None) -> Trace:
    """The trace of the tree at `root`; `registries` as `registered()` gives them (its default)."""
    trace = Trace()
    for control_id, where in registered() if registries is None else registries:
        trace.enforced[control_id].add(where)
    for pattern in ANSIBLE_YAML:
        for path in sorted(root.glob(pattern)):
            rel = str(path.relative_to(root))
            _walk_tasks(yaml.safe_load(path.read_text(encoding="utf-8")), rel, trace)
    for path in sorted(path for tree in TEST_TREES for path in (root / tree).rglob("*.py")):
        rel = str(path.relative_to(root))
        for control_id, line in _marker_ids(ast.parse(path.read_text(encoding="utf-8"))):
            trace.tested[control_id].add(f"{rel}:{line}")
    return trace


def problems(catalog, trace: Trace) -> list[str]:
    """Everything that breaks traceability; empty when the catalog and the tree agree."""
    found = []
    known = catalog.ids
    for item in catalog.source_items:
        if not any(item.id in c.sources for c in catalog.controls):
            found.append(f"source item {item.id} ({item.title}) has no control")
    for control in catalog.controls:
        if control.status != "implemented":
            continue
        if not trace.enforced.get(control.id):
            found.append(f"{control.id} is implemented but no task tag or registered rule enforces it")
        if not trace.tested.get(control.id):
            found.append(f"{control.id} is implemented but no test is marked @pytest.mark.control({control.id!r})")
    for kind, table in (("enforcement", trace.enforced), ("test marker", trace.tested)):
        for control_id, places in sorted(table.items()):
            if control_id not in known:
                found.append(f"{kind} names unknown control {control_id}: {', '.join(sorted(places))}")
    found += trace.misnamed
    return found
