"""No import cycle anywhere in the cityward package, read statically: every module under
src/cityward parsed with ast, every `import` and `from ... import` in it (at module level, in a
function, under `if TYPE_CHECKING:`) an edge of the graph, with the package __init__ modules an
import runs on the way (issue 21)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "cityward"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted((SRC / PACKAGE).rglob("*.py"))}


def _imported(name: str, path: Path, modules: dict[str, Path]):
    """(module imported, line) for every import statement of the module, intra-package only."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = alias.name
                while target and target not in modules:  # `import a.b.attr` -> a.b
                    target = target.rpartition(".")[0]
                if target:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:  # from package import submodule
                    yield f"{source}.{alias.name}", node.lineno
                elif source in modules:
                    yield source, node.lineno


def import_graph() -> tuple[dict[str, dict[str, str]], dict[str, Path]]:
    """{module: {imported module: 'file:line'}}: the explicit imports, and the package __init__
    modules each one runs first (except the importer's own packages, already being imported)."""
    modules = _modules()
    graph: dict[str, dict[str, str]] = {name: {} for name in modules}
    for name, path in modules.items():
        own = {name.rsplit(".", i)[0] for i in range(name.count(".") + 1)}
        for target, line in _imported(name, path, modules):
            parts = target.split(".")
            for depth in range(1, len(parts) + 1):
                step = ".".join(parts[:depth])
                if step in modules and step not in own:
                    graph[name].setdefault(step, f"{path.relative_to(SRC.parent)}:{line}")
    return graph, modules


def cycles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """One cycle (a list of modules, the first repeated at the end) per strongly connected group."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(start: str) -> None:  # Tarjan's algorithm, iterative
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            advanced = False
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1 or node in graph[node]:
                    groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    found = []
    for group in groups:
        start = min(group)
        # the shortest way back to start inside the group
        paths = {start: [start]}
        queue = [start]
        while queue:
            node = queue.pop(0)
            for nxt in sorted(graph[node]):
                if nxt == start:
                    found.append(paths[node] + [start])
                    queue = []
                    break
                if nxt in group and nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    queue.append(nxt)
    return sorted(found)


def test_the_graph_sees_every_kind_of_import():
    graph, modules = import_graph()
    assert len(modules) > 50 and "cityward.audit.collect" in modules
    assert "cityward.audit.model" in graph["cityward.audit.collect"]  # module level, absolute
    assert "cityward.audit.collect" in graph["cityward.audit_cmd"]  # inside a function
    assert "cityward.cloud.network_config" in graph["cityward.cloud.access"]  # under TYPE_CHECKING
    assert "cityward.checks" in graph["cityward.audit.collect"]  # the package __init__ an import runs


def test_no_import_cycle_in_the_package():
    graph, _ = import_graph()
    found = cycles(graph)
    lines = [" -> ".join(cycle) + "\n    " + "\n    ".join(
        f"{a} -> {b}  ({graph[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False)) for cycle in found]
    assert not found, "import cycles in the cityward package:\n" + "\n".join(lines)


def test_the_finder_finds_a_cycle():
    graph = {"a": {"b": "a.py:1"}, "b": {"c": "b.py:1"}, "c": {"a": "c.py:1"}, "d": {"a": "d.py:1"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b": ""}, "b": {}}) == []
