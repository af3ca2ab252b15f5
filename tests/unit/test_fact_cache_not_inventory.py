"""Facts an earlier run cached are not inventory: `cityward check` and the audit read an inventory
through `list_inventory`, which must not see them (ansible-inventory merges a fact cache into the
host variables, and a role's record of what it applied, a banner's text among it, would then be
judged as if a city had typed it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cityward.inventory import list_inventory


def test_a_cached_fact_never_reaches_the_inventory(tmp_path, monkeypatch):
    inventory = tmp_path / "city"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text("all:\n  hosts:\n    plc-01:\n      ansible_connection: local\n")
    cache = tmp_path / "facts"
    monkeypatch.setenv("ANSIBLE_CACHE_PLUGIN", "ansible.builtin.jsonfile")
    monkeypatch.setenv("ANSIBLE_CACHE_PLUGIN_CONNECTION", str(cache))
    monkeypatch.setenv("ANSIBLE_CACHE_PLUGIN_TIMEOUT", "3600")
    fact = {"cityward_note": "Authorised use only.\nAll activity is logged.", "cacheable": True}
    ansible = str(Path(sys.executable).parent / "ansible")
    ran = subprocess.run([ansible, "-i", str(inventory / "hosts.yml"), "plc-01", "-m", "ansible.builtin.set_fact",
                          "-a", json.dumps(fact)], capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert any(cache.iterdir()), "the fact was not cached: the test proves nothing"
    seen = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(inventory / "hosts.yml"),
                           "--host", "plc-01"], capture_output=True, text=True, check=True).stdout
    assert "cityward_note" in json.loads(seen)  # what plain ansible-inventory does
    hostvars = list_inventory(inventory / "hosts.yml", None)["_meta"]["hostvars"]["plc-01"]
    assert "cityward_note" not in hostvars
