"""Where the stack program and the policy pack live, and how to load them from the checkout.

stacks/ and policies/ sit at the repo root, outside the installed package, so their modules are
loaded from their paths (importlib) rather than imported by name.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from cityward.errors import CitywardError
from cityward.paths import project_root
from cityward.yamlfile import load_yaml

STACK_DIR = Path("stacks") / "segmented_network"
PACK_DIR = Path("policies") / "pulumi"


def stack_dir(root: Path | None = None) -> Path:
    return (root or project_root()) / STACK_DIR


def pack_dir(root: Path | None = None) -> Path:
    return (root or project_root()) / PACK_DIR


def load_module(path: Path, name: str) -> ModuleType:
    """Import a file by path under `name` (re-used while the file is unchanged)."""
    path = path.resolve()
    if not path.is_file():
        raise CitywardError(f"{path}: missing (is CITYWARD_HOME the cityward checkout?)")
    stamp = (str(path), path.stat().st_mtime_ns)
    cached = sys.modules.get(name)
    if cached is not None and getattr(cached, "__cityward_stamp__", None) == stamp:
        return cached
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CitywardError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    module.__cityward_stamp__ = stamp
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except CitywardError:
        raise
    except Exception as exc:  # a broken program file: one line, not a traceback
        sys.modules.pop(name, None)
        raise CitywardError(f"{path}: cannot be imported ({type(exc).__name__}: {exc})") from None
    return module


def load_network(root: Path | None = None) -> ModuleType:
    return load_module(stack_dir(root) / "network.py", "cityward_stack_segmented_network")


def load_rules(root: Path | None = None) -> ModuleType:
    return load_module(pack_dir(root) / "cityward_rules.py", "cityward_policy_rules")


def available_stacks(directory: Path) -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in directory.glob("Pulumi.*.yaml"))


def read_stack_config(directory: Path, stack: str, project: str) -> tuple[dict[str, Any], Any, Path]:
    """(project config values without the 'project:' prefix, aws:region, file) of Pulumi.<stack>.yaml."""
    path = directory / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = ", ".join(available_stacks(directory)) or "none"
        raise CitywardError(f"{path}: no such stack config (stacks here: {known})")
    data = load_yaml(path) or {}
    config = data.get("config", {}) if isinstance(data, dict) else None
    if not isinstance(config, dict):
        raise CitywardError(f"{path}: field 'config': expected a mapping of 'namespace:key' to values")
    values: dict[str, Any] = {}
    for key, value in config.items():
        namespace, _, name = str(key).partition(":")
        if isinstance(value, dict) and "secure" in value:
            raise CitywardError(f"{path}: config '{key}': secrets cannot be read offline; this stack needs none")
        if namespace == project:
            values[name] = value
        elif namespace not in ("aws", "pulumi"):
            raise CitywardError(f"{path}: config '{key}': unknown namespace '{namespace}' (expected {project} or aws)")
    return values, config.get("aws:region"), path
