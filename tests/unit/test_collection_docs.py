"""ansible-doc documents every role entry point, action and filter of the collection, from the
installed collection (argument_specs, the module stubs' DOCUMENTATION, the filters' sidecar YAML),
and each documented option matches what the plugin accepts: ansible-lint checks task arguments
against the same documentation."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import yaml
from ansible_collections.cityward.hardening.plugins.filter.schema import FilterModule as SchemaFilters
from ansible_collections.cityward.hardening.plugins.filter.zones import FilterModule as ZonesFilters
from local_play import load_action

ROOT = Path(__file__).resolve().parents[2]
DOC = Path(sys.executable).parent / "ansible-doc"
ACTIONS = sorted(p.stem for p in (ROOT / "plugins" / "action").glob("*.py"))
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())


def ansible_doc(*args: str) -> dict:
    # From a folder outside the checkout: the installed collection is what is documented.
    out = subprocess.run([str(DOC), "--json", *args], capture_output=True, text=True, check=True, cwd="/")
    return json.loads(out.stdout)


def test_every_role_entry_point_is_documented_from_its_argument_specs():
    docs = ansible_doc("-t", "role", *(f"cityward.hardening.{role}" for role in ROLES))
    for role in ROLES:
        specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
        documented = docs[f"cityward.hardening.{role}"]["entry_points"]
        assert set(documented) == set(specs), role
        assert all(documented[entry]["short_description"] for entry in documented), role


def test_every_action_has_a_module_stub_whose_options_are_the_actions_arguments():
    docs = ansible_doc(*(f"cityward.hardening.{name}" for name in ACTIONS))
    for name in ACTIONS:
        options = set(docs[f"cityward.hardening.{name}"]["doc"]["options"])
        assert options == set(load_action(name).ActionModule._VALID_ARGS), name


def test_every_filter_is_documented_with_its_parameters():
    filters = {**ZonesFilters().filters(), **SchemaFilters().filters()}
    docs = ansible_doc("-t", "filter", *(f"cityward.hardening.{name}" for name in filters))
    for name, function in filters.items():
        documented = set(docs[f"cityward.hardening.{name}"]["doc"]["options"]) - {"_input"}
        parameters = list(inspect.signature(function).parameters)[1:]  # the first is the piped input
        assert documented == set(parameters), name
