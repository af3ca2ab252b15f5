"""Read a YAML file into plain data, with errors that name the file and the line.

A key given twice in one mapping is an error: PyYAML would silently keep the last value, and in
a policy or an inventory that hides a mistake.

The input is untrusted (an inventory is edited by many hands), so reading it is bounded before
any value is built: only regular files (a FIFO or a device is refused from stat, never opened
for reading), at most MAX_BYTES, UTF-8 text, nesting at most MAX_DEPTH deep and aliases that
add at most ALIAS_BUDGET nodes when expanded (an alias bomb is refused on the composed node
graph, before it grows). An impossible date (2026-02-30) is an error naming its line."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml
from ansible_collections.cityward.hardening.plugins.plugin_utils.errors import CitywardError

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 50
# Nodes that aliases may add to a document. The repository's own files share a few mappings
# (generated bench inventories, vendor requirements); a bomb adds millions.
ALIAS_BUDGET = 100_000

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys and nesting deeper than MAX_DEPTH."""

    depth = 0

    def compose_node(self, parent, index):
        # The composer recurses once per level: refuse before Python's own recursion limit does.
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nesting deeper than {MAX_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _construct_unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *base', flattened by construct_mapping
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a plain value",
                                                    key_node.start_mark) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


def _construct_timestamp(loader: UniqueKeyLoader, node: yaml.ScalarNode):
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except (ValueError, OverflowError) as exc:  # 2026-02-30: PyYAML raises ValueError, not YAMLError
        raise yaml.constructor.ConstructorError(None, None, f"impossible date or time {node.value!r} ({exc})",
                                                node.start_mark) from None


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)
UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def _label(path: Path, what: str) -> str:
    return f"{what} " if what else ""


def check_regular_file(path: Path, what: str = "") -> None:
    """Refuse, from stat alone (never opened), a path that is not a regular file of at most
    MAX_BYTES: opening a FIFO for reading waits for a writer, a device may never end."""
    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise CitywardError(f"{path}: cannot read {_label(path, what)}({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
        raise CitywardError(f"{path}: refused: {kind}, not a regular file")
    if info.st_size > MAX_BYTES:
        raise CitywardError(f"{path}: refused: {info.st_size} bytes, more than the {MAX_BYTES} allowed")


def read_bounded(path: Path, what: str = "") -> str:
    """The text of a regular file of at most MAX_BYTES of UTF-8; CitywardError otherwise. The file
    is opened non-blocking in case it was swapped for a FIFO after check_regular_file."""
    path = Path(path)
    check_regular_file(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise CitywardError(f"{path}: refused: not a regular file")
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise CitywardError(f"{path}: cannot read {_label(path, what)}({exc.strerror})") from None
    if len(data) > MAX_BYTES:
        raise CitywardError(f"{path}: refused: more than the {MAX_BYTES} bytes allowed")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise CitywardError(f"{path}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x})") from None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _bound_aliases(root: yaml.Node) -> None:
    """Refuse a node graph whose alias expansion is cyclic, deeper than MAX_DEPTH or larger than
    the composed graph by more than ALIAS_BUDGET nodes. Iterative, with sizes memoised per node,
    so a bomb costs as much as its text."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    active: set[int] = set()
    composed = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            kids = _children(node)
            size[key] = 1 + sum(size[id(kid)] for kid in kids)
            depth[key] = 1 + max((depth[id(kid)] for kid in kids), default=0)
            active.discard(key)
            if depth[key] > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"aliases nest deeper than {MAX_DEPTH} levels", node.start_mark)
            continue
        if key in size:
            continue
        if key in active:
            raise yaml.composer.ComposerError(None, None, "an alias refers to a node that contains it",
                                              node.start_mark)
        composed += 1
        active.add(key)
        stack.append((node, True))
        stack.extend((kid, False) for kid in _children(node) if id(kid) not in size)
    if size[id(root)] - composed > ALIAS_BUDGET:
        raise yaml.composer.ComposerError(
            None, None, f"aliases expand to {size[id(root)]} nodes, more than {ALIAS_BUDGET} beyond the "
            f"{composed} written (an alias bomb?)", root.start_mark)


def _yaml_error(path: Path, exc: yaml.YAMLError, text: str = "") -> CitywardError:
    mark = getattr(exc, "problem_mark", None)
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow: no mark
        line = text[:exc.position].count("\n") + 1
        problem = f"unacceptable character #x{exc.character:04x}" if isinstance(exc.character, int) \
            else str(exc.reason)
        return CitywardError(f"{path}: line {line}: invalid YAML: {problem}")
    where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return CitywardError(f"{path}:{where} invalid YAML: {' '.join(str(problem).split())}")


def _compose(text: str, path: Path) -> tuple[UniqueKeyLoader, yaml.Node | None]:
    try:
        loader = UniqueKeyLoader(text)
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc, text) from None
    try:
        node = loader.get_single_node()
        if node is not None:
            _bound_aliases(node)
    except yaml.YAMLError as exc:
        loader.dispose()
        raise _yaml_error(path, exc, text) from None
    return loader, node


def check_yaml_file(path: Path, what: str = "") -> None:
    """Refuse what load_yaml refuses before building values (not a regular file, too large, not
    UTF-8, broken syntax, too deep, an alias bomb) without building them: any tag is accepted,
    e.g. Ansible's !vault. For files another tool (ansible-inventory) reads afterwards."""
    path = Path(path)
    loader, _ = _compose(read_bounded(path, what), path)
    loader.dispose()


def load_yaml(path: Path, what: str = "") -> Any:
    """The file's data; `what` names the kind of file in the error when it cannot be read."""
    path = Path(path)
    loader, node = _compose(read_bounded(path, what), path)
    try:
        return None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # a constructor's own error
        raise CitywardError(f"{path}: invalid YAML: cannot read a value ({type(exc).__name__})") from None
    finally:
        loader.dispose()
