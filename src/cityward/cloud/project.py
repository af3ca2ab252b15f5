"""The Pulumi project a plan reads: its folder (Pulumi.yaml and Pulumi.<stack>.yaml), and the stack
config in it. The program (cityward.cloud.network) and the policy rules (cityward.cloud.rules) are
part of the package; a project folder only names them (its __main__.py) and configures them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cityward.errors import CitywardError
from cityward.yamlfile import load_yaml

# Where the plan looks when no --project is given: this checkout's example project, else the
# current folder (a city's own Pulumi project).
DEFAULT_PROJECTS = (Path("stacks") / "segmented_network", Path("."))


def project_dir(given: str | Path | None = None) -> Path:
    """The Pulumi project folder: `given`, else the first default holding a Pulumi.yaml."""
    candidates = [Path(given)] if given else list(DEFAULT_PROJECTS)
    for candidate in candidates:
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    where = candidates[0] if given else "the current folder or stacks/segmented_network"
    raise CitywardError(f"{where}: no Pulumi.yaml; pass --project DIR, the folder of the stack's Pulumi project")


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
