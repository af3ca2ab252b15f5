"""No private API of a dependency in the collection's plugins or in the cityward package: nothing
imported from a private module or by a private name, no underscore attribute reached on another
object (an action plugin's own ActionBase helpers, self._task, self._execute_module ..., are its
protected interface and allowed), and no module-level patching of a dependency. These break on the
dependency's next release; the gate keeps them from coming back."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE = sorted([*(ROOT / "plugins").rglob("*.py"), *(ROOT / "src" / "cityward").rglob("*.py")])
OWN = ("cityward", "ansible_collections.cityward")


def _private(dotted: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in dotted.split("."))


def findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                imported.add((alias.asname or alias.name).split(".")[0])
                if not alias.name.startswith(OWN) and _private(alias.name):
                    found.append(f"line {node.lineno}: imports private module {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and not node.module.startswith(OWN) and node.level == 0:
            for alias in node.names:
                imported.add(alias.asname or alias.name)
                if _private(node.module) or _private(alias.name):
                    found.append(f"line {node.lineno}: imports {alias.name} from private {node.module}")
        elif isinstance(node, ast.Attribute) and _private(node.attr) and not node.attr.startswith("__"):
            owner = node.value
            # self._x is the class's own (or its base's protected) interface; self._x._y is not.
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                found.append(f"line {node.lineno}: reaches the private attribute {node.attr}")
        elif isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                        and target.value.id in imported and target.value.id not in sys.stdlib_module_names:
                    found.append(f"line {node.lineno}: patches {target.value.id}.{target.attr}")
    return found


@pytest.mark.parametrize("path", CODE, ids=[str(p.relative_to(ROOT)) for p in CODE])
def test_no_private_api_of_a_dependency(path):
    assert findings(path) == []


def test_the_gate_finds_each_kind(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from ansible._internal._templating import _template_vars\n"
        "from pulumi.runtime.sync_await import _sync_await\n"
        "from testinfra.utils import ansible_runner\n"
        "class A:\n"
        "    def run(self):\n"
        "        self._remove_tmp_path(self._connection._shell.tmpdir)\n"
        "ansible_runner.get_ansible_host = None\n")
    found = findings(sample)
    assert any("private ansible._internal._templating" in f for f in found)
    assert any("_sync_await" in f for f in found)
    assert any("private attribute _shell" in f for f in found)
    assert any("patches ansible_runner.get_ansible_host" in f for f in found)
    assert not any("_remove_tmp_path" in f or "attribute _connection" in f for f in found)  # self's own
