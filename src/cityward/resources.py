"""Where cityward's data is, wherever it is installed: found by importlib.resources, never from the
location of a source file or a checkout.

- The collection cityward.hardening (roles, plugins, playbooks, and the control catalog in its
  policies/): the wheel installs it as `ansible_collections.cityward.hardening`, where Ansible
  finds it too; in a checkout, scripts/bootstrap.sh links the checkout there.
- The control checks the audit runs: the package cityward.checks.
- Podman's settings (data/containers.conf), for every Podman call: the lab's, Molecule's, and the
  audit's checks reaching a host over the podman connection.
"""

from __future__ import annotations

import importlib.util
import os
from importlib.resources import files
from pathlib import Path

from cityward.errors import CitywardError

COLLECTION = "ansible_collections.cityward.hardening"


def collection_root() -> Path:
    """The folder of the installed collection cityward.hardening (galaxy.yml or MANIFEST.json in it)."""
    spec = importlib.util.find_spec(COLLECTION)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise CitywardError("the collection cityward.hardening is not installed next to the cityward package: "
                            "reinstall the cityward wheel (it carries the collection)")
    return Path(locations[0])


def policies_dir() -> Path:
    """The control catalog (controls.yml, sources.yml, references.yml) of the installed collection."""
    return collection_root() / "policies"


def checks_dir() -> Path:
    """The control checks (testinfra modules) that `cityward audit` and Molecule verify run."""
    return Path(str(files("cityward.checks")))


def containers_conf() -> Path:
    """Path of the containers.conf shipped with cityward."""
    return Path(str(files("cityward") / "data" / "containers.conf"))


def podman_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every Podman call (ours, Molecule's, Ansible's) runs with: `base` (this
    process's by default) with cityward's containers.conf unless one is set."""
    env = dict(os.environ if base is None else base)
    env.setdefault("CONTAINERS_CONF", str(containers_conf()))
    return env
